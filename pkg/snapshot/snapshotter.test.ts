import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildTar, withParentDirs, type LayerEntry } from "../../hack/images/index.js";
import { spawnSync } from "node:child_process";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, ResourceExhaustedError } from "../errdefs/index.js";
import { setRootLogger } from "../log/index.js";
import { MetadataStore } from "../store/index.js";
import { lgetxattr } from "../sys/index.js";
import { Snapshotter, chainIds, mountAll, unmountAll, type Mount } from "./index.js";
import { applyTotal } from "./metrics.js";
import { rawTar, tempDir, writeBlob, type Compress } from "./testing.js";

setRootLogger({ level: "silent" });

interface Env {
  dir: string;
  root: string;
  blobs: string;
  store: MetadataStore;
  snap: Snapshotter;
}

const envs: Env[] = [];

async function env(opts: { rootName?: string } = {}): Promise<Env> {
  const dir = tempDir("t");
  const root = join(dir, opts.rootName ?? "snapshots");
  const blobs = join(dir, "blobs");
  mkdirSync(blobs);
  const store = MetadataStore.open(join(dir, "metadata.db"));
  const snap = await Snapshotter.open({ root, store, sync: false });
  const e = { dir, root, blobs, store, snap };
  envs.push(e);
  return e;
}

after(() => {
  for (const e of envs) {
    e.snap.close();
    e.store.close();
    rmSync(e.dir, { recursive: true, force: true });
  }
});

/** Applies a tar on top of parent; returns the new chain id. */
async function applyTar(e: Env, tar: Uint8Array, parent?: string, how: Compress = "gzip"): Promise<string> {
  const b = writeBlob(e.blobs, tar, how);
  const chainId = parent === undefined ? b.diffId : (chainIds([parent, b.diffId])[1] as string);
  await e.snap.applyLayer({ chainId, parent, blobPath: b.blobPath, mediaType: b.mediaType, diffId: b.diffId, layerDigest: b.digest });
  return chainId;
}

async function applyEntries(e: Env, entries: readonly LayerEntry[], parent?: string, how: Compress = "gzip"): Promise<string> {
  return applyTar(e, await buildTar(entries), parent, how);
}

function fsOf(e: Env, chainId: string): string {
  const info = e.snap.list().find((s) => s.key === chainId);
  assert.ok(info, `snapshot ${chainId} exists`);
  return join(e.root, String(info.id), "fs");
}

/** The snapshot directories under the root (not the trash of removed ones, see trashOf). */
function snapshotDirs(e: Env): string[] {
  return readdirSync(e.root)
    .filter((n) => n !== ".removed")
    .sort();
}

/** Removed snapshots' directories not deleted yet. */
function trashOf(e: Env): string[] {
  return existsSync(join(e.root, ".removed")) ? readdirSync(join(e.root, ".removed")) : [];
}

test("chainIds follows the OCI definition", () => {
  const a = `sha256:${"a".repeat(64)}`;
  const b = `sha256:${"b".repeat(64)}`;
  const c = `sha256:${"c".repeat(64)}`;
  const ab = `sha256:${createHash("sha256").update(`${a} ${b}`).digest("hex")}`;
  const abc = `sha256:${createHash("sha256").update(`${ab} ${c}`).digest("hex")}`;
  assert.deepEqual(chainIds([a, b, c]), [a, ab, abc]);
  assert.deepEqual(chainIds([]), []);
});

