import { test } from "node:test";
import assert from "node:assert/strict";
import { FALLBACK_AUTHORITY, isValidAuthority, normaliseAuthority } from "./authority.js";
import { ClientFrameFilter, FrameFilterError } from "./frame-filter.js";
import { encodeHeaderBlock, HpackDecoder } from "./hpack.js";
import { HpackError, huffmanEncode } from "./huffman.js";
import { CLIENT_PREFACE, rawFrame } from "./test-frames.js";

const SOCKET = "/run/berth/berth.sock";


/** A string literal, Huffman-coded like nghttp2 and grpc-go do. */
const hstr = (s: string): Buffer => {
  const c = huffmanEncode(s);
  assert.ok(c.length < 127);
  return Buffer.concat([Buffer.from([0x80 | c.length]), c]);
};
/** Literal with incremental indexing, name by static index (6-bit prefix, index < 63). */
const indexedLiteral = (nameIndex: number, value: string): Buffer => Buffer.concat([Buffer.from([0x40 | nameIndex]), hstr(value)]);
/** Literal with incremental indexing and a new name. */
const newNameLiteral = (name: string, value: string): Buffer => Buffer.concat([Buffer.from([0x40]), hstr(name), hstr(value)]);
const indexed = (i: number): Buffer => Buffer.from([0x80 | i]);

interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

/** Parses a complete server-bound byte stream (after the preface). */
function parseFrames(bytes: Buffer): Frame[] {
  assert.deepEqual(bytes.subarray(0, CLIENT_PREFACE.length), CLIENT_PREFACE);
  const out: Frame[] = [];
  let pos = CLIENT_PREFACE.length;
  while (pos < bytes.length) {
    const length = bytes.readUIntBE(pos, 3);
    out.push({ type: bytes[pos + 3]!, flags: bytes[pos + 4]!, stream: bytes.readUInt32BE(pos + 5), payload: bytes.subarray(pos + 9, pos + 9 + length) });
    pos += 9 + length;
  }
  assert.equal(pos, bytes.length, "the output ends on a frame boundary");
  return out;
}

/** A client connection: settings, a padded+prioritised HEADERS split over two CONTINUATIONs, data, and two more requests using the dynamic table. */
function clientStream(): { bytes: Buffer; passFrames: Buffer[] } {
  const settings = rawFrame(0x4, 0, 0, Buffer.from("000300000064", "hex"));
  const windowUpdate = rawFrame(0x8, 0, 0, Buffer.from("00100000", "hex"));
  // Request 1 (stream 1): :method POST, :scheme http, :path, :authority = socket path, content-type, te.
  const block1 = Buffer.concat([
    indexed(3), // :method POST
    indexed(6), // :scheme http
    indexedLiteral(4, "/runtime.v1.RuntimeService/Version"), // → dynamic 62 after the next two are added: order matters below
    indexedLiteral(1, SOCKET),
    indexedLiteral(31, "application/grpc"),
    newNameLiteral("te", "trailers"),
  ]);
  // Dynamic table after block 1, newest first: te(62), content-type(63), :authority(64), :path(65).
  const pad = 7;
  const priority = Buffer.from("8000000310", "hex"); // exclusive, depends on stream 3, weight 16
  const first = Buffer.concat([Buffer.from([pad]), priority, block1.subarray(0, 10), Buffer.alloc(pad)]);
  const headers1 = rawFrame(0x1, 0x8 | 0x20, 1, first);
  const cont1 = rawFrame(0x9, 0, 1, block1.subarray(10, 20));
  const cont2 = rawFrame(0x9, 0x4, 1, block1.subarray(20));
  const data1 = rawFrame(0x0, 0x1, 1, Buffer.from("0000000000", "hex"));
  // Request 2 (stream 3): everything from the dynamic table, END_STREAM on HEADERS.
  const headers2 = rawFrame(0x1, 0x4 | 0x1, 3, Buffer.concat([indexed(3), indexed(6), indexed(65), indexed(64), indexed(63), indexed(62)]));
  // Request 3 (stream 5): a valid %-encoded authority, a size update that empties the table first.
  const block3 = Buffer.concat([Buffer.from([0x20, 0x3f, 0xe1, 0x1f]), indexed(3), indexed(6), indexedLiteral(4, "/runtime.v1.ImageService/ListImages"), indexedLiteral(1, "%2Frun%2Fberth%2Fberth.sock")]);
  const headers3 = rawFrame(0x1, 0x4, 5, block3);
  const data3 = rawFrame(0x0, 0x1, 5, Buffer.alloc(300, 7));
  const ping = rawFrame(0x6, 0, 0, Buffer.alloc(8, 1));
  return {
    bytes: Buffer.concat([CLIENT_PREFACE, settings, windowUpdate, headers1, cont1, cont2, data1, headers2, headers3, data3, ping]),
    passFrames: [settings, windowUpdate, data1, data3, ping],
  };
}

