// Writes the entries of one layer into its own diff directory (the overlay
// upper of that layer), synchronously: it runs inside the apply worker.
//
// Confinement follows containerd: every name is cleaned as if rooted at the
// diff directory, the parent directories are resolved component by component
// inside the root (a symlink is read and followed as if the root were "/"),
// the final component itself is never followed, and hard link targets are
// resolved the same way and must already exist in this layer. OCI whiteouts
// become overlay whiteouts: ".wh.name" a 0/0 character device, ".wh..wh..opq"
// the xattr trusted.overlay.opaque=y on the directory.

import {
  chmodSync,
  closeSync,
  constants as fsConstants,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeSync,
  type Stats,
} from "node:fs";
import { posix } from "node:path";
import { S_IFBLK, S_IFCHR, S_IFIFO, lsetxattr, makedev, mknod, llistxattr, lgetxattr } from "../sys/index.js";
import type { TarHeader, TarSink } from "./tar-reader.js";

export const WHITEOUT_PREFIX = ".wh.";
export const WHITEOUT_META_PREFIX = ".wh..wh.";
export const OPAQUE_WHITEOUT = ".wh..wh..opq";
export const OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque";

const MAX_SYMLINKS = 255;

/**
 * The layer's content is not acceptable (escapes, bad whiteouts, dangling hard links).
 * Thrown out of the applier as `layer sha256:…: entry "path": reason`.
 */
export class LayerContentError extends Error {
  override readonly name = "LayerContentError";
}

/** A filesystem operation failed while writing an entry; `code` keeps the errno name. */
export class LayerIoError extends Error {
  override readonly name = "LayerIoError";
  readonly code: string | undefined;
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.code = (cause as NodeJS.ErrnoException).code;
  }
}

export interface ApplierOptions {
  /** The diff directory being filled (absolute, no trailing slash). */
  root: string;
  /**
   * Diff directories of the parent chain, topmost first: attributes of implied directories
   * come from them. `undefined` while the parent layers are still being applied: implied
   * directories are then listed in `implied` and take their attributes later (copyImpliedDirs).
   */
  lowers: readonly string[] | undefined;
  /** How errors name the layer (its digest). */
  layer: string;
}

export interface ApplierStats {
  entries: number;
  whiteouts: number;
  opaques: number;
  skippedXattrs: number;
}

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p, { throwIfNoEntry: false });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw err;
  }
}

function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

function splitRel(rel: string): string[] {
  return rel.split("/").filter((p) => p !== "" && p !== ".");
}

/**
 * Resolves `rel` inside `root`, following symlinks as if `root` were "/":
 * absolute link targets restart at root, ".." never climbs above it. The
 * result is absolute and below (or equal to) root; components that do not
 * exist are kept as they are.
 */
export function resolveInRoot(root: string, rel: string): string {
  let todo = splitRel(rel);
  const done: string[] = [];
  let links = 0;
  while (todo.length > 0) {
    const part = todo.shift() as string;
    if (part === "..") {
      done.pop();
      continue;
    }
    const full = `${root}/${[...done, part].join("/")}`;
    const st = lstatOrUndefined(full);
    if (st?.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) throw new LayerContentError(`too many levels of symbolic links resolving ${JSON.stringify(rel)}`);
      const target = readlinkSync(full);
      if (target.startsWith("/")) done.length = 0;
      todo = [...splitRel(target), ...todo];
      continue;
    }
    done.push(part);
  }
  return done.length === 0 ? root : `${root}/${done.join("/")}`;
}

/**
 * Gives `path` the owner, mode and xattrs directory `rel` has in the topmost of `lowers`
 * holding it, and returns that directory's times (undefined when no lower has it as a directory).
 */
function copyDirAttrs(lowers: readonly string[], rel: string, path: string): { atime: number; mtime: number } | undefined {
  for (const lower of lowers) {
    const lp = resolveInRoot(lower, rel);
    const st = lstatOrUndefined(lp);
    if (st === undefined) continue;
    if (!st.isDirectory()) return undefined; // replaced or whited out below: keep the defaults
    lchownSync(path, st.uid, st.gid);
    chmodSync(path, st.mode & 0o7777);
    for (const name of llistxattr(lp)) {
      if (name.startsWith("trusted.overlay.")) continue;
      const v = lgetxattr(lp, name);
      if (v !== undefined) lsetxattr(path, name, v);
    }
    return { atime: st.atimeMs / 1000, mtime: st.mtimeMs / 1000 };
  }
  return undefined;
}