describe("apply", () => {
  let e: Env;
  before(async () => {
    e = await env();
  });

  for (const how of ["gzip", "none", "zstd"] as const) {
    test(`files, dirs, links, devices, owners, modes, mtimes (${how})`, async () => {
      const mtime = new Date("2021-03-04T05:06:07Z");
      const entries: LayerEntry[] = withParentDirs([
        { type: "dir", path: "tmp", mode: 0o1777, mtime },
        { type: "dir", path: "home/user", mode: 0o750, uid: 1000, gid: 1001, mtime },
        { type: "file", path: "home/user/notes", content: `hello ${how}`, mode: 0o640, uid: 1000, gid: 1001, mtime },
        { type: "file", path: "bin/su", content: "suid", mode: 0o4755, mtime },
        { type: "file", path: "bin/sg", content: "sgid", mode: 0o2711, uid: 0, gid: 42, mtime },
        { type: "hardlink", path: "bin/su2", target: "bin/su" },
        { type: "symlink", path: "bin/sh", target: "/bin/busybox", uid: 7, gid: 8 },
        { type: "char-device", path: "dev/null", devmajor: 1, devminor: 3, mode: 0o666 },
        { type: "block-device", path: "dev/loop9", devmajor: 7, devminor: 9, mode: 0o660 },
        { type: "fifo", path: "run/fifo", mode: 0o600 },
      ]);
      const id = await applyEntries(e, entries, undefined, how);
      assert.ok(e.snap.has(id));
      const fs = fsOf(e, id);
      const st = (p: string) => lstatSync(join(fs, p));
      assert.equal(readFileSync(join(fs, "home/user/notes"), "utf8"), `hello ${how}`);
      assert.equal(st("tmp").mode & 0o7777, 0o1777);
      assert.equal(st("tmp").mtime.getTime(), mtime.getTime(), "directory mtime survives files created in it");
      assert.equal(st("home/user").mode & 0o7777, 0o750);
      assert.equal(st("home/user").uid, 1000);
      assert.equal(st("home/user").gid, 1001);
      assert.equal(st("home/user/notes").mode & 0o7777, 0o640);
      assert.equal(st("home/user/notes").mtime.getTime(), mtime.getTime());
      assert.equal(st("bin/su").mode & 0o7777, 0o4755);
      assert.equal(st("bin/sg").mode & 0o7777, 0o2711);
      assert.equal(st("bin/sg").gid, 42);
      assert.equal(st("bin/su2").ino, st("bin/su").ino, "hard link shares the inode");
      assert.equal(st("bin/su").nlink, 2);
      assert.ok(st("bin/sh").isSymbolicLink());
      assert.equal(readlinkSync(join(fs, "bin/sh")), "/bin/busybox");
      assert.equal(st("bin/sh").uid, 7);
      assert.ok(st("dev/null").isCharacterDevice());
      assert.equal(st("dev/null").rdev, (1 << 8) | 3);
      assert.equal(st("dev/null").mode & 0o7777, 0o666);
      assert.ok(st("dev/loop9").isBlockDevice());
      assert.equal(st("dev/loop9").rdev, (7 << 8) | 9);
      assert.ok(st("run/fifo").isFIFO());
    });
  }

  test("PAX xattrs (binary values), long names, fractional mtimes", async () => {
    const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xfe, 0x80, 0x00]);
    const longName = `deep/${"d".repeat(120)}/${"f".repeat(110)}`;
    const tar = rawTar([
      { header: { name: "deep/", type: "5", mode: 0o755 } },
      {
        header: { name: "ping", mode: 0o755 },
        body: "binary",
        pax: [
          ["SCHILY.xattr.security.capability", cap],
          ["SCHILY.xattr.user.comment", "é\u0000x"],
          ["SCHILY.xattr.trusted.overlay.redirect", "/etc"],
          ["mtime", "1600000000.25"],
        ],
      },
      { header: { name: "placeholder", mode: 0o644 }, body: "long", pax: [["path", longName]] },
    ]);
    const id = await applyTar(e, tar);
    const fs = fsOf(e, id);
    assert.deepEqual(lgetxattr(join(fs, "ping"), "security.capability"), cap);
    assert.deepEqual(lgetxattr(join(fs, "ping"), "user.comment"), Buffer.from("é\u0000x"));
    assert.equal(lgetxattr(join(fs, "ping"), "trusted.overlay.redirect"), undefined, "layers cannot set overlay's own xattrs");
    assert.equal(lstatSync(join(fs, "ping")).mtimeMs, 1600000000250);
    assert.equal(readFileSync(join(fs, longName), "utf8"), "long");
  });

  test("unknown media type is InvalidArgument naming it, and changes nothing", async () => {
    const before = snapshotDirs(e);
    const b = writeBlob(e.blobs, await buildTar([{ type: "file", path: "x", content: "x" }]), "none");
    await assert.rejects(
      e.snap.applyLayer({ chainId: b.diffId, parent: undefined, blobPath: b.blobPath, mediaType: "application/vnd.example.layer.v1.tar+lz4", diffId: b.diffId }),
      (err: Error) => err instanceof InvalidArgumentError && err.message.includes("application/vnd.example.layer.v1.tar+lz4"),
    );
    assert.equal(e.snap.has(b.diffId), false);
    assert.deepEqual(snapshotDirs(e), before);
  });

  test("diff ID mismatch is an error and nothing is committed", async () => {
    const before = snapshotDirs(e);
    const b = writeBlob(e.blobs, await buildTar([{ type: "file", path: "x", content: "real" }]));
    const wrong = `sha256:${"0".repeat(64)}`;
    await assert.rejects(
      e.snap.applyLayer({ chainId: wrong, parent: undefined, blobPath: b.blobPath, mediaType: b.mediaType, diffId: wrong }),
      (err: Error) => err instanceof InvalidArgumentError && /does not match diff_id/.test(err.message),
    );
    assert.equal(e.snap.has(wrong), false);
    assert.equal(e.snap.list().some((s) => s.key === wrong), false);
    assert.deepEqual(snapshotDirs(e), before, "the extraction directory is removed");
  });

  test("a truncated gzip stream is an error", async () => {
    const before = snapshotDirs(e);
    const tar = await buildTar([{ type: "file", path: "big", content: Buffer.alloc(300_000, 7) }]);
    const b = writeBlob(e.blobs, tar, "gzip");
    const blob = readFileSync(b.blobPath);
    writeFileSync(b.blobPath, blob.subarray(0, blob.length - 20));
    await assert.rejects(
      e.snap.applyLayer({ chainId: b.diffId, parent: undefined, blobPath: b.blobPath, mediaType: b.mediaType, diffId: b.diffId }),
      (err: Error) => err instanceof InvalidArgumentError && /gzip/.test(err.message),
    );
    assert.equal(e.snap.has(b.diffId), false);
    assert.deepEqual(snapshotDirs(e), before);
  });

  test("a truncated zstd stream is an error", async () => {
    const tar = await buildTar([{ type: "file", path: "big", content: Buffer.alloc(300_000, 9) }]);
    const b = writeBlob(e.blobs, tar, "zstd");
    const blob = readFileSync(b.blobPath);
    writeFileSync(b.blobPath, blob.subarray(0, blob.length - 8));
    await assert.rejects(
      e.snap.applyLayer({ chainId: b.diffId, parent: undefined, blobPath: b.blobPath, mediaType: b.mediaType, diffId: b.diffId }),
      (err: Error) => err instanceof InvalidArgumentError,
    );
    assert.equal(e.snap.has(b.diffId), false);
  });

  test("a tar cut inside an entry is an error even when its digest is the diff ID", async () => {
    // (archive-end.test.ts covers every place a stream may or may not end)
    const full = rawTar([
      { header: { name: "a" }, body: "a".repeat(2000) },
      { header: { name: "b" }, body: "b".repeat(2000) },
    ]);
    const b = writeBlob(e.blobs, full.subarray(0, 512 * 6 + 100), "none");
    await assert.rejects(
      e.snap.applyLayer({ chainId: b.diffId, parent: undefined, blobPath: b.blobPath, mediaType: b.mediaType, diffId: b.diffId }),
      (err: Error) => err instanceof InvalidArgumentError && err.message === `layer ${b.diffId}: entry "b": tar stream ends inside the body (100 of 2000 bytes)`,
    );
    assert.equal(e.snap.has(b.diffId), false);
  });

  test("data that is not a tar, and sparse entries, are InvalidArgument", async () => {
    const before = snapshotDirs(e);
    const garbage = Buffer.alloc(4096, 0x41);
    const sparse = rawTar([{ header: { name: "holes", type: "S" }, body: "x" }]);
    const unknownType = rawTar([{ header: { name: "what", type: "Z" } }]);
    for (const [tar, why] of [[garbage, /checksum/], [sparse, /sparse/], [unknownType, /unsupported tar entry type/]] as const) {
      const b = writeBlob(e.blobs, tar);
      await assert.rejects(
        e.snap.applyLayer({ chainId: b.diffId, parent: undefined, blobPath: b.blobPath, mediaType: b.mediaType, diffId: b.diffId }),
        (err: Error) => err instanceof InvalidArgumentError && why.test(err.message),
      );
    }
    assert.deepEqual(snapshotDirs(e), before);
  });

  test("a missing blob is NotFound", async () => {
    const b = writeBlob(e.blobs, await buildTar([{ type: "file", path: "m", content: "m" }]));
    rmSync(b.blobPath);
    await assert.rejects(
      e.snap.applyLayer({ chainId: b.diffId, parent: undefined, blobPath: b.blobPath, mediaType: b.mediaType, diffId: b.diffId, layerDigest: b.digest }),
      (err: Error) => err instanceof NotFoundError && err.message === `layer ${b.digest}: blob ${b.blobPath} not found`,
    );
    assert.equal(e.snap.has(b.diffId), false);
  });

  test("a full disk is ResourceExhausted and leaves nothing behind", async () => {
    const small = join(e.dir, "small-fs");
    mkdirSync(small);
    const r = spawnSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", small]);
    assert.equal(r.status, 0, r.stderr.toString());
    const store = MetadataStore.open(join(e.dir, "small.db"));
    try {
      const snap = await Snapshotter.open({ root: join(small, "snapshots"), store, sync: false });
      const b = writeBlob(e.blobs, await buildTar([{ type: "file", path: "huge", content: Buffer.alloc(5 << 20, 1) }]));
      await assert.rejects(
        snap.applyLayer({ chainId: b.diffId, parent: undefined, blobPath: b.blobPath, mediaType: b.mediaType, diffId: b.diffId }),
        (err: Error) => err instanceof ResourceExhaustedError && err.message.includes('"huge"'),
      );
      assert.equal(snap.has(b.diffId), false);
      assert.deepEqual(readdirSync(join(small, "snapshots")), []);
      snap.close();
    } finally {
      store.close();
      spawnSync("umount", [small]);
    }
  });

  test("a missing parent is NotFound; a chain ID that does not follow is InvalidArgument", async () => {
    const b = writeBlob(e.blobs, await buildTar([{ type: "file", path: "p", content: "p" }]));
    const parent = `sha256:${"1".repeat(64)}`;
    const chainId = chainIds([parent, b.diffId])[1] as string;
    await assert.rejects(e.snap.applyLayer({ chainId, parent, blobPath: b.blobPath, mediaType: b.mediaType, diffId: b.diffId }), NotFoundError);
    await assert.rejects(e.snap.applyLayer({ chainId: parent, parent: undefined, blobPath: b.blobPath, mediaType: b.mediaType, diffId: b.diffId }), InvalidArgumentError);
  });

  test("applying an existing chain ID again is a no-op", async () => {
    const tar = await buildTar([{ type: "file", path: "same", content: "same" }]);
    const id1 = await applyTar(e, tar);
    const count = e.snap.list().length;
    const id2 = await applyTar(e, tar);
    assert.equal(id1, id2);
    assert.equal(e.snap.list().length, count);
  });

  test("concurrent applies of one chain ID share one extraction", async () => {
    const tar = await buildTar([{ type: "file", path: "shared", content: Buffer.alloc(2_000_000, 3) }]);
    const b = writeBlob(e.blobs, tar);
    const before = (await applyTotal.get()).values.find((v) => v.labels.result === "ok")?.value ?? 0;
    const dirsBefore = snapshotDirs(e).length;
    const opts = { chainId: b.diffId, parent: undefined, blobPath: b.blobPath, mediaType: b.mediaType, diffId: b.diffId };
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => e.snap.applyLayer(opts)));
    const after = (await applyTotal.get()).values.find((v) => v.labels.result === "ok")?.value ?? 0;
    assert.equal(after - before, 1, "one extraction ran");
    assert.equal(snapshotDirs(e).length, dirsBefore + 1);
    assert.ok(results.every((r) => r.size === results[0]?.size && r.size > 2_000_000));
  });

  test("with the database on the full disk too: the apply's own error surfaces, and once there is room the same layer applies", async () => {
    const small = join(e.dir, "small-fs-db");
    mkdirSync(small);
    const r = spawnSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", small]);
    assert.equal(r.status, 0, r.stderr.toString());
    const store = MetadataStore.open(join(small, "metadata.db"));
    try {
      const snap = await Snapshotter.open({ root: join(small, "snapshots"), store, sync: false });
      const b = writeBlob(e.blobs, await buildTar([{ type: "file", path: "big", content: Buffer.alloc(3 << 20, 2) }]));
      const apply = () => snap.applyLayer({ chainId: b.diffId, parent: undefined, blobPath: b.blobPath, mediaType: b.mediaType, diffId: b.diffId });
      await assert.rejects(apply(), (err: Error) => err instanceof ResourceExhaustedError && err.message.includes('"big"'));
      assert.equal(snap.has(b.diffId), false);
      assert.equal(spawnSync("mount", ["-o", "remount,size=16m", small]).status, 0);
      await apply();
      assert.equal(snap.has(b.diffId), true);
      snap.close();
    } finally {
      store.close();
      spawnSync("umount", [small]);
    }
  });

  test("a cancelled apply leaves nothing, and a later apply succeeds", async () => {
    const tar = await buildTar([{ type: "file", path: "slow", content: Buffer.alloc(50_000_000, 5) }]);
    const b = writeBlob(e.blobs, tar);
    const before = snapshotDirs(e);
    const ac = new AbortController();
    const p = e.snap.applyLayer({ chainId: b.diffId, parent: undefined, blobPath: b.blobPath, mediaType: b.mediaType, diffId: b.diffId, signal: ac.signal });
    setTimeout(() => ac.abort(), 30);
    await assert.rejects(p);
    // the shared apply stops when its last waiter gives up; wait for its cleanup
    for (let i = 0; i < 200 && snapshotDirs(e).length !== before.length; i++) await new Promise((r) => setTimeout(r, 25));
    assert.deepEqual(snapshotDirs(e), before);
    assert.equal(e.snap.has(b.diffId), false);
    await e.snap.applyLayer({ chainId: b.diffId, parent: undefined, blobPath: b.blobPath, mediaType: b.mediaType, diffId: b.diffId });
    assert.equal(e.snap.has(b.diffId), true);
  });
});

