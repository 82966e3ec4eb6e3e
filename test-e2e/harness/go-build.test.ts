import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { goBuild } from "./go-build.js";

function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  return fn().finally(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
}

test("goBuild builds once per source state and rebuilds after a .go file changes", async () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-gobuild-"));
  try {
    const src = join(dir, "hello");
    mkdirSync(src);
    writeFileSync(join(src, "main.go"), 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("one") }\n');
    await withEnv({ BERTH_GO_BIN_DIR: join(dir, "bin") }, async () => {
      const a = await goBuild(src);
      assert.equal(execFileSync(a, { encoding: "utf8" }), "one\n");
      const again = await goBuild(src);
      assert.equal(again, a);
      assert.equal(statSync(again).mtimeMs, statSync(a).mtimeMs);
      writeFileSync(join(src, "main.go"), 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("two") }\n');
      const b = await goBuild(src);
      assert.notEqual(b, a);
      assert.equal(execFileSync(b, { encoding: "utf8" }), "two\n");
      writeFileSync(join(src, "main.go"), "package main\n\nfunc main() { undefined() }\n");
      await assert.rejects(goBuild(src), /go build in .*hello failed[\s\S]*undefined/);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("goBuild without a Go toolchain fails naming the Debian packages to install", async () => {
  await withEnv({ BERTH_GO: "/nonexistent/go" }, async () => {
    await assert.rejects(goBuild("/nonexistent-src"), /go not found \(looked for \/nonexistent\/go\): install the Debian packages golang-1\.19-go golang-google-grpc-dev/);
  });
});
