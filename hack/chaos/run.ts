// Runs the harness's parts in order on one registry and one CNI network, each
// part on its own daemon and temp dirs, and gathers their figures.

import { makeWorld } from "./env.js";
import type { FaultKind } from "./fault-proxy.js";
import { runFuzz, type FuzzReport } from "./fuzz.js";
import { runKillLoop, type KillLoopReport } from "./kill-loop.js";
import { runRegistryFaults, type RegistryFaultsReport } from "./registry-faults.js";
import { runRetries, type RetryReport } from "./retry.js";
import { runRuntimeFaults, type RuntimeFaultsReport } from "./runtime-faults.js";
import { runFdExhaustion, type FdExhaustionReport } from "./fd-exhaustion.js";
import { runStreamFuzz, type StreamFuzzReport } from "./stream-fuzz.js";
import { runDiskFull, type DiskFullReport } from "./disk-full.js";

export interface ChaosOptions {
  kills: number;
  fuzzCases: number;
  retries: number;
  faults: FaultKind[];
  /** Resource faults: a runc that fails create or start, the root filesystem full. */
  exhaustion: boolean;
  seed: number;
  budgetMs: number;
  cleanupEvery: number;
  concurrency: number;
  log: (line: string) => void;
}

export interface ChaosReport {
  seed: number;
  durationMs: number;
  killLoop?: KillLoopReport;
  registryFaults?: RegistryFaultsReport;
  fuzz?: FuzzReport;
  retries?: RetryReport;
  runtimeFaults?: RuntimeFaultsReport;
  fdExhaustion?: FdExhaustionReport;
  streamFuzz?: StreamFuzzReport;
  diskFull?: DiskFullReport;
  failures: string[];
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const t0 = Date.now();
  const rep: ChaosReport = { seed: opts.seed, durationMs: 0, failures: [] };
  opts.log(`berth chaos: seed ${opts.seed}, ${opts.kills} kills, ${opts.fuzzCases} fuzz cases, ${opts.retries} retry rounds, faults: ${opts.faults.join(",") || "none"}`);
  const world = await makeWorld();
  try {
    if (opts.kills > 0) {
      opts.log("== kill -9 under a mixed workload");
      rep.killLoop = await runKillLoop(world, { kills: opts.kills, seed: opts.seed, cleanupEvery: opts.cleanupEvery, concurrency: opts.concurrency, budgetMs: opts.budgetMs, log: opts.log });
      rep.failures.push(...rep.killLoop.failures);
    }
    if (opts.faults.length > 0) {
      opts.log("== registry faults");
      rep.registryFaults = await runRegistryFaults(world, opts.faults, opts.log);
      rep.failures.push(...rep.registryFaults.failures);
    }
    if (opts.fuzzCases > 0) {
      opts.log("== hostile CRI input");
      rep.fuzz = await runFuzz(world, { cases: opts.fuzzCases, seed: opts.seed, log: opts.log });
      rep.failures.push(...rep.fuzz.failures);
      opts.log("== hostile streaming use (events, exec/attach/port-forward, streaming URLs)");
      rep.streamFuzz = await runStreamFuzz(world, { cases: opts.fuzzCases, seed: opts.seed, log: opts.log });
      rep.failures.push(...rep.streamFuzz.failures);
    }
    if (opts.retries > 0) {
      opts.log("== kubelet retry pattern");
      rep.retries = await runRetries(world, opts.retries, opts.log);
      rep.failures.push(...rep.retries.failures);
    }
    if (opts.exhaustion) {
      opts.log("== failing OCI runtime");
      rep.runtimeFaults = await runRuntimeFaults(world, opts.log);
      rep.failures.push(...rep.runtimeFaults.failures);
      opts.log("== too many open files");
      rep.fdExhaustion = await runFdExhaustion(world, opts.log);
      rep.failures.push(...rep.fdExhaustion.failures);
      opts.log("== root filesystem full");
      rep.diskFull = await runDiskFull(world, opts.log);
      rep.failures.push(...rep.diskFull.failures);
    }
  } finally {
    await world.close();
  }
  rep.durationMs = Date.now() - t0;
  return rep;
}