describe("hostile layers stay inside the snapshot", () => {
  let e: Env;
  let sentinel: string;
  const listing = (): string[] => readdirSync(sentinel).sort();
  before(async () => {
    e = await env();
    sentinel = join(e.dir, "sentinel");
    mkdirSync(sentinel);
    writeFileSync(join(sentinel, "victim"), "original");
    chmodSync(join(sentinel, "victim"), 0o600);
    chmodSync(sentinel, 0o700);
  });

  test("dot-dot names, absolute names, symlinks to / and escaping symlink chains", async () => {
    const s = sentinel.slice(1); // without the leading "/"
    const up = "../".repeat(30);
    const tar = rawTar([
      { header: { name: `${up}${s}/dotdot` }, body: "x" },
      { header: { name: `/${s}/absolute` }, body: "x" },
      { header: { name: "rootlink", type: "2", linkname: "/" } },
      { header: { name: `rootlink/${s}/via-rootlink` }, body: "x" },
      { header: { name: "c2", type: "2", linkname: `${up}` } },
      { header: { name: "c1", type: "2", linkname: "c2/../c2/.." } },
      { header: { name: `c1/${s}/via-chain` }, body: "x" },
      { header: { name: "rel", type: "2", linkname: `${up}${s}` } },
      { header: { name: "rel/via-rel" }, body: "x" },
      { header: { name: "overwrite", type: "2", linkname: `${sentinel}/victim` } },
      { header: { name: "overwrite" }, body: "pwned" },
      { header: { name: "ptr", type: "2", linkname: `${sentinel}/victim` } },
      { header: { name: "hl-to-symlink", type: "1", linkname: "ptr", mode: 0o4777, uid: 4242 }, pax: [["SCHILY.xattr.user.evil", "x"]] },
      { header: { name: `rel/.wh.victim` } },
      { header: { name: `rootlink/${s}/.wh..wh..opq` } },
    ]);
    const victimIno = statSync(join(sentinel, "victim")).ino;
    const id = await applyTar(e, tar);
    assert.deepEqual(listing(), ["victim"], "nothing was created outside");
    assert.equal(readFileSync(join(sentinel, "victim"), "utf8"), "original");
    assert.equal(statSync(join(sentinel, "victim")).nlink, 1);
    assert.equal(statSync(join(sentinel, "victim")).ino, victimIno);
    assert.equal(statSync(join(sentinel, "victim")).mode & 0o7777, 0o600, "no chmod through a symlink");
    assert.equal(statSync(join(sentinel, "victim")).uid, 0, "no chown through a symlink");
    assert.equal(lgetxattr(join(sentinel, "victim"), "user.evil"), undefined, "no xattr through a symlink");
    assert.equal(statSync(sentinel).mode & 0o7777, 0o700);
    const fs = fsOf(e, id);
    for (const f of ["dotdot", "absolute", "via-rootlink", "via-chain", "via-rel"]) {
      assert.ok(lstatSync(join(fs, s, f)).isFile(), `${f} landed inside the snapshot`);
    }
    assert.ok(lstatSync(join(fs, "overwrite")).isFile());
    assert.equal(readFileSync(join(fs, "overwrite"), "utf8"), "pwned");
    assert.ok(lstatSync(join(fs, "hl-to-symlink")).isSymbolicLink(), "a hard link to a symlink links the symlink itself");
    assert.ok(lstatSync(join(fs, s, "victim")).isCharacterDevice(), "the whiteout went inside");
    assert.equal(lgetxattr(join(fs, s), "trusted.overlay.opaque")?.toString(), "y");
    assert.equal(lgetxattr(sentinel, "trusted.overlay.opaque"), undefined);
  });

  const badLinks: Array<[string, RegExp, Array<{ header: { name: string; type?: string; linkname?: string }; body?: string }>]> = [
    ["hard link to /etc/shadow", /is not in the layer/, [{ header: { name: "shadow", type: "1", linkname: "/etc/shadow" } }]],
    ["hard link with ../ out of the root", /lies outside the snapshot/, [{ header: { name: "shadow", type: "1", linkname: "../../../../../../../../../etc/shadow" } }]],
    [
      "hard link through a symlink to /etc",
      /is not in the layer/,
      [
        { header: { name: "etc-link", type: "2", linkname: "/etc" } },
        { header: { name: "shadow", type: "1", linkname: "etc-link/shadow" } },
      ],
    ],
    [
      "hard link through a relative escaping symlink to the sentinel",
      /is not in the layer/,
      [
        { header: { name: "up", type: "2", linkname: "../../../../../../../../../../../" } },
        { header: { name: "victim-link", type: "1", linkname: "SENTINEL" } },
      ],
    ],
  ];
  for (const [name, why, entries] of badLinks) {
    test(`${name} is rejected naming the layer and the entry`, async () => {
      const shadowLinks = statSync("/etc/shadow").nlink;
      const before = snapshotDirs(e);
      const fixed = entries.map((x) => (x.header.linkname === "SENTINEL" ? { ...x, header: { ...x.header, linkname: `up${sentinel}/victim` } } : x));
      const b = writeBlob(e.blobs, rawTar(fixed));
      await assert.rejects(
        e.snap.applyLayer({ chainId: b.diffId, parent: undefined, blobPath: b.blobPath, mediaType: b.mediaType, diffId: b.diffId, layerDigest: b.digest }),
        (err: Error) => err instanceof InvalidArgumentError && why.test(err.message) && err.message.includes(b.digest) && err.message.includes(`"${fixed.at(-1)?.header.name}"`),
      );
      assert.equal(statSync("/etc/shadow").nlink, shadowLinks);
      assert.equal(statSync(join(sentinel, "victim")).nlink, 1);
      assert.equal(e.snap.has(b.diffId), false);
      assert.deepEqual(snapshotDirs(e), before);
      assert.deepEqual(listing(), ["victim"]);
    });
  }

  test("invalid whiteout names are rejected", async () => {
    const b = writeBlob(e.blobs, rawTar([{ header: { name: "dir/.wh.." } }]));
    await assert.rejects(e.snap.applyLayer({ chainId: b.diffId, parent: undefined, blobPath: b.blobPath, mediaType: b.mediaType, diffId: b.diffId }), InvalidArgumentError);
  });
});

