import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { logScopesOpen, logger, setRootLogger, withLogFields } from "./index.js";

test("nested request scopes do not write a field twice", async () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  setRootLogger({ level: "info", destination: sink });
  withLogFields({ rpc: "CreateContainer", podSandboxId: "p1" }, () =>
    withLogFields({ podSandboxId: "p1", containerId: "c1" }, () => withLogFields({ containerId: "c1" }, () => logger().info("created"))),
  );
  await new Promise((r) => setImmediate(r));
  const line = lines.find((l) => l.includes('"created"')) ?? "";
  assert.equal(line.match(/"podSandboxId"/g)?.length, 1, line);
  assert.equal(line.match(/"containerId"/g)?.length, 1, line);
  assert.deepEqual(
    (({ rpc, podSandboxId, containerId }) => ({ rpc, podSandboxId, containerId }))(JSON.parse(line) as Record<string, unknown>),
    { rpc: "CreateContainer", podSandboxId: "p1", containerId: "c1" },
  );
  setRootLogger({ level: "silent" });
});

test("request storage is on while a scope is open and off once the last one ended", async () => {
  const root = setRootLogger({ level: "silent" });
  let inOuterAfterInner: unknown;
  let lateTask: Promise<unknown> | undefined;
  await withLogFields({ rpc: "RunPodSandbox" }, async () => {
    await withLogFields({ podSandboxId: "p1" }, async () => {
      await new Promise((r) => setImmediate(r));
      // A task the call leaves running: it logs after every scope has ended.
      lateTask = new Promise((r) => setTimeout(() => r(logger()), 20));
    });
    assert.equal(logScopesOpen(), 1);
    await new Promise((r) => setImmediate(r));
    inOuterAfterInner = logger();
  });
  // The outer scope kept its logger after the inner one ended.
  assert.notEqual(inOuterAfterInner, root);
  assert.equal(logScopesOpen(), 0);
  // The storage is off: the late task sees the root logger, not the call's.
  assert.equal(await lateTask, root);
  // A scope that throws synchronously is closed too.
  assert.throws(() =>
    withLogFields({ rpc: "X" }, () => {
      throw new Error("boom");
    }),
  );
  assert.equal(logScopesOpen(), 0);
  // And a new scope switches it on again.
  await withLogFields({ rpc: "ListImages" }, async () => {
    await new Promise((r) => setImmediate(r));
    assert.notEqual(logger(), root);
  });
});
