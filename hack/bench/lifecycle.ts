// Pod + container lifecycle benchmark.
//
//   node dist/hack/bench/lifecycle.js --socket PATH [--pid DAEMON_PID] [--image REF] [-n 20] [-c 1,4] [--monitors 10]
//       runs the workload against any CRI runtime socket (the image must be pullable by it);
//   node dist/hack/bench/lifecycle.js ... [--ab OTHER/dist/cmd/berthd/main.js] [--rounds 3] [--share-pid]
//       also runs another build's berthd, alternating with this one round by round, and prints
//       medians and ratios; pods and containers carry kubelet's namespace options (pid
//       CONTAINER, or POD with --share-pid); berthd's per-phase RunPodSandbox times are printed;
//   node dist/hack/bench/lifecycle.js [-n 20] [-c 1,4] [--monitors 10] [--no-containerd]
//       starts everything itself: a local registry with the test images and a pause image
//       built from busybox, a private CNI bridge network, berthd (built in dist/), and
//       Debian's containerd (own temp config and state, the same CNI config, the local
//       registry as its mirror, restrict_oom_score_adj = true); runs the same workload
//       against both and prints the ratio berth/containerd of every figure.
//
// One cycle: RunPodSandbox → CreateContainer → StartContainer → ContainerStatus →
// StopContainer(0) → RemoveContainer → StopPodSandbox → RemovePodSandbox. Cycles run
// sequentially and with each concurrency of -c. Printed: p50/p99 per CRI call, wall
// time, the daemon's RSS, and the monitor memory per pod (PSS from /proc/PID/smaps_rollup
// of conmon for berth, of containerd-shim-runc-v2 for containerd) with --monitors pods
// running at once. Figures only; nothing is asserted.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CriClient } from "../../pkg/cri/index.js";
import { arg, benchEnv, berthTarget, containerdTarget, flag, monitorPids, pct, podConfig, printTable, pssBytes, rssBytes, sleeperConfig, type Target } from "./side-by-side.js";

const CALLS = ["RunPodSandbox", "CreateContainer", "StartContainer", "ContainerStatus", "StopContainer", "RemoveContainer", "StopPodSandbox", "RemovePodSandbox", "pod + container from scratch"] as const;

/** Figures of one runtime, keyed "c=1 RunPodSandbox p50" etc. (ms, s or bytes). */
type Figures = Map<string, { value: number; unit: "ms" | "s" | "MB" }>;


