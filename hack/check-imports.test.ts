import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const script = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "hack", "check-imports.mjs");

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "berth-imports-"));
  for (const [p, src] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), src);
  }
  return dir;
}

function check(dir: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [script, dir], { encoding: "utf8" });
  rmSync(dir, { recursive: true, force: true });
  return { status: r.status, out: r.stdout + r.stderr };
}

test("a clean tree passes", () => {
  const r = check(tree({ "pkg/log/index.ts": 'export const a = 1;\n', "pkg/store/index.ts": 'import { a } from "../log/index.js";\nexport const b = a;\n' }));
  assert.equal(r.status, 0, r.out);
});

test("a file cycle is reported", () => {
  const r = check(tree({ "pkg/log/a.ts": 'import { b } from "./b.js";\nexport const a = b;\n', "pkg/log/b.ts": 'import type { a } from "./a.js";\nexport const b = 1 as unknown as typeof a;\n' }));
  assert.equal(r.status, 1);
  assert.match(r.out, /import cycle: pkg\/log\/(a|b)\.ts → pkg\/log\/(a|b)\.ts/);
});

test("an upward import, a deep import and a stray generated-API import are reported", () => {
  const r = check(
    tree({
      "pkg/cri/index.ts": "export const c = 1;\n",
      "pkg/store/index.ts": 'import { c } from "../cri/index.js";\nexport const s = c;\n',
      "pkg/runtime/index.ts": 'import { x } from "../store/inner.js";\nimport { y } from "../../api/gen/cri/v1/api.js";\nexport const r = [x, y];\n',
      "pkg/store/inner.ts": "export const x = 1;\n",
    }),
  );
  assert.equal(r.status, 1);
  assert.match(r.out, /pkg\/store \(layer 3\) must not import pkg\/cri \(layer 7\)/);
  assert.match(r.out, /use pkg\/store\/index.js/);
  assert.match(r.out, /imports generated API/);
});
