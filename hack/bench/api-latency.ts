// CRI read-path latency, berth side by side with Debian's containerd.
//
//   node dist/hack/bench/api-latency.js [--pods 0,50,100] [-n 400] [--no-containerd] [--berth-toml 'TOML'] [--berthd OTHER/dist/cmd/berthd/main.js] [--go]
//
// Same set-up as lifecycle (side-by-side.ts): local registry, one CNI bridge network,
// berthd from dist/, containerd 1.6 with the local registry as its mirror, both running
// at once. At each pod count, pods with one running `sleep` container are started in
// each, then ListContainers, ListPodSandbox, ContainerStatus, PodSandboxStatus, ListImages
// and ImageStatus are called -n times each, interleaved, sequentially, over one
// long-lived gRPC connection per runtime (one client, never crictl), in 10 rounds that
// alternate between the runtimes. Status calls pick pods round robin. Printed: p50/p99/max per call and pod count, and the ratio berth/containerd.
// --go: the calls are made by the Go client of test-e2e/interop/cri (grpc-go from Debian, the
// kubelet's dialer; one process and connection per round and runtime, 20 untimed calls of
// each kind first) instead of this process's client.
// Figures only; nothing is asserted. The machine should be quiet.

import { execFile } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { REPO_ROOT } from "../../test-e2e/harness/daemon.js";
import { descriptorSet, goBuild } from "../../test-e2e/harness/go-build.js";
import { CriClient } from "../../pkg/cri/index.js";
import { arg, benchEnv, cpuNs, berthTarget, containerdTarget, flag, pct, printTable, removePods, startPods, type Row, type RunningPod, type Target } from "./side-by-side.js";

const CALLS = ["ListContainers", "ListPodSandbox", "ContainerStatus", "PodSandboxStatus", "ListImages", "ImageStatus"] as const;
type Call = (typeof CALLS)[number];

/** Figures keyed "50 pods ListContainers p50" (ms). */
type Figures = Map<string, number>;

function callOf(client: CriClient, t: Target, name: Call, pods: readonly RunningPod[], i: number): (() => Promise<unknown>) | undefined {
  const pod = pods[i % Math.max(1, pods.length)];
  switch (name) {
    case "ListContainers":
      return () => client.runtime.listContainers({});
    case "ListPodSandbox":
      return () => client.runtime.listPodSandbox({});
    case "ContainerStatus":
      return pod ? () => client.runtime.containerStatus({ containerId: pod.containerId }) : undefined;
    case "PodSandboxStatus":
      return pod ? () => client.runtime.podSandboxStatus({ podSandboxId: pod.podSandboxId }) : undefined;
    case "ListImages":
      return () => client.image.listImages({});
    case "ImageStatus":
      return () => client.image.imageStatus({ image: { image: t.image } });
  }
}

/** One runtime's connection, pods and samples, measured in rounds alternating with the other's. */
interface Side {
  t: Target;
  client: CriClient;
  pods: RunningPod[];
  times: Record<Call, number[]>;
  /** Server CPU (all threads) spent during the recorded rounds at this level, ns, and the calls made. */
  cpuNs: number;
  /** This process's CPU (the client's) over the same calls, µs. */
  clientCpuUs: number;
  calls: number;
  fig: Figures;
}

const emptyTimes = (): Record<Call, number[]> => Object.fromEntries(CALLS.map((c) => [c, []])) as unknown as Record<Call, number[]>;

/** The Go client (binary, descriptor set) when --go is given. */
let goClient: { bin: string; descriptors: string } | undefined;

const GO_METHOD: Record<Call, string> = {
  ListContainers: "RuntimeService/ListContainers",
  ListPodSandbox: "RuntimeService/ListPodSandbox",
  ContainerStatus: "RuntimeService/ContainerStatus",
  PodSandboxStatus: "RuntimeService/PodSandboxStatus",
  ListImages: "ImageService/ListImages",
  ImageStatus: "ImageService/ImageStatus",
};

