import { lstatSync, openSync, readSync, closeSync, fstatSync, readlinkSync, constants } from "node:fs";
import { posix } from "node:path";

const MAX_SYMLINKS = 255;

/**
 * Resolves `path` inside `root` the way the container would see it: every
 * symlink (absolute or relative) is followed relative to `root`, and `..`
 * never climbs above it. Returns a host path under root. Components that do
 * not exist are appended unresolved.
 */
export function resolveInRoot(root: string, path: string): string {
  const rootClean = posix.resolve(root);
  let pending = posix.normalize("/" + path).split("/").filter((p) => p !== "" && p !== ".");
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === "..") {
      resolved.pop();
      continue;
    }
    const candidate = posix.join(rootClean, ...resolved, part);
    let isLink = false;
    try {
      isLink = lstatSync(candidate).isSymbolicLink();
    } catch {
      resolved.push(part, ...pending);
      pending = [];
      break;
    }
    if (!isLink) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_SYMLINKS) throw new Error(`too many symlinks resolving ${path} in ${root}`);
    const target = readlinkSync(candidate);
    const targetParts = target.split("/").filter((p) => p !== "" && p !== ".");
    if (target.startsWith("/")) resolved.length = 0;
    pending = [...targetParts, ...pending];
  }
  const out = posix.join(rootClean, ...resolved.filter((p) => p !== ".."));
  if (out !== rootClean && !out.startsWith(rootClean + "/")) throw new Error(`path ${path} escapes ${root}`);
  return out;
}

/**
 * Reads a regular file at `path` inside the rootfs `root` (symlinks resolved
 * inside root, final component not followed, at most maxBytes). undefined when
 * the file does not exist or is not a regular file.
 */
export function readFileInRoot(root: string, path: string, maxBytes = 4 * 1024 * 1024): string | undefined {
  let host: string;
  try {
    host = resolveInRoot(root, path);
  } catch {
    return undefined;
  }
  let fd: number;
  try {
    fd = openSync(host, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return undefined;
    const size = Math.min(st.size, maxBytes);
    const buf = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, size - off, off);
      if (n <= 0) break;
      off += n;
    }
    return buf.subarray(0, off).toString("utf8");
  } finally {
    closeSync(fd);
  }
}
