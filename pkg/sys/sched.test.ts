import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { Worker } from "node:worker_threads";
import { lowerOtherThreads, raiseThreadPriority, threadNice, threadSliceUs } from "./index.js";

const isRoot = process.getuid?.() === 0;

// node --test runs this file in its own process: raising its main thread touches nothing else.
test("the raised thread runs at the nice value asked; threads and processes it starts afterwards at 0", { skip: !isRoot }, async () => {
  raiseThreadPriority(-3);
  assert.equal(threadNice(), -3);
  const child = execFileSync("sh", ["-c", "ps -o ni= -p $$"], { encoding: "utf8" }).trim();
  assert.equal(child, "0", "a child process must not inherit the raised priority");
  const inWorker = await new Promise<number>((resolve, reject) => {
    const w = new Worker(`require("node:worker_threads").parentPort.postMessage(require("node:os").getPriority())`, { eval: true });
    w.once("message", resolve);
    w.once("error", reject);
  });
  assert.equal(inWorker, 0, "a worker thread must not inherit the raised priority");
  assert.equal(threadNice(), -3, "the raised thread keeps its value");
});

test("a short slice asked for the raised thread is the one the kernel gives it, and its children get the default", { skip: !isRoot || threadSliceUs() === undefined }, () => {
  const before = threadSliceUs() as number;
  raiseThreadPriority(-2, 250);
  assert.equal(threadNice(), -2);
  assert.equal(threadSliceUs(), 250);
  const child = execFileSync("sh", ["-c", "sed -n 's/^se.slice *: *//p' /proc/$$/sched; ps -o ni= -p $$"], { encoding: "utf8" }).trim().split(/\s+/);
  assert.equal(Number(child[0]) / 1000, before, "a child process must start with the kernel's slice");
  assert.equal(child[1], "0");
});

test("lowerOtherThreads gives the threads already running the nice value and leaves the calling one alone", async () => {
  const mine = threadNice();
  const w = new Worker(
    `const { parentPort } = require("node:worker_threads"); parentPort.on("message", () => parentPort.postMessage(require("node:os").getPriority()))`,
    { eval: true },
  );
  try {
    await new Promise((resolve) => w.once("online", resolve));
    assert.ok(lowerOtherThreads(7) >= 1);
    const inWorker = await new Promise<number>((resolve, reject) => {
      w.once("message", resolve);
      w.once("error", reject);
      w.postMessage("nice?");
    });
    assert.equal(inWorker, 7);
    assert.equal(threadNice(), mine);
  } finally {
    await w.terminate();
  }
});
