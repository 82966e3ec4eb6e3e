import { test } from "node:test";
import assert from "node:assert/strict";
import { ClientFrameFilter } from "./frame-filter.js";
import { encodeHeaderBlock } from "./hpack.js";
import { ConnectionSniffer, PREFACE, type SniffOutcome } from "./sniff.js";
import { rawFrame } from "./test-frames.js";

const SOCKET = "/run/berth/berth.sock";


const settings = rawFrame(0x4, 0, 0, Buffer.from("000300000064", "hex"));
const windowUpdate = rawFrame(0x8, 0, 0, Buffer.from("00100000", "hex"));
const ack = rawFrame(0x4, 0x1, 0, Buffer.alloc(0));
const data = rawFrame(0x0, 0x1, 1, Buffer.from("0000000000", "hex"));

function block(authority: string): Buffer {
  return encodeHeaderBlock([
    { name: ":method", value: "POST", neverIndex: false },
    { name: ":scheme", value: "http", neverIndex: false },
    { name: ":path", value: "/runtime.v1.RuntimeService/Version", neverIndex: false },
    { name: ":authority", value: authority, neverIndex: false },
    { name: "content-type", value: "application/grpc", neverIndex: false },
  ]);
}

/** HEADERS (padded, with priority) + one CONTINUATION carrying the block. */
function headers(authority: string): Buffer {
  const b = block(authority);
  const half = b.length >> 1;
  const first = Buffer.concat([Buffer.from([3]), Buffer.from("0000000010", "hex"), b.subarray(0, half), Buffer.alloc(3)]);
  return Buffer.concat([rawFrame(0x1, 0x8 | 0x20, 1, first), rawFrame(0x9, 0x4, 1, b.subarray(half))]);
}

/** Feeds `parts` read by read; returns the outcome and how many octets had been read then. */
function feed(parts: Buffer[]): { outcome: SniffOutcome; read: number } {
  const s = new ConnectionSniffer();
  let read = 0;
  let outcome: SniffOutcome = { kind: "more" };
  for (const p of parts) {
    read += p.length;
    outcome = s.push(p);
    if (outcome.kind !== "more") break;
  }
  return { outcome, read };
}

/** Every way of cutting `bytes` in two reads, plus one octet per read. */
function splits(bytes: Buffer): Buffer[][] {
  const out: Buffer[][] = [];
  for (let i = 1; i < bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  out.push([...bytes].map((b) => Buffer.from([b])));
  return out;
}

test("sniff: an acceptable :authority gives the raw socket back with every octet read except the ACK, whatever the reads", () => {
  for (const order of ["ack-first", "ack-last"] as const) {
    const stream = order === "ack-first" ? Buffer.concat([PREFACE, settings, windowUpdate, ack, headers("localhost"), data]) : Buffer.concat([PREFACE, settings, headers("localhost"), windowUpdate, ack, data]);
    const withoutAck = Buffer.concat(order === "ack-first" ? [PREFACE, settings, windowUpdate, headers("localhost"), data] : [PREFACE, settings, headers("localhost"), windowUpdate, data]);
    const ackEnd = stream.indexOf(ack) + ack.length;
    const headersEnd = stream.indexOf(data);
    for (const parts of splits(stream)) {
      const { outcome, read } = feed(parts);
      assert.equal(outcome.kind, "raw", order);
      if (outcome.kind !== "raw") continue;
      assert.ok(read >= Math.max(ackEnd, order === "ack-first" ? headersEnd : 0), "decided only once the ACK and the first block were read");
      assert.deepEqual(outcome.octets, withoutAck.subarray(0, read - ack.length), order);
    }
  }
  // %-encoded socket paths are acceptable too.
  assert.equal(feed([Buffer.concat([PREFACE, settings, ack, headers(encodeURIComponent(SOCKET))])]).outcome.kind, "raw");
});

test("sniff: the socket path as :authority sends the connection through the filter, which drops the ACK", () => {
  const stream = Buffer.concat([PREFACE, settings, headers(SOCKET), ack, data]);
  for (const parts of splits(stream)) {
    const { outcome, read } = feed(parts);
    assert.equal(outcome.kind, "filter");
    if (outcome.kind !== "filter") continue;
    assert.deepEqual(outcome.octets, stream.subarray(0, read), "every octet read is handed on");
    assert.ok(read >= stream.indexOf(ack), "decided on the first block, without waiting for the ACK");
  }
  // The filter, fed those octets and the rest, forwards no ACK and one rewritten block.
  const filter = new ClientFrameFilter({ dropFirstSettingsAck: true });
  const out = Buffer.concat([...stream].map((b) => filter.push(Buffer.from([b]))));
  assert.equal(filter.replaced, 1);
  assert.equal(out.indexOf(ack), -1);
  assert.ok(out.subarray(PREFACE.length).subarray(0, settings.length).equals(settings));
  assert.ok(out.subarray(out.length - data.length).equals(data));
  // Only the first ACK is the listener's: a later one is the server's and passes.
  const second = filter.push(ack);
  assert.deepEqual(second, ack);
});

test("sniff: not HTTP/2, undecodable blocks, a connection without its first call", () => {
  const http1 = Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  assert.deepEqual(feed([http1]).outcome, { kind: "raw", octets: http1 });
  // An index into an empty dynamic table: the filter closes the connection with a reason.
  const bad = Buffer.concat([PREFACE, ack, rawFrame(0x1, 0x5, 1, Buffer.from("be", "hex"))]);
  assert.equal(feed([bad]).outcome.kind, "filter");
  // No call yet, or no ACK yet: read more.
  assert.equal(feed([Buffer.concat([PREFACE, settings, ack])]).outcome.kind, "more");
  assert.equal(feed([Buffer.concat([PREFACE, settings, headers("localhost")])]).outcome.kind, "more");
  const s = new ConnectionSniffer();
  s.push(Buffer.concat([PREFACE, settings]));
  assert.deepEqual(s.octets, Buffer.concat([PREFACE, settings]));
});