async function workload(t: Target, n: number, concurrencies: number[], monitors: number): Promise<Figures> {
  const fig: Figures = new Map();
  const client = new CriClient(t.socket, { defaultTimeoutMs: 180_000 });
  const run = `${process.pid}-${Date.now().toString(36)}`;
  try {
    await client.image.pullImage({ image: { image: t.image } });
    const podCfg = (k: string) => podConfig(t, run, k);
    const ctrCfg = sleeperConfig(t);
    // Warm-up (first pod pulls the pause image on containerd, creates cgroup parents, etc.).
    {
      const config = podCfg("warm");
      const { podSandboxId } = await client.runtime.runPodSandbox({ config });
      const { containerId } = await client.runtime.createContainer({ podSandboxId, config: ctrCfg, sandboxConfig: config });
      await client.runtime.startContainer({ containerId });
      await client.runtime.stopPodSandbox({ podSandboxId });
      await client.runtime.removePodSandbox({ podSandboxId });
    }
    for (const [phase, c] of concurrencies.entries()) {
      const tag = concurrencies.indexOf(c) === phase ? `c=${c}` : `c=${c} (run ${phase + 1})`;
      const times: Record<string, number[]> = Object.fromEntries(CALLS.map((k) => [k, []]));
      const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
        const t0 = performance.now();
        const r = await fn();
        times[name]?.push(performance.now() - t0);
        return r;
      };
      let next = 0;
      const started = performance.now();
      const worker = async (): Promise<void> => {
        while (next < n) {
          const k = `${c}-${next++}`;
          const config = podCfg(k);
          const t0 = performance.now();
          const { podSandboxId } = await timed("RunPodSandbox", () => client.runtime.runPodSandbox({ config }));
          const { containerId } = await timed("CreateContainer", () => client.runtime.createContainer({ podSandboxId, config: ctrCfg, sandboxConfig: config }));
          await timed("StartContainer", () => client.runtime.startContainer({ containerId }));
          times["pod + container from scratch"]?.push(performance.now() - t0);
          await timed("ContainerStatus", () => client.runtime.containerStatus({ containerId }));
          await timed("StopContainer", () => client.runtime.stopContainer({ containerId, timeout: 0n }));
          await timed("RemoveContainer", () => client.runtime.removeContainer({ containerId }));
          await timed("StopPodSandbox", () => client.runtime.stopPodSandbox({ podSandboxId }));
          await timed("RemovePodSandbox", () => client.runtime.removePodSandbox({ podSandboxId }));
        }
      };
      await Promise.all(Array.from({ length: c }, worker));
      const wall = (performance.now() - started) / 1000;
      fig.set(`${tag} wall time (${n} cycles)`, { value: wall, unit: "s" });
      for (const name of CALLS) {
        fig.set(`${tag} ${name} p50`, { value: pct(times[name] ?? [], 50), unit: "ms" });
        fig.set(`${tag} ${name} p99`, { value: pct(times[name] ?? [], 99), unit: "ms" });
      }
      if (t.pid) fig.set(`${tag} daemon RSS after`, { value: rssBytes(t.pid) / 1e6, unit: "MB" });
    }
    if (monitors > 0) {
      const pods: string[] = [];
      const ctrs: string[] = [];
      for (let i = 0; i < monitors; i++) {
        const config = podCfg(`steady-${i}`);
        const { podSandboxId } = await client.runtime.runPodSandbox({ config });
        const { containerId } = await client.runtime.createContainer({ podSandboxId, config: ctrCfg, sandboxConfig: config });
        await client.runtime.startContainer({ containerId });
        pods.push(podSandboxId);
        ctrs.push(containerId);
      }
      await sleep(1000);
      if (t.monitor) {
        const pids = monitorPids(t.monitor.name, t.monitor.by === "pod" ? pods : ctrs);
        const total = pids.reduce((s, p) => s + pssBytes(p), 0);
        fig.set(`${monitors} pods running: monitor PSS per pod`, { value: total / monitors / 1e6, unit: "MB" });
        console.log(`  [${t.name}] ${pids.length} monitor processes (${t.monitor.name}) for ${monitors} pods`);
      }
      if (t.pid) fig.set(`${monitors} pods running: daemon RSS`, { value: rssBytes(t.pid) / 1e6, unit: "MB" });
      for (const p of pods) {
        await client.runtime.stopPodSandbox({ podSandboxId: p });
        await client.runtime.removePodSandbox({ podSandboxId: p });
      }
    }
  } finally {
    client.close();
  }
  return fig;
}

function print(name: string, fig: Figures): void {
  console.log(`\n== ${name}`);
  for (const [k, v] of fig) console.log(`  ${k.padEnd(44)} ${v.value.toFixed(v.unit === "ms" ? 1 : 2).padStart(9)} ${v.unit}`);
}

/** Goals of issue 9 for the ratio berth/containerd, by figure. */
const GOALS: Record<string, string> = {
  "c=1 RunPodSandbox p50": "<= 0.5",
  "c=1 CreateContainer p50": "<= 1.0",
  "c=1 StartContainer p50": "keep",
  "c=1 pod + container from scratch p50": "<= 0.5",
};

function compare(a: Figures, b: Figures): void {
  const rows = [...a].filter(([k]) => b.has(k)).map(([k, v]) => ({ figure: k, unit: v.unit, berth: v.value, containerd: b.get(k)?.value, goal: GOALS[k] ?? "" }));
  printTable("berth / containerd", rows);
}

