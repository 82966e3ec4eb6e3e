// HTTP/2 (RFC 9113) and gRPC-over-HTTP/2 constants and small codecs used by the
// server in connection.ts.

import { encodeHeaderBlock, type HeaderField } from "../h2-authority/hpack.js";

export { FRAME, FLAG } from "../h2-authority/frames.js";

export const H2_ERROR = {
  NO_ERROR: 0,
  PROTOCOL_ERROR: 1,
  INTERNAL_ERROR: 2,
  FLOW_CONTROL_ERROR: 3,
  STREAM_CLOSED: 5,
  FRAME_SIZE_ERROR: 6,
  REFUSED_STREAM: 7,
  CANCEL: 8,
  COMPRESSION_ERROR: 9,
  ENHANCE_YOUR_CALM: 11,
} as const;

export const SETTING = {
  HEADER_TABLE_SIZE: 1,
  ENABLE_PUSH: 2,
  MAX_CONCURRENT_STREAMS: 3,
  INITIAL_WINDOW_SIZE: 4,
  MAX_FRAME_SIZE: 5,
  MAX_HEADER_LIST_SIZE: 6,
} as const;

export { PREFACE as CLIENT_PREFACE } from "../h2-authority/sniff.js";
/** The protocol's defaults before SETTINGS say otherwise. */
export const DEFAULT_WINDOW = 65_535;
export const DEFAULT_MAX_FRAME = 16_384;
export const MAX_WINDOW = 0x7fff_ffff;

/** A frame header followed by its payload, in one buffer. */
export function frame(type: number, flags: number, streamId: number, payload?: Buffer): Buffer {
  const len = payload ? payload.length : 0;
  const b = Buffer.allocUnsafe(9 + len);
  frameHeaderInto(b, 0, len, type, flags, streamId);
  if (payload) payload.copy(b, 9);
  return b;
}

export function frameHeaderInto(b: Buffer, at: number, len: number, type: number, flags: number, streamId: number): void {
  b[at] = (len >>> 16) & 0xff;
  b[at + 1] = (len >>> 8) & 0xff;
  b[at + 2] = len & 0xff;
  b[at + 3] = type;
  b[at + 4] = flags;
  b.writeUInt32BE(streamId & 0x7fff_ffff, at + 5);
}

export function u32(v: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(v >>> 0, 0);
  return b;
}

export function goawayPayload(lastStreamId: number, code: number, debug = ""): Buffer {
  const d = Buffer.from(debug.slice(0, 256), "utf8");
  const b = Buffer.allocUnsafe(8 + d.length);
  b.writeUInt32BE(lastStreamId & 0x7fff_ffff, 0);
  b.writeUInt32BE(code >>> 0, 4);
  d.copy(b, 8);
  return b;
}

export function settingsPayload(values: ReadonlyArray<readonly [number, number]>): Buffer {
  const b = Buffer.allocUnsafe(values.length * 6);
  values.forEach(([id, v], i) => {
    b.writeUInt16BE(id, i * 6);
    b.writeUInt32BE(v >>> 0, i * 6 + 2);
  });
  return b;
}

const field = (name: string, value: string): HeaderField => ({ name, value, neverIndex: false });

/** The response headers of every gRPC call that answers with messages. */
export const RESPONSE_HEADERS = encodeHeaderBlock([field(":status", "200"), field("content-type", "application/grpc"), field("grpc-accept-encoding", "identity,deflate,gzip")]);
/** The trailers of a call that succeeded. */
export const OK_TRAILERS = encodeHeaderBlock([field("grpc-status", "0")]);

/**
 * grpc-message is percent-encoded UTF-8 (gRPC over HTTP/2: octets outside 0x20-0x7E
 * and "%" itself are written as %XX).
 */
export function percentEncode(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  let out = "";
  for (const b of Buffer.from(message, "utf8")) {
    out += b < 0x20 || b > 0x7e || b === 0x25 ? `%${b.toString(16).toUpperCase().padStart(2, "0")}` : String.fromCharCode(b);
  }
  return out;
}

/** Trailers (or, with `headers`, a Trailers-Only response) carrying a status. */
export function statusBlock(code: number, message: string, headers: boolean): Buffer {
  const fields: HeaderField[] = headers ? [field(":status", "200"), field("content-type", "application/grpc")] : [];
  fields.push(field("grpc-status", String(code)));
  if (message) fields.push(field("grpc-message", percentEncode(message)));
  return encodeHeaderBlock(fields);
}

/** A plain HTTP response for requests that are not gRPC at all. */
export function httpStatusBlock(status: number): Buffer {
  return encodeHeaderBlock([field(":status", String(status))]);
}

const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001 };

/** grpc-timeout ("1-8 digits" + H, M, S, m, u or n) in ms, or undefined when absent or malformed. */
export function parseTimeout(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!m) return undefined;
  return Number(m[1]) * (TIMEOUT_UNIT_MS[m[2] as string] as number);
}
