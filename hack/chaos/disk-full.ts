// Fault 3 (part): the root filesystem full. berthd's root dir is a small
// tmpfs (a size-limited filesystem of the harness's own, under its temp dir):
// pulls fail while the download or the unpack runs out of space, and
// CreateContainer fails while a filler file takes the last bytes. Each must be
// a clear error (never INTERNAL/UNKNOWN), leave no image or container visible,
// and succeed once there is room again (the tmpfs grown, the filler removed).

import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Daemon } from "../../test-e2e/harness/daemon.js";
import { makeDirs, removeDirs, startChaosDaemon, type World } from "./env.js";
import { codeName, grpcCode } from "./kill-loop.js";
import { formatLeaks, leakCount, scanLeaks } from "./leaks.js";

export interface DiskFullReport {
  outcomes: Record<string, string>;
  failures: string[];
}

function mountTmpfs(dir: string, size: string): void {
  mkdirSync(dir, { recursive: true });
  const r = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0711`, "berth-chaos-root", dir], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`mount tmpfs on ${dir}: ${r.stderr}`);
}

function resize(dir: string, size: string): void {
  const r = spawnSync("mount", ["-o", `remount,size=${size}`, dir], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`remount ${dir}: ${r.stderr}`);
}

export async function runDiskFull(world: World, log: (l: string) => void): Promise<DiskFullReport> {
  const rep: DiskFullReport = { outcomes: {}, failures: [] };
  const dirs = makeDirs();
  let d: Daemon | undefined;
  const clean = (e: unknown): string => ((e as { details?: string }).details ?? (e as Error).message).slice(0, 200);
  try {
    mountTmpfs(dirs.root, "64m");
    d = await startChaosDaemon(world, { dirs });
    const img = world.images["busybox:latest"];
    const bb = img.ref;
    const visible = async (): Promise<boolean> => (await d?.client.image.listImages({}))?.images.some((i) => i.id === img.configDigest) ?? false;
    for (const [label, free] of [
      ["pull, download runs out of space", 400 * 1024],
      ["pull, unpack runs out of space", 1700 * 1024],
    ] as const) {
      const used = (() => {
        const s = statfsSync(dirs.root);
        return (s.blocks - s.bfree) * s.bsize;
      })();
      resize(dirs.root, `${Math.ceil((used + free) / 4096) * 4}k`);
      try {
        await d.client.image.pullImage({ image: { image: bb } }, { timeoutMs: 60_000 });
        rep.outcomes[label] = "ok (it fit)";
      } catch (err) {
        const code = grpcCode(err);
        rep.outcomes[label] = `${codeName(code)}: ${clean(err)}`;
        if (code === undefined || code === 2 || code === 13) rep.failures.push(`${label}: ${codeName(code)}: ${clean(err)}`);
        if (await visible()) rep.failures.push(`${label}: the image is listed after the failed pull`);
      }
      resize(dirs.root, "64m");
      try {
        const r = await d.client.image.pullImage({ image: { image: bb } }, { timeoutMs: 60_000 });
        if (r.imageRef !== img.configDigest) rep.failures.push(`${label}: the pull after making room gave ${r.imageRef}`);
      } catch (err) {
        rep.failures.push(`${label}: the pull after making room failed: ${codeName(grpcCode(err))}: ${clean(err)}`);
      }
      await d.client.image.removeImage({ image: { image: bb } });
    }

    // CreateContainer with the disk full.
    await d.client.image.pullImage({ image: { image: bb } });
    const logDirectory = join(dirs.base, "pod-logs", "full");
    mkdirSync(logDirectory, { recursive: true });
    const config = { metadata: { name: "full", namespace: "chaos", uid: "uid-full", attempt: 0 }, hostname: "full", logDirectory };
    const podId = (await d.client.runtime.runPodSandbox({ config })).podSandboxId;
    const filler = join(dirs.root, "filler");
    const s = statfsSync(dirs.root);
    try {
      writeFileSync(filler, Buffer.alloc(s.bavail * s.bsize));
    } catch {
      /* filled to the last byte */
    }
    const cconf = { metadata: { name: "c", attempt: 0 }, image: { image: bb }, command: ["sleep", "600"], logPath: "c.log" };
    try {
      const r = await d.client.runtime.createContainer({ podSandboxId: podId, config: cconf, sandboxConfig: config });
      rep.outcomes["create, disk full"] = "ok (nothing needed space)";
      await d.client.runtime.removeContainer({ containerId: r.containerId });
    } catch (err) {
      const code = grpcCode(err);
      rep.outcomes["create, disk full"] = `${codeName(code)}: ${clean(err)}`;
      if (code === undefined || code === 2 || code === 13) rep.failures.push(`create with the disk full: ${codeName(code)}: ${clean(err)}`);
      const left = (await d.client.runtime.listContainers({})).containers;
      if (left.length) rep.failures.push(`create with the disk full left ${left.length} containers listed`);
    }
    rmSync(filler, { force: true });
    try {
      const id = (await d.client.runtime.createContainer({ podSandboxId: podId, config: cconf, sandboxConfig: config })).containerId;
      await d.client.runtime.startContainer({ containerId: id });
      rep.outcomes["create after making room"] = "runs";
    } catch (err) {
      rep.failures.push(`create after making room failed: ${codeName(grpcCode(err))}: ${clean(err)}`);
    }
    await d.client.runtime.stopPodSandbox({ podSandboxId: podId });
    await d.client.runtime.removePodSandbox({ podSandboxId: podId });
    await d.client.image.removeImage({ image: { image: bb } });
    const leaks = scanLeaks(world, dirs);
    // The tmpfs itself is the harness's mount, not a leak.
    leaks["mount-other"] = leaks["mount-other"].filter((m) => !m.startsWith(`${dirs.root} `));
    if (leakCount(leaks) > 0) rep.failures.push(`disk full: leaks after removing everything: ${formatLeaks(leaks)}`);
    log(`  disk full: ${JSON.stringify(rep.outcomes)}`);
  } catch (err) {
    rep.failures.push(`disk full: harness error: ${(err as Error).stack ?? String(err)}`);
  } finally {
    if (d) await d.stop().catch(() => undefined);
    removeDirs(dirs);
  }
  return rep;
}
