import { createRequire } from "node:module";
import { constants as osConstants } from "node:os";
import { SyscallError } from "./syscalls.js";

// Filesystem system calls Node's fs module does not offer (mknod, xattrs,
// syncfs), called through koffi (mount and umount2 are in syscalls.ts). Safe to use from worker
// threads: each thread loads its own bindings, and errno is read on the
// calling thread right after the call.

interface Koffi {
  load(path: string): { func(decl: string): (...args: unknown[]) => number };
  errno(): number;
}

interface Libc {
  mknod: (path: string, mode: number, dev: bigint) => number;
  lsetxattr: (path: string, name: string, value: Buffer, size: number, flags: number) => number;
  lgetxattr: (path: string, name: string, value: Buffer | null, size: number) => number;
  llistxattr: (path: string, list: Buffer | null, size: number) => number;
  syncfs: (fd: number) => number;
  malloc_trim: ((pad: number) => number) & { async: (pad: number, done: (err: unknown, result: number) => void) => void };
  mallopt: (param: number, value: number) => number;
}

let cached: { koffi: Koffi; libc: Libc } | undefined;

function libc(): { koffi: Koffi; libc: Libc } {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const koffi = require("koffi") as Koffi;
  const lib = koffi.load("libc.so.6");
  const bound = {
    mknod: lib.func("int mknod(const char *path, uint32_t mode, uint64_t dev)"),
    lsetxattr: lib.func("int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)"),
    lgetxattr: lib.func("intptr_t lgetxattr(const char *path, const char *name, _Out_ void *value, size_t size)"),
    llistxattr: lib.func("intptr_t llistxattr(const char *path, _Out_ void *list, size_t size)"),
    syncfs: lib.func("int syncfs(int fd)"),
    malloc_trim: lib.func("int malloc_trim(size_t pad)"),
    mallopt: lib.func("int mallopt(int param, int value)"),
  } as unknown as Libc;
  cached = { koffi, libc: bound };
  return cached;
}

// Linux gives two names to errno 11 (EAGAIN, EWOULDBLOCK) and 95 (ENOTSUP, EOPNOTSUPP):
// keep the first, the one callers compare with (the last one silently broke those checks).
const errnoNames = new Map<number, string>();
for (const [name, n] of Object.entries(osConstants.errno)) if (!errnoNames.has(n)) errnoNames.set(n, name);

function check(ret: number, syscall: string, path: string): number {
  if (ret < 0) throw new SyscallError(syscall, libc().koffi.errno(), path);
  return ret;
}

export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

/** glibc's makedev(3). */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major >>> 0);
  const mi = BigInt(minor >>> 0);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** mknod(2): creates a device node or fifo; `mode` includes the S_IF* type bits. */
export function mknod(path: string, mode: number, dev: bigint = 0n): void {
  check(libc().libc.mknod(path, mode, dev), "mknod", path);
}

/** lsetxattr(2): sets an extended attribute without following a final symlink. */
export function lsetxattr(path: string, name: string, value: Uint8Array): void {
  const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  check(libc().libc.lsetxattr(path, name, buf, buf.byteLength, 0), "lsetxattr", path);
}

/** lgetxattr(2): the value of one attribute, or undefined when the file has none by that name. */
export function lgetxattr(path: string, name: string): Buffer | undefined {
  const { libc: c, koffi } = libc();
  for (;;) {
    const size = c.lgetxattr(path, name, null, 0);
    if (size < 0) {
      const e = koffi.errno();
      if (errnoNames.get(e) === "ENODATA") return undefined;
      throw new SyscallError("lgetxattr", e, path);
    }
    const buf = Buffer.alloc(size);
    const got = c.lgetxattr(path, name, buf, size);
    if (got >= 0) return buf.subarray(0, got);
    const e = koffi.errno();
    if (errnoNames.get(e) !== "ERANGE") throw new SyscallError("lgetxattr", e, path);
  }
}

