// CRI read-path latency, berth side by side with Debian's containerd.
//
//   node dist/hack/bench/api-latency.js [--pods 0,50,100] [-n 400] [--no-containerd]
//
// Same set-up as lifecycle (side-by-side.ts): local registry, one CNI bridge network,
// berthd from dist/, containerd 1.6 with the local registry as its mirror. For each
// runtime and each pod count, pods with one running `sleep` container are started,
// then ListContainers, ListPodSandbox, ContainerStatus, PodSandboxStatus, ListImages
// and ImageStatus are called -n times each, interleaved, sequentially, over one
// long-lived gRPC connection (one client, never crictl). Status calls pick pods round
// robin. Printed: p50/p99/max per call and pod count, and the ratio berth/containerd.
// Figures only; nothing is asserted. The machine should be quiet.

import { setTimeout as sleep } from "node:timers/promises";
import { CriClient } from "../../pkg/cri/index.js";
import { arg, benchEnv, berthTarget, containerdTarget, flag, pct, printTable, removePods, startPods, type Row, type RunningPod, type Target } from "./side-by-side.js";

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

async function measure(t: Target, levels: number[], n: number, warmupMs: number): Promise<Figures> {
  const fig: Figures = new Map();
  const client = new CriClient(t.socket, { defaultTimeoutMs: 180_000 });
  const run = `${process.pid}-${Date.now().toString(36)}`;
  const pods: RunningPod[] = [];
  try {
    await client.image.pullImage({ image: { image: t.image } });
    for (const level of levels) {
      if (level > pods.length) pods.push(...(await startPods(client, t, run, pods.length, level)));
      await sleep(1000);
      // Warm-up: JIT, connection, caches. A daemon under a kubelet serves these calls every
      // second for as long as it runs: the figures are its steady state, not its first minute.
      const warmUntil = performance.now() + warmupMs;
      for (let i = 0; performance.now() < warmUntil || i < 50; i++) for (const c of CALLS) await callOf(client, t, c, pods, i)?.();
      const times: Record<Call, number[]> = Object.fromEntries(CALLS.map((c) => [c, []])) as unknown as Record<Call, number[]>;
      for (let i = 0; i < n; i++) {
        for (const c of CALLS) {
          const fn = callOf(client, t, c, pods, i);
          if (!fn) continue;
          const t0 = performance.now();
          await fn();
          times[c].push(performance.now() - t0);
        }
      }
      for (const c of CALLS) {
        if (times[c].length === 0) continue;
        fig.set(`${level} pods ${c} p50`, pct(times[c], 50));
        fig.set(`${level} pods ${c} p99`, pct(times[c], 99));
        fig.set(`${level} pods ${c} max`, Math.max(...times[c]));
      }
      console.log(`  [${t.name}] ${level} pods measured`);
    }
  } finally {
    await removePods(client, pods).catch((err: unknown) => console.error(`[${t.name}] removing pods: ${String(err)}`));
    client.close();
  }
  return fig;
}

async function main(): Promise<void> {
  const levels = arg("--pods", "0,50,100").split(",").map(Number);
  const n = Number(arg("-n", "400"));
  const warmupMs = Number(arg("--warmup-s", "5")) * 1000;
  const env = await benchEnv();
  let berth: Figures;
  let ctrd: Figures | undefined;
  try {
    const d = await env.startBerth();
    console.log(`berthd pid ${d.process.pid}; ${n} calls of each kind at ${levels.join(", ")} pods`);
    berth = await measure(berthTarget(env, d), levels, n, warmupMs);
    await d.stop();
    if (!flag("--no-containerd")) {
      const c = await env.startContainerd();
      try {
        ctrd = await measure(containerdTarget(env, c), levels, n, warmupMs);
      } finally {
        await c.stop();
      }
    }
  } finally {
    await env.close();
  }
  const rows: Row[] = [...berth.keys()].map((k) => ({ figure: k, unit: "ms", berth: berth.get(k), containerd: ctrd?.get(k), goal: k.endsWith(" p50") ? "<= 1.0" : "" }));
  printTable(`CRI read latency over one connection (${n} calls each; berth | containerd | ratio | goal)`, rows);
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
