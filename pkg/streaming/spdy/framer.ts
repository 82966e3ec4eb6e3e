/**
 * SPDY/3.1 framing: the frame layouts, an incremental parser and the header
 * block codec. Only what Kubernetes streaming needs (moby/spdystream as the
 * peer): no server push, no priorities, no flow control enforcement.
 */
import zlib from "node:zlib";
import { SPDY3_DICTIONARY, adler32 } from "./dictionary.js";

export const SPDY_VERSION = 3;

export const enum FrameType {
  SynStream = 1,
  SynReply = 2,
  RstStream = 3,
  Settings = 4,
  Ping = 6,
  GoAway = 7,
  Headers = 8,
  WindowUpdate = 9,
}

export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;

export const enum RstStatus {
  ProtocolError = 1,
  InvalidStream = 2,
  RefusedStream = 3,
  UnsupportedVersion = 4,
  Cancel = 5,
  InternalError = 6,
  FlowControlError = 7,
  StreamInUse = 8,
  StreamAlreadyClosed = 9,
}

/** Largest frame payload we accept (the 24-bit length allows 16 MiB). */
export const MAX_FRAME_PAYLOAD = 16 * 1024 * 1024 - 1;
/** Largest decompressed header block we accept. */
export const MAX_HEADER_BLOCK = 256 * 1024;

export type Headers = Record<string, string>;

export type Frame =
  | { kind: "data"; streamId: number; flags: number; data: Buffer }
  | { kind: "syn-stream"; streamId: number; associatedId: number; flags: number; headerBlock: Buffer }
  | { kind: "syn-reply"; streamId: number; flags: number; headerBlock: Buffer }
  | { kind: "headers"; streamId: number; flags: number; headerBlock: Buffer }
  | { kind: "rst-stream"; streamId: number; status: number }
  | { kind: "settings"; flags: number; entries: { id: number; flags: number; value: number }[] }
  | { kind: "ping"; id: number }
  | { kind: "goaway"; lastGoodStreamId: number; status: number }
  | { kind: "window-update"; streamId: number; delta: number }
  | { kind: "unknown"; type: number };

export class SpdyProtocolError extends Error {}

function controlHeader(type: number, flags: number, length: number): Buffer {
  if (length > MAX_FRAME_PAYLOAD) throw new SpdyProtocolError(`SPDY frame of ${length} bytes is too large`);
  const b = Buffer.allocUnsafe(8);
  b.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  b.writeUInt16BE(type, 2);
  b.writeUInt32BE(((flags & 0xff) << 24) | length, 4);
  return b;
}

export function encodeData(streamId: number, data: Uint8Array, fin: boolean): Buffer[] {
  const h = Buffer.allocUnsafe(8);
  h.writeUInt32BE(streamId & 0x7fffffff, 0);
  h.writeUInt32BE(((fin ? FLAG_FIN : 0) << 24) | data.length, 4);
  return data.length > 0 ? [h, Buffer.from(data.buffer, data.byteOffset, data.length)] : [h];
}

export function encodeSynStream(streamId: number, headerBlock: Buffer, flags: number): Buffer {
  const body = Buffer.alloc(10);
  body.writeUInt32BE(streamId & 0x7fffffff, 0);
  body.writeUInt32BE(0, 4); // associated stream
  // priority 0, slot 0
  return Buffer.concat([controlHeader(FrameType.SynStream, flags, 10 + headerBlock.length), body, headerBlock]);
}

export function encodeSynReply(streamId: number, headerBlock: Buffer, flags: number): Buffer {
  const body = Buffer.alloc(4);
  body.writeUInt32BE(streamId & 0x7fffffff, 0);
  return Buffer.concat([controlHeader(FrameType.SynReply, flags, 4 + headerBlock.length), body, headerBlock]);
}

export function encodeRstStream(streamId: number, status: RstStatus): Buffer {
  const body = Buffer.alloc(8);
  body.writeUInt32BE(streamId & 0x7fffffff, 0);
  body.writeUInt32BE(status, 4);
  return Buffer.concat([controlHeader(FrameType.RstStream, 0, 8), body]);
}

export function encodePing(id: number): Buffer {
  const body = Buffer.alloc(4);
  body.writeUInt32BE(id >>> 0, 0);
  return Buffer.concat([controlHeader(FrameType.Ping, 0, 4), body]);
}

export function encodeGoAway(lastGoodStreamId: number, status = 0): Buffer {
  const body = Buffer.alloc(8);
  body.writeUInt32BE(lastGoodStreamId & 0x7fffffff, 0);
  body.writeUInt32BE(status, 4);
  return Buffer.concat([controlHeader(FrameType.GoAway, 0, 8), body]);
}

