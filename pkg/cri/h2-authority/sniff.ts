// The first octets of a client connection, read before the connection is given to
// the gRPC server, to decide whether it needs the ClientFrameFilter at all.
//
// Most clients send an :authority the server's HTTP/2 layer accepts ("localhost",
// or a %-encoded path): such a connection can be handed to the server as the raw
// socket, whose reads then go straight into nghttp2 without a JavaScript stream in
// between (a third of a List call's CPU). The decision is taken on the first
// complete header block; the octets read until then are given back unchanged.
//
// Clients wait for the server's SETTINGS before their first call (grpc-js, grpc-go),
// so while the octets are read the listener sends an empty SETTINGS frame of its own
// (a valid server connection preface). The client's acknowledgement of that frame
// must not reach nghttp2, which would take it for the ACK of its own SETTINGS: the
// sniffer cuts it out of the octets it gives back, and the filter drops it when it
// arrives later.

import { isValidAuthority } from "./authority.js";
import { HpackDecoder, type DecoderOptions } from "./hpack.js";

export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
/** An empty SETTINGS frame on stream 0: the server connection preface the listener sends first. */
export const EMPTY_SETTINGS = Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0]);

const FRAME_HEADER_LENGTH = 9;
const TYPE_HEADERS = 0x1;
const TYPE_SETTINGS = 0x4;
const TYPE_CONTINUATION = 0x9;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
/** Octets read without a decision: past this the connection goes through the filter. */
const MAX_SNIFF = 64 * 1024;

export type SniffOutcome =
  /** Not decided yet: read more. */
  | { kind: "more" }
  /** Give the server the raw socket with these octets put back (the ACK of the listener's SETTINGS removed). */
  | { kind: "raw"; octets: Buffer }
  /** The connection needs the filter: feed it every octet read so far (it drops the ACK itself). */
  | { kind: "filter"; octets: Buffer };

/** Reads a connection's opening octets; `push` each read until the outcome is not "more". */
export class ConnectionSniffer {
  readonly #decoderOpts: DecoderOptions;
  #chunks: Buffer[] = [];
  #length = 0;

  constructor(decoderOpts: DecoderOptions = {}) {
    this.#decoderOpts = decoderOpts;
  }

  push(chunk: Buffer): SniffOutcome {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    const all = this.#chunks.length === 1 ? chunk : Buffer.concat(this.#chunks, this.#length);
    this.#chunks = [all];
    return this.#decide(all);
  }

  /** Every octet read so far, for a connection given up on (a timeout): it goes through the filter. */
  get octets(): Buffer {
    return this.#chunks.length === 0 ? Buffer.alloc(0) : (this.#chunks[0] as Buffer);
  }

  #decide(buf: Buffer): SniffOutcome {
    const n = Math.min(buf.length, PREFACE.length);
    // Not HTTP/2 with prior knowledge: the server refuses it on its own.
    if (!buf.subarray(0, n).equals(PREFACE.subarray(0, n))) return { kind: "raw", octets: buf };
    let pos = PREFACE.length;
    let ackAt = -1;
    let block: Buffer[] | undefined;
    let authorityOk: boolean | undefined;
    while (authorityOk === undefined || ackAt < 0) {
      if (buf.length - pos < FRAME_HEADER_LENGTH) break;
      const length = buf.readUIntBE(pos, 3);
      const type = buf[pos + 3] as number;
      const flags = buf[pos + 4] as number;
      const stream = buf.readUInt32BE(pos + 5) & 0x7fffffff;
      const end = pos + FRAME_HEADER_LENGTH + length;
      if (end > buf.length) break;
      const payload = buf.subarray(pos + FRAME_HEADER_LENGTH, end);
      if (type === TYPE_SETTINGS && flags & FLAG_ACK && length === 0 && stream === 0 && ackAt < 0) {
        ackAt = pos;
      } else if (authorityOk === undefined && (type === TYPE_HEADERS || block !== undefined)) {
        let fragment = payload;
        if (type === TYPE_HEADERS && block === undefined) {
          let start = 0;
          let stop = payload.length;
          if (flags & FLAG_PADDED) {
            stop -= payload.length > 0 ? (payload[0] as number) : 1;
            start = 1;
          }
          if (flags & FLAG_PRIORITY) start += 5;
          // Malformed: the filter closes such a connection with a reason.
          if (stop < start) return { kind: "filter", octets: buf };
          fragment = payload.subarray(start, stop);
          block = [];
        } else if (type !== TYPE_CONTINUATION) {
          return { kind: "filter", octets: buf };
        }
        const parts: Buffer[] = block ?? [];
        parts.push(fragment);
        block = parts;
        if (flags & FLAG_END_HEADERS) {
          authorityOk = this.#authorityAcceptable(Buffer.concat(parts));
          if (!authorityOk) return { kind: "filter", octets: buf };
          block = undefined;
        }
      }
      pos = end;
    }
    if (authorityOk === true && ackAt >= 0) {
      return { kind: "raw", octets: Buffer.concat([buf.subarray(0, ackAt), buf.subarray(ackAt + FRAME_HEADER_LENGTH)]) };
    }
    if (buf.length > MAX_SNIFF) return { kind: "filter", octets: buf };
    return { kind: "more" };
  }

  /** The connection's first header block: true when its :authority and host need no rewriting. */
  #authorityAcceptable(block: Buffer): boolean {
    try {
      for (const f of new HpackDecoder(this.#decoderOpts).decode(block)) {
        if ((f.name === ":authority" || f.name === "host") && !isValidAuthority(f.value)) return false;
      }
      return true;
    } catch {
      return false;
    }
  }
}
