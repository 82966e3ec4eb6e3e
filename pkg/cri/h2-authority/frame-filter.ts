// The client→server half of an HTTP/2 connection, parsed just enough to rewrite
// header blocks: every HEADERS (+ CONTINUATION) block is decoded with a decoder
// that mirrors the client's HPACK encoder, its :authority / host made acceptable
// to the server, and re-encoded with literals that never touch the server's
// dynamic table (so the two tables can never disagree). Every other frame, and
// the connection preface, is forwarded byte for byte, without copying when a
// read holds only such bytes.

import { isValidAuthority, normaliseAuthority } from "./authority.js";
import { FLAG, FRAME } from "./frames.js";
import { encodeHeaderBlock, HpackDecoder, type DecoderOptions } from "./hpack.js";
import { PREFACE } from "./sniff.js";

/** A client broke HTTP/2 framing around a header block: the connection must be closed. */
export class FrameFilterError extends Error {
  override readonly name = "FrameFilterError";
}

const FRAME_HEADER_LENGTH = 9;
const PRIORITY_LENGTH = 5;
/** SETTINGS_MAX_FRAME_SIZE's initial value: every HTTP/2 peer accepts frames this large. */
const MAX_FRAME_PAYLOAD = 16384;
const EMPTY = Buffer.alloc(0);

export interface FrameFilterOptions extends DecoderOptions {
  /** Refuse a header block (all its fragments, as sent) larger than this. Default 1 MiB. */
  maxHeaderBlockSize?: number;
  /**
   * Drop the client's first (empty) SETTINGS ACK: it acknowledges a SETTINGS frame the
   * listener sent before the server saw the connection, not one of the server's.
   */
  dropFirstSettingsAck?: boolean;
}

export class ClientFrameFilter {
  readonly #decoder: HpackDecoder;
  readonly #maxBlock: number;
  #prefaceSeen = 0;
  /** The client did not speak HTTP/2: forward everything, the server will refuse it. */
  #passthrough = false;
  readonly #head = Buffer.alloc(FRAME_HEADER_LENGTH);
  #headLength = 0;
  /** Payload octets of a forwarded frame still to come. */
  #passRemaining = 0;
  /** Payload of a HEADERS or CONTINUATION frame being collected across reads. */
  #payload: Buffer | undefined;
  #payloadFilled = 0;
  #type = 0;
  #flags = 0;
  #stream = 0;
  /** The header block in progress (a HEADERS frame without END_HEADERS so far). */
  #fragments: Buffer[] = [];
  #blockSize = 0;
  #blockStream = 0;
  #blockFlags = 0;
  #priority: Buffer | undefined;
  #dropAck: boolean;
  /** How many :authority / host values were replaced on this connection. */
  replaced = 0;

  constructor(opts: FrameFilterOptions = {}) {
    this.#decoder = new HpackDecoder(opts);
    this.#maxBlock = opts.maxHeaderBlockSize ?? 1024 * 1024;
    this.#dropAck = opts.dropFirstSettingsAck ?? false;
  }