describe("overlay", () => {
  let e: Env;
  let target: string;
  before(async () => {
    e = await env();
    target = join(e.dir, "rootfs");
    mkdirSync(target);
  });
  after(async () => {
    await unmountAll(target);
  });

  test("whiteouts and opaque directories hide lower content in the mounted overlay", async () => {
    const base = await applyEntries(
      e,
      withParentDirs([
        { type: "dir", path: "tmp", mode: 0o1777 },
        { type: "file", path: "a/keep", content: "keep" },
        { type: "file", path: "a/gone", content: "gone" },
        { type: "file", path: "a/sub/deep", content: "deep" },
        { type: "file", path: "o/old1", content: "1" },
        { type: "file", path: "o/old2", content: "2" },
        { type: "file", path: "etc/hostname", content: "base" },
      ]),
    );
    const top = await applyEntries(
      e,
      [
        { type: "whiteout", path: "a/gone" },
        { type: "whiteout", path: "a/sub" },
        { type: "opaque", path: "o" },
        { type: "file", path: "o/new", content: "new" },
        { type: "file", path: "etc/hostname", content: "top" },
        { type: "file", path: "tmp/x", content: "x" },
      ],
      base,
    );
    const diff = fsOf(e, top);
    assert.ok(lstatSync(join(diff, "a/gone")).isCharacterDevice());
    assert.equal(lstatSync(join(diff, "a/gone")).rdev, 0);
    assert.equal(lgetxattr(join(diff, "o"), "trusted.overlay.opaque")?.toString(), "y");
    assert.deepEqual(readdirSync(diff).sort(), ["a", "etc", "o", "tmp"], "the diff holds only this layer's changes");
    assert.equal(lstatSync(join(diff, "tmp")).mode & 0o7777, 0o1777, "an implied directory copies the lower one's mode");

    const mounts = await e.snap.prepare("ctr-1", top, { labels: { container: "ctr-1" } });
    assert.equal(mounts.length, 1);
    assert.equal(mounts[0]?.type, "overlay");
    assert.deepEqual(e.snap.mounts("ctr-1"), mounts);
    await mountAll(mounts, target);
    try {
      assert.deepEqual(readdirSync(join(target, "a")).sort(), ["keep"]);
      assert.deepEqual(readdirSync(join(target, "o")).sort(), ["new"]);
      assert.equal(readFileSync(join(target, "etc/hostname"), "utf8"), "top");
      assert.equal(statSync(join(target, "tmp")).mode & 0o7777, 0o1777);
      writeFileSync(join(target, "written"), "by container");
    } finally {
      await unmountAll(target);
    }
    await unmountAll(target); // idempotent
    assert.equal(existsSync(join(target, "a")), false);
    const active = e.snap.list().find((s) => s.key === "ctr-1");
    assert.equal(active?.kind, "active");
    assert.equal(active?.parent, top);
    assert.deepEqual(active?.labels, { container: "ctr-1" });
    assert.equal(readFileSync(join(e.root, String(active?.id), "fs", "written"), "utf8"), "by container");
    const u = await e.snap.usage();
    assert.ok(u.bytes > 0n && u.inodes > 10n);
    await e.snap.remove("ctr-1");
    assert.throws(() => e.snap.mounts("ctr-1"), NotFoundError);
  });

  test("a directory deleted and created again in one layer hides the old content", async () => {
    const base = await applyEntries(e, withParentDirs([{ type: "file", path: "d/old", content: "old" }, { type: "file", path: "e/old", content: "old" }]));
    const top = await applyTar(
      e,
      rawTar([
        { header: { name: ".wh.d" } },
        { header: { name: "d/", type: "5", mode: 0o755 } },
        { header: { name: "d/new" }, body: "new" },
        { header: { name: ".wh.e" } },
        { header: { name: "e/new" }, body: "new" },
      ]),
      base,
    );
    await mountAll(await e.snap.prepare("recreated", top), target);
    try {
      assert.deepEqual(readdirSync(join(target, "d")), ["new"]);
      assert.deepEqual(readdirSync(join(target, "e")), ["new"]);
    } finally {
      await unmountAll(target);
    }
    await e.snap.remove("recreated");
  });

  test("a whiteout hides lower layers only, not entries of its own layer", async () => {
    const base = await applyEntries(e, withParentDirs([{ type: "file", path: "w/f", content: "lower" }, { type: "file", path: "w/d/lower", content: "lower" }]));
    const top = await applyTar(
      e,
      rawTar([
        { header: { name: "w/f" }, body: "same layer" },
        { header: { name: "w/.wh.f" } },
        { header: { name: "w/d/mine" }, body: "mine" },
        { header: { name: "w/.wh.d" } },
      ]),
      base,
    );
    await mountAll(await e.snap.prepare("own-layer", top), target);
    try {
      assert.equal(readFileSync(join(target, "w/f"), "utf8"), "same layer");
      assert.deepEqual(readdirSync(join(target, "w/d")), ["mine"]);
    } finally {
      await unmountAll(target);
    }
    await e.snap.remove("own-layer");
  });

  test("an active snapshot without a parent is a bind mount", async () => {
    const mounts = await e.snap.prepare("scratch", undefined);
    assert.equal(mounts[0]?.type, "bind");
    await mountAll(mounts, target);
    writeFileSync(join(target, "f"), "x");
    await unmountAll(target);
    const info = e.snap.list().find((s) => s.key === "scratch");
    assert.equal(readFileSync(join(e.root, String(info?.id), "fs", "f"), "utf8"), "x");
    await e.snap.remove("scratch");
  });

  test("prepare: existing key is AlreadyExists, unknown parent is NotFound", async () => {
    await e.snap.prepare("dup", undefined);
    await assert.rejects(e.snap.prepare("dup", undefined), /already exists/);
    await assert.rejects(e.snap.prepare("nope", `sha256:${"9".repeat(64)}`), NotFoundError);
    await e.snap.remove("dup");
  });

  test("deep chains whose mount options exceed a page are mounted with relative lowerdirs", async () => {
    const deep = await env({ rootName: `${"long-directory-name-".repeat(10)}snapshots` });
    let parent: string | undefined;
    const n = 24;
    for (let i = 0; i < n; i++) {
      parent = await applyEntries(deep, [{ type: "file", path: `layer-${i}`, content: String(i) }, ...(i === 5 ? [{ type: "whiteout" as const, path: "layer-0" }] : [])], parent);
    }
    const mounts: Mount[] = await deep.snap.prepare("deep", parent);
    assert.ok((mounts[0]?.options.join(",").length ?? 0) > 4096, "the options are longer than a page");
    const t = join(deep.dir, "rootfs");
    mkdirSync(t);
    await mountAll(mounts, t);
    try {
      const names = readdirSync(t).sort();
      assert.equal(names.length, n - 1);
      assert.ok(!names.includes("layer-0"));
      assert.equal(readFileSync(join(t, "layer-23"), "utf8"), "23");
    } finally {
      await unmountAll(t);
    }
  });
});

