import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { Worker } from "node:worker_threads";
import { raiseThreadPriority, threadNice } from "./index.js";

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
