// A push parser for tar streams (ustar, GNU long names, PAX): bytes go in as
// they are decompressed, entries come out to a synchronous sink. Unlike a
// general purpose reader it keeps PAX values as raw bytes (xattr values such
// as security.capability are binary).
//
// Where the stream may end follows Go's archive/tar (containerd's reader),
// checked against go1.19: at an entry boundary with no end-of-archive marker
// (umoci and other builders write such layers), after one zero block, or after
// the two zero blocks of the marker (anything after them is ignored). A zero
// block followed by a partial or non-zero block is an error. A stream cut
// inside a header, a body or the padding after a body is an error too; here
// berth is stricter than Go, which accepts a cut inside the last padding,
// and agrees with GNU tar and Python's tarfile, which reject it.

export type TarEntryType = "file" | "link" | "symlink" | "char" | "block" | "dir" | "fifo";

export interface TarHeader {
  /** The entry's path as written (PAX path or GNU long name when present). */
  name: string;
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  /** Body size in bytes (regular files only; 0 for every other type). */
  size: number;
  /** Seconds since the epoch, possibly fractional (PAX). */
  mtime: number;
  atime?: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes from PAX SCHILY.xattr.* (and LIBARCHIVE.xattr.*) records, raw values. */
  xattrs: Map<string, Buffer>;
}

export interface TarSink {
  /** A new entry; for files, `data` follows with exactly `size` bytes, then `end`. */
  entry(h: TarHeader): void;
  data(chunk: Uint8Array): void;
  end(): void;
}

/**
 * The archive itself is malformed: bad header, unsupported entry type, truncated
 * stream. The reader throws it with the layer and the entry named
 * (`layer sha256:…: entry "path": reason`); `reason` keeps the bare cause.
 */
export class TarFormatError extends Error {
  override readonly name = "TarFormatError";
  readonly reason: string;
  constructor(reason: string, where?: string) {
    super(where === undefined ? reason : `${where}: ${reason}`);
    this.reason = reason;
  }
  /** True once the message names where in the layer the problem is. */
  get located(): boolean {
    return this.message !== this.reason;
  }
}

export interface TarReaderOptions {
  /** How errors name the layer (its digest). */
  layer: string;
}

const BLOCK = 512;
const MAX_META = 1 << 20;

type State =
  | { kind: "header" }
  | { kind: "body"; remaining: number }
  | { kind: "skip"; remaining: number; what: "padding" | "data" }
  | { kind: "meta"; type: MetaType; buf: Buffer; filled: number; pad: number }
  // one zero block was read: the next block must be zero too, or the stream must end
  | { kind: "zero" }
  | { kind: "eof" };

type MetaType = "pax" | "global" | "longname" | "longlink";

const META_NAMES: Record<MetaType, string> = {
  pax: "PAX extended header",
  global: "PAX global header",
  longname: "GNU long name header",
  longlink: "GNU long link header",
};

interface Pending {
  pax?: Map<string, Buffer>;
  longname?: string;
  longlink?: string;
}