/**
 * The second half of an apply made before its parents were committed: the implied
 * directories of the layer in `root` take their attributes from `lowers` now. A directory
 * gone or replaced since is skipped. Returns how many were updated.
 */
export function copyImpliedDirs(root: string, lowers: readonly string[], implied: readonly string[], layer: string): number {
  let n = 0;
  for (const rel of implied) {
    const path = `${root}/${rel}`;
    const st = lstatOrUndefined(path);
    if (!st?.isDirectory()) continue;
    try {
      const times = copyDirAttrs(lowers, rel, path);
      if (times) lutimesSync(path, times.atime, times.mtime);
    } catch (err) {
      if (err instanceof LayerContentError) throw new LayerContentError(`layer ${layer}: entry ${JSON.stringify(rel)}: ${err.message}`, { cause: err });
      throw new LayerIoError(`layer ${layer}: entry ${JSON.stringify(rel)}: ${(err as Error).message}`, err);
    }
    n++;
  }
  return n;
}

export class LayerApplier implements TarSink {
  readonly #root: string;
  readonly #lowers: readonly string[] | undefined;
  /** Implied directories (relative to the root) waiting for the parents' attributes, when lowers are not known yet. */
  readonly #implied = new Set<string>();
  readonly #layer: string;
  /** Parent (relative, as written) → its resolved absolute path, known to be a real directory. */
  readonly #dirCache = new Map<string, string>();
  /** Directories whose times are set at the end (creating entries in them changes their mtime). */
  readonly #dirTimes: Array<{ path: string; atime: number; mtime: number }> = [];
  #fd: number | undefined;
  #file: { path: string; h: TarHeader; written: number } | undefined;
  readonly stats: ApplierStats = { entries: 0, whiteouts: 0, opaques: 0, skippedXattrs: 0 };

  constructor(opts: ApplierOptions) {
    this.#root = opts.root;
    this.#lowers = opts.lowers;
    this.#layer = opts.layer;
  }