function checkOutput(out: Buffer, passFrames: Buffer[]): void {
  const frames = parseFrames(out);
  const server = new HpackDecoder();
  const headerFrames = frames.filter((f) => f.type === 0x1 || f.type === 0x9);
  assert.deepEqual(headerFrames.map((f) => [f.type, f.stream, f.flags]), [
    [0x1, 1, 0x4 | 0x20],
    [0x1, 3, 0x4 | 0x1],
    [0x1, 5, 0x4],
  ], "one HEADERS per block, END_HEADERS set, END_STREAM and PRIORITY kept, PADDED dropped");
  assert.deepEqual(headerFrames[0]!.payload.subarray(0, 5), Buffer.from("8000000310", "hex"), "priority fields kept");
  const lists = headerFrames.map((f) => server.decode(f.payload, f.flags & 0x20 ? 5 : 0).map((h) => [h.name, h.value]));
  const req = (path: string, authority: string): string[][] => [[":method", "POST"], [":scheme", "http"], [":path", path], [":authority", authority], ["content-type", "application/grpc"], ["te", "trailers"]];
  assert.deepEqual(lists[0], req("/runtime.v1.RuntimeService/Version", "localhost"));
  assert.deepEqual(lists[1], req("/runtime.v1.RuntimeService/Version", "localhost"));
  assert.deepEqual(lists[2], [[":method", "POST"], [":scheme", "http"], [":path", "/runtime.v1.ImageService/ListImages"], [":authority", "%2Frun%2Fberth%2Fberth.sock"]]);
  assert.equal(server.tableSize, 0, "the server's dynamic table is never used");
  const others = frames.filter((f) => f.type !== 0x1 && f.type !== 0x9);
  assert.deepEqual(others.map((f) => rawFrame(f.type, f.flags, f.stream, f.payload)), passFrames, "other frames byte for byte, in order");
  assert.deepEqual(frames.map((f) => f.stream), [0, 0, 1, 1, 3, 5, 5, 0], "frame order kept");
}

test("filter: header blocks rewritten (socket path → localhost, %-encoded kept), other frames untouched", () => {
  const { bytes, passFrames } = clientStream();
  const f = new ClientFrameFilter();
  checkOutput(f.push(bytes), passFrames);
  assert.equal(f.replaced, 2);
});

test("filter: the same output whatever the read boundaries (every split point, and one octet at a time)", () => {
  const { bytes, passFrames } = clientStream();
  const whole = new ClientFrameFilter().push(bytes);
  for (let i = 0; i <= bytes.length; i++) {
    const f = new ClientFrameFilter();
    const out = Buffer.concat([f.push(bytes.subarray(0, i)), f.push(bytes.subarray(i))]);
    assert.deepEqual(out, whole, `split at ${i}`);
  }
  for (let i = 0; i + 2 <= bytes.length; i += 5) {
    const f = new ClientFrameFilter();
    const out = Buffer.concat([f.push(bytes.subarray(0, i)), f.push(bytes.subarray(i, i + 2)), f.push(bytes.subarray(i + 2))]);
    assert.deepEqual(out, whole, `splits at ${i} and ${i + 2}`);
  }
  const f = new ClientFrameFilter();
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i++) parts.push(f.push(bytes.subarray(i, i + 1)));
  const bytewise = Buffer.concat(parts);
  assert.deepEqual(bytewise, whole);
  checkOutput(bytewise, passFrames);
});

test("filter: a read of only non-header frames is forwarded as the same buffer (no copy)", () => {
  const f = new ClientFrameFilter();
  f.push(CLIENT_PREFACE);
  const data = Buffer.concat([rawFrame(0x0, 0, 1, Buffer.alloc(1000, 1)), rawFrame(0x8, 0, 1, Buffer.from("00001000", "hex"))]);
  assert.equal(f.push(data), data);
  // A DATA payload split over reads streams through as it comes.
  const big = rawFrame(0x0, 0, 1, Buffer.alloc(20000, 2));
  assert.equal(f.push(big.subarray(0, 5000)).length, 5000);
  assert.equal(f.push(big.subarray(5000)).length, big.length - 5000);
});

