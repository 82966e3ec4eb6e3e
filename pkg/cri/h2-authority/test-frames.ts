// Hand-built HTTP/2 and gRPC bytes for the tests of this package and of ../h2grpc: a test
// client written apart from the server's own encoder (wire.ts, frames.ts), so that the two
// cannot agree on a mistake.

/** The client connection preface (RFC 9113 §3.4). */
export const CLIENT_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/** One frame: 9-octet header (length, type, flags, stream id) and its payload. */
export function rawFrame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

/** One uncompressed gRPC length-prefixed message. */
export function grpcFrame(msg: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(msg.length, 1);
  return Buffer.concat([prefix, msg]);
}