export function encodeWindowUpdate(streamId: number, delta: number): Buffer {
  const body = Buffer.alloc(8);
  body.writeUInt32BE(streamId & 0x7fffffff, 0);
  body.writeUInt32BE(delta & 0x7fffffff, 4);
  return Buffer.concat([controlHeader(FrameType.WindowUpdate, 0, 8), body]);
}

/**
 * Incremental frame parser: feed bytes, take whole frames. Never copies a
 * frame's payload more than once.
 */
export class FrameParser {
  #chunks: Buffer[] = [];
  #length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  get buffered(): number {
    return this.#length;
  }

  /** The next complete frame, or undefined if more bytes are needed. */
  next(): Frame | undefined {
    if (this.#length < 8) return undefined;
    const head = this.#peek(8);
    const length = head.readUInt32BE(4) & 0xffffff;
    if (this.#length < 8 + length) return undefined;
    this.#consume(8);
    const payload = this.#consume(length);
    const flags = head[4]!;
    if ((head[0]! & 0x80) === 0) {
      return { kind: "data", streamId: head.readUInt32BE(0) & 0x7fffffff, flags, data: payload };
    }
    const version = head.readUInt16BE(0) & 0x7fff;
    if (version !== SPDY_VERSION) throw new SpdyProtocolError(`unsupported SPDY version ${version}`);
    const type = head.readUInt16BE(2);
    const need = (n: number) => {
      if (payload.length < n) throw new SpdyProtocolError(`SPDY control frame type ${type} too short (${payload.length} bytes)`);
    };
    switch (type) {
      case FrameType.SynStream:
        need(10);
        return {
          kind: "syn-stream",
          streamId: payload.readUInt32BE(0) & 0x7fffffff,
          associatedId: payload.readUInt32BE(4) & 0x7fffffff,
          flags,
          headerBlock: payload.subarray(10),
        };
      case FrameType.SynReply:
        need(4);
        return { kind: "syn-reply", streamId: payload.readUInt32BE(0) & 0x7fffffff, flags, headerBlock: payload.subarray(4) };
      case FrameType.Headers:
        need(4);
        return { kind: "headers", streamId: payload.readUInt32BE(0) & 0x7fffffff, flags, headerBlock: payload.subarray(4) };
      case FrameType.RstStream:
        need(8);
        return { kind: "rst-stream", streamId: payload.readUInt32BE(0) & 0x7fffffff, status: payload.readUInt32BE(4) };
      case FrameType.Settings: {
        need(4);
        const n = payload.readUInt32BE(0);
        need(4 + n * 8);
        const entries = [];
        for (let i = 0; i < n; i++) {
          const off = 4 + i * 8;
          const word = payload.readUInt32BE(off);
          entries.push({ flags: word >>> 24, id: word & 0xffffff, value: payload.readUInt32BE(off + 4) });
        }
        return { kind: "settings", flags, entries };
      }
      case FrameType.Ping:
        need(4);
        return { kind: "ping", id: payload.readUInt32BE(0) };
      case FrameType.GoAway:
        need(4);
        return {
          kind: "goaway",
          lastGoodStreamId: payload.readUInt32BE(0) & 0x7fffffff,
          status: payload.length >= 8 ? payload.readUInt32BE(4) : 0,
        };
      case FrameType.WindowUpdate:
        need(8);
        return { kind: "window-update", streamId: payload.readUInt32BE(0) & 0x7fffffff, delta: payload.readUInt32BE(4) & 0x7fffffff };
      default:
        return { kind: "unknown", type };
    }
  }

  #peek(n: number): Buffer {
    const first = this.#chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    return Buffer.concat(this.#chunks).subarray(0, n);
  }

  #consume(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.#chunks[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      this.#length -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.#chunks[0]!;
      const take = Math.min(c.length, n - off);
      c.copy(out, off, 0, take);
      off += take;
      if (take === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(take);
    }
    this.#length -= n;
    return out;
  }
}

/** Serializes a name/value header block (uncompressed form). Names are lowercased. */
export function serializeHeaders(headers: Headers): Buffer {
  const entries = Object.entries(headers);
  const parts: Buffer[] = [];
  const count = Buffer.alloc(4);
  count.writeUInt32BE(entries.length);
  parts.push(count);
  for (const [name, value] of entries) {
    for (const s of [name.toLowerCase(), value]) {
      const b = Buffer.from(s, "utf8");
      const len = Buffer.alloc(4);
      len.writeUInt32BE(b.length);
      parts.push(len, b);
    }
  }
  return Buffer.concat(parts);
}

