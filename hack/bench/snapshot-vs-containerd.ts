// Layer unpack: berth's snapshotter against containerd's overlayfs snapshotter
// on the same single-layer images (a private containerd is started on a temp
// root and stopped at the end).
//
//   node dist/hack/bench/snapshot-vs-containerd.js [--mb 256] [--small 20000]
//
// containerd is timed with `ctr images mount` (unpack + mount; the content is
// imported beforehand with --no-unpack); berth with Snapshotter.applyLayer
// (sync off and on) followed by prepare + mountAll.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { OciLayout, buildImage, buildTar, deterministicBytes, type LayerEntry } from "../images/index.js";
import { setRootLogger } from "../../pkg/log/index.js";
import { Snapshotter, mountAll, unmountAll } from "../../pkg/snapshot/index.js";
import { tempDir } from "../../pkg/snapshot/testing.js";
import { MetadataStore } from "../../pkg/store/index.js";

const { values } = parseArgs({ options: { mb: { type: "string", default: "256" }, small: { type: "string", default: "20000" } } });
setRootLogger({ level: "silent" });
const dir = tempDir("vs-ctrd");

function bigEntries(): LayerEntry[] {
  const entries: LayerEntry[] = [{ type: "dir", path: "big" }];
  for (let i = 0; i < Number(values.mb) / 8; i++) entries.push({ type: "file", path: `big/f${i}`, content: deterministicBytes(`vs-${i}`, 8 << 20) });
  return entries;
}

function smallEntries(): LayerEntry[] {
  const entries: LayerEntry[] = [{ type: "dir", path: "usr" }, { type: "dir", path: "usr/share" }];
  for (let d = 0; d < 200; d++) entries.push({ type: "dir", path: `usr/share/d${d}` });
  for (let i = 0; i < Number(values.small); i++) {
    const size = 200 + ((i * 7919) % 12000);
    entries.push({ type: "file", path: `usr/share/d${i % 200}/file-${i}.txt`, content: Buffer.from(`line ${i} `.repeat(Math.ceil(size / 8))).subarray(0, size) });
  }
  return entries;
}

function ctr(sock: string, args: string[]): { secs: number } {
  const t0 = performance.now();
  const r = spawnSync("ctr", ["-a", sock, "-n", "bench", ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ctr ${args.join(" ")}: ${r.stderr}`);
  return { secs: (performance.now() - t0) / 1000 };
}

let containerd: ChildProcess | undefined;
try {
  const layout = await OciLayout.open(join(dir, "layout"));
  const shapes: Array<{ name: string; entries: LayerEntry[] }> = [
    { name: "big", entries: bigEntries() },
    { name: "small", entries: smallEntries() },
  ];
  const images = new Map<string, { blobPath: string; diffId: string; mediaType: string; tarBytes: number; entries: number }>();
  for (const s of shapes) {
    const tar = await buildTar(s.entries);
    const img = await buildImage(layout, { layers: [{ tar, compression: "gzip", gzipLevel: 1 }] });
    layout.tag(img.manifest, s.name);
    const l = img.layers[0];
    if (!l) throw new Error("no layer");
    images.set(s.name, { blobPath: layout.blobPath(l.digest), diffId: l.diffId, mediaType: l.mediaType, tarBytes: tar.length, entries: s.entries.length });
  }
  await layout.save();
  const archive = join(dir, "images.tar");
  spawnSync("tar", ["-C", join(dir, "layout"), "-cf", archive, "."]);

  // a private containerd
  const sock = join(dir, "ctrd.sock");
  const cfg = join(dir, "config.toml");
  writeFileSync(
    cfg,
    [
      "version = 2",
      `root = "${join(dir, "ctrd-root")}"`,
      `state = "${join(dir, "ctrd-state")}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      "[grpc]",
      `  address = "${sock}"`,
      "[ttrpc]",
      `  address = "${sock}.ttrpc"`,
      "",
    ].join("\n"),
  );
  containerd = spawn("containerd", ["--config", cfg], { stdio: "ignore" });
  for (let i = 0; i < 200 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
  ctr(sock, ["images", "import", "--no-unpack", "--base-name", "bench.local/img", archive]);

  console.log(`layer unpack, containerd ${spawnSync("containerd", ["--version"], { encoding: "utf8" }).stdout.trim().split(" ").at(-1)} vs berth (gzip, one layer)`);
  for (const [name, img] of images) {
    const target = join(dir, `mnt-ctrd-${name}`);
    mkdirSync(target);
    spawnSync("sync");
    const c = ctr(sock, ["images", "mount", "--snapshotter", "overlayfs", `bench.local/img:${name}`, target]);
    ctr(sock, ["images", "unmount", target]);

    const line: string[] = [];
    for (const sync of [false, true]) {
      const root = join(dir, `berth-${name}-${sync}`);
      const store = MetadataStore.open(join(root, "metadata.db"));
      const snap = await Snapshotter.open({ root: join(root, "snapshots"), store, sync });
      const t = join(root, "mnt");
      mkdirSync(t);
      spawnSync("sync");
      const t0 = performance.now();
      await snap.applyLayer({ chainId: img.diffId, parent: undefined, blobPath: img.blobPath, mediaType: img.mediaType, diffId: img.diffId });
      await mountAll(await snap.prepare("bench", img.diffId), t);
      const secs = (performance.now() - t0) / 1000;
      await unmountAll(t);
      snap.close();
      store.close();
      line.push(`berth (syncfs ${sync ? "on" : "off"}) ${secs.toFixed(2)} s ${(img.tarBytes / 1e6 / secs).toFixed(0)} MB/s`);
    }
    console.log(
      `${name.padEnd(6)} ${(img.tarBytes / 1e6).toFixed(0)} MB ${img.entries} entries: containerd ${c.secs.toFixed(2)} s ${(img.tarBytes / 1e6 / c.secs).toFixed(0)} MB/s | ${line.join(" | ")}`,
    );
  }
} finally {
  if (containerd?.pid !== undefined) {
    containerd.kill("SIGTERM");
    await new Promise((r) => containerd?.once("exit", r));
  }
  spawnSync("umount", ["-R", join(dir, "ctrd-state")], { stdio: "ignore" });
  rmSync(dir, { recursive: true, force: true });
}
