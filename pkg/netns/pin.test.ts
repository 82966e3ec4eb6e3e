import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readlinkSync, rmSync } from "node:fs";
import { hostname as osHostname, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { isMountPoint, unmountAll } from "../sys/index.js";
import { ensurePrivateDir, isPinned, pinNamespaces, unpinNamespaces } from "./pin.js";

// Root only: real namespaces, bind mounts and `nsenter` to look inside them.
const isRoot = process.getuid?.() === 0;

const KINDS = ["net", "uts", "ipc"] as const;

function own(kind: string): string {
  return readlinkSync(`/proc/thread-self/ns/${kind}`);
}

function inside(file: string, kind: string, argv: string[]): string {
  return execFileSync("/usr/bin/nsenter", [`--${kind}=${file}`, "--", ...argv], { encoding: "utf8" });
}

describe("pinNamespaces (in-process)", { skip: !isRoot && "needs root" }, () => {
  let root: string;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), "berth-pin-test-"));
    await ensurePrivateDir(root);
  });
  after(async () => {
    await unpinNamespaces(root);
    await unmountAll(root);
    rmSync(root, { recursive: true, force: true });
  });

  it("pins new net/uts/ipc namespaces with the hostname set and lo up, and leaves berthd's own alone", async () => {
    const before = Object.fromEntries(KINDS.map((k) => [k, own(k)]));
    const hostBefore = osHostname();
    const dir = join(root, "pod1");
    const files = await pinNamespaces(dir, KINDS, "pod-one");
    for (const k of KINDS) {
      const f = files[k];
      assert.ok(f && isPinned(f), `${k} is pinned`);
      assert.equal(own(k), before[k], `berthd's own ${k} namespace is unchanged`);
      // The pinned namespace is a new one: its inode differs from berthd's.
      const ino = execFileSync("/usr/bin/stat", ["-L", "-c", "%i", f], { encoding: "utf8" }).trim();
      assert.notEqual(`${k}:[${ino}]`, before[k]);
    }
    assert.equal(osHostname(), hostBefore, "the host's hostname is unchanged");
    assert.equal(inside(files.uts as string, "uts", ["/bin/hostname"]).trim(), "pod-one");
    const lo = inside(files.net as string, "net", ["/usr/sbin/ip", "-o", "link", "show", "lo"]);
    assert.match(lo, /<[^>]*\bUP\b[^>]*>/, `lo is up: ${lo}`);
    // A fresh network namespace: nothing but loopback.
    const links = inside(files.net as string, "net", ["/usr/sbin/ip", "-o", "link", "show"]).trim().split("\n");
    assert.equal(links.length, 1, links.join("\n"));
    await unpinNamespaces(dir);
    for (const k of KINDS) assert.ok(!existsSync(join(dir, k)));
  });

  it("ipc only (host network) pins just that", async () => {
    const dir = join(root, "pod2");
    const files = await pinNamespaces(dir, ["ipc"], "ignored");
    assert.ok(files.ipc && isPinned(files.ipc));
    assert.equal(files.net, undefined);
    assert.ok(!existsSync(join(dir, "net")));
    await unpinNamespaces(dir);
  });

  it("a failure (a hostname the kernel refuses) leaves nothing pinned and berthd where it was", async () => {
    const before = Object.fromEntries(KINDS.map((k) => [k, own(k)]));
    const dir = join(root, "pod3");
    await assert.rejects(pinNamespaces(dir, KINDS, "x".repeat(65)), /sethostname/);
    for (const k of KINDS) {
      assert.ok(!existsSync(join(dir, k)), `${k} pin file removed`);
      assert.ok(!isMountPoint(join(dir, k)), `${k} not mounted`);
      assert.equal(own(k), before[k], `berthd's own ${k} namespace is unchanged`);
    }
  });
});