  /** How messages name an entry of this layer. */
  #where(name: string): string {
    return `layer ${this.#layer}: entry ${JSON.stringify(name)}`;
  }

  entry(h: TarHeader): void {
    this.stats.entries++;
    try {
      this.#entry(h);
    } catch (err) {
      // what #entry throws carries the reason only: name the layer and the entry here, once
      if (err instanceof LayerContentError) throw new LayerContentError(`${this.#where(h.name)}: ${err.message}`, { cause: err });
      throw new LayerIoError(`${this.#where(h.name)}: ${(err as Error).message}`, err);
    }
  }

  #entry(h: TarHeader): void {
    if (h.name.includes("\0") || h.linkname.includes("\0")) throw new LayerContentError("name contains a NUL byte");
    const rel = posix.normalize(`/${h.name}`).replace(/^\/+/, "").replace(/\/+$/, "");
    if (rel === "" || rel === ".") return; // the root itself: the diff dir keeps its own attributes
    const slash = rel.lastIndexOf("/");
    const parentRel = slash < 0 ? "" : rel.slice(0, slash);
    const base = rel.slice(slash + 1);

    if (base.startsWith(WHITEOUT_PREFIX)) {
      const parent = this.#parentDir(parentRel);
      if (base === OPAQUE_WHITEOUT) {
        lsetxattr(parent, OVERLAY_OPAQUE_XATTR, Buffer.from("y"));
        this.stats.opaques++;
        return;
      }
      if (base.startsWith(WHITEOUT_META_PREFIX)) return; // other AUFS metadata (.wh..wh.plnk …): nothing to apply
      const original = base.slice(WHITEOUT_PREFIX.length);
      if (original === "" || original === "." || original === "..") throw new LayerContentError("invalid whiteout name");
      const target = `${parent}/${original}`;
      // a whiteout hides the lower layers only, never what this layer itself adds:
      // an entry of this layer already hides the lower path, a directory must also stop merging
      const existing = lstatOrUndefined(target);
      if (existing) {
        if (existing.isDirectory()) lsetxattr(target, OVERLAY_OPAQUE_XATTR, Buffer.from("y"));
        return;
      }
      mknod(target, S_IFCHR, 0n);
      lchownSync(target, h.uid, h.gid);
      this.stats.whiteouts++;
      return;
    }

    const parent = this.#parentDir(parentRel);
    const path = `${parent}/${base}`;

    switch (h.type) {
      case "dir": {
        // most names are new: create first, look at what is there only when the name is taken
        const existing = this.#create(path, () => mkdirSync(path, { mode: 0o700 }), true);
        // a directory where this layer deleted one: nothing of the old one may show through
        if (existing && isWhiteout(existing)) lsetxattr(path, OVERLAY_OPAQUE_XATTR, Buffer.from("y"));
        this.#dirCache.set(rel, path);
        // an explicit entry gives the directory its own attributes
        if (this.#implied.size > 0) this.#implied.delete(path.slice(this.#root.length + 1));
        break;
      }
      case "file": {
        const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
        let fd = -1;
        this.#create(path, () => (fd = openSync(path, flags, 0o600)), false);
        this.#fd = fd;
        this.#file = { path, h, written: 0 };
        return; // metadata once the body is written
      }
      case "symlink":
        this.#create(path, () => symlinkSync(h.linkname, path), false);
        break;
      case "link":
        // the target is resolved again after a replaced name is removed (it may have been the target)
        this.#create(path, () => linkSync(this.#hardlinkTarget(h), path), false);
        break;
      case "char":
        this.#create(path, () => mknod(path, S_IFCHR | h.mode, makedev(h.devmajor, h.devminor)), false);
        break;
      case "block":
        this.#create(path, () => mknod(path, S_IFBLK | h.mode, makedev(h.devmajor, h.devminor)), false);
        break;
      case "fifo":
        this.#create(path, () => mknod(path, S_IFIFO | h.mode, 0n), false);
        break;
    }
    this.#metadata(path, h);
  }

  /**
   * Runs `make` to create `path`. When the name is taken (by a lower entry of this layer), what
   * is there is removed and `make` runs again, except a directory where a directory is made
   * (`keepDir`): it stays and takes the entry's attributes. Returns what was there, if anything.
   */
  #create(path: string, make: () => void, keepDir: boolean): Stats | undefined {
    try {
      make();
      return undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const existing = lstatOrUndefined(path);
    if (existing?.isDirectory() && keepDir) return existing;
    this.#removeExisting(path);
    make();
    return existing;
  }

  data(chunk: Uint8Array): void {
    const fd = this.#fd;
    const file = this.#file;
    if (fd === undefined || file === undefined) return;
    let off = 0;
    try {
      while (off < chunk.byteLength) off += writeSync(fd, chunk, off, chunk.byteLength - off);
    } catch (err) {
      throw new LayerIoError(`${this.#where(file.h.name)}: ${(err as Error).message}`, err);
    }
    file.written += chunk.byteLength;
  }

  end(): void {
    const fd = this.#fd;
    const file = this.#file;
    if (fd === undefined || file === undefined) return;
    this.#fd = undefined;
    this.#file = undefined;
    try {
      try {
        // through the open descriptor: no path lookups
        this.#metadata(file.path, file.h, fd);
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      throw new LayerIoError(`${this.#where(file.h.name)}: ${(err as Error).message}`, err);
    }
  }

  /** Closes a file left open by an error. */
  abort(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    this.#file = undefined;
  }

  /** Sets the deferred directory times; call after the last entry. */
  finish(): void {
    for (const d of this.#dirTimes) {
      try {
        lutimesSync(d.path, d.atime, d.mtime);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
        const name = d.path === this.#root ? "/" : d.path.slice(this.#root.length + 1);
        throw new LayerIoError(`${this.#where(name)}: setting the directory's times: ${(err as Error).message}`, err);
      }
    }
  }

  #removeExisting(path: string): void {
    if (lstatOrUndefined(path) === undefined) return;
    rmSync(path, { recursive: true, force: true });
    this.#dirCache.clear();
  }

  /** Owner, xattrs, mode and times of a new entry; `fd`: the open regular file at `path`. */
  #metadata(path: string, h: TarHeader, fd?: number): void {
    // a hard link may name a symlink (it links the symlink itself): never chmod through it
    const linked = h.type === "link" ? lstatSync(path) : undefined;
    const symlink = h.type === "symlink" || linked?.isSymbolicLink() === true;
    const plain = h.type === "file" || h.type === "dir" || linked?.isFile() === true;
    if (fd !== undefined) fchownSync(fd, h.uid, h.gid);
    else lchownSync(path, h.uid, h.gid);
    for (const [name, value] of h.xattrs) {
      // only the whiteout conversion may write overlay's own attributes
      if (name.startsWith("trusted.overlay.")) {
        this.stats.skippedXattrs++;
        continue;
      }
      try {
        lsetxattr(path, name, value);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOTSUP" || (code === "EPERM" && name.startsWith("user.") && !plain)) {
          this.stats.skippedXattrs++;
          continue;
        }
        throw err;
      }
    }
    const atime = h.atime ?? h.mtime;
    if (symlink) {
      lutimesSync(path, atime, h.mtime);
      return;
    }
    // after chown, which clears setuid/setgid
    if (fd !== undefined) {
      fchmodSync(fd, h.mode);
      futimesSync(fd, atime, h.mtime);
      return;
    }
    chmodSync(path, h.mode);
    if (h.type === "dir") this.#dirTimes.push({ path, atime, mtime: h.mtime });
    else lutimesSync(path, atime, h.mtime);
  }

  /** Resolves a parent directory inside the root and creates what is missing. */
  #parentDir(parentRel: string): string {
    if (parentRel === "") return this.#root;
    const cached = this.#dirCache.get(parentRel);
    if (cached !== undefined) return cached;
    const abs = resolveInRoot(this.#root, parentRel);
    this.#mkparents(abs);
    this.#dirCache.set(parentRel, abs);
    return abs;
  }

  #mkparents(abs: string): void {
    if (abs === this.#root) return;
    const parts = abs.slice(this.#root.length + 1).split("/");
    let cur = this.#root;
    for (const part of parts) {
      cur = `${cur}/${part}`;
      const st = lstatOrUndefined(cur);
      if (st?.isDirectory()) continue;
      if (st && isWhiteout(st)) {
        // deleted earlier in this layer, now a directory again: an opaque one
        rmSync(cur);
        mkdirSync(cur, { mode: 0o755 });
        lsetxattr(cur, OVERLAY_OPAQUE_XATTR, Buffer.from("y"));
        continue;
      }
      if (st) throw new LayerContentError(`parent ${JSON.stringify(cur.slice(this.#root.length))} is not a directory`);
      mkdirSync(cur, { mode: 0o755 });
      this.#copyFromLower(cur.slice(this.#root.length + 1), cur);
    }
  }

  /** An implied directory takes the attributes the same directory has in the layers below. */
  #copyFromLower(rel: string, path: string): void {
    if (this.#lowers === undefined) {
      this.#implied.add(rel);
      return;
    }
    const times = copyDirAttrs(this.#lowers, rel, path);
    if (times) this.#dirTimes.push({ path, ...times });
  }

  /** Implied directories still waiting for their attributes (relative to the root), when lowers were not given. */
  implied(): string[] {
    return [...this.#implied];
  }

  #hardlinkTarget(h: TarHeader): string {
    const raw = h.linkname;
    if (raw === "") throw new LayerContentError("hard link has no target");
    const lexical = posix.normalize(raw);
    if (!raw.startsWith("/") && (lexical === ".." || lexical.startsWith("../"))) {
      throw new LayerContentError(`hard link target ${JSON.stringify(raw)} lies outside the snapshot`);
    }
    const rel = posix.normalize(`/${raw}`).replace(/^\/+/, "").replace(/\/+$/, "");
    if (rel === "" || rel === ".") throw new LayerContentError(`hard link target ${JSON.stringify(raw)} is the root directory`);
    const slash = rel.lastIndexOf("/");
    const parent = slash < 0 ? this.#root : resolveInRoot(this.#root, rel.slice(0, slash));
    const target = `${parent}/${rel.slice(slash + 1)}`;
    if (target !== this.#root && !target.startsWith(`${this.#root}/`)) {
      throw new LayerContentError(`hard link target ${JSON.stringify(raw)} lies outside the snapshot`);
    }
    const st = lstatOrUndefined(target);
    if (st === undefined) throw new LayerContentError(`hard link target ${JSON.stringify(raw)} is not in the layer`);
    if (st.isDirectory()) throw new LayerContentError(`hard link target ${JSON.stringify(raw)} is a directory`);
    return target;
  }
}
