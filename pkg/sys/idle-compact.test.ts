import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
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

/** A plain major GC, as V8 runs one by itself (the baseline the compactor must beat). */
function plainGc(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}

function oldSpace(): { committed: number; used: number } {
  const s = getHeapSpaceStatistics().find((x) => x.space_name === "old_space");
  return { committed: s?.space_size ?? 0, used: s?.space_used_size ?? 0 };
}

test("a compaction gives back old-space pages that a plain GC leaves committed", async () => {
  // Old space filled with small objects, of which every other one stays alive: each page is
  // half full, which V8's ordinary full GC does not find worth moving (it evacuates pages
  // that are mostly free), so those pages stay committed.
  let all: Array<{ i: number; s: string }> | undefined = [];
  for (let i = 0; i < 400_000; i++) all.push({ i, s: `entry ${i}` });
  await sleep(10);
  const kept = all.filter((_, i) => i % 2 === 0);
  all = undefined;
  plainGc();
  plainGc();
  const before = oldSpace();
  await new IdleCompactor(1000).compact();
  const after = oldSpace();
  assert.equal(kept.length, 200_000);
  assert.ok(after.committed < before.committed - 6 * 1024 * 1024, `old space committed ${(before.committed / 1e6).toFixed(1)} -> ${(after.committed / 1e6).toFixed(1)} MB (used ${(before.used / 1e6).toFixed(1)} -> ${(after.used / 1e6).toFixed(1)})`);
});

test("a compaction drops the compiled code of functions not run since, which still work afterwards", async () => {
  const fns: Array<(x: number) => number> = [];
  const body = (i: number): string => `let a = x + ${i};\n${Array.from({ length: 12 }, (_, k) => `if (a % ${k + 2} === 0) a = (a * 31 + ${i + k}) % 1000003; else a += ${k};`).join("\n")}\nreturn a;`;
  for (let i = 0; i < 3000; i++) fns.push(new Function("x", body(i)) as (x: number) => number);
  const first = fns.map((f) => f(7));
  plainGc();
  plainGc();
  const before = oldSpace().used;
  await new IdleCompactor(1000).compact();
  const after = oldSpace().used;
  // Their bytecode was in old space: it is gone, so the used size fell although no object died.
  assert.ok(after < before - 1024 * 1024, `old space used ${(before / 1e6).toFixed(2)} -> ${(after / 1e6).toFixed(2)} MB`);
  assert.deepEqual(
    fns.map((f) => f(7)),
    first,
  );
});
