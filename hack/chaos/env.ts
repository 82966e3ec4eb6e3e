// The chaos harness's world: one test registry with the standard images, a
// private CNI network with a unique network name (so its iptables rules can be
// told apart from other runs on this machine), and berthd daemons on temp dirs.
// Everything comes from the e2e harness (test-e2e/harness); nothing here is a
// second copy of it.

import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { makeDirs, removeDirs as removeHarnessDirs, startDaemon, type Daemon, type DaemonDirs } from "../../test-e2e/harness/daemon.js";
import { makeTestNetwork, mountsUnder, type TestNetwork } from "../../test-e2e/harness/cni-net.js";
import { startRegistry, type Registry } from "../../test-e2e/harness/registry.js";
import { ensureTestImages, type TestImages } from "../../test-e2e/harness/images.js";

export interface World {
  work: string;
  reg: Registry;
  images: TestImages;
  net: TestNetwork;
  /** The CNI network name, unique to this run (appears in portmap's iptables comments). */
  netName: string;
  close(): Promise<void>;
}

export async function makeWorld(): Promise<World> {
  const work = mkdtempSync(join(tmpdir(), "berth-chaos-"));
  const reg = await startRegistry();
  try {
    const images = await ensureTestImages(reg);
    const net = makeTestNetwork(work);
    const netName = `berth-chaos-${randomBytes(4).toString("hex")}`;
    return {
      work,
      reg,
      images,
      net,
      netName,
      async close() {
        net.cleanup();
        await reg.stop();
        rmSync(work, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await reg.stop();
    rmSync(work, { recursive: true, force: true });
    throw err;
  }
}

export { makeDirs };

export interface DaemonHandle {
  d: Daemon;
  dirs: DaemonDirs;
}

/** berthd config for the harness: plain HTTP to the given registries, GC only on demand. */
export function chaosToml(registryHosts: string[], extra = ""): string {
  const regs = registryHosts.map((h) => `[image.registries."${h}"]\nplain_http = true\n`).join("");
  return `${extra}\n[stats]\ncollect_interval_seconds = 3600\n${regs}`;
}

/** Starts berthd on fresh dirs (or `dirs` to restart on the state of a killed one). */
export async function startChaosDaemon(
  world: World,
  opts: { dirs?: DaemonDirs; toml?: string; registryHosts?: string[]; extraPlugins?: Array<Record<string, unknown>> } = {},
): Promise<Daemon> {
  const dirs = opts.dirs ?? makeDirs();
  if (!existsSync(join(dirs.cniConfDir, "10-berth-chaos.conflist"))) {
    const doc = world.net.conflist(opts.extraPlugins ?? []);
    doc["name"] = world.netName;
    writeFileSync(join(dirs.cniConfDir, "10-berth-chaos.conflist"), JSON.stringify(doc));
  }
  return startDaemon({
    dirs,
    logLevel: "info",
    startTimeoutMs: 60_000,
    configToml: chaosToml(opts.registryHosts ?? [world.reg.host], opts.toml),
  });
}

/**
 * Removes a stopped daemon's temp dirs, after detaching whatever is still mounted under them
 * (a leak the caller has already counted): a recursive remove must never walk into a mount.
 * Returns the mounts it had to detach.
 */
export function removeDirs(dirs: DaemonDirs): string[] {
  const mounts = mountsUnder(dirs.base).sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync("umount", ["-l", m], { stdio: "ignore", timeout: 10_000 });
  const still = mountsUnder(dirs.base);
  if (still.length > 0) throw new Error(`cannot remove ${dirs.base}: still mounted: ${still.join(", ")}`);
  removeHarnessDirs(dirs);
  return mounts;
}
