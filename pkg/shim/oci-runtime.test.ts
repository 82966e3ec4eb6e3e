import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeadlineExceededError, UnavailableError } from "../errdefs/index.js";
import { processAlive } from "../sys/index.js";
import { runtimeDelete, runtimeKill, runtimeStart } from "./index.js";

function fakeRuntime(dir: string, body: string): string {
  const path = join(dir, "rt");
  writeFileSync(path, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return path;
}

test("a hung runtime command: DeadlineExceeded naming runtime and step after the call timeout, its whole process group killed", async () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-rt-"));
  try {
    const pids = join(dir, "pids");
    const path = fakeRuntime(dir, `echo $$ >> ${pids}; sleep 600 & echo $! >> ${pids}; wait`);
    const t0 = Date.now();
    await assert.rejects(runtimeStart({ name: "slow", path, root: dir, callTimeoutMs: 300 }, "c1"), (err: unknown) => {
      assert.ok(err instanceof DeadlineExceededError, String(err));
      assert.match(err.message, /^slow start c1: the runtime did not answer within 0.3 s and was killed$/);
      return true;
    });
    assert.ok(Date.now() - t0 < 10_000);
    await new Promise((r) => setTimeout(r, 100));
    const started = readFileSync(pids, "utf8").split(/\s+/).filter(Boolean).map(Number);
    assert.equal(started.length, 2);
    for (const pid of started) assert.equal(processAlive(pid), false, `pid ${pid} (the shell or its sleep) still alive`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a failing runtime command: Unavailable with the runtime's stderr; kill/delete of an unknown container stay fine", async () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-rt-"));
  try {
    const path = fakeRuntime(dir, `echo "boom" >&2; exit 3`);
    const rt = { name: "bad", path, root: dir };
    await assert.rejects(runtimeStart(rt, "c1"), (err: unknown) => err instanceof UnavailableError && /^bad start c1 failed: boom$/.test(err.message));
    await assert.rejects(runtimeKill(rt, "c1", "KILL"), (err: unknown) => err instanceof UnavailableError && /bad kill c1 KILL failed: boom/.test(err.message));
    await assert.rejects(runtimeDelete(rt, "c1"), (err: unknown) => err instanceof UnavailableError && /bad delete c1 failed: boom/.test(err.message));
    const gone = { name: "gone", path: fakeRuntime(dir, `echo "container does not exist" >&2; exit 1`), root: dir };
    await runtimeKill(gone, "c1", "KILL");
    await runtimeDelete(gone, "c1");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
