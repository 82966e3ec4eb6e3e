// Builds one image layer (a tar stream, optionally gzipped) from an in-memory
// list of entries. Every header field defaults to a fixed value so the same
// entries always give the same bytes, and so the same digests.

import { createHash } from 'node:crypto';
import { gzipSync, constants as zlibConstants } from 'node:zlib';
import tar from 'tar-stream';
import type { Header } from 'tar-stream';

/** Fixed mtime for every entry unless an entry says otherwise: 2020-01-01T00:00:00Z. */
export const DEFAULT_MTIME = new Date('2020-01-01T00:00:00Z');

interface EntryCommon {
  /** Path inside the layer. A leading "/" is stripped, so "/etc/passwd" and "etc/passwd" are the same. */
  path: string;
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  mtime?: Date;
}

export interface FileEntry extends EntryCommon {
  type: 'file';
  content: string | Uint8Array;
}
export interface DirEntry extends EntryCommon {
  type: 'dir';
}
export interface SymlinkEntry extends EntryCommon {
  type: 'symlink';
  /** Written verbatim (may be absolute, relative or dangling). */
  target: string;
}
export interface HardlinkEntry extends EntryCommon {
  type: 'hardlink';
  /** Path of an earlier entry in the same layer; a leading "/" is stripped. */
  target: string;
}
/** Deletes `path` from the lower layers: written as `dir/.wh.name`. */
export interface WhiteoutEntry extends EntryCommon {
  type: 'whiteout';
}
/** Hides everything the lower layers have under directory `path`: written as `path/.wh..wh..opq`. */
export interface OpaqueEntry extends EntryCommon {
  type: 'opaque';
}
export interface DeviceEntry extends EntryCommon {
  type: 'char-device' | 'block-device' | 'fifo';
  devmajor?: number;
  devminor?: number;
}
/**
 * A header written exactly as given (no path normalisation): for hostile
 * layers with names such as "../../etc/passwd", "/abs/path", links that
 * escape the root, or odd modes and owners. Fields left out get tar-stream's
 * defaults except mtime, which defaults to DEFAULT_MTIME.
 */
export interface RawEntry {
  type: 'raw';
  header: Partial<Header> & Pick<Header, 'name'>;
  content?: string | Uint8Array;
}

export type LayerEntry =
  | FileEntry
  | DirEntry
  | SymlinkEntry
  | HardlinkEntry
  | WhiteoutEntry
  | OpaqueEntry
  | DeviceEntry
  | RawEntry;

export type LayerCompression = 'gzip' | 'none';

export interface BuiltLayer {
  /** The blob as stored in the registry (gzipped unless compression is "none"). */
  blob: Buffer;
  /** sha256 of `blob`. */
  digest: string;
  /** sha256 of the uncompressed tar: the config's rootfs.diff_ids entry. */
  diffId: string;
  compression: LayerCompression;
  /** Size of the uncompressed tar in bytes. */
  tarSize: number;
}

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';

