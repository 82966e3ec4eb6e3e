import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { processAlive, processPss, processStartTime, readExitFile } from "./index.js";

test("exit files: code, finish time from the file's mtime, OOM marker; empty or missing = not exited", () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-shim-unit-"));
  try {
    const exits = join(dir, "exits");
    const persist = join(dir, "persist");
    mkdirSync(exits);
    mkdirSync(persist);
    assert.equal(readExitFile(exits, persist, "c1"), undefined);
    writeFileSync(join(exits, "c1"), "");
    assert.equal(readExitFile(exits, persist, "c1"), undefined, "a file conmon has not written yet");
    writeFileSync(join(exits, "c1"), "137");
    const when = new Date("2026-01-02T03:04:05Z");
    utimesSync(join(exits, "c1"), when, when);
    const e = readExitFile(exits, persist, "c1");
    assert.equal(e?.exitCode, 137);
    assert.equal(e?.oomKilled, false);
    assert.equal(e?.finishedAt, BigInt(when.getTime()) * 1_000_000n);
    writeFileSync(join(persist, "oom"), "");
    assert.equal(readExitFile(exits, persist, "c1")?.oomKilled, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("process helpers: alive with the same start time, PSS readable", () => {
  const start = processStartTime(process.pid);
  assert.ok(start);
  assert.equal(processAlive(process.pid, start), true);
  assert.equal(processAlive(process.pid, "1"), false, "a recycled pid (other start time) is not the monitor");
  assert.equal(processAlive(2 ** 22 + 17, undefined), false);
  assert.ok((processPss(process.pid) ?? 0) > 0);
});