function isZero(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

function cstring(buf: Buffer, off: number, len: number): string {
  let end = off;
  const stop = off + len;
  while (end < stop && buf[end] !== 0) end++;
  return buf.toString("utf8", off, end);
}

function numeric(buf: Buffer, off: number, len: number, field: string): number {
  const first = buf[off] ?? 0;
  if (first & 0x80) {
    // base-256 (GNU): big-endian two's complement, high bit of the first byte set
    if (first === 0xff) throw new TarFormatError(`tar header field ${field} is negative`);
    let v = first & 0x7f;
    for (let i = 1; i < len; i++) {
      v = v * 256 + (buf[off + i] ?? 0);
      if (v > Number.MAX_SAFE_INTEGER) throw new TarFormatError(`tar header field ${field} is too large`);
    }
    return v;
  }
  let s = buf.toString("latin1", off, off + len);
  const nul = s.indexOf("\0");
  if (nul >= 0) s = s.slice(0, nul);
  s = s.trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`tar header field ${field} is not an octal number: ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  let want: number;
  try {
    want = numeric(h, 148, 8, "chksum");
  } catch {
    return false;
  }
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (h[i] ?? 0);
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return want === unsigned || want === signed;
}

function parsePax(buf: Buffer, into: Map<string, Buffer>): void {
  let off = 0;
  while (off < buf.length) {
    if (buf[off] === 0) break; // padding some writers leave
    const sp = buf.indexOf(0x20, off);
    if (sp < 0) throw new TarFormatError("malformed PAX record (no length)");
    const lenStr = buf.toString("latin1", off, sp);
    if (!/^[0-9]+$/.test(lenStr)) throw new TarFormatError(`malformed PAX record length ${JSON.stringify(lenStr)}`);
    const len = parseInt(lenStr, 10);
    const end = off + len;
    if (len <= 0 || end > buf.length || buf[end - 1] !== 0x0a) throw new TarFormatError("malformed PAX record (bad length)");
    const eq = buf.indexOf(0x3d, sp + 1);
    if (eq < 0 || eq >= end) throw new TarFormatError("malformed PAX record (no '=')");
    const key = buf.toString("utf8", sp + 1, eq);
    into.set(key, Buffer.from(buf.subarray(eq + 1, end - 1)));
    off = end;
  }
}

function paxNumber(pax: Map<string, Buffer> | undefined, key: string): number | undefined {
  const v = pax?.get(key);
  if (v === undefined) return undefined;
  const s = v.toString("latin1");
  if (!/^-?[0-9]+(\.[0-9]+)?$/.test(s)) throw new TarFormatError(`PAX record ${key} is not a number: ${JSON.stringify(s)}`);
  return Number(s);
}

export class TarReader {
  readonly #sink: TarSink;
  readonly #layer: string;
  #state: State = { kind: "header" };
  readonly #header = Buffer.alloc(BLOCK);
  #headerFilled = 0;
  #pending: Pending = {};
  /** The entry being read (from its header through its body and padding), or undefined between entries. */
  #entry: string | undefined;
  /** The last entry whose header was read. */
  #previous: string | undefined;
  #bodySize = 0;

  constructor(sink: TarSink, opts: TarReaderOptions) {
    this.#sink = sink;
    this.#layer = opts.layer;
  }

  /** True once the end-of-archive marker was read. */
  get ended(): boolean {
    return this.#state.kind === "eof";
  }

  /** Where in the layer the reader is, for error messages: `layer sha256:…: entry "path"`. */
  where(): string {
    if (this.#entry !== undefined) return `layer ${this.#layer}: entry ${JSON.stringify(this.#entry)}`;
    if (this.#previous !== undefined) return `layer ${this.#layer}: after entry ${JSON.stringify(this.#previous)}`;
    return `layer ${this.#layer}: before the first entry`;
  }

  push(chunk: Uint8Array): void {
    try {
      this.#push(chunk);
    } catch (err) {
      throw this.#located(err);
    }
  }

  /** Call at the end of the stream: throws unless the stream ended where a tar may end. */
  finish(): void {
    const st = this.#state;
    let reason: string | undefined;
    switch (st.kind) {
      case "eof":
        return;
      case "header":
        if (this.#headerFilled > 0) reason = `tar stream ends inside a header (${this.#headerFilled} of ${BLOCK} bytes)`;
        break; // at an entry boundary: the end-of-archive marker is optional
      case "zero":
        if (this.#headerFilled > 0) reason = `tar stream ends inside the end-of-archive marker (${BLOCK + this.#headerFilled} of ${2 * BLOCK} bytes)`;
        break; // one zero block, then the end: accepted as Go's archive/tar does
      case "body":
        reason = `tar stream ends inside the body (${this.#bodySize - st.remaining} of ${this.#bodySize} bytes)`;
        break;
      case "skip":
        if (st.what === "data") reason = `tar stream ends inside the entry's data (${st.remaining} bytes missing)`;
        else if (this.#entry !== undefined) reason = `tar stream ends inside the padding after the body (${st.remaining} bytes missing)`;
        else reason = `tar stream ends inside the padding of an extended header (${st.remaining} bytes missing)`;
        break;
      case "meta":
        reason = `tar stream ends inside a ${META_NAMES[st.type]} (${st.filled} of ${st.buf.length} bytes)`;
        break;
    }
    if (reason !== undefined) throw new TarFormatError(reason, this.where());
  }

  #located(err: unknown): unknown {
    if (err instanceof TarFormatError && !err.located) return new TarFormatError(err.reason, this.where());
    return err;
  }

  #push(chunk: Uint8Array): void {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let off = 0;
    const len = buf.length;
    while (off < len) {
      const st = this.#state;
      switch (st.kind) {
        case "eof":
          return; // bytes after the marker (record padding) are hashed by the caller and ignored here
        case "header":
        case "zero": {
          const take = Math.min(BLOCK - this.#headerFilled, len - off);
          buf.copy(this.#header, this.#headerFilled, off, off + take);
          this.#headerFilled += take;
          off += take;
          if (this.#headerFilled === BLOCK) {
            this.#headerFilled = 0;
            if (st.kind === "zero") this.#onSecondZero(this.#header);
            else this.#onHeader(this.#header);
          }
          break;
        }
        case "body": {
          const take = Math.min(st.remaining, len - off);
          this.#sink.data(buf.subarray(off, off + take));
          st.remaining -= take;
          off += take;
          if (st.remaining === 0) this.#endBody();
          break;
        }
        case "skip": {
          const take = Math.min(st.remaining, len - off);
          st.remaining -= take;
          off += take;
          if (st.remaining === 0) this.#toHeader();
          break;
        }
        case "meta": {
          const take = Math.min(st.buf.length - st.filled, len - off);
          buf.copy(st.buf, st.filled, off, off + take);
          st.filled += take;
          off += take;
          if (st.filled === st.buf.length) this.#onMeta(st);
          break;
        }
      }
    }
  }

  #toHeader(): void {
    this.#entry = undefined;
    this.#state = { kind: "header" };
  }

  #endBody(): void {
    this.#sink.end();
    const pad = this.#padOf(this.#bodySize);
    if (pad > 0) this.#state = { kind: "skip", remaining: pad, what: "padding" };
    else this.#toHeader();
  }

  #padOf(size: number): number {
    return (BLOCK - (size % BLOCK)) % BLOCK;
  }

  #onSecondZero(h: Buffer): void {
    if (!isZero(h)) throw new TarFormatError("invalid tar header: a zero block is followed by a non-zero block");
    this.#state = { kind: "eof" };
  }

  #onMeta(st: Extract<State, { kind: "meta" }>): void {
    switch (st.type) {
      case "pax": {
        const pax = this.#pending.pax ?? new Map<string, Buffer>();
        parsePax(st.buf, pax);
        this.#pending.pax = pax;
        break;
      }
      case "global":
        // global PAX headers carry nothing berth applies (containerd ignores them too)
        parsePax(st.buf, new Map());
        break;
      case "longname":
        this.#pending.longname = cstring(st.buf, 0, st.buf.length);
        break;
      case "longlink":
        this.#pending.longlink = cstring(st.buf, 0, st.buf.length);
        break;
    }
    this.#state = st.pad > 0 ? { kind: "skip", remaining: st.pad, what: "padding" } : { kind: "header" };
  }

  #onHeader(h: Buffer): void {
    if (isZero(h)) {
      this.#state = { kind: "zero" };
      return;
    }
    if (!checksumOk(h)) {
      throw new TarFormatError(this.#previous === undefined ? "not a tar archive (invalid header checksum)" : "invalid tar header checksum");
    }
    const flag = String.fromCharCode(h[156] ?? 0);
    let size = numeric(h, 124, 12, "size");
    const pad = this.#padOf(size);
    const meta = (type: MetaType): void => {
      if (size > MAX_META) throw new TarFormatError(`${META_NAMES[type]} of ${size} bytes is too large`);
      this.#state = { kind: "meta", type, buf: Buffer.alloc(size), filled: 0, pad };
      if (size === 0) this.#onMeta(this.#state);
    };
    switch (flag) {
      case "x":
        return meta("pax");
      case "g":
        return meta("global");
      case "L":
        return meta("longname");
      case "K":
        return meta("longlink");
      case "V": // volume label
        this.#state = size + pad > 0 ? { kind: "skip", remaining: size + pad, what: "data" } : { kind: "header" };
        return;
    }

    const pending = this.#pending;
    this.#pending = {};
    const pax = pending.pax;
    const magic = h.toString("latin1", 257, 263);
    let name = cstring(h, 0, 100);
    if (magic === "ustar\0") {
      const prefix = cstring(h, 345, 155);
      if (prefix !== "") name = `${prefix}/${name}`;
    }
    if (pending.longname !== undefined) name = pending.longname;
    const paxPath = pax?.get("path");
    if (paxPath !== undefined) name = paxPath.toString("utf8");
    this.#entry = name;
    this.#previous = name;

    let linkname = cstring(h, 157, 100);
    if (pending.longlink !== undefined) linkname = pending.longlink;
    const paxLink = pax?.get("linkpath");
    if (paxLink !== undefined) linkname = paxLink.toString("utf8");

    if (pax) {
      for (const k of pax.keys()) {
        if (k.startsWith("GNU.sparse.")) throw new TarFormatError("sparse files are not supported");
      }
    }
    const paxSize = paxNumber(pax, "size");
    if (paxSize !== undefined) size = paxSize;
    const bodyPad = this.#padOf(size);

    let type: TarEntryType;
    switch (flag) {
      case "0":
      case "\0":
      case "7":
        type = name.endsWith("/") ? "dir" : "file";
        break;
      case "1":
        type = "link";
        break;
      case "2":
        type = "symlink";
        break;
      case "3":
        type = "char";
        break;
      case "4":
        type = "block";
        break;
      case "5":
      case "D":
        type = "dir";
        break;
      case "6":
        type = "fifo";
        break;
      case "S":
        throw new TarFormatError("sparse files are not supported");
      default:
        throw new TarFormatError(`unsupported tar entry type ${JSON.stringify(flag)}`);
    }

    const xattrs = new Map<string, Buffer>();
    if (pax) {
      for (const [k, v] of pax) {
        if (k.startsWith("SCHILY.xattr.")) xattrs.set(k.slice("SCHILY.xattr.".length), v);
        else if (k.startsWith("LIBARCHIVE.xattr.")) {
          xattrs.set(decodeURIComponent(k.slice("LIBARCHIVE.xattr.".length)), Buffer.from(v.toString("latin1"), "base64"));
        }
      }
    }

    const header: TarHeader = {
      name,
      type,
      mode: numeric(h, 100, 8, "mode") & 0o7777,
      uid: paxNumber(pax, "uid") ?? numeric(h, 108, 8, "uid"),
      gid: paxNumber(pax, "gid") ?? numeric(h, 116, 8, "gid"),
      size: type === "file" ? size : 0,
      mtime: paxNumber(pax, "mtime") ?? numeric(h, 136, 12, "mtime"),
      linkname,
      devmajor: type === "char" || type === "block" ? numeric(h, 329, 8, "devmajor") : 0,
      devminor: type === "char" || type === "block" ? numeric(h, 337, 8, "devminor") : 0,
      xattrs,
    };
    const atime = paxNumber(pax, "atime");
    if (atime !== undefined) header.atime = atime;

    this.#sink.entry(header);
    if (type === "file") {
      this.#bodySize = size;
      if (size === 0) this.#endBody();
      else this.#state = { kind: "body", remaining: size };
    } else {
      this.#sink.end();
      // bodies of non-file entries (a hard link with a size, a GNU dumpdir) are not applied
      if (size + bodyPad > 0) this.#state = { kind: "skip", remaining: size + bodyPad, what: "data" };
      else this.#toHeader();
    }
  }
}
