import { LEAK_KINDS } from "./leaks.js";
import type { ChaosReport } from "./run.js";

/** The harness's figures as text: what ran, how often, and every problem. */
export function formatReport(r: ChaosReport): string {
  const out: string[] = [];
  out.push(`== berth chaos summary (seed ${r.seed}, ${Math.round(r.durationMs / 1000)} s)`);
  const k = r.killLoop;
  if (k) {
    const ops = Object.values(k.operations).reduce((a, b) => a + b, 0);
    out.push(`kill -9: ${k.kills} kills, ${k.restarts} restarts survived; ${ops} operations acknowledged, ${k.interrupted} interrupted by a kill`);
    out.push(`  operations: ${Object.entries(k.operations).map(([n, c]) => `${n} ${c}`).join(", ")}`);
    out.push(`  checked after restarts: ${k.podsChecked} pod checks, ${k.containersChecked} container checks, ${k.exitsWhileDown} exits across a kill with their real codes`);
    out.push(`  leaks over ${k.leakScans} scans: ${LEAK_KINDS.map((x) => `${x} ${k.leaks[x]}`).join(", ")}`);
  }
  const f = r.registryFaults;
  if (f) {
    out.push(`registry faults: ${f.outcomes.length} kinds`);
    for (const o of f.outcomes) {
      out.push(`  ${o.kind}: first pull ${o.firstPull}${o.message ? ` "${o.message.slice(0, 100)}"` : ""} (${o.firstMs} ms, ${o.faulted} faulted responses); retry ${o.retry}, ${o.reusedBlobs}/${o.blobs} blobs reused${o.problems.length ? `; ${o.problems.length} problems` : ""}`);
    }
  }
  const z = r.fuzz;
  if (z) {
    out.push(`fuzz: ${z.cases} cases sent (${z.accepted} accepted, ${z.rejected} rejected, ${z.clientSide} not encodable), ${z.concurrentRounds} concurrent-conflict rounds, crashes ${z.crashes}, hangs ${z.hangs}, wrong codes ${z.wrongCodes}, state changes on rejection ${z.stateChanges}`);
    out.push(`  codes: ${Object.entries(z.codes).map(([c, n]) => `${c} ${n}`).join(", ")}`);
  }
  const sf = r.streamFuzz;
  if (sf) {
    out.push(`streaming fuzz: ${sf.rpcCases} Exec/Attach/PortForward/ExecSync cases (${Object.entries(sf.rpcCodes).map(([c, n]) => `${c} ${n}`).join(", ")}), ${sf.subscribers} GetContainerEvents subscribers (cancelled at random, one never reading), crashes ${sf.crashes}, hangs ${sf.hangs}`);
    out.push(`  streaming URLs: ${sf.httpCases} requests (${Object.entries(sf.httpOutcomes).map(([c, n]) => `${c} ${n}`).join(", ")})`);
  }
  const t = r.retries;
  if (t) out.push(`kubelet retries: ${t.rounds} rounds: ${Object.entries(t.outcomes).map(([c, n]) => `${c} ${n}`).join(", ")}`);
  const rf = r.runtimeFaults;
  if (rf) {
    out.push(`failing or hanging OCI runtime / conmon: ${Object.keys(rf.outcomes).length} cases`);
    for (const [k, v] of Object.entries(rf.outcomes)) out.push(`  ${k}: ${v.slice(0, 110)}`);
  }
  const fd = r.fdExhaustion;
  if (fd) {
    out.push(`too many open files (RLIMIT_NOFILE down to ${fd.fdLimit}): calls ${Object.entries(fd.outcomes).map(([c, n]) => `${c} ${n}`).join(", ")}`);
    out.push(`  streaming server during the storm: ${Object.entries(fd.streaming).map(([c, n]) => `${c} ${n}`).join(", ")}`);
  }
  const df = r.diskFull;
  if (df) out.push(`root filesystem full: ${Object.entries(df.outcomes).map(([k, v]) => `${k}: ${v}`).join("; ")}`);
  out.push(r.failures.length ? `FAILURES (${r.failures.length}):` : "no failures");
  for (const x of r.failures.slice(0, 50)) out.push(`  - ${x}`);
  if (r.failures.length > 50) out.push(`  … ${r.failures.length - 50} more`);
  return out.join("\n");
}
