import type Koffi from "koffi";
import { createRequire } from "node:module";
import { constants } from "node:os";

// Direct mount(2)/umount2(2) through FFI: each is a microsecond system call,
// where running mount(8)/umount(8) costs a fork and exec of the daemon.

type Fn = ((...args: unknown[]) => unknown) & { async: (...args: unknown[]) => void };
let fns: { mount: Fn; umount2: Fn } | undefined;
let koffi: typeof Koffi;

/** libc is bound on first use, so processes that never mount (berthctl) do not load it. */
function libc(): { mount: Fn; umount2: Fn } {
  if (!fns) {
    koffi = createRequire(import.meta.url)("koffi") as typeof Koffi;
    const lib = koffi.load("libc.so.6");
    fns = {
      mount: lib.func("int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)") as Fn,
      umount2: lib.func("int umount2(const char *target, int flags)") as Fn,
    };
  }
  return fns;
}

export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_BIND = 0x1000;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 1 << 18;
export const MNT_DETACH = 0x2;
const EINVAL = constants.errno.EINVAL;
const ENOENT = constants.errno.ENOENT;

// Linux gives two names to errno 11 (EAGAIN, EWOULDBLOCK) and 95 (ENOTSUP, EOPNOTSUPP):
// keep the first, the one callers compare with (the last one silently broke those checks).
const ERRNO_NAMES = new Map<number, string>();
for (const [name, n] of Object.entries(constants.errno)) if (!ERRNO_NAMES.has(n)) ERRNO_NAMES.set(n, name);

/** The name of an errno value ("EAGAIN"), or "errno N" for one Node does not name. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

export class SyscallError extends Error {
  constructor(
    readonly syscall: string,
    readonly errno: number,
    readonly path: string,
  ) {
    super(`${syscall} ${path}: ${errnoName(errno)}`);
    this.name = "SyscallError";
  }
  get code(): string {
    return ERRNO_NAMES.get(this.errno) ?? String(this.errno);
  }
}

/** mount(2). */
export function mountSyscall(source: string, target: string, fsType: string | null, flags: number, data: string | null): void {
  if ((libc().mount(source, target, fsType, flags, data) as number) !== 0) throw new SyscallError("mount", koffi.errno(), target);
}

/**
 * umount2(2). Returns false when nothing is mounted there (EINVAL/ENOENT),
 * true when it unmounted; throws on other errors.
 */
export function umountSyscall(target: string, flags = 0): boolean {
  if ((libc().umount2(target, flags) as number) === 0) return true;
  const errno = koffi.errno();
  if (errno === EINVAL || errno === ENOENT) return false;
  throw new SyscallError("umount2", errno, target);
}

/**
 * umount2(2) on a libuv thread: unmounting an overlay (or a busy bind mount)
 * can take milliseconds that would otherwise stall the event loop. errno is
 * thread-local, so a failed call is repeated synchronously to learn why (a
 * target no longer mounted answers at once). Same results as umountSyscall.
 */
export function umountSyscallAsync(target: string, flags = 0): Promise<boolean> {
  const umount2 = libc().umount2;
  return new Promise((resolve, reject) => {
    umount2.async(target, flags, (err: unknown, rc: number) => {
      if (!err && rc === 0) return resolve(true);
      try {
        resolve(umountSyscall(target, flags));
      } catch (e) {
        reject(e);
      }
    });
  });
}
