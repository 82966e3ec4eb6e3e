import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const INDEX = pathToFileURL(join(import.meta.dirname, "index.js")).href;

test("a re-exec keeps the pid, the arguments, the environment and stdio, and adds the flags before node's own and the variables given", () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-reexec-"));
  try {
    const script = join(dir, "child.mjs");
    writeFileSync(
      script,
      `const { reexecNodeWith } = await import(${JSON.stringify(INDEX)});
if (!process.execArgv.includes("--max-semi-space-size=1")) {
  process.stdout.write("first " + process.pid + "\\n");
  reexecNodeWith(["--max-semi-space-size=1"], { REEXEC_ADDED: "added" });
}
process.stdout.write(JSON.stringify({ pid: process.pid, execArgv: process.execArgv, args: process.argv.slice(2), env: process.env.REEXEC_TEST, added: process.env.REEXEC_ADDED }) + "\\n");
process.stderr.write("to stderr\\n");
`,
    );
    const r = spawnSync(process.execPath, ["--no-warnings", script, "a b", "--c"], { encoding: "utf8", env: { ...process.env, REEXEC_TEST: "kept" } });
    assert.equal(r.status, 0, r.stderr);
    const [first, second] = r.stdout.trim().split("\n");
    const out = JSON.parse(second ?? "{}") as { pid: number; execArgv: string[]; args: string[]; env: string; added: string };
    assert.equal(first, `first ${out.pid}`, "the same process runs on");
    assert.deepEqual(out.execArgv, ["--max-semi-space-size=1", "--no-warnings"]);
    assert.deepEqual(out.args, ["a b", "--c"]);
    assert.equal(out.env, "kept");
    assert.equal(out.added, "added", "the variables given are added");
    assert.equal(r.stderr, "to stderr\n");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
