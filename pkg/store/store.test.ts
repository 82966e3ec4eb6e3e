import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MetadataStore, type Migration } from "./index.js";

const migrations: Migration[] = [
  { version: 1, description: "things", up: (db) => db.exec("CREATE TABLE things (id TEXT PRIMARY KEY)") },
  { version: 2, description: "thing names", up: (db) => db.exec("ALTER TABLE things ADD COLUMN name TEXT") },
];

test("migrations apply once, in order, and survive reopen", () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-store-"));
  try {
    const file = join(dir, "metadata.db");
    let s = MetadataStore.open(file);
    assert.equal(s.db.pragma("journal_mode", { simple: true }), "wal");
    s.migrate("things", migrations.slice(0, 1));
    assert.equal(s.version("things"), 1);
    s.migrate("things", migrations);
    assert.equal(s.version("things"), 2);
    s.db.prepare("INSERT INTO things (id, name) VALUES (?, ?)").run("a", "x");
    s.close();
    s = MetadataStore.open(file);
    s.migrate("things", migrations);
    assert.deepEqual(s.db.prepare("SELECT * FROM things").all(), [{ id: "a", name: "x" }]);
    assert.throws(() => s.migrate("things", migrations.slice(0, 1)), /newer than this berthd/);
    s.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a failing migration leaves the version where it was", () => {
  const s = MetadataStore.open(join(mkdtempSync(join(tmpdir(), "berth-store-")), "m.db"));
  const bad: Migration[] = [
    migrations[0]!,
    { version: 2, description: "broken", up: (db) => db.exec("ALTER TABLE nope ADD COLUMN x TEXT") },
  ];
  assert.throws(() => s.migrate("things", bad), /no such table/);
  assert.equal(s.version("things"), 1);
  s.close();
});

test("tx rolls back everything on error", () => {
  const s = MetadataStore.open(join(mkdtempSync(join(tmpdir(), "berth-store-")), "m.db"));
  s.migrate("things", migrations);
  assert.throws(() =>
    s.tx(() => {
      s.db.prepare("INSERT INTO things (id) VALUES (?)").run("x");
      throw new Error("stop");
    }),
  );
  assert.equal((s.db.prepare("SELECT count(*) AS n FROM things").get() as { n: number }).n, 0);
  s.close();
});