/** One round by the Go client: `count` calls of each kind, interleaved, on one new connection. */
async function goRound(s: Side, from: number, count: number, record: boolean): Promise<void> {
  const go = goClient as { bin: string; descriptors: string };
  const pod = s.pods[from % Math.max(1, s.pods.length)];
  const kinds = CALLS.filter((c) => pod || (c !== "ContainerStatus" && c !== "PodSandboxStatus"));
  const req = (c: Call): unknown =>
    c === "ContainerStatus" ? { containerId: pod?.containerId } : c === "PodSandboxStatus" ? { podSandboxId: pod?.podSandboxId } : c === "ImageStatus" ? { image: { image: s.t.image } } : {};
  const calls = JSON.stringify(kinds.map((c) => ({ method: GO_METHOD[c], req: req(c) })));
  const cpu0 = record && s.t.pid ? cpuNs(s.t.pid) : 0;
  const { stdout } = await promisify(execFile)(go.bin, ["-mode", "bench", "-descriptors", go.descriptors, "-endpoint", `unix://${s.t.socket}`, "-calls", calls, "-n", String(count), "-warmup", "20", "-interleave", "-raw"], { maxBuffer: 64 * 1024 * 1024 });
  if (!record) return;
  if (s.t.pid) s.cpuNs += cpuNs(s.t.pid) - cpu0;
  const results = stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { method: string; samples_us: number[] });
  for (const c of kinds) {
    const r = results.find((x) => x.method === GO_METHOD[c]);
    if (!r) throw new Error(`the Go client printed nothing for ${c}`);
    s.times[c].push(...r.samples_us.map((us) => us / 1000));
    // the 20 untimed calls of each kind are in the CPU time too
    s.calls += r.samples_us.length + 20;
  }
}

/** `rounds` calls of each kind, interleaved, on one side. */
async function round(s: Side, from: number, count: number, record: boolean): Promise<void> {
  if (goClient) return goRound(s, from, count, record);
  const cpu0 = record && s.t.pid ? cpuNs(s.t.pid) : 0;
  const client0 = process.cpuUsage();
  for (let i = from; i < from + count; i++) {
    for (const c of CALLS) {
      const fn = callOf(s.client, s.t, c, s.pods, i);
      if (!fn) continue;
      const t0 = performance.now();
      await fn();
      if (record) {
        s.times[c].push(performance.now() - t0);
        s.calls++;
      }
    }
  }
  if (record && s.t.pid) s.cpuNs += cpuNs(s.t.pid) - cpu0;
  if (record) {
    const d = process.cpuUsage(client0);
    s.clientCpuUs += d.user + d.system;
  }
}

/**
 * Both runtimes side by side: at each pod count, warm-up then ROUNDS rounds, each of n/ROUNDS
 * calls of every kind on one runtime and then on the other. Alternating rounds put both under the
 * same moment-to-moment machine speed (on this VM the same client and daemon vary by 2× over
 * tens of seconds, which a berth-then-containerd order turned into a ratio).
 */
