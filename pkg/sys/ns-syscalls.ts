import { createRequire } from "node:module";
import { constants } from "node:os";
import { SyscallError } from "./syscalls.js";

// Namespace system calls (unshare, setns, sethostname) and the two ioctls that
// bring an interface up, through koffi. They act on the calling thread only:
// callers run them synchronously on one thread and restore its namespaces
// before returning to the event loop (see pkg/netns/pin.ts).

export const CLONE_NEWNET = 0x40000000;
export const CLONE_NEWUTS = 0x04000000;
export const CLONE_NEWIPC = 0x08000000;

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const SIOCGIFFLAGS = 0x8913;
const SIOCSIFFLAGS = 0x8914;
const IFF_UP = 0x1;
/** struct ifreq: a 16-byte name, then a union of at most 24 bytes (flags are its first short). */
const IFREQ_SIZE = 40;
const IFNAMSIZ = 16;

type Fn = (...args: unknown[]) => number;
interface Koffi {
  load(path: string): { func(decl: string): Fn };
  errno(): number;
}
interface NsLibc {
  koffi: Koffi;
  unshare: Fn;
  setns: Fn;
  sethostname: Fn;
  socket: Fn;
  ioctl: Fn;
  close: Fn;
}

let cached: NsLibc | undefined;

function libc(): NsLibc {
  if (cached) return cached;
  const koffi = createRequire(import.meta.url)("koffi") as Koffi;
  const lib = koffi.load("libc.so.6");
  cached = {
    koffi,
    unshare: lib.func("int unshare(int flags)"),
    setns: lib.func("int setns(int fd, int nstype)"),
    sethostname: lib.func("int sethostname(const char *name, size_t len)"),
    socket: lib.func("int socket(int domain, int type, int protocol)"),
    ioctl: lib.func("int ioctl(int fd, unsigned long request, ...)"),
    close: lib.func("int close(int fd)"),
  };
  return cached;
}

/** Loads the bindings; throws when koffi or libc cannot be loaded (callers then fall back to processes). */
export function nsSyscallsAvailable(): boolean {
  try {
    libc();
    return true;
  } catch {
    return false;
  }
}

/** unshare(2) of the calling thread. */
export function unshareSyscall(flags: number): void {
  const l = libc();
  if (l.unshare(flags) !== 0) throw new SyscallError("unshare", l.koffi.errno(), `flags 0x${flags.toString(16)}`);
}

/** setns(2) of the calling thread into the namespace open at fd. */
export function setnsSyscall(fd: number, nstype: number, what: string): void {
  const l = libc();
  if (l.setns(fd, nstype) !== 0) throw new SyscallError("setns", l.koffi.errno(), what);
}

/** sethostname(2) in the calling thread's UTS namespace. */
export function sethostnameSyscall(name: string): void {
  const l = libc();
  const b = Buffer.from(name, "utf8");
  if (l.sethostname(b, b.length) !== 0) throw new SyscallError("sethostname", l.koffi.errno(), JSON.stringify(name));
}

/** Sets IFF_UP on an interface of the calling thread's network namespace (what `ip link set NAME up` does). */
export function interfaceUp(name: string): void {
  const l = libc();
  const nameBytes = Buffer.from(name, "utf8");
  if (nameBytes.length >= IFNAMSIZ) throw new SyscallError("ioctl", constants.errno.EINVAL, name);
  const fd = l.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new SyscallError("socket", l.koffi.errno(), `AF_INET for ${name}`);
  try {
    const ifr = Buffer.alloc(IFREQ_SIZE);
    nameBytes.copy(ifr);
    if (l.ioctl(fd, SIOCGIFFLAGS, "void *", ifr) !== 0) throw new SyscallError("ioctl(SIOCGIFFLAGS)", l.koffi.errno(), name);
    const flags = ifr.readUInt16LE(IFNAMSIZ);
    if ((flags & IFF_UP) === 0) {
      ifr.writeUInt16LE(flags | IFF_UP, IFNAMSIZ);
      if (l.ioctl(fd, SIOCSIFFLAGS, "void *", ifr) !== 0) throw new SyscallError("ioctl(SIOCSIFFLAGS)", l.koffi.errno(), name);
    }
  } finally {
    l.close(fd);
  }
}

/** IFF_UP of an interface in the calling thread's network namespace. */
export function interfaceIsUp(name: string): boolean {
  const l = libc();
  const fd = l.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new SyscallError("socket", l.koffi.errno(), `AF_INET for ${name}`);
  try {
    const ifr = Buffer.alloc(IFREQ_SIZE);
    Buffer.from(name, "utf8").copy(ifr, 0, 0, IFNAMSIZ - 1);
    if (l.ioctl(fd, SIOCGIFFLAGS, "void *", ifr) !== 0) throw new SyscallError("ioctl(SIOCGIFFLAGS)", l.koffi.errno(), name);
    return (ifr.readUInt16LE(IFNAMSIZ) & IFF_UP) !== 0;
  } finally {
    l.close(fd);
  }
}