test("filter: a large block is re-framed as HEADERS + CONTINUATION of at most 16384 octets", () => {
  const values = Array.from({ length: 6 }, (_, i) => String.fromCharCode(97 + i).repeat(8000));
  const block = Buffer.concat([indexed(3), indexedLiteral(1, SOCKET), encodeHeaderBlock(values.map((v, i) => ({ name: `x-big${i}`, value: v, neverIndex: false })))]);
  const input = Buffer.concat([CLIENT_PREFACE, rawFrame(0x1, 0x20, 7, Buffer.concat([Buffer.from("0000000000", "hex"), block.subarray(0, 16000)])), rawFrame(0x9, 0x4, 7, block.subarray(16000))]);
  const frames = parseFrames(new ClientFrameFilter().push(input));
  assert.ok(frames.length >= 3);
  assert.deepEqual(frames.map((f) => f.type), [0x1, ...Array(frames.length - 1).fill(0x9)]);
  assert.deepEqual(frames.map((f) => f.flags & 0x4), [...Array(frames.length - 1).fill(0), 0x4], "END_HEADERS on the last frame only");
  for (const f of frames) assert.ok(f.payload.length <= 16384 && f.stream === 7);
  const joined = Buffer.concat([frames[0]!.payload.subarray(5), ...frames.slice(1).map((f) => f.payload)]);
  const list = new HpackDecoder().decode(joined);
  assert.deepEqual(list.map((h) => h.value), ["POST", "localhost", ...values]);
});

test("filter: framing errors around header blocks and malformed HPACK are refused", () => {
  const block = Buffer.concat([indexed(3), indexedLiteral(1, SOCKET)]);
  const cases: [Buffer[], new (message: string) => Error, string][] = [
    [[rawFrame(0x1, 0, 1, block.subarray(0, 2)), rawFrame(0x0, 0, 1, Buffer.alloc(1))], FrameFilterError, "DATA inside a header block"],
    [[rawFrame(0x1, 0, 1, block.subarray(0, 2)), rawFrame(0x1, 0x4, 3, block)], FrameFilterError, "HEADERS inside a header block"],
    [[rawFrame(0x1, 0, 1, block.subarray(0, 2)), rawFrame(0x9, 0x4, 3, block.subarray(2))], FrameFilterError, "CONTINUATION of another stream"],
    [[rawFrame(0x9, 0x4, 1, block)], FrameFilterError, "CONTINUATION without HEADERS"],
    [[rawFrame(0x1, 0x4 | 0x8, 1, Buffer.concat([Buffer.from([200]), block]))], FrameFilterError, "padding longer than the frame"],
    [[rawFrame(0x1, 0x4 | 0x8, 1, Buffer.alloc(0))], FrameFilterError, "PADDED without pad length"],
    [[rawFrame(0x1, 0x4, 1, Buffer.from([0x80]))], HpackError, "HPACK index 0"],
    [[rawFrame(0x1, 0x4, 1, Buffer.from([0xbe]))], HpackError, "HPACK dynamic index that does not exist"],
  ];
  for (const [frames, cls, why] of cases) {
    const f = new ClientFrameFilter();
    assert.throws(() => f.push(Buffer.concat([CLIENT_PREFACE, ...frames])), cls, why);
  }
  const big = new ClientFrameFilter({ maxHeaderBlockSize: 100 });
  assert.throws(() => big.push(Buffer.concat([CLIENT_PREFACE, rawFrame(0x1, 0, 1, Buffer.alloc(60)), rawFrame(0x9, 0x4, 1, Buffer.alloc(60))])), FrameFilterError, "block over the limit");
});

test("filter: a client that does not send the HTTP/2 preface is passed through untouched", () => {
  const f = new ClientFrameFilter();
  const notH2 = Buffer.from("PRI * HTTP/1.1\r\nHost: /run/berth.sock\r\n\r\n\x00\x00\x01\x09\x04");
  const first = notH2.subarray(0, 11);
  assert.equal(f.push(first), first, "a prefix of the preface is forwarded");
  const rest = notH2.subarray(11);
  assert.equal(f.push(rest), rest, "after the mismatch everything is forwarded as read");
  const more = Buffer.from([0x00, 0x00, 0x05, 0x01, 0x04]);
  assert.equal(f.push(more), more);
});

test("authority: nghttp2's character set; a socket path is replaced, valid values kept", () => {
  for (const ok of ["localhost", "localhost:1234", "[::1]:80", "%2Frun%2Fberth%2Fberth.sock", "user@host", "a-b.c_d~e!$&'()*+,;=", ""]) {
    assert.ok(isValidAuthority(ok), ok);
    assert.equal(normaliseAuthority(ok), ok);
  }
  for (const bad of [SOCKET, "unix:///run/x.sock", "a b", "host/path", "h\u00e9", "a\tb", "a\"b", "a{b}", "a\\b"]) {
    assert.ok(!isValidAuthority(bad), bad);
    assert.equal(normaliseAuthority(bad), FALLBACK_AUTHORITY);
  }
});