async function measure(targets: Target[], levels: number[], n: number, warmupMs: number): Promise<Figures[]> {
  const ROUNDS = 10;
  const run = `${process.pid}-${Date.now().toString(36)}`;
  const sides: Side[] = targets.map((t) => ({ t, client: new CriClient(t.socket, { defaultTimeoutMs: 180_000 }), pods: [], times: emptyTimes(), cpuNs: 0, clientCpuUs: 0, calls: 0, fig: new Map() }));
  try {
    for (const s of sides) await s.client.image.pullImage({ image: { image: s.t.image } });
    for (const level of levels) {
      for (const s of sides) if (level > s.pods.length) s.pods.push(...(await startPods(s.client, s.t, run, s.pods.length, level)));
      await sleep(1000);
      // Warm-up: JIT, connection, caches. A daemon under a kubelet serves these calls every
      // second for as long as it runs: the figures are its steady state, not its first minute.
      const warmUntil = performance.now() + warmupMs;
      for (let i = 0; performance.now() < warmUntil || i < 50; i += 10) for (const s of sides) await round(s, i, 10, false);
      for (const s of sides) Object.assign(s, { times: emptyTimes(), cpuNs: 0, clientCpuUs: 0, calls: 0 });
      const per = Math.max(1, Math.ceil(n / ROUNDS));
      for (let r = 0; r < ROUNDS; r++) for (const s of r % 2 === 0 ? sides : [...sides].reverse()) await round(s, r * per, per, true);
      for (const s of sides) {
        for (const c of CALLS) {
          const times = s.times[c];
          if (times.length === 0) continue;
          s.fig.set(`${level} pods ${c} p50`, pct(times, 50));
          s.fig.set(`${level} pods ${c} p99`, pct(times, 99));
          s.fig.set(`${level} pods ${c} max`, Math.max(...times));
        }
        // The daemon's own CPU per call (every thread), all kinds together: what the server
        // side of a call costs, apart from the client and the wire.
        if (s.calls > 0 && s.cpuNs > 0) s.fig.set(`${level} pods server CPU per call`, s.cpuNs / s.calls / 1000);
        // The bench's own CPU per call (the grpc-js client): what each server's answers cost the client.
        if (s.calls > 0 && s.clientCpuUs > 0) s.fig.set(`${level} pods client CPU per call`, s.clientCpuUs / s.calls);
      }
      console.log(`  ${level} pods measured (${targets.map((t) => t.name).join(", ")})`);
    }
  } finally {
    for (const s of sides) {
      await removePods(s.client, s.pods).catch((err: unknown) => console.error(`[${s.t.name}] removing pods: ${String(err)}`));
      s.client.close();
    }
  }
  return sides.map((s) => s.fig);
}

async function main(): Promise<void> {
  const levels = arg("--pods", "0,50,100").split(",").map(Number);
  const n = Number(arg("-n", "400"));
  const warmupMs = Number(arg("--warmup-s", "5")) * 1000;
  if (flag("--go")) goClient = { bin: await goBuild(join(REPO_ROOT, "test-e2e", "interop", "cri")), descriptors: await descriptorSet(join(REPO_ROOT, "api"), "cri/v1/api.proto") };
  const env = await benchEnv();
  let berth: Figures;
  let ctrd: Figures | undefined;
  try {
    // --berth-toml: config added to berthd's (A/B of a key on one build), "\n" for newlines
    // --berthd: another build's dist/cmd/berthd/main.js (A/B of two builds, one run each)
    const other = arg("--berthd", "");
    const d = await env.startBerth(arg("--berth-toml", "").replaceAll("\\n", "\n"), [], other ? { berthd: other } : {});
    const targets = [berthTarget(env, d)];
    const c = flag("--no-containerd") ? undefined : await env.startContainerd();
    try {
      if (c) targets.push(containerdTarget(env, c));
      console.log(`berthd pid ${d.process.pid}${c ? `, containerd pid ${c.child.pid}` : ""}; ${n} calls of each kind at ${levels.join(", ")} pods, the runtimes alternating in rounds`);
      [berth, ctrd] = (await measure(targets, levels, n, warmupMs)) as [Figures, Figures | undefined];
    } finally {
      await c?.stop();
      await d.stop();
    }
  } finally {
    await env.close();
  }
  const rows: Row[] = [...berth.keys()].map((k) => ({ figure: k, unit: k.endsWith("per call") ? "µs" : "ms", berth: berth.get(k), containerd: ctrd?.get(k), goal: k.endsWith(" p50") ? "<= 1.0" : "" }));
  printTable(`CRI read latency over one connection, ${goClient ? "Go client (grpc-go)" : "node client (grpc-js)"} (${n} calls each; berth | containerd | ratio | goal)`, rows);
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
