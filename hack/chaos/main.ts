// berth's reliability harness (make chaos): kill -9 at random points under a
// mixed workload, registry faults through a fault-injecting proxy, hostile CRI
// input, and the kubelet's retry pattern, against the real berthd with real
// runc, conmon, CNI and a local registry. Loopback only, bounded in count and
// time. Prints what it did and every problem found; exits 1 if there was any.
//
//   node dist/hack/chaos/main.js [--kills N] [--fuzz N] [--retries N] [--faults all|none|a,b]
//                                [--exhaustion yes|no] [--seed S] [--budget-min M] [--cleanup-every K] [--concurrency C] [--json]

import { parseArgs } from "node:util";
import { runChaos, type ChaosOptions } from "./run.js";
import { FAULT_KINDS, type FaultKind } from "./fault-proxy.js";
import { formatReport } from "./report.js";

const { values } = parseArgs({
  options: {
    kills: { type: "string", default: "30" },
    fuzz: { type: "string", default: "500" },
    retries: { type: "string", default: "5" },
    faults: { type: "string", default: "all" },
    exhaustion: { type: "string", default: "yes" },
    seed: { type: "string" },
    "budget-min": { type: "string", default: "20" },
    "cleanup-every": { type: "string", default: "10" },
    concurrency: { type: "string", default: "3" },
    json: { type: "boolean", default: false },
  },
});

function num(name: string, v: string | undefined): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
    process.exit(2);
  }
  return n;
}

let faults: FaultKind[];
if (values.faults === "all") faults = [...FAULT_KINDS];
else if (values.faults === "none" || values.faults === "") faults = [];
else {
  faults = [];
  for (const f of (values.faults ?? "").split(",")) {
    if (!(FAULT_KINDS as readonly string[]).includes(f)) {
      console.error(`--faults: unknown fault ${JSON.stringify(f)} (known: ${FAULT_KINDS.join(", ")})`);
      process.exit(2);
    }
    faults.push(f as FaultKind);
  }
}

const opts: ChaosOptions = {
  kills: num("kills", values.kills),
  fuzzCases: num("fuzz", values.fuzz),
  retries: num("retries", values.retries),
  faults,
  exhaustion: values.exhaustion !== "no",
  seed: values.seed !== undefined ? num("seed", values.seed) : Math.floor(Math.random() * 2 ** 31),
  budgetMs: num("budget-min", values["budget-min"]) * 60_000,
  cleanupEvery: Math.max(1, num("cleanup-every", values["cleanup-every"])),
  concurrency: Math.max(1, num("concurrency", values.concurrency)),
  log: (l) => console.log(l),
};

const report = await runChaos(opts);
console.log(values.json ? JSON.stringify(report, null, 2) : formatReport(report));
process.exit(report.failures.length > 0 ? 1 : 0);