  /** Feeds bytes read from the client; returns the bytes to give the server (possibly empty). */
  push(chunk: Buffer): Buffer {
    if (this.#passthrough) return chunk;
    const out: Buffer[] = [];
    let pos = 0;
    /** Start of the run of chunk octets forwarded as they are. */
    let run = 0;
    const flush = (end: number): void => {
      if (end > run) out.push(run === 0 && end === chunk.length ? chunk : chunk.subarray(run, end));
    };
    if (this.#prefaceSeen < PREFACE.length) {
      const n = Math.min(PREFACE.length - this.#prefaceSeen, chunk.length);
      if (!chunk.subarray(0, n).equals(PREFACE.subarray(this.#prefaceSeen, this.#prefaceSeen + n))) {
        this.#passthrough = true;
        return chunk;
      }
      this.#prefaceSeen += n;
      pos = n;
    }
    while (pos < chunk.length) {
      if (this.#passRemaining > 0) {
        const n = Math.min(this.#passRemaining, chunk.length - pos);
        this.#passRemaining -= n;
        pos += n;
        continue;
      }
      if (this.#payload) {
        flush(pos);
        const n = Math.min(this.#payload.length - this.#payloadFilled, chunk.length - pos);
        chunk.copy(this.#payload, this.#payloadFilled, pos, pos + n);
        this.#payloadFilled += n;
        pos += n;
        run = pos;
        if (this.#payloadFilled === this.#payload.length) {
          const payload = this.#payload;
          this.#payload = undefined;
          this.#onHeaderFrame(payload, out);
        }
        continue;
      }
      // A frame header, whole in this read or completed from the previous ones.
      const frameStart = pos;
      let header: Buffer;
      let copied = false;
      if (this.#headLength === 0 && chunk.length - pos >= FRAME_HEADER_LENGTH) {
        header = chunk.subarray(pos, pos + FRAME_HEADER_LENGTH);
        pos += FRAME_HEADER_LENGTH;
      } else {
        copied = true;
        const n = Math.min(FRAME_HEADER_LENGTH - this.#headLength, chunk.length - pos);
        chunk.copy(this.#head, this.#headLength, pos, pos + n);
        this.#headLength += n;
        pos += n;
        flush(frameStart);
        run = pos;
        if (this.#headLength < FRAME_HEADER_LENGTH) break;
        this.#headLength = 0;
        header = Buffer.from(this.#head);
      }
      const length = header.readUIntBE(0, 3);
      const type = header[3] as number;
      if (this.#fragments.length > 0 && type !== FRAME.CONTINUATION) {
        throw new FrameFilterError(`frame of type ${type} inside the header block of stream ${this.#blockStream}`);
      }
      if (this.#dropAck && type === FRAME.SETTINGS && length === 0 && (header[4] as number) & FLAG.ACK && (header.readUInt32BE(5) & 0x7fffffff) === 0) {
        // Cut out of the forwarded run (a header read in pieces was never in it).
        this.#dropAck = false;
        flush(frameStart);
        run = pos;
        continue;
      }
      if (type !== FRAME.HEADERS && type !== FRAME.CONTINUATION) {
        // A header read in pieces is not part of the forwarded run of this read.
        if (copied) out.push(header);
        this.#passRemaining = length;
        continue;
      }
      // A header frame: none of its octets are forwarded as they are.
      flush(frameStart);
      this.#type = type;
      this.#flags = header[4] as number;
      this.#stream = header.readUInt32BE(5) & 0x7fffffff;
      if (this.#blockSize + length > this.#maxBlock) throw new FrameFilterError(`header block of stream ${this.#stream} is larger than ${this.#maxBlock} octets`);
      if (chunk.length - pos >= length) {
        const payload = chunk.subarray(pos, pos + length);
        pos += length;
        run = pos;
        this.#onHeaderFrame(payload, out);
      } else {
        this.#payload = Buffer.allocUnsafe(length);
        this.#payloadFilled = 0;
        run = pos;
      }
    }
    flush(pos);
    if (out.length === 0) return EMPTY;
    if (out.length === 1) return out[0] as Buffer;
    return Buffer.concat(out);
  }

  #onHeaderFrame(payload: Buffer, out: Buffer[]): void {
    let start = 0;
    let end = payload.length;
    if (this.#type === FRAME.HEADERS) {
      if (this.#flags & FLAG.PADDED) {
        if (payload.length < 1) throw new FrameFilterError(`HEADERS of stream ${this.#stream}: PADDED without a pad length`);
        end -= payload[0] as number;
        start = 1;
      }
      if (this.#flags & FLAG.PRIORITY) {
        this.#priority = Buffer.from(payload.subarray(start, start + PRIORITY_LENGTH));
        start += PRIORITY_LENGTH;
      } else {
        this.#priority = undefined;
      }
      if (end < start) throw new FrameFilterError(`HEADERS of stream ${this.#stream}: padding and priority exceed the frame`);
      this.#blockStream = this.#stream;
      this.#blockFlags = this.#flags & (FLAG.END_STREAM | FLAG.PRIORITY);
    } else if (this.#fragments.length === 0) {
      throw new FrameFilterError(`CONTINUATION of stream ${this.#stream} without a HEADERS frame before it`);
    } else if (this.#stream !== this.#blockStream) {
      throw new FrameFilterError(`CONTINUATION of stream ${this.#stream} inside the header block of stream ${this.#blockStream}`);
    }
    this.#fragments.push(payload.subarray(start, end));
    this.#blockSize += end - start;
    if ((this.#flags & FLAG.END_HEADERS) === 0) return;
    const block = this.#fragments.length === 1 ? (this.#fragments[0] as Buffer) : Buffer.concat(this.#fragments);
    this.#fragments = [];
    this.#blockSize = 0;
    out.push(this.#rewrite(block));
  }

  /** Decodes a complete block and returns it re-encoded as HEADERS + CONTINUATION frames. */
  #rewrite(block: Buffer): Buffer {
    const fields = this.#decoder.decode(block);
    for (const f of fields) {
      if ((f.name === ":authority" || f.name === "host") && !isValidAuthority(f.value)) {
        f.value = normaliseAuthority(f.value);
        this.replaced++;
      }
    }
    const encoded = encodeHeaderBlock(fields);
    const priority = this.#blockFlags & FLAG.PRIORITY ? this.#priority : undefined;
    const firstCapacity = MAX_FRAME_PAYLOAD - (priority ? PRIORITY_LENGTH : 0);
    const continuations = encoded.length > firstCapacity ? Math.ceil((encoded.length - firstCapacity) / MAX_FRAME_PAYLOAD) : 0;
    const total = (1 + continuations) * FRAME_HEADER_LENGTH + (priority ? PRIORITY_LENGTH : 0) + encoded.length;
    const frames = Buffer.allocUnsafe(total);
    let pos = 0;
    let taken = Math.min(firstCapacity, encoded.length);
    const writeHeader = (length: number, type: number, flags: number): void => {
      frames.writeUIntBE(length, pos, 3);
      frames[pos + 3] = type;
      frames[pos + 4] = flags;
      frames.writeUInt32BE(this.#blockStream, pos + 5);
      pos += FRAME_HEADER_LENGTH;
    };
    writeHeader(taken + (priority ? PRIORITY_LENGTH : 0), FRAME.HEADERS, this.#blockFlags | (continuations === 0 ? FLAG.END_HEADERS : 0));
    if (priority) pos += priority.copy(frames, pos);
    pos += encoded.copy(frames, pos, 0, taken);
    for (let i = 0; i < continuations; i++) {
      const n = Math.min(MAX_FRAME_PAYLOAD, encoded.length - taken);
      writeHeader(n, FRAME.CONTINUATION, i === continuations - 1 ? FLAG.END_HEADERS : 0);
      pos += encoded.copy(frames, pos, taken, taken + n);
      taken += n;
    }
    return frames;
  }
}
