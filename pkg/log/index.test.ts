import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { logger, setRootLogger, withLogFields } from "./index.js";

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
