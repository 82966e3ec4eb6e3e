// Interoperability: layers written by GNU tar (POSIX/PAX and GNU formats)
// apply to the same tree the archive was made from.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chownSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { setRootLogger } from "../log/index.js";
import { MetadataStore } from "../store/index.js";
import { S_IFCHR, S_IFIFO, lgetxattr, llistxattr, lsetxattr, makedev, mknod } from "../sys/index.js";
import { Snapshotter } from "./index.js";
import { tempDir, writeBlob } from "./testing.js";

setRootLogger({ level: "silent" });
const dir = tempDir("gnutar");
after(() => rmSync(dir, { recursive: true, force: true }));

function makeSource(src: string): void {
  mkdirSync(src);
  const long = join(src, "l".repeat(60), "o".repeat(60), "n".repeat(60));
  mkdirSync(long, { recursive: true });
  writeFileSync(join(long, `${"f".repeat(90)}.txt`), "deep\n");
  mkdirSync(join(src, "home/user"), { recursive: true });
  writeFileSync(join(src, "home/user/secret"), "s3cret\n");
  chmodSync(join(src, "home/user/secret"), 0o600);
  chownSync(join(src, "home/user/secret"), 1000, 1000);
  chownSync(join(src, "home/user"), 1000, 1000);
  chmodSync(join(src, "home/user"), 0o750);
  mkdirSync(join(src, "bin"));
  writeFileSync(join(src, "bin/prog"), Buffer.alloc(70_000, 1));
  chmodSync(join(src, "bin/prog"), 0o4755);
  linkSync(join(src, "bin/prog"), join(src, "bin/prog-hardlink"));
  symlinkSync(`/${"t".repeat(150)}/target`, join(src, "bin/long-symlink"));
  symlinkSync("prog", join(src, "bin/short-symlink"));
  lchownSync(join(src, "bin/short-symlink"), 5, 6);
  lsetxattr(join(src, "bin/prog"), "user.origin", Buffer.from("gnu tar"));
  lsetxattr(join(src, "bin/prog"), "trusted.blob", Buffer.from([0, 1, 2, 250, 251]));
  mkdirSync(join(src, "dev"));
  mknod(join(src, "dev/null"), S_IFCHR | 0o666, makedev(1, 3));
  mknod(join(src, "dev/fifo"), S_IFIFO | 0o620, 0n);
  mkdirSync(join(src, "tmp"));
  chmodSync(join(src, "tmp"), 0o1777);
  const when = new Date("2022-02-02T02:02:02Z");
  const walk = (p: string): void => {
    const st = lstatSync(p);
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n));
    lutimesSync(p, when, when);
  };
  walk(src);
  utimesSync(src, when, when);
}

interface Node {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  rdev: number;
  content?: string;
  link?: string;
  xattrs: Record<string, string>;
  inodeGroup?: string;
}

function describeTree(root: string): Record<string, Node> {
  const out: Record<string, Node> = {};
  const inodes = new Map<number, string>();
  const walk = (rel: string): void => {
    const p = rel === "" ? root : join(root, rel);
    const st = lstatSync(p);
    if (rel !== "") {
      const type = st.isDirectory() ? "dir" : st.isFile() ? "file" : st.isSymbolicLink() ? "symlink" : st.isCharacterDevice() ? "char" : st.isFIFO() ? "fifo" : "other";
      const xattrs: Record<string, string> = {};
      for (const n of llistxattr(p)) xattrs[n] = lgetxattr(p, n)?.toString("hex") ?? "";
      const node: Node = { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000), rdev: st.rdev, xattrs };
      if (type === "symlink") {
        node.link = readlinkSync(p);
        node.mode = 0; // symlink modes are not meaningful on Linux
      }
      if (type === "file") {
        node.content = createHash("sha256").update(readFileSync(p)).digest("hex");
        if (st.nlink > 1) {
          const first = inodes.get(st.ino) ?? rel;
          inodes.set(st.ino, first);
          node.inodeGroup = first;
        }
      }
      out[rel] = node;
    }
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) walk(rel === "" ? n : `${rel}/${n}`);
  };
  walk("");
  return out;
}

for (const format of ["posix", "gnu"] as const) {
  test(`a layer written by GNU tar (--format=${format}) applies to the same tree`, async () => {
    const base = join(dir, format);
    mkdirSync(base);
    const src = join(base, "src");
    makeSource(src);
    const xattrFlags = format === "posix" ? ["--xattrs", "--xattrs-include=*"] : [];
    const r = spawnSync("tar", ["-C", src, `--format=${format}`, "--numeric-owner", ...xattrFlags, "-cf", "-", "."], { maxBuffer: 1 << 28 });
    assert.equal(r.status, 0, r.stderr.toString());
    const b = writeBlob(base, r.stdout, "gzip");
    const store = MetadataStore.open(join(base, "metadata.db"));
    const snap = await Snapshotter.open({ root: join(base, "snapshots"), store, sync: false });
    try {
      await snap.applyLayer({ chainId: b.diffId, parent: undefined, blobPath: b.blobPath, mediaType: b.mediaType, diffId: b.diffId });
      const info = snap.list()[0];
      const applied = describeTree(join(base, "snapshots", String(info?.id), "fs"));
      const want = describeTree(src);
      if (format === "gnu") for (const n of Object.values(want)) n.xattrs = {}; // the GNU format has no xattrs
      assert.ok(Object.keys(want).length >= 14 && want["bin/prog"]?.inodeGroup !== undefined);
      if (format === "posix") assert.equal(want["bin/prog"]?.xattrs["user.origin"], Buffer.from("gnu tar").toString("hex"));
      assert.deepEqual(applied, want);
    } finally {
      snap.close();
      store.close();
    }
  });
}