/** llistxattr(2): the names of a file's extended attributes (empty when the filesystem has none). */
export function llistxattr(path: string): string[] {
  const { libc: c, koffi } = libc();
  for (;;) {
    const size = c.llistxattr(path, null, 0);
    if (size < 0) {
      const e = koffi.errno();
      if (errnoNames.get(e) === "ENOTSUP") return [];
      throw new SyscallError("llistxattr", e, path);
    }
    if (size === 0) return [];
    const buf = Buffer.alloc(size);
    const got = c.llistxattr(path, buf, size);
    if (got >= 0) return buf.subarray(0, got).toString("latin1").split("\0").filter((n) => n !== "");
    const e = koffi.errno();
    if (errnoNames.get(e) !== "ERANGE") throw new SyscallError("llistxattr", e, path);
  }
}

/** syncfs(2): flushes the filesystem that holds the open file descriptor. */
export function syncfs(fd: number): void {
  check(libc().libc.syncfs(fd), "syncfs", `fd ${fd}`);
}

/** mount(2) flags syscalls.ts does not define. */
export const MS_RDONLY = 0x1;
export const MS_REMOUNT = 0x20;

/**
 * glibc's malloc_trim(3): gives the free memory of every malloc arena back to the kernel.
 * Worker threads leave their native buffers (zlib, file reads) in per-thread arenas that
 * glibc keeps after the thread exits; call this when the last worker is gone.
 *
 * It runs on a libuv pool thread (koffi's async call): after a pull it walks hundreds of
 * megabytes of freed arenas, 90 to 150 ms measured on berthd's event loop, where it used to
 * hold up every CRI call of that moment (glibc locks one arena at a time, so threads that
 * allocate meanwhile wait only for the arena being trimmed). Settles when it is done; never rejects.
 */
export function mallocTrim(): Promise<void> {
  return new Promise((resolve) => {
    try {
      libc().libc.malloc_trim.async(0, () => resolve());
    } catch {
      // not glibc, or no koffi: nothing to give back this way
      resolve();
    }
  });
}

/** mallopt(3)'s parameters. (M_ARENA_MAX cannot work from here: see cmd/berthd/main.ts.) */
const M_TRIM_THRESHOLD = -1;
const M_MMAP_THRESHOLD = -3;

/**
 * Fixes glibc's trim and mmap thresholds (mallopt M_TRIM_THRESHOLD, M_MMAP_THRESHOLD),
 * which turns off their dynamic adjustment. By default, freeing a large mmap'd block
 * (a pull's multi-megabyte buffers) raises the mmap threshold to that block's size and the
 * trim threshold to twice it, up to 64 MB: from then on an arena keeps up to 64 MB of
 * free memory at its top, and malloc_trim(3) does not give back the top of a thread's
 * arena. Measured after a 471 MB pull: one thread arena kept 25 MB free at its top, PSS
 * 45 -> 68 MB a minute later. With fixed thresholds, blocks of `mmapBytes` and more are
 * mapped on their own and unmapped when freed, and an arena's top is trimmed when
 * more than `trimBytes` of it is free. Left alone where the environment sets either
 * (MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_, GLIBC_TUNABLES); false where it cannot
 * be set (not glibc, no koffi).
 */
export function fixMallocThresholds(trimBytes: number, mmapBytes: number): boolean {
  const env = process.env;
  if (env["MALLOC_TRIM_THRESHOLD_"] !== undefined || env["MALLOC_MMAP_THRESHOLD_"] !== undefined || /glibc\.malloc\.(trim|mmap)_threshold/.test(env["GLIBC_TUNABLES"] ?? "")) return false;
  try {
    const { mallopt } = libc().libc;
    return mallopt(M_MMAP_THRESHOLD, mmapBytes) === 1 && mallopt(M_TRIM_THRESHOLD, trimBytes) === 1;
  } catch {
    return false;
  }
}
