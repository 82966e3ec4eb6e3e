import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { OciLayout, buildStandardImages, buildTar, deterministicBytes, type BuiltImage, type LayerEntry } from "../../hack/images/index.js";
import { setRootLogger } from "../log/index.js";
import { MetadataStore } from "../store/index.js";
import { Snapshotter, chainIds, mountAll, unmountAll } from "./index.js";
import { tempDir, writeBlob } from "./testing.js";

setRootLogger({ level: "silent" });

let dir: string;
let big: { blobPath: string; diffId: string; mediaType: string; tarBytes: number };
let bigTar: { blobPath: string; diffId: string; mediaType: string };

before(async () => {
  dir = tempDir("big");
  mkdirSync(join(dir, "blobs"));
  const entries: LayerEntry[] = [{ type: "dir", path: "big" }];
  for (let i = 0; i < 160; i++) entries.push({ type: "file", path: `big/f${i}`, content: deterministicBytes(`snap-${i}`, 1 << 20) });
  for (let i = 0; i < 2000; i++) entries.push({ type: "file", path: `small/d${i % 50}/f${i}`, content: `small ${i}\n` });
  const tar = await buildTar(entries);
  big = { ...writeBlob(join(dir, "blobs"), tar, "gzip"), tarBytes: tar.length };
  bigTar = writeBlob(join(dir, "blobs"), tar, "none");
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test("the event loop stays responsive while a big layer is applied", async (t) => {
  const root = join(dir, "lag");
  const store = MetadataStore.open(join(root, "metadata.db"));
  const snap = await Snapshotter.open({ root: join(root, "snapshots"), store });
  let maxLag = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    maxLag = Math.max(maxLag, now - last - 5);
    last = now;
  }, 5);
  const started = performance.now();
  try {
    const { size } = await snap.applyLayer({ chainId: big.diffId, parent: undefined, blobPath: big.blobPath, mediaType: big.mediaType, diffId: big.diffId });
    const secs = (performance.now() - started) / 1000;
    assert.ok(size >= 160 << 20);
    t.diagnostic(`applied ${(big.tarBytes / 1e6).toFixed(0)} MB gzip layer (2161 files) in ${secs.toFixed(2)} s = ${(big.tarBytes / 1e6 / secs).toFixed(0)} MB/s incl. syncfs; max event-loop lag ${maxLag.toFixed(1)} ms`);
  } finally {
    clearInterval(timer);
    snap.close();
    store.close();
  }
});

test("kill -9 in the middle of an apply leaves garbage that the next open removes", async () => {
  const root = join(dir, "crash");
  const snapRoot = join(root, "snapshots");
  const db = join(root, "metadata.db");
  mkdirSync(root, { recursive: true });
  const childJs = fileURLToPath(new URL("./testing-apply-child.js", import.meta.url));
  const child = spawn(process.execPath, [childJs, snapRoot, db, bigTar.blobPath, bigTar.mediaType, bigTar.diffId], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code, signal) => resolve(signal === null ? code : -1)));
  // kill once the extraction has written part of the layer
  let killed = false;
  for (let i = 0; i < 3000 && !killed; i++) {
    await new Promise((r) => setTimeout(r, 5));
    for (const id of existsSync(snapRoot) ? readdirSync(snapRoot) : []) {
      const bigDir = join(snapRoot, id, "fs", "big");
      if (existsSync(bigDir) && readdirSync(bigDir).length >= 3) {
        child.kill("SIGKILL");
        killed = true;
        break;
      }
    }
  }
  assert.ok(killed, "the apply was caught in progress");
  assert.equal(await exited, -1);

  const peek = MetadataStore.open(db);
  const rows = peek.db.prepare("SELECT id, kind FROM snapshots").all() as Array<{ id: number; kind: string }>;
  assert.deepEqual(rows.map((r) => r.kind), ["extracting"], "the crash left an unfinished apply");
  const leftover = join(snapRoot, String(rows[0]?.id));
  assert.ok(existsSync(leftover));
  peek.close();

  const store = MetadataStore.open(db);
  const snap = await Snapshotter.open({ root: snapRoot, store, sync: false });
  try {
    assert.deepEqual(snap.list(), []);
    assert.equal(existsSync(leftover), false, "the partial extraction is removed at open");
    assert.deepEqual(readdirSync(snapRoot), []);
    await snap.applyLayer({ chainId: bigTar.diffId, parent: undefined, blobPath: bigTar.blobPath, mediaType: bigTar.mediaType, diffId: bigTar.diffId });
    assert.equal(snap.has(bigTar.diffId), true);
  } finally {
    snap.close();
    store.close();
  }
});

test("a standard test image (whiteouts, hard links, symlinks) applies and mounts", async () => {
  const out = join(dir, "images");
  const images = await buildStandardImages(out, { cacheDir: join(dir, "cache"), only: ["whiteout"] });
  const img = images.get("whiteout:latest");
  assert.ok(img && img.built.kind === "image");
  const built = img.built as BuiltImage;
  const layout = await OciLayout.read(img.layoutDir);
  const root = join(dir, "image");
  const store = MetadataStore.open(join(root, "metadata.db"));
  const snap = await Snapshotter.open({ root: join(root, "snapshots"), store, sync: false });
  const target = join(root, "rootfs");
  mkdirSync(target);
  try {
    const chain = chainIds(built.layers.map((l) => l.diffId));
    for (const [i, l] of built.layers.entries()) {
      await snap.applyLayer({ chainId: chain[i] as string, parent: chain[i - 1], blobPath: layout.blobPath(l.digest), mediaType: l.mediaType, diffId: l.diffId, layerDigest: l.digest });
    }
    await mountAll(await snap.prepare("c", chain.at(-1)), target);
    assert.deepEqual(readdirSync(join(target, "data")).sort(), ["abs-symlink", "keep", "keep-symlink", "linked", "linked-hardlink"]);
    assert.deepEqual(readdirSync(join(target, "opq")), ["c"]);
    assert.equal(statSync(join(target, "data/linked")).ino, statSync(join(target, "data/linked-hardlink")).ino);
    assert.equal(readlinkSync(join(target, "data/keep-symlink")), "keep");
    assert.equal(readFileSync(join(target, "data/keep"), "utf8"), "keep\n");
    assert.ok(existsSync(join(target, "bin/sh")) || existsSync(join(target, "bin/busybox")));
  } finally {
    await unmountAll(target);
    snap.close();
    store.close();
  }
});
