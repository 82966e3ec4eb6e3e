import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MetadataStore } from "../store/index.js";
import { ContentStore } from "./index.js";

function digest(b: Buffer): string {
  return `sha256:${createHash("sha256").update(b).digest("hex")}`;
}

test("ingest verifies, resumes from partial data, and GC honours leases", async () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-content-"));
  const meta = MetadataStore.open(join(dir, "m.db"));
  try {
    const cs = ContentStore.open({ root: join(dir, "content"), store: meta });
    const data = Buffer.from("hello world, this is a blob");
    const exp = { digest: digest(data), size: data.length };
    const a = await cs.ingest(exp);
    await a.write(data.subarray(0, 10));
    await a.close();
    assert.equal(cs.has(exp.digest), false);
    const b = await cs.ingest(exp);
    assert.equal(b.offset, 10, "resumes after the bytes already there");
    await b.write(data.subarray(10));
    await b.commit();
    await b.close();
    assert.equal(cs.has(exp.digest), true);
    assert.deepEqual(await cs.read(exp.digest), data);

    const bad = Buffer.from("corrupt!");
    const c = await cs.ingest({ digest: digest(Buffer.from("original")), size: bad.length });
    await c.write(bad);
    await assert.rejects(c.commit(), /digest mismatch/);
    assert.equal(cs.has(digest(Buffer.from("original"))), false);

    const lease = cs.createLease();
    lease.add(exp.digest);
    assert.equal((await cs.gc(new Set())).removed.length, 0);
    lease.release();
    assert.deepEqual((await cs.gc(new Set())).removed, [exp.digest]);
    assert.equal(existsSync(cs.path(exp.digest)), false);
    assert.deepEqual(cs.usage(), { bytes: 0, inodes: 0 });
  } finally {
    meta.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a lease released while the disk is full stops protecting its blobs at the next GC, not only after a restart", async () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-content-full-"));
  const small = join(dir, "fs");
  mkdirSync(small);
  const r = spawnSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", small]);
  assert.equal(r.status, 0, r.stderr.toString());
  const meta = MetadataStore.open(join(small, "m.db"));
  try {
    const cs = ContentStore.open({ root: join(small, "content"), store: meta });
    const data = Buffer.from("a leased blob");
    const exp = { digest: digest(data), size: data.length };
    const lease = cs.createLease();
    lease.add(exp.digest);
    const ing = await cs.ingest(exp);
    await ing.write(data);
    await ing.commit();
    await ing.close();
    const filler = join(small, "filler");
    const st = statfsSync(small);
    try {
      writeFileSync(filler, Buffer.alloc(st.bavail * st.bsize));
    } catch {
      /* full to the last byte */
    }
    // Fill what SQLite's own pages could still take.
    for (let i = 0; i < 64; i++) {
      try {
        meta.db.exec(`CREATE TABLE IF NOT EXISTS pad${i} (x BLOB); INSERT INTO pad${i} VALUES (zeroblob(65536));`);
      } catch {
        break;
      }
    }
    lease.release();
    rmSync(filler, { force: true });
    for (let i = 0; i < 64; i++) meta.db.exec(`DROP TABLE IF EXISTS pad${i}`);
    const res = await cs.gc(new Set());
    assert.deepEqual(res.removed, [exp.digest]);
    assert.equal(cs.has(exp.digest), false);
  } finally {
    meta.close();
    spawnSync("umount", [small]);
    rmSync(dir, { recursive: true, force: true });
  }
});