/** Parses an uncompressed header block; repeated names (NUL-joined values) keep the first value. */
export function parseHeaders(block: Buffer): Headers {
  const fail = () => new SpdyProtocolError("malformed SPDY header block");
  if (block.length < 4) throw fail();
  const n = block.readUInt32BE(0);
  let off = 4;
  const out: Headers = {};
  const readString = () => {
    if (off + 4 > block.length) throw fail();
    const len = block.readUInt32BE(off);
    off += 4;
    if (off + len > block.length) throw fail();
    const s = block.toString("utf8", off, off + len);
    off += len;
    return s;
  };
  for (let i = 0; i < n; i++) {
    const name = readString().toLowerCase();
    const value = readString();
    out[name] = value.split("\0")[0] ?? "";
  }
  return out;
}

/**
 * Compresses header blocks for one direction of a connection. SPDY requires a
 * zlib stream primed with the dictionary and flushed after each block; we emit
 * stored (uncompressed) deflate blocks, which any inflater reads, so encoding is
 * synchronous and frames never wait on a zlib worker. Headers here are a few
 * dozen bytes, so compressing them would gain nothing.
 *
 * Each block ends with an empty stored block, the marker a zlib sync flush
 * writes. Go's compress/flate (spdystream reads every header block through one
 * long-lived inflater over a reader limited to the frame) only hands out a
 * non-empty stored block's bytes once it has looked at the next block header;
 * without the marker it reads past the frame, hits the limit and keeps that
 * error for good, so the peer fails the next frame with "compressed payload
 * size was incorrect" and drops the session.
 */
/** An empty, non-final stored deflate block: what a zlib sync flush ends with. */
const SYNC_FLUSH_MARKER = Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff]);

export class HeaderCompressor {
  #started = false;

  compress(headers: Headers): Buffer {
    const raw = serializeHeaders(headers);
    const parts: Buffer[] = [];
    if (!this.#started) {
      this.#started = true;
      const zh = Buffer.alloc(6);
      zh[0] = 0x78;
      zh[1] = 0xbb; // FLEVEL 2, FDICT set, FCHECK so that the 16-bit value is a multiple of 31
      zh.writeUInt32BE(adler32(SPDY3_DICTIONARY), 2);
      parts.push(zh);
    }
    for (let off = 0; off < raw.length; off += 0xffff) {
      const piece = raw.subarray(off, Math.min(raw.length, off + 0xffff));
      const bh = Buffer.alloc(5);
      bh[0] = 0x00; // BFINAL 0, BTYPE 00 (stored)
      bh.writeUInt16LE(piece.length, 1);
      bh.writeUInt16LE(~piece.length & 0xffff, 3);
      parts.push(bh, piece);
    }
    parts.push(SYNC_FLUSH_MARKER);
    return Buffer.concat(parts);
  }
}

/** Decompresses header blocks of one direction of a connection (one shared zlib stream). */
export class HeaderDecompressor {
  #inflate = zlib.createInflate({ dictionary: SPDY3_DICTIONARY });
  #out: Buffer[] = [];
  #outLength = 0;
  #error: Error | undefined;
  #chain: Promise<unknown> = Promise.resolve();

  constructor() {
    this.#inflate.on("data", (c: Buffer) => {
      this.#out.push(c);
      this.#outLength += c.length;
    });
    this.#inflate.on("error", (err) => {
      this.#error = err;
    });
  }

  /** Decompresses and parses one header block; calls are processed in order. */
  decompress(block: Buffer): Promise<Headers> {
    const p = this.#chain.then(() => this.#run(block));
    this.#chain = p.catch(() => undefined);
    return p;
  }

  #run(block: Buffer): Promise<Headers> {
    return new Promise((resolve, reject) => {
      if (this.#error) {
        reject(new SpdyProtocolError(`SPDY header decompression failed: ${this.#error.message}`));
        return;
      }
      this.#inflate.write(block);
      this.#inflate.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        const finish = () => {
          if (this.#inflate.readableLength > 0 && !this.#error) {
            setImmediate(finish);
            return;
          }
          if (this.#error) {
            reject(new SpdyProtocolError(`SPDY header decompression failed: ${this.#error.message}`));
            return;
          }
          const raw = Buffer.concat(this.#out, this.#outLength);
          this.#out = [];
          this.#outLength = 0;
          if (raw.length > MAX_HEADER_BLOCK) {
            reject(new SpdyProtocolError(`SPDY header block of ${raw.length} bytes is too large`));
            return;
          }
          try {
            resolve(parseHeaders(raw));
          } catch (err) {
            reject(err as Error);
          }
        };
        finish();
      });
    });
  }

  close(): void {
    this.#inflate.destroy();
  }
}
