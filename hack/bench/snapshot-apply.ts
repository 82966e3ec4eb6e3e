// Layer apply throughput of the snapshotter, against GNU tar as a baseline.
//
//   node dist/hack/bench/snapshot-apply.js [--mb 256] [--small 20000] [--no-sync] [--dir /dev/shm]
//
// --dir picks the filesystem the snapshots go to (default: the temp dir); on a
// slow or shared disk, file creation dominates and tmpfs shows the CPU cost.
//
// Prints, per layer shape and compression: MB/s of uncompressed tar, entries/s,
// and the largest event-loop delay seen while the apply ran (the work is in a
// worker thread, so this stays low).

import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildTar, deterministicBytes, type LayerEntry } from "../images/index.js";
import { setRootLogger } from "../../pkg/log/index.js";
import { Snapshotter } from "../../pkg/snapshot/index.js";
import { tempDir, writeBlob, type Compress } from "../../pkg/snapshot/testing.js";
import { MetadataStore } from "../../pkg/store/index.js";

const { values } = parseArgs({
  options: {
    mb: { type: "string", default: "256" },
    small: { type: "string", default: "20000" },
    "no-sync": { type: "boolean", default: false },
    dir: { type: "string" },
  },
});
const mb = Number(values.mb);
const smallCount = Number(values.small);
const sync = !values["no-sync"];
setRootLogger({ level: "silent" });

const dir = values.dir === undefined ? tempDir("bench") : mkdtempSync(join(values.dir, "berth-snap-bench-"));
const blobs = join(dir, "blobs");
mkdirSync(blobs);

function bigEntries(): LayerEntry[] {
  const entries: LayerEntry[] = [{ type: "dir", path: "big" }];
  for (let i = 0; i < mb / 8; i++) entries.push({ type: "file", path: `big/f${i}`, content: deterministicBytes(`bench-${i}`, 8 << 20) });
  return entries;
}

function smallEntries(): LayerEntry[] {
  const entries: LayerEntry[] = [];
  for (let d = 0; d < 200; d++) entries.push({ type: "dir", path: `usr/share/d${d}` });
  for (let i = 0; i < smallCount; i++) {
    const size = 200 + ((i * 7919) % 12000);
    // text-like content: compressible, as most small files of an image are
    const text = Buffer.from(`line ${i} `.repeat(Math.ceil(size / 8))).subarray(0, size);
    entries.push({ type: "file", path: `usr/share/d${i % 200}/file-${i}.txt`, content: text });
    if (i % 10 === 0) entries.push({ type: "symlink", path: `usr/share/d${i % 200}/link-${i}`, target: `file-${i}.txt` });
  }
  return [{ type: "dir", path: "usr" }, { type: "dir", path: "usr/share" }, ...entries];
}

async function applyOnce(tar: Buffer, how: Compress, entries: number): Promise<string> {
  const b = writeBlob(blobs, tar, how);
  const root = join(dir, `run-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  const store = MetadataStore.open(join(root, "metadata.db"));
  const snap = await Snapshotter.open({ root: join(root, "snapshots"), store, sync });
  spawnSync("sync"); // start each run without the previous one's writeback
  let maxLag = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    maxLag = Math.max(maxLag, now - last - 2);
    last = now;
  }, 2);
  const t0 = performance.now();
  const elu0 = performance.eventLoopUtilization();
  await snap.applyLayer({ chainId: b.diffId, parent: undefined, blobPath: b.blobPath, mediaType: b.mediaType, diffId: b.diffId });
  const secs = (performance.now() - t0) / 1000;
  const elu = performance.eventLoopUtilization(elu0);
  clearInterval(timer);
  snap.close();
  store.close();

  // baseline: GNU tar (native, single process) on the same blob
  const out = join(root, "tar-baseline");
  mkdirSync(out);
  const flag = how === "gzip" ? ["-z"] : how === "zstd" ? ["--zstd"] : [];
  spawnSync("sync");
  const t1 = performance.now();
  const r = spawnSync("tar", ["-x", ...flag, "-f", b.blobPath, "-C", out, "--same-owner", "-p", "--xattrs"]);
  if (sync) spawnSync("sync", ["-f", out]);
  const tarSecs = (performance.now() - t1) / 1000;
  rmSync(root, { recursive: true, force: true });
  const mbs = tar.length / 1e6 / secs;
  return `${(tar.length / 1e6).toFixed(0).padStart(5)} MB ${String(entries).padStart(6)} entries  ${how.padEnd(5)} berth ${secs.toFixed(2).padStart(6)} s ${mbs.toFixed(0).padStart(5)} MB/s ${(entries / secs).toFixed(0).padStart(7)} entries/s  lag max ${maxLag.toFixed(1).padStart(5)} ms, main thread busy ${(elu.utilization * 100).toFixed(1).padStart(4)}% | GNU tar ${r.status === 0 ? `${tarSecs.toFixed(2)} s ${(tar.length / 1e6 / tarSecs).toFixed(0)} MB/s` : "failed"}`;
}

try {
  console.log(`snapshot apply benchmark in ${dir} (syncfs ${sync ? "on" : "off"}; one apply at a time)`);
  {
    let idleLag = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      idleLag = Math.max(idleLag, now - last - 2);
      last = now;
    }, 2);
    await new Promise((r) => setTimeout(r, 2000));
    clearInterval(timer);
    console.log(`event-loop lag max with nothing running: ${idleLag.toFixed(1)} ms (CPU contention from other processes)`);
  }
  const big = bigEntries();
  const bigTar = await buildTar(big);
  for (const how of ["none", "gzip", "zstd"] as const) console.log(`big files    ${await applyOnce(bigTar, how, big.length)}`);
  const small = smallEntries();
  const smallTar = await buildTar(small);
  for (const how of ["none", "gzip", "zstd"] as const) console.log(`small files  ${await applyOnce(smallTar, how, small.length)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
