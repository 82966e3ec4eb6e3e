import type Koffi from "koffi";
import { createRequire } from "node:module";
import { Socket } from "node:net";
import { constants } from "node:os";
import { errnoName } from "./syscalls.js";

// Starting a child with child_process.spawn forks berthd: the kernel copies the page
// tables of a process with a large heap, and libuv then waits in the event loop thread
// until the child has exec'd. Measured here on a loaded 2-core VM with a 160 MB daemon:
// 11–20 ms of blocked event loop per child, against 0.8 ms for glibc's posix_spawn,
// which shares the parent's memory until exec (clone with CLONE_VM|CLONE_VFORK).
// berthd starts several children per pod (CNI plugins, runc, conmon), so its hot paths
// start them here. libuv reaps only the children it started itself (waitpid on each of
// its pids), so children started here are reaped here, on SIGCHLD.

/** What a child's file descriptor is connected to: nothing (/dev/null), a new socket pair, or a parent fd. */
export type StdioSpec = "ignore" | "pipe" | number;

export interface FastSpawnOptions {
  /** The child's whole environment (default: the daemon's). */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Index = the child's fd. Default: stdin ignored, stdout and stderr piped. */
  stdio?: readonly StdioSpec[];
  /** Start the child in a new session (no controlling terminal, its own process group). */
  setsid?: boolean;
  /** The child's argv[0] (default: file). */
  argv0?: string;
}

export interface ExitStatus {
  /** Exit code, or null when a signal ended the child. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface FastChild {
  pid: number;
  /** The parent's end of each "pipe" entry of stdio (undefined for the others). */
  stdio: Array<Socket | undefined>;
  /** Resolves once the child is reaped. */
  exited: Promise<ExitStatus>;
  /** Sends a signal; false when the child is already reaped. */
  kill(signal?: NodeJS.Signals | number): boolean;
}

type Fn = (...args: unknown[]) => number;
type AsyncFn = Fn & { async: (...args: unknown[]) => void };
interface Libc {
  posix_spawnp: AsyncFn;
  fa_init: Fn;
  fa_destroy: Fn;
  fa_adddup2: Fn;
  fa_addopen: Fn;
  fa_addchdir: Fn;
  attr_init: Fn;
  attr_destroy: Fn;
  attr_setflags: Fn;
  attr_setsigmask: Fn;
  attr_setsigdefault: Fn;
  sigemptyset: Fn;
  sigfillset: Fn;
  socketpair: Fn;
  close: Fn;
  waitpid: Fn;
}

let libc: Libc | undefined;
let koffi: typeof Koffi;

function lib(): Libc {
  if (!libc) {
    koffi = createRequire(import.meta.url)("koffi") as typeof Koffi;
    const l = koffi.load("libc.so.6");
    const f = (decl: string): Fn => l.func(decl) as Fn;
    libc = {
      posix_spawnp: l.func("int posix_spawnp(_Out_ int *pid, const char *file, void *fa, void *attr, const char **argv, const char **envp)") as AsyncFn,
      fa_init: f("int posix_spawn_file_actions_init(void *fa)"),
      fa_destroy: f("int posix_spawn_file_actions_destroy(void *fa)"),
      fa_adddup2: f("int posix_spawn_file_actions_adddup2(void *fa, int fd, int newfd)"),
      fa_addopen: f("int posix_spawn_file_actions_addopen(void *fa, int fd, const char *path, int oflag, uint32_t mode)"),
      fa_addchdir: f("int posix_spawn_file_actions_addchdir_np(void *fa, const char *path)"),
      attr_init: f("int posix_spawnattr_init(void *attr)"),
      attr_destroy: f("int posix_spawnattr_destroy(void *attr)"),
      attr_setflags: f("int posix_spawnattr_setflags(void *attr, short flags)"),
      attr_setsigmask: f("int posix_spawnattr_setsigmask(void *attr, void *set)"),
      attr_setsigdefault: f("int posix_spawnattr_setsigdefault(void *attr, void *set)"),
      sigemptyset: f("int sigemptyset(void *set)"),
      sigfillset: f("int sigfillset(void *set)"),
      socketpair: f("int socketpair(int domain, int type, int protocol, void *sv)"),
      close: f("int close(int fd)"),
      waitpid: f("int waitpid(int pid, void *status, int options)"),
    };
  }
  return libc;
}

// glibc's values (spawn.h, bits/socket_type.h, bits/fcntl-linux.h, bits/waitflags.h).
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;
const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const O_RDWR = 2;
const WNOHANG = 1;
const ECHILD = constants.errno.ECHILD;

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

/** Children started here and not yet reaped, by pid. */
const pending = new Map<number, (st: ExitStatus) => void>();
let listening = false;
let safetyPoll: NodeJS.Timeout | undefined;

