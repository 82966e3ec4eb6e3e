import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
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
