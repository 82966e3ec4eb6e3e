import { test } from "node:test";
import assert from "node:assert/strict";
import { KeyedMutex, NameRegistrar, CleanupStack, SingleFlight, Semaphore } from "./index.js";

test("KeyedMutex serialises one key and lets other keys run", async () => {
  const m = new KeyedMutex(1000);
  const order: string[] = [];
  const slow = m.run("a", async () => {
    await new Promise((r) => setTimeout(r, 30));
    order.push("a1");
  });
  const other = m.run("b", async () => order.push("b"));
  const second = m.run("a", async () => order.push("a2"));
  await Promise.all([slow, other, second]);
  assert.deepEqual(order, ["b", "a1", "a2"]);
  assert.equal(m.size, 0);
});

test("KeyedMutex times out with a message naming the key", async () => {
  const m = new KeyedMutex(20);
  const hold = m.run("pod-1", () => new Promise((r) => setTimeout(r, 100)));
  await assert.rejects(m.run("pod-1", async () => 1), /lock on "pod-1"/);
  await hold;
});

test("NameRegistrar refuses a name held by another owner", () => {
  const r = new NameRegistrar("sandbox");
  r.reserve("web_default_uid_0", "id1");
  r.reserve("web_default_uid_0", "id1");
  assert.throws(() => r.reserve("web_default_uid_0", "id2"), /reserved for "id1"/);
  r.release("web_default_uid_0", "id2");
  assert.equal(r.holder("web_default_uid_0"), "id1");
  r.releaseOwner("id1");
  r.reserve("web_default_uid_0", "id2");
});

test("CleanupStack unwinds newest first and survives failing steps", async () => {
  const s = new CleanupStack();
  const done: string[] = [];
  s.push("one", () => void done.push("one"));
  s.push("two", () => {
    throw new Error("fail");
  });
  s.push("three", async () => void done.push("three"));
  await s.unwind();
  assert.deepEqual(done, ["three", "one"]);
  s.push("four", () => void done.push("four"));
  s.commit();
  await s.unwind();
  assert.deepEqual(done, ["three", "one"]);
});

test("SingleFlight shares one run between concurrent callers", async () => {
  const sf = new SingleFlight<number>();
  let runs = 0;
  const fn = async (): Promise<number> => {
    runs++;
    await new Promise((r) => setTimeout(r, 10));
    return 42;
  };
  const [a, b] = await Promise.all([sf.do("k", fn), sf.do("k", fn)]);
  assert.equal(a, 42);
  assert.equal(b, 42);
  assert.equal(runs, 1);
  await sf.do("k", fn);
  assert.equal(runs, 2);
});

test("Semaphore bounds concurrency", async () => {
  const s = new Semaphore(2);
  let peak = 0;
  let cur = 0;
  await Promise.all(
    Array.from({ length: 6 }, () =>
      s.run(async () => {
        cur++;
        peak = Math.max(peak, cur);
        await new Promise((r) => setTimeout(r, 5));
        cur--;
      }),
    ),
  );
  assert.equal(peak, 2);
  const ac = new AbortController();
  const holders = [s.run(() => new Promise((r) => setTimeout(r, 30))), s.run(() => new Promise((r) => setTimeout(r, 30)))];
  const waiting = s.run(async () => 1, ac.signal);
  ac.abort(new Error("gone"));
  await assert.rejects(waiting, /gone/);
  await Promise.all(holders);
  assert.equal(s.active, 0);
});