describe("remove and gc", () => {
  test("remove: NotFound, parent with children, active", async () => {
    const e = await env();
    const a = await applyEntries(e, [{ type: "file", path: "a", content: "a" }]);
    const b = await applyEntries(e, [{ type: "file", path: "b", content: "b" }], a);
    await assert.rejects(e.snap.remove("missing"), NotFoundError);
    await assert.rejects(e.snap.remove(a), FailedPreconditionError);
    await e.snap.prepare("ctr", b);
    await assert.rejects(e.snap.remove(b), FailedPreconditionError);
    await e.snap.remove("ctr");
    await e.snap.remove(b);
    await e.snap.remove(a);
    assert.deepEqual(e.snap.list(), []);
    // The directories were moved aside at once and are deleted in the background.
    assert.deepEqual(snapshotDirs(e), []);
    await e.snap.trashEmptied();
    assert.deepEqual(trashOf(e), []);
  });

  test("remove: a new snapshot that gets the removed one's id keeps its directory; trash left by a crash goes at open", async () => {
    const e = await env();
    const big = await applyEntries(
      e,
      Array.from({ length: 300 }, (_, i) => ({ type: "file" as const, path: `d${i % 10}/f${i}`, content: `${i}` })),
    );
    const id = e.snap.list().find((x) => x.key === big)?.id;
    await e.snap.remove(big);
    // Applied again at once: its directory must survive the deletion of the old one.
    const again = await applyEntries(e, [{ type: "file", path: "new", content: "new" }]);
    const newId = e.snap.list().find((x) => x.key === again)?.id;
    await e.snap.trashEmptied();
    assert.equal(readFileSync(join(e.root, String(newId), "fs", "new"), "utf8"), "new", `old id ${id}, new id ${newId}`);
    // A trash entry a crash left behind, with files in it.
    mkdirSync(join(e.root, ".removed", "77-deadbeef", "fs", "x"), { recursive: true });
    writeFileSync(join(e.root, ".removed", "77-deadbeef", "fs", "x", "y"), "y");
    e.snap.close();
    const reopened = await Snapshotter.open({ root: e.root, store: e.store, sync: false });
    try {
      await reopened.trashEmptied();
      assert.deepEqual(trashOf(e), []);
      assert.deepEqual(snapshotDirs(e), [String(newId)]);
      assert.ok(reopened.has(again));
    } finally {
      reopened.close();
    }
  });

  test("gc removes what is not kept, keeps ancestors of kept and of active snapshots", async () => {
    const e = await env();
    const base = await applyEntries(e, [{ type: "file", path: "base", content: "base" }]);
    const img1 = await applyEntries(e, [{ type: "file", path: "one", content: "1" }], base);
    const img2 = await applyEntries(e, [{ type: "file", path: "two", content: "2" }], base);
    const img2b = await applyEntries(e, [{ type: "file", path: "two-b", content: "2b" }], img2);
    const lone = await applyEntries(e, [{ type: "file", path: "lone", content: "lone" }]);
    const used = await applyEntries(e, [{ type: "file", path: "used", content: "used" }]);
    await e.snap.prepare("ctr", used);
    const { removed } = await e.snap.gc(new Set([img1]));
    assert.deepEqual(new Set(removed), new Set([img2, img2b, lone]));
    for (const k of [base, img1, used]) assert.ok(e.snap.has(k), `${k} kept`);
    for (const k of [img2, img2b, lone]) assert.equal(e.snap.has(k), false);
    await e.snap.trashEmptied();
    assert.equal(snapshotDirs(e).length, e.snap.list().length);
    assert.deepEqual((await e.snap.gc(new Set([img1]))).removed, []);
  });
});

