import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { getHeapStatistics } from "node:v8";
import { IdleCompactor } from "./idle-compact.js";

test("the compactor runs once, the quiet time after the last touch", async () => {
  const c = new IdleCompactor(150);
  try {
    c.touch();
    await sleep(100);
    c.touch(); // restarts the quiet time
    await sleep(100);
    assert.equal(c.runs, 0, "not while work keeps coming");
    await sleep(200);
    assert.equal(c.runs, 1, "once, after the quiet time");
    await sleep(250);
    assert.equal(c.runs, 1, "not again without new work");
    c.touch();
    c.stop();
    await sleep(250);
    assert.equal(c.runs, 1, "stop() cancels a pending run");
  } finally {
    c.stop();
  }
});

test("a compaction collects the garbage a burst of work left in the old generation", async () => {
  // Survives scavenges (kept until the burst ends), then becomes garbage in old space.
  let burst: Array<{ i: number; s: string }> | undefined = [];
  for (let i = 0; i < 300_000; i++) burst.push({ i, s: `entry ${i}` });
  await sleep(10);
  burst = undefined;
  const before = getHeapStatistics().used_heap_size;
  await new IdleCompactor(1000).compact();
  const after = getHeapStatistics().used_heap_size;
  assert.ok(after < before - 10 * 1024 * 1024, `heap used ${(before / 1e6).toFixed(1)} -> ${(after / 1e6).toFixed(1)} MB`);
});
