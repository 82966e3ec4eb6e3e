// Fault 2: registry faults through the fault-injecting proxy. For each kind: the
// image is absent, the fault hits every GET of its largest layer, and the pull
// must either succeed with the right digests or fail with a clear error
// (never INTERNAL/UNKNOWN, never a hang) leaving no image and no blob of the
// faulted digest visible. Then the fault clears and a retry must succeed; the
// blobs it did not fetch again are counted as reused.

import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Daemon } from "../../test-e2e/harness/daemon.js";
import { removeDirs, startChaosDaemon, type World } from "./env.js";
import { startFaultProxy, type FaultKind } from "./fault-proxy.js";
import { codeName, grpcCode } from "./kill-loop.js";
import { formatLeaks, leakCount, scanLeaks } from "./leaks.js";

export interface FaultOutcome {
  kind: FaultKind;
  /** "ok" or the gRPC code name of the failed pull. */
  firstPull: string;
  message: string;
  firstMs: number;
  /** Requests that got the fault. */
  faulted: number;
  retry: string;
  /** Blobs of the image the retry did not download again. */
  reusedBlobs: number;
  blobs: number;
  problems: string[];
}

export interface RegistryFaultsReport {
  outcomes: FaultOutcome[];
  failures: string[];
}

const STALL_TIMEOUT_S = 2;

async function manifestOf(regHost: string, repo: string, digest: string): Promise<{ config: string; layers: Array<{ digest: string; size: number }> }> {
  const res = await fetch(`http://${regHost}/v2/${repo}/manifests/${digest}`, {
    headers: { accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json" },
  });
  if (!res.ok) throw new Error(`GET manifest ${repo}@${digest}: HTTP ${res.status}`);
  const m = (await res.json()) as { config: { digest: string }; layers: Array<{ digest: string; size: number }> };
  return { config: m.config.digest, layers: m.layers };
}

export async function runRegistryFaults(world: World, kinds: readonly FaultKind[], log: (l: string) => void): Promise<RegistryFaultsReport> {
  const rep: RegistryFaultsReport = { outcomes: [], failures: [] };
  if (kinds.length === 0) return rep;
  const img = world.images["busybox:latest"];
  const man = await manifestOf(world.reg.host, img.name, img.manifestDigest);
  const target = [...man.layers].sort((a, b) => b.size - a.size)[0];
  if (!target) throw new Error("test image has no layers");
  const proxy = await startFaultProxy(world.reg, { stallMs: STALL_TIMEOUT_S * 1000 * 3, slowLorisMs: 15_000 });
  const ref = `${proxy.host}/${img.name}:${img.tag}`;
  let d: Daemon | undefined;
  try {
    d = await startChaosDaemon(world, { registryHosts: [world.reg.host, proxy.host], toml: `[image]\nstall_timeout_seconds = ${STALL_TIMEOUT_S}\n` });
    const blobPath = (dg: string): string => join(d?.dirs.root ?? "", "content", "blobs", "sha256", dg.replace(/^sha256:/, ""));
    for (const kind of kinds) {
      const o: FaultOutcome = { kind, firstPull: "", message: "", firstMs: 0, faulted: 0, retry: "", reusedBlobs: 0, blobs: man.layers.length + 1, problems: [] };
      const problem = (p: string): void => {
        o.problems.push(p);
        rep.failures.push(`registry fault ${kind}: ${p}`);
      };
      await d.client.image.removeImage({ image: { image: ref } });
      if (existsSync(blobPath(target.digest))) problem("the layer blob is still stored after RemoveImage and GC");
      proxy.resetStats();
      proxy.arm(kind, target.digest);
      const deadlineMs = kind === "slow-loris" ? 8_000 : 45_000;
      const t0 = Date.now();
      try {
        const r = await d.client.image.pullImage({ image: { image: ref } }, { timeoutMs: deadlineMs });
        o.firstPull = "ok";
        if (r.imageRef !== img.configDigest) problem(`pull succeeded with image id ${r.imageRef}, expected ${img.configDigest}`);
      } catch (err) {
        const code = grpcCode(err);
        o.firstPull = codeName(code);
        o.message = ((err as { details?: string }).details ?? (err as Error).message).slice(0, 300);
        if (code === undefined || code === 2 || code === 13) problem(`pull failed with ${codeName(code)}: ${o.message}`);
        if (code === 4 && Date.now() - t0 >= deadlineMs && kind !== "slow-loris") problem(`pull hung until the client's ${deadlineMs} ms deadline`);
        if (!o.message.trim()) problem("pull failed without a message");
        const listed = (await d.client.image.listImages({})).images.filter((i) => i.id === img.configDigest || i.repoTags.includes(ref));
        if (listed.length) problem("a failed pull left the image listed");
        const st = await d.client.image.imageStatus({ image: { image: ref } });
        if (st.image) problem("a failed pull left ImageStatus answering with the image");
        if (kind !== "slow-loris" && existsSync(blobPath(target.digest))) problem("the faulted blob is visible in the content store after the failed pull");
      }
      o.firstMs = Date.now() - t0;
      o.faulted = proxy.stats().faulted;
      proxy.clear();
      proxy.resetStats();
      try {
        const r = await d.client.image.pullImage({ image: { image: ref } }, { timeoutMs: 60_000 });
        o.retry = r.imageRef === img.configDigest ? "ok" : `wrong image id ${r.imageRef}`;
        if (r.imageRef !== img.configDigest) problem(`retry gave image id ${r.imageRef}`);
        const file = blobPath(target.digest);
        if (!existsSync(file)) problem("after the retry the layer blob is not stored");
        else if (`sha256:${createHash("sha256").update(readFileSync(file)).digest("hex")}` !== target.digest) problem("the stored layer blob does not match its digest");
      } catch (err) {
        o.retry = codeName(grpcCode(err));
        problem(`retry after the fault cleared failed: ${codeName(grpcCode(err))}: ${(err as Error).message}`);
      }
      const fetched = new Set(proxy.stats().requests.filter((r) => r.startsWith("GET ") && r.includes("/blobs/")).map((r) => r.slice(r.lastIndexOf("/") + 1)));
      o.reusedBlobs = [man.config, ...man.layers.map((l) => l.digest)].filter((dg) => !fetched.has(dg)).length;
      log(`  ${kind}: first pull ${o.firstPull}${o.message ? ` (${o.message.slice(0, 120)})` : ""} in ${o.firstMs} ms, ${o.faulted} faulted responses; retry ${o.retry}, ${o.reusedBlobs}/${o.blobs} blobs reused${o.problems.length ? `; PROBLEMS: ${o.problems.join("; ")}` : ""}`);
      rep.outcomes.push(o);
    }
    await d.client.image.removeImage({ image: { image: ref } });
    const leaks = scanLeaks(world, d.dirs);
    if (leakCount(leaks) > 0) rep.failures.push(`registry faults: leaks after removing the image: ${formatLeaks(leaks)}`);
  } catch (err) {
    rep.failures.push(`registry faults: harness error: ${(err as Error).stack ?? String(err)}`);
  } finally {
    if (d) {
      await d.stop().catch(() => undefined);
      removeDirs(d.dirs);
    }
    await proxy.close();
  }
  return rep;
}
