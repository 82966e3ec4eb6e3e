import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, removeDirs, type Daemon } from "./harness/daemon.js";
import { startRegistry, type Registry } from "./harness/registry.js";
import { ensureTestImages, type TestImages } from "./harness/images.js";
import { buildImage, OciLayout, pushFromLayout, type LayerEntry } from "../hack/images/index.js";
import { MetadataStore } from "../pkg/store/index.js";
import { Snapshotter, mountAll, unmountAll } from "../pkg/snapshot/index.js";

let reg: Registry;
let images: TestImages;
let d: Daemon;
const work = mkdtempSync(join(tmpdir(), "berth-rootfs-test-"));

before(async () => {
  reg = await startRegistry();
  images = await ensureTestImages(reg);
  d = await startDaemon({ configToml: `[image.registries."${reg.host}"]\nplain_http = true\n` });
});

after(async () => {
  await d?.stop();
  if (d) removeDirs(d.dirs);
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

async function chainIdOf(ref: string): Promise<string> {
  const s = await d.client.image.imageStatus({ image: { image: ref }, verbose: true });
  return (JSON.parse(s.info["info"] ?? "{}") as { chainID: string }).chainID;
}

/** Mounts an active snapshot on the image's top layer (the way a container rootfs is made) and runs fn on it. */
async function withRootfs(chainId: string, fn: (rootfs: string) => void): Promise<void> {
  // A second opener of the daemon's store: SQLite WAL allows it; the daemon is idle meanwhile.
  const meta = MetadataStore.open(join(d.dirs.root, "metadata.db"));
  const snaps = await Snapshotter.open({ root: join(d.dirs.root, "snapshots"), store: meta });
  const key = `test-${randomBytes(4).toString("hex")}`;
  const target = join(work, key);
  mkdirSync(target);
  try {
    const mounts = await snaps.prepare(key, chainId);
    await mountAll(mounts, target);
    try {
      fn(target);
    } finally {
      await unmountAll(target);
    }
  } finally {
    await snaps.remove(key).catch(() => undefined);
    snaps.close();
    meta.close();
  }
}

test("the whiteout image's rootfs shows the file deleted, the directory opaque, links intact", async () => {
  const img = images["whiteout:latest"];
  await d.client.image.pullImage({ image: { image: img.ref } });
  await withRootfs(await chainIdOf(img.ref), (root) => {
    assert.equal(readFileSync(join(root, "data/keep"), "utf8"), "keep\n");
    assert.equal(existsSync(join(root, "data/gone")), false, "whited-out file is gone");
    assert.deepEqual(readdirSync(join(root, "opq")).sort(), ["c"], "opaque dir hides the lower entries");
    assert.equal(statSync(join(root, "data/linked")).ino, statSync(join(root, "data/linked-hardlink")).ino);
    assert.ok(lstatSync(join(root, "data/keep-symlink")).isSymbolicLink());
    assert.ok(existsSync(join(root, "bin/busybox")));
    assert.equal(readdirSync(root).some((n) => n.startsWith(".wh.")), false);
  });
});

test("hostile layers write or link nothing outside the snapshot", async () => {
  const tag = randomBytes(4).toString("hex");
  const escape = `berth-escape-${tag}`;
  const shadow = statSync("/etc/shadow");
  const hostile: Record<string, LayerEntry[]> = {
    dotdot: [{ type: "raw", header: { name: `../../${escape}-dotdot`, type: "file", mode: 0o644 }, content: "x" }],
    absolute: [{ type: "raw", header: { name: `/tmp/${escape}-abs`, type: "file", mode: 0o644 }, content: "x" }],
    symlink: [
      { type: "raw", header: { name: "evil", type: "symlink", linkname: "/" } },
      { type: "raw", header: { name: `evil/tmp/${escape}-via-symlink`, type: "file", mode: 0o644 }, content: "x" },
    ],
    symlinkDir: [
      { type: "raw", header: { name: "up", type: "symlink", linkname: "../../../../../../../../tmp" } },
      { type: "raw", header: { name: `up/${escape}-via-relative-symlink`, type: "file", mode: 0o644 }, content: "x" },
    ],
    hardlink: [{ type: "raw", header: { name: "shadow-link", type: "link", linkname: "../../../../../../../../etc/shadow" } }],
    hardlinkAbs: [{ type: "raw", header: { name: "shadow-link", type: "link", linkname: "/etc/shadow" } }],
  };
  const layoutDir = join(work, "hostile-layout");
  const layout = await OciLayout.open(layoutDir);
  const outcomes: Record<string, string> = {};
  for (const [name, entries] of Object.entries(hostile)) {
    const built = await buildImage(layout, { layers: [{ entries: [{ type: "dir", path: "tmp" }, { type: "dir", path: "etc" }, ...entries] }], config: { Cmd: ["sh"] } });
    layout.tag(built.manifest, name);
    await layout.save();
    await pushFromLayout(layoutDir, name, reg.host, "hostile", name);
    try {
      await d.client.image.pullImage({ image: { image: `${reg.host}/hostile:${name}` } });
      outcomes[name] = "pulled";
    } catch (err) {
      outcomes[name] = `refused: ${String(err)}`;
    }
  }
  const snapRoot = join(d.dirs.root, "snapshots");
  for (const p of [`/${escape}-dotdot`, `/tmp/${escape}-abs`, `/tmp/${escape}-via-symlink`, `/tmp/${escape}-via-relative-symlink`, join(d.dirs.root, `${escape}-dotdot`), join(snapRoot, `${escape}-dotdot`), join(d.dirs.base, `${escape}-dotdot`)]) {
    assert.equal(existsSync(p), false, `${p} must not exist (outcomes: ${JSON.stringify(outcomes)})`);
  }
  const after = statSync("/etc/shadow");
  assert.equal(after.nlink, shadow.nlink, "/etc/shadow gained no hard link");
  assert.match(outcomes["hardlink"] ?? "", /refused/, `a hard link out of the snapshot is an error: ${JSON.stringify(outcomes)}\n${d.output().split("\n").filter((l) => /hostile/.test(l)).slice(-20).join("\n")}`);
  assert.match(outcomes["hardlinkAbs"] ?? "", /refused/, "a hard link to a missing in-snapshot target is an error");
});