export function sha256Digest(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function clean(path: string): string {
  let p = path.replace(/^\/+/, '').replace(/\/+$/, '');
  p = p.replace(/\/{2,}/g, '/');
  if (p === '' || p === '.') throw new Error(`layer entry path "${path}" names the root`);
  return p;
}

function splitParent(path: string): { dir: string; base: string } {
  const i = path.lastIndexOf('/');
  return i < 0 ? { dir: '', base: path } : { dir: path.slice(0, i + 1), base: path.slice(i + 1) };
}

function common(e: EntryCommon): Pick<Header, 'uid' | 'gid' | 'mtime'> & Partial<Header> {
  const h: Pick<Header, 'uid' | 'gid' | 'mtime'> & Partial<Header> = {
    uid: e.uid ?? 0,
    gid: e.gid ?? 0,
    mtime: e.mtime ?? DEFAULT_MTIME,
  };
  if (e.uname !== undefined) h.uname = e.uname;
  if (e.gname !== undefined) h.gname = e.gname;
  return h;
}

function toHeader(e: LayerEntry, modes: ReadonlyMap<string, number>): { header: Partial<Header> & Pick<Header, 'name'>; body?: Uint8Array } {
  switch (e.type) {
    case 'file': {
      const body = typeof e.content === 'string' ? Buffer.from(e.content) : e.content;
      return { header: { ...common(e), name: clean(e.path), type: 'file', mode: e.mode ?? 0o644, size: body.byteLength }, body };
    }
    case 'dir':
      return { header: { ...common(e), name: `${clean(e.path)}/`, type: 'directory', mode: e.mode ?? 0o755 } };
    case 'symlink':
      return { header: { ...common(e), name: clean(e.path), type: 'symlink', mode: e.mode ?? 0o777, linkname: e.target } };
    case 'hardlink':
      return { header: { ...common(e), name: clean(e.path), type: 'link', mode: e.mode ?? modes.get(clean(e.target)) ?? 0o644, linkname: clean(e.target) } };
    case 'whiteout': {
      const { dir, base } = splitParent(clean(e.path));
      return { header: { ...common(e), name: `${dir}${WHITEOUT_PREFIX}${base}`, type: 'file', mode: e.mode ?? 0o644, size: 0 }, body: new Uint8Array(0) };
    }
    case 'opaque':
      return { header: { ...common(e), name: `${clean(e.path)}/${OPAQUE_WHITEOUT}`, type: 'file', mode: e.mode ?? 0o644, size: 0 }, body: new Uint8Array(0) };
    case 'char-device':
    case 'block-device':
    case 'fifo':
      return {
        header: {
          ...common(e),
          name: clean(e.path),
          type: e.type === 'fifo' ? 'fifo' : e.type === 'char-device' ? 'character-device' : 'block-device',
          mode: e.mode ?? 0o644,
          devmajor: e.devmajor ?? 0,
          devminor: e.devminor ?? 0,
        },
      };
    case 'raw': {
      const header = { mtime: DEFAULT_MTIME, ...e.header };
      if (e.content === undefined) return { header };
      const body = typeof e.content === 'string' ? Buffer.from(e.content) : e.content;
      return { header: { ...header, size: body.byteLength }, body };
    }
  }
}

/**
 * How a tar stream ends: "two-zero-blocks" is the end-of-archive marker tar
 * writers normally add; "one-zero-block" and "none" are what some builders
 * (umoci among them) write, and what Go's archive/tar, GNU tar and Python's
 * tarfile accept.
 */
export type TarEnd = 'two-zero-blocks' | 'one-zero-block' | 'none';

const BLOCK = 512;

function tarNumber(block: Buffer, off: number, len: number): number {
  const first = block[off] ?? 0;
  if (first & 0x80) {
    let v = first & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + (block[off + i] ?? 0);
    return v;
  }
  const s = block.toString('latin1', off, off + len).replace(/\0.*$/s, '').trim();
  return s === '' ? 0 : parseInt(s, 8);
}

/** The offset where the last entry (its header, body and padding) ends: the end-of-archive marker starts here. */
export function entriesEnd(tarBytes: Uint8Array): number {
  const buf = Buffer.from(tarBytes.buffer, tarBytes.byteOffset, tarBytes.byteLength);
  let off = 0;
  while (off + BLOCK <= buf.length) {
    const header = buf.subarray(off, off + BLOCK);
    if (header.every((b) => b === 0)) return off;
    const size = tarNumber(header, 124, 12);
    off += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  return Math.min(off, buf.length);
}

/** The same tar ending the given way (the entries are untouched). */
export function withTarEnd(tarBytes: Uint8Array, end: TarEnd): Buffer {
  const entries = Buffer.from(tarBytes.buffer, tarBytes.byteOffset, entriesEnd(tarBytes));
  const zeros = end === 'two-zero-blocks' ? 2 : end === 'one-zero-block' ? 1 : 0;
  return Buffer.concat([entries, Buffer.alloc(zeros * BLOCK)]);
}

/** Writes the entries, in order, as an uncompressed tar archive. */
export async function buildTar(entries: readonly LayerEntry[], opts: { end?: TarEnd } = {}): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => chunks.push(c as Buffer));
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  // A hard link's header carries its target's mode (as docker and GNU tar write it).
  const modes = new Map<string, number>();
  for (const e of entries) {
    const { header, body } = toHeader(e, modes);
    if (header.type === 'file' && header.mode !== undefined) modes.set(header.name, header.mode);
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (body !== undefined) pack.entry(header, body, cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await done;
  const out = Buffer.concat(chunks);
  return opts.end === undefined || opts.end === 'two-zero-blocks' ? out : withTarEnd(out, opts.end);
}

export interface BuildLayerOptions {
  compression?: LayerCompression;
  /** zlib level, 1–9 (default 6). Lower is faster on incompressible data. */
  gzipLevel?: number;
  /** How the tar ends (default: the two zero blocks tar-stream writes). Applies to layers built from entries. */
  end?: TarEnd;
}

/** Gzips a tar the same way every time (no name, mtime 0 in the gzip header). */
export function gzipDeterministic(data: Uint8Array, level = 6): Buffer {
  return gzipSync(data, { level, strategy: zlibConstants.Z_DEFAULT_STRATEGY });
}

/** Builds a layer blob from a ready tar archive. */
export function layerFromTar(tarBytes: Uint8Array, opts: BuildLayerOptions = {}): BuiltLayer {
  const compression = opts.compression ?? 'gzip';
  const tarBuf = Buffer.from(tarBytes.buffer, tarBytes.byteOffset, tarBytes.byteLength);
  const blob = compression === 'gzip' ? gzipDeterministic(tarBuf, opts.gzipLevel) : tarBuf;
  const diffId = sha256Digest(tarBuf);
  return { blob, digest: compression === 'gzip' ? sha256Digest(blob) : diffId, diffId, compression, tarSize: tarBuf.byteLength };
}

/** Builds a layer blob from entries. */
export async function buildLayer(entries: readonly LayerEntry[], opts: BuildLayerOptions = {}): Promise<BuiltLayer> {
  return layerFromTar(await buildTar(entries, opts.end === undefined ? {} : { end: opts.end }), opts);
}

/**
 * Returns `entries` with a `dir` entry (mode 0755, root) added before the
 * first entry beneath each parent directory that has no entry of its own.
 * Raw, whiteout and opaque entries are left alone and add no parents.
 */
export function withParentDirs(entries: readonly LayerEntry[]): LayerEntry[] {
  const seen = new Set<string>();
  for (const e of entries) if (e.type === 'dir') seen.add(clean(e.path));
  const out: LayerEntry[] = [];
  for (const e of entries) {
    if (e.type !== 'raw' && e.type !== 'whiteout' && e.type !== 'opaque') {
      const parts = clean(e.path).split('/');
      for (let i = 1; i < parts.length; i++) {
        const dir = parts.slice(0, i).join('/');
        if (!seen.has(dir)) {
          seen.add(dir);
          out.push({ type: 'dir', path: dir });
        }
      }
    }
    out.push(e);
  }
  return out;
}
