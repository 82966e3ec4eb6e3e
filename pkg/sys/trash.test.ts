import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Trash } from "./trash.js";

test("discard frees the path at once and deletes the tree in the background; emptyAll deletes what a crash left", async () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-trash-"));
  try {
    const trash = new Trash(join(dir, "t"), "test tree");
    const tree = join(dir, "obj");
    mkdirSync(join(tree, "a", "b"), { recursive: true });
    for (let i = 0; i < 50; i++) writeFileSync(join(tree, "a", `f${i}`), "x");
    await trash.discard(tree);
    assert.equal(existsSync(tree), false, "the path is free when discard resolves");
    // A new tree at the same path is not touched by the deletion of the old one.
    mkdirSync(tree);
    writeFileSync(join(tree, "new"), "new");
    await trash.emptied();
    assert.deepEqual(readdirSync(join(dir, "t")), []);
    assert.deepEqual(readdirSync(tree), ["new"]);
    // Nothing there: not an error.
    await trash.discard(join(dir, "missing"));
    // What a crash left in the trash.
    mkdirSync(join(dir, "t", "left-1234", "x"), { recursive: true });
    const again = new Trash(join(dir, "t"), "test tree");
    await again.emptyAll();
    await again.emptied();
    assert.deepEqual(readdirSync(join(dir, "t")), []);
    // No trash directory yet: made on first use.
    const fresh = new Trash(join(dir, "other", "t"), "test tree");
    mkdirSync(join(dir, "other"));
    mkdirSync(join(dir, "x"));
    await fresh.discard(join(dir, "x"));
    await fresh.emptied();
    assert.equal(existsSync(join(dir, "x")), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
