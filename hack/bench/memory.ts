// Daemon memory, berth side by side with Debian's containerd.
//
//   node dist/hack/bench/memory.js [--pods 50,100] [--big-mb 512] [--big-layers 4] [--settle 60] [--no-containerd]
//
// Same set-up as lifecycle (side-by-side.ts). For each runtime: the daemon's PSS
// (/proc/PID/smaps_rollup, median of 5 samples 1 s apart) right after start-up,
// after pulling the small busybox image, with 50 and 100 pods running (one `sleep`
// container each; growth per pod against the idle figure), the monitors' PSS per
// pod (from the PSS --settle seconds after the small pull), then — with every pod removed — right after pulling the generated "big"
// image (--big-mb MB uncompressed in --big-layers data layers plus a base; 0 skips
// it) and --settle seconds later. Figures only; nothing is asserted.

import { setTimeout as sleep } from "node:timers/promises";
import { CriClient } from "../../pkg/cri/index.js";
import { pushFromLayout } from "../images/index.js";
import { arg, benchEnv, berthTarget, buildBig, containerdTarget, flag, median, monitorPids, printTable, pssBytes, removePods, startPods, type Row, type RunningPod, type Target } from "./side-by-side.js";

type Figures = Map<string, number>;

async function settledPss(pid: number, samples = 5): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < samples; i++) {
    if (i > 0) await sleep(1000);
    xs.push(pssBytes(pid));
  }
  return median(xs) / 1e6;
}

async function measure(t: Target, levels: number[], big: string | undefined, settleS: number): Promise<Figures> {
  const fig: Figures = new Map();
  const pid = t.pid as number;
  const client = new CriClient(t.socket, { defaultTimeoutMs: 600_000 });
  const run = `${process.pid}-${Date.now().toString(36)}`;
  const pods: RunningPod[] = [];
  try {
    await sleep(2000);
    const idle = await settledPss(pid);
    fig.set("daemon PSS idle (fresh start)", idle);
    await client.image.pullImage({ image: { image: t.image } });
    fig.set("daemon PSS right after a small pull", pssBytes(pid) / 1e6);
    // Pull workers idle out (berth: 30 s for layer-apply workers): the per-pod figures start from the settled daemon.
    await sleep(settleS * 1000);
    const base = await settledPss(pid);
    fig.set(`daemon PSS ${settleS} s after a small pull`, base);
    let prev: { level: number; pss: number } | undefined;
    for (const level of levels) {
      pods.push(...(await startPods(client, t, run, pods.length, level)));
      await sleep(2000);
      const at = await settledPss(pid);
      fig.set(`daemon PSS at ${level} pods`, at);
      fig.set(`daemon PSS growth per pod (0->${level} pods)`, (at - base) / level);
      // The first pods also pay one-time costs (code paths loaded, heap grown); the marginal figure excludes them.
      if (prev) fig.set(`daemon PSS growth per pod (${prev.level}->${level} pods)`, (at - prev.pss) / (level - prev.level));
      prev = { level, pss: at };
      console.log(`  [${t.name}] ${level} pods: ${at.toFixed(1)} MB`);
    }
    if (t.monitor && pods.length > 0) {
      const ids = t.monitor.by === "pod" ? pods.map((p) => p.podSandboxId) : pods.map((p) => p.containerId);
      const pids = monitorPids(t.monitor.name, ids);
      fig.set(`monitor PSS per pod (${pods.length} pods)`, pids.reduce((s, p) => s + pssBytes(p), 0) / pods.length / 1e6);
    }
    await removePods(client, pods.splice(0));
    if (big) {
      const t0 = performance.now();
      await client.image.pullImage({ image: { image: big } });
      console.log(`  [${t.name}] big image pulled in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      fig.set("daemon PSS right after the big pull", pssBytes(pid) / 1e6);
      await sleep(settleS * 1000);
      fig.set(`daemon PSS ${settleS} s after the big pull`, await settledPss(pid));
    }
  } finally {
    await removePods(client, pods).catch((err: unknown) => console.error(`[${t.name}] removing pods: ${String(err)}`));
    client.close();
  }
  return fig;
}

const GOALS: Record<string, string> = {
  "daemon PSS idle (fresh start)": "<= 1.0",
  "daemon PSS 60 s after a small pull": "<= 1.0",
};

async function main(): Promise<void> {
  const levels = arg("--pods", "50,100").split(",").map(Number);
  const bigMb = Number(arg("--big-mb", "512"));
  const bigLayers = Number(arg("--big-layers", "4"));
  const settle = Number(arg("--settle", "60"));
  const layout = bigMb > 0 ? await buildBig(bigMb, bigLayers) : undefined;
  const env = await benchEnv();
  let berth: Figures;
  let ctrd: Figures | undefined;
  try {
    let big: string | undefined;
    if (layout) {
      const pushed = await pushFromLayout(layout, "latest", env.reg.host, "big", "latest");
      const manifest = (await (await fetch(`${env.reg.url}/v2/big/manifests/${pushed.manifestDigest}`, { headers: { accept: "application/vnd.oci.image.manifest.v1+json" } })).json()) as { layers: Array<{ size: number }> };
      console.log(`big image: ${manifest.layers.length} layers, ${(manifest.layers.reduce((a, l) => a + l.size, 0) / 1e6).toFixed(1)} MB compressed, ${bigMb} MB of data`);
      big = `${env.reg.host}/big:latest`;
    }
    const d = await env.startBerth();
    console.log(`berthd pid ${d.process.pid}`);
    berth = await measure(berthTarget(env, d), levels, big, settle);
    await d.stop();
    if (!flag("--no-containerd")) {
      const c = await env.startContainerd();
      try {
        ctrd = await measure(containerdTarget(env, c), levels, big, settle);
      } finally {
        await c.stop();
      }
    }
  } finally {
    await env.close();
  }
  const rows: Row[] = [...berth.keys()].map((k) => ({
    figure: k,
    unit: "MB",
    berth: berth.get(k),
    containerd: ctrd?.get(k),
    goal: GOALS[k] ?? (k.startsWith("daemon PSS growth") ? "<= 0.5" : k.includes(" s after the big pull") ? "within 10% of idle" : ""),
  }));
  printTable("daemon memory (PSS, MB; median of 5 samples where settled)", rows);
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