describe("layers applied beside their parent (parentPending)", () => {
  test("the child is committed after its parent, its implied directories take the parent's attributes", async () => {
    const e = await env();
    const baseTar = await buildTar([
      { type: "dir", path: "tmp", mode: 0o1777 },
      { type: "dir", path: "opt", mode: 0o750 },
      { type: "file", path: "opt/base", content: "base" },
    ]);
    const topTar = await buildTar([
      { type: "file", path: "tmp/x", content: "x" },
      { type: "dir", path: "opt", mode: 0o700 },
      { type: "file", path: "opt/top", content: "top" },
    ]);
    const b = writeBlob(e.blobs, baseTar);
    const t = writeBlob(e.blobs, topTar);
    const [baseId, topId] = chainIds([b.diffId, t.diffId]) as [string, string];
    let releaseParent!: () => void;
    const gate = new Promise<void>((r) => (releaseParent = r));
    const baseDone = gate.then(() => e.snap.applyLayer({ chainId: baseId, parent: undefined, blobPath: b.blobPath, mediaType: b.mediaType, diffId: b.diffId }));
    const top = e.snap.applyLayer({ chainId: topId, parent: baseId, blobPath: t.blobPath, mediaType: t.mediaType, diffId: t.diffId, parentPending: baseDone });
    // the child extracts while the parent has not even started, and is not visible yet
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(e.snap.has(topId), false, "nothing is committed before the parent is");
    assert.equal(e.snap.list().some((s) => s.key === topId), false);
    assert.deepEqual(await e.snap.usage(), { bytes: 0n, inodes: 0n }, "a layer being extracted counts once it is committed");
    releaseParent();
    await Promise.all([baseDone, top]);
    assert.ok(e.snap.has(topId));
    assert.ok((await e.snap.usage()).inodes >= 5n, "committed layers count");
    assert.equal(e.snap.list().find((s) => s.key === topId)?.parent, baseId);
    const diff = fsOf(e, topId);
    assert.equal(lstatSync(join(diff, "tmp")).mode & 0o7777, 0o1777, "an implied directory copies the lower one's mode");
    assert.equal(lstatSync(join(diff, "opt")).mode & 0o7777, 0o700, "an explicit directory keeps its own mode");
  });

  test("a child whose parent fails commits nothing and leaves no directory", async () => {
    const e = await env();
    const t = writeBlob(e.blobs, await buildTar([{ type: "file", path: "f", content: "x" }]));
    const parent = `sha256:${"e".repeat(64)}`;
    const topId = chainIds([parent, t.diffId])[1] as string;
    const before = snapshotDirs(e);
    const failed = Promise.reject(new Error("parent download failed"));
    failed.catch(() => undefined);
    await assert.rejects(
      e.snap.applyLayer({ chainId: topId, parent, blobPath: t.blobPath, mediaType: t.mediaType, diffId: t.diffId, parentPending: failed }),
      (err: unknown) => err instanceof FailedPreconditionError && /was not committed/.test((err as Error).message),
    );
    assert.equal(e.snap.has(topId), false);
    assert.deepEqual(snapshotDirs(e), before);
  });
});
