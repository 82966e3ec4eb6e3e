import { test } from "node:test";
import assert from "node:assert/strict";
import { STREAM_CHUNK_BYTES, writeChunked } from "./list-stream.js";

test("writeChunked: at most 100 items per message, byte bound, no empty message, waits for drain", async () => {
  const sent: number[][] = [];
  let drains = 0;
  const items = Array.from({ length: 250 }, (_, i) => i);
  await writeChunked(items, (c) => c, () => 10, (m) => (sent.push(m), sent.length % 2 === 0), async () => void drains++, new AbortController().signal);
  assert.deepEqual(sent.map((m) => m.length), [100, 100, 50]);
  assert.deepEqual(sent.flat(), items);
  assert.equal(drains, 2, "a drain wait after each write that reported a full buffer (the 1st and 3rd)");

  const big: number[][] = [];
  await writeChunked([1, 2, 3, 4], (c) => c, (i) => (i === 3 ? STREAM_CHUNK_BYTES * 2 : STREAM_CHUNK_BYTES / 2), (m) => (big.push(m), true), async () => undefined, new AbortController().signal);
  assert.deepEqual(big, [[1, 2], [3], [4]]);

  const none: number[][] = [];
  await writeChunked([], (c) => c, () => 1, (m) => (none.push(m), true), async () => undefined, new AbortController().signal);
  assert.deepEqual(none, []);
});

test("writeChunked: stops writing once the call is cancelled", async () => {
  const ac = new AbortController();
  const sent: number[][] = [];
  await writeChunked(Array.from({ length: 300 }, (_, i) => i), (c) => c, () => 1, (m) => (sent.push(m), false), async () => ac.abort(), ac.signal);
  assert.equal(sent.length, 1);
});
