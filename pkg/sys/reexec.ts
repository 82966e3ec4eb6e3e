import { createRequire } from "node:module";
import { SyscallError } from "./syscalls.js";

// Replacing the running node process with itself under more node/V8 flags.
//
// Some V8 heap sizes are fixed when the main isolate is created and can only be given on
// node's command line; v8.setFlagsFromString is too late for them. A re-exec keeps the
// pid (systemd's MainPID, a harness's child, a supervisor's pid file stay right) and the
// open stdio, and costs one more node start-up.

const F_SETFD = 2;

interface Koffi {
  load(path: string): { func(decl: string): (...args: unknown[]) => number };
  errno(): number;
}

/**
 * execve(2)s process.execPath with `flags` before node's own options, the same script and
 * arguments and the same environment, plus `env` (settings read when a process starts,
 * such as glibc's MALLOC_ARENA_MAX). Returns only when it fails (SyscallError). Node marks
 * stdin, stdout and stderr close-on-exec at start; they are inherited again here.
 */
export function reexecNodeWith(flags: readonly string[], env: Readonly<Record<string, string>> = {}): never {
  const koffi = createRequire(import.meta.url)("koffi") as Koffi;
  const libc = koffi.load("libc.so.6");
  const fcntl = libc.func("int fcntl(int fd, int cmd, ...)");
  const execve = libc.func("int execve(const char *path, const char **argv, const char **envp)");
  for (const fd of [0, 1, 2]) fcntl(fd, F_SETFD, "int", 0);
  const argv = [process.execPath, ...flags, ...process.execArgv, ...process.argv.slice(1)];
  const envp = Object.entries({ ...process.env, ...env }).map(([k, v]) => `${k}=${v ?? ""}`);
  execve(process.execPath, [...argv, null], [...envp, null]);
  throw new SyscallError("execve", koffi.errno(), process.execPath);
}
