import { test } from "node:test";
import assert from "node:assert/strict";
import { ExecSyncResponse } from "../../api/gen/cri/v1/api.js";
import { fitExecOutput } from "./container-exec-sync.js";

const MiB = 1024 * 1024;
const encodedSize = (stdout: Buffer, stderr: Buffer): number => ExecSyncResponse.encode({ stdout, stderr, exitCode: -1 }).finish().length;

test("fitExecOutput keeps output that fits untouched", () => {
  const out = Buffer.from("out\n");
  const err = Buffer.from("err\n");
  const r = fitExecOutput(out, err, 16 * MiB);
  assert.equal(r.stdout, out);
  assert.equal(r.stderr, err);
});

test("fitExecOutput trims both streams at the 16 MiB capture caps into one 16 MiB message", () => {
  for (const [o, e] of [[16 * MiB, 16 * MiB], [16 * MiB, 100], [100, 16 * MiB], [10 * MiB, 10 * MiB], [16 * MiB, 0]] as const) {
    const r = fitExecOutput(Buffer.alloc(o, 0x61), Buffer.alloc(e, 0x62), 16 * MiB);
    assert.ok(encodedSize(r.stdout, r.stderr) <= 16 * MiB, `${o}+${e}`);
    assert.ok(r.stdout.length + r.stderr.length >= 16 * MiB - 64, "only what does not fit is dropped");
    if (e <= 8 * MiB) assert.equal(r.stderr.length, e, "a short stream is kept whole");
    if (o <= 8 * MiB) assert.equal(r.stdout.length, o);
    assert.ok(r.stdout.every((b) => b === 0x61) && r.stderr.every((b) => b === 0x62));
  }
});

test("fitExecOutput keeps the beginning of each stream", () => {
  const r = fitExecOutput(Buffer.from("0123456789"), Buffer.from("abcdefghij"), 64 + 10);
  assert.equal(r.stdout.toString(), "01234");
  assert.equal(r.stderr.toString(), "abcde");
});