function reap(): void {
  const { waitpid } = lib();
  const status = Buffer.alloc(4);
  for (const [pid, done] of pending) {
    const r = waitpid(pid, status, WNOHANG);
    if (r === 0) continue;
    if (r < 0 && koffi.errno() !== ECHILD) continue;
    pending.delete(pid);
    if (r < 0) {
      // Someone else reaped it: the status is lost.
      done({ code: null, signal: null });
      continue;
    }
    const st = status.readInt32LE(0);
    const sig = st & 0x7f;
    done(sig === 0 ? { code: (st >> 8) & 0xff, signal: null } : { code: null, signal: SIGNAL_NAMES.get(sig) ?? "SIGKILL" });
  }
  if (pending.size === 0) stopWatching();
}

function startWatching(): void {
  if (listening) return;
  listening = true;
  process.on("SIGCHLD", reap);
  // SIGCHLD is the signal that wakes us; the slow poll covers a lost one, and keeps
  // the event loop alive while a child runs (Node's signal watchers do not).
  safetyPoll = setInterval(reap, 200);
}

function stopWatching(): void {
  if (!listening) return;
  listening = false;
  process.removeListener("SIGCHLD", reap);
  if (safetyPoll) clearInterval(safetyPoll);
  safetyPoll = undefined;
}

/** An Error shaped like the one child_process gives for a command it could not start. */
function spawnError(file: string, errno: number): NodeJS.ErrnoException {
  const code = errnoName(errno);
  const err = new Error(`spawn ${file} ${code}`) as NodeJS.ErrnoException;
  err.code = code;
  err.errno = -errno;
  err.syscall = `spawn ${file}`;
  err.path = file;
  return err;
}

/**
 * Starts file (looked up in PATH when it has no slash) with posix_spawn, called on
 * a libuv pool thread: with CLONE_VFORK the calling thread waits until the child has
 * exec'd, which on a busy machine is milliseconds the event loop would lose. Rejects
 * (code ENOENT, EACCES…) when the command cannot be started. Parent fds named in
 * stdio must stay open until the promise settles. The caller must consume or
 * destroy every piped socket.
 */
export async function fastSpawn(file: string, args: readonly string[], opts: FastSpawnOptions = {}): Promise<FastChild> {
  const c = lib();
  const stdio = opts.stdio ?? ["ignore", "pipe", "pipe"];
  const fa = Buffer.alloc(256);
  const attr = Buffer.alloc(1024);
  const sigs = Buffer.alloc(256);
  const all = Buffer.alloc(256);
  const parentEnds: Array<number | undefined> = [];
  const childEnds: number[] = [];
  const closeAll = (fds: Array<number | undefined>): void => {
    for (const fd of fds) if (fd !== undefined && fd >= 0) c.close(fd);
  };
  c.fa_init(fa);
  c.attr_init(attr);
  let pid: number;
  try {
    stdio.forEach((spec, fd) => {
      if (spec === "ignore") {
        c.fa_addopen(fa, fd, "/dev/null", O_RDWR, 0);
        parentEnds.push(undefined);
      } else if (spec === "pipe") {
        const sv = Buffer.alloc(8);
        if (c.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) !== 0) throw spawnError(file, koffi.errno());
        parentEnds.push(sv.readInt32LE(0));
        const child = sv.readInt32LE(4);
        childEnds.push(child);
        c.fa_adddup2(fa, child, fd);
      } else {
        c.fa_adddup2(fa, spec, fd);
        parentEnds.push(undefined);
      }
    });
    if (opts.cwd) c.fa_addchdir(fa, opts.cwd);
    c.sigemptyset(sigs);
    c.attr_setsigmask(attr, sigs);
    // Node ignores SIGPIPE; a child must start with every signal at its default.
    c.sigfillset(all);
    c.attr_setsigdefault(attr, all);
    c.attr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | (opts.setsid ? POSIX_SPAWN_SETSID : 0));
    const env = Object.entries(opts.env ?? process.env)
      .filter((e): e is [string, string] => e[1] !== undefined)
      .map(([k, v]) => `${k}=${v}`);
    const pidOut = [0];
    const rc = await new Promise<number>((resolve, reject) => {
      c.posix_spawnp.async(pidOut, file, fa, attr, [opts.argv0 ?? file, ...args, null], [...env, null], (err: unknown, r: number) => (err ? reject(err as Error) : resolve(r)));
    });
    if (rc !== 0) throw spawnError(file, rc);
    pid = pidOut[0] as number;
  } catch (err) {
    closeAll(childEnds);
    closeAll(parentEnds);
    throw err;
  } finally {
    c.fa_destroy(fa);
    c.attr_destroy(attr);
  }
  closeAll(childEnds);
  const exited = new Promise<ExitStatus>((resolve) => pending.set(pid, resolve));
  startWatching();
  // It may have exited (and its SIGCHLD come) before it was registered.
  reap();
  const sockets = parentEnds.map((fd, i) => {
    if (fd === undefined) return undefined;
    return new Socket({ fd, readable: i !== 0, writable: i === 0 || i > 2, allowHalfOpen: true });
  });
  return {
    pid,
    stdio: sockets,
    exited,
    kill(signal: NodeJS.Signals | number = "SIGTERM"): boolean {
      if (!pending.has(pid)) return false;
      try {
        process.kill(pid, signal);
        return true;
      } catch {
        return false;
      }
    },
  };
}