async function main(): Promise<void> {
  const n = Number(arg("-n", "20"));
  const concurrencies = arg("-c", "1,4").split(",").map(Number);
  const monitors = Number(arg("--monitors", "10"));
  const socket = arg("--socket", "");
  if (socket) {
    const pid = Number(arg("--pid", "0")) || undefined;
    const image = arg("--image", "");
    if (!image) throw new Error("--image REF is required with --socket");
    const logDir = mkdtempSync(join(tmpdir(), "berth-bench-logs-"));
    const mon = arg("--monitor", "conmon");
    print(socket, await workload({ name: socket, socket, pid, image, logDir, monitor: { name: mon, by: mon === "conmon" ? "container" : "pod" } }, n, concurrencies, monitors));
    rmSync(logDir, { recursive: true, force: true });
    return;
  }

  // Builds to compare: this tree's berthd, and with `--ab PATH` another build's (e.g.
  // /work/main/dist/cmd/berthd/main.js), run in alternating order for `--rounds` rounds.
  const other = arg("--ab", "");
  const rounds = Number(arg("--rounds", "1"));
  const builds: Array<{ label: string; berthd: string | undefined }> = [{ label: "berth", berthd: undefined }];
  if (other) builds.push({ label: `berth (${other})`, berthd: other });
  const env = await benchEnv();
  try {
    const results = new Map<string, Figures[]>();
    const phases = new Map<string, Map<string, number[]>>();
    let berth: Figures | undefined;
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? builds : [...builds].reverse();
      for (const b of order) {
        const d = await env.startBerth("", [], { logLevel: "info", ...(b.berthd ? { berthd: b.berthd } : {}) });
        console.log(`${b.label} round ${r + 1}: berthd pid ${d.process.pid}, ${n} cycles, concurrency ${concurrencies.join(",")}, ${monitors} steady pods, pid ${flag("--share-pid") ? "POD" : "CONTAINER"}`);
        const fig = await workload(berthTarget(env, d), n, concurrencies, monitors);
        await d.stop();
        collectPhases(d.output(), phases, b.label);
        results.set(b.label, [...(results.get(b.label) ?? []), fig]);
        if (b.berthd === undefined && r === 0) berth = fig;
      }
    }
    for (const b of builds) {
      const med = medianFigures(results.get(b.label) ?? []);
      print(rounds > 1 ? `${b.label}: median of ${rounds} rounds` : b.label, med);
      if (b.berthd === undefined) berth = med;
      printPhases(b.label, phases.get(b.label));
    }
    if (other) {
      const a = medianFigures(results.get(builds[0]?.label ?? "") ?? []);
      const bb = medianFigures(results.get(builds[1]?.label ?? "") ?? []);
      console.log(`\n== this build / ${other} (medians)`);
      for (const [k, v] of a) {
        const o = bb.get(k);
        if (v.unit !== "ms" || !o) continue;
        console.log(`  ${k.padEnd(44)} ${v.value.toFixed(1).padStart(9)} ${o.value.toFixed(1).padStart(9)} ${(v.value / o.value).toFixed(2).padStart(6)}`);
      }
    }
    if (!flag("--no-containerd") && berth) {
      const c = await env.startContainerd();
      let ctrd: Figures;
      try {
        ctrd = await workload(containerdTarget(env, c), n, concurrencies, monitors);
        print("containerd 1.6 (Debian)", ctrd);
      } finally {
        await c.stop();
      }
      compare(berth, ctrd);
    }
  } finally {
    await env.close();
  }
}

/** Per-figure medians over rounds. */
function medianFigures(all: Figures[]): Figures {
  const out: Figures = new Map();
  for (const [k, v] of all[0] ?? []) out.set(k, { value: pct(all.map((f) => f.get(k)?.value ?? NaN).filter((x) => !Number.isNaN(x)), 50), unit: v.unit });
  return out;
}

/** Log lines that carry `phasesMs`, and the call they time. */
const PHASE_LINES: ReadonlyArray<[string, string]> = [
  ['"sandbox ready"', "RunPodSandbox"],
  ['"container removed"', "RemoveContainer"],
];

/** The `phasesMs` of every "sandbox ready" and "container removed" line berthd logged (builds that log them). */
function collectPhases(output: string, into: Map<string, Map<string, number[]>>, label: string): void {
  const m = into.get(label) ?? new Map<string, number[]>();
  into.set(label, m);
  for (const line of output.split("\n")) {
    const kind = PHASE_LINES.find(([text]) => line.includes(text))?.[1];
    if (!kind) continue;
    try {
      const ph = (JSON.parse(line) as { phasesMs?: Record<string, number> }).phasesMs;
      for (const [k, v] of Object.entries(ph ?? {})) m.set(`${kind} ${k}`, [...(m.get(`${kind} ${k}`) ?? []), v]);
    } catch {
      // not a JSON log line
    }
  }
}

function printPhases(label: string, m: Map<string, number[]> | undefined): void {
  if (!m || m.size === 0) return;
  console.log(`  phases in berthd (${label}, every call, ms): p50 / p90 (n)`);
  for (const [k, v] of m) console.log(`    ${k.padEnd(36)} ${pct(v, 50).toFixed(1).padStart(7)} / ${pct(v, 90).toFixed(1).padStart(7)}  (${v.length})`);
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
