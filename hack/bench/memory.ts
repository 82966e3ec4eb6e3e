// Daemon memory, berth side by side with Debian's containerd.
//
//   node dist/hack/bench/memory.js [--pods 50,100] [--big-mb 512] [--big-layers 4] [--settle 60] [--no-containerd] [--berthd OTHER/dist/cmd/berthd/main.js] [--breakdown]
//
// Same set-up as lifecycle (side-by-side.ts). For each runtime: the daemon's PSS
// (/proc/PID/smaps_rollup, median of 5 samples 1 s apart) right after start-up,
// after pulling the small busybox image, with 50 and 100 pods running (one `sleep`
// container each; growth per pod against the idle figure), the monitors' PSS per
// pod (from the PSS --settle seconds after the small pull), then — with every pod removed — before, right after pulling the generated "big"
// image (--big-mb MB uncompressed in --big-layers data layers plus a base; 0 skips
// it) and --settle seconds later (also printed relative to idle: the goal is within 10% of it). --berthd measures another build's berthd. The anonymous part of the PSS (Pss_Anon) is printed too for
// idle, settled and each pod count: node's text is shared with every other node process on the
// machine (the bench itself is one), which lowers berthd's PSS by a varying amount. Figures only;
// nothing is asserted.

import { setTimeout as sleep } from "node:timers/promises";
import { CriClient } from "../../pkg/cri/index.js";
import { pushFromLayout } from "../images/index.js";
import { arg, benchEnv, pssByMapping, berthTarget, buildBig, containerdTarget, flag, median, monitorPids, printTable, pssBytes, removePods, startPods, type Row, type RunningPod, type Target } from "./side-by-side.js";

type Figures = Map<string, number>;

/** Medians of `samples` samples 1 s apart: PSS, and its anonymous part (MB). */
async function settled(pid: number, samples = 5): Promise<{ pss: number; anon: number }> {
  const xs: number[] = [];
  const anon: number[] = [];
  for (let i = 0; i < samples; i++) {
    if (i > 0) await sleep(1000);
    xs.push(pssBytes(pid));
    anon.push(pssBytes(pid, "Pss_Anon"));
  }
  return { pss: median(xs) / 1e6, anon: median(anon) / 1e6 };
}

/**
 * --breakdown: where the PSS is (by mapping) and, for berthd, V8's heap spaces (used MB,
 * from its /metrics), printed at the points the goal compares.
 */
async function breakdown(t: Target, when: string, metricsUrl: string | undefined): Promise<void> {
  if (!flag("--breakdown") || !t.pid) return;
  const parts = [...pssByMapping(t.pid)].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v.toFixed(1)}`);
  console.log(`  [${t.name}] ${when}: PSS by mapping (MB): ${parts.join(", ")}`);
  if (!metricsUrl) return;
  try {
    const text = await (await fetch(metricsUrl)).text();
    const spaces = [...text.matchAll(/^\w*nodejs_heap_space_size_used_bytes\{space="(\w+)"\} (\S+)$/gm)].map((m) => `${m[1]} ${(Number(m[2]) / 1e6).toFixed(2)}`);
    const ext = /^\w*nodejs_external_memory_bytes (\S+)$/m.exec(text);
    console.log(`  [${t.name}] ${when}: V8 used (MB): ${spaces.join(", ")}${ext ? `; external ${(Number(ext[1]) / 1e6).toFixed(2)}` : ""}`);
  } catch (err) {
    console.log(`  [${t.name}] ${when}: no heap figures (${String(err)})`);
  }
}

async function settledPss(pid: number): Promise<number> {
  return (await settled(pid)).pss;
}

async function measure(t: Target, levels: number[], big: string | undefined, settleS: number, metricsUrl?: string): Promise<Figures> {
  const fig: Figures = new Map();
  // Without the executable's shared text (see pssBytes): printed after the PSS figures.
  const anonFig: Figures = new Map();
  const pid = t.pid as number;
  const client = new CriClient(t.socket, { defaultTimeoutMs: 600_000 });
  const run = `${process.pid}-${Date.now().toString(36)}`;
  const pods: RunningPod[] = [];
  try {
    await sleep(2000);
    const idle = await settled(pid);
    fig.set("daemon PSS idle (fresh start)", idle.pss);
    anonFig.set("daemon anonymous PSS idle (fresh start)", idle.anon);
    await breakdown(t, "idle", metricsUrl);
    await client.image.pullImage({ image: { image: t.image } });
    fig.set("daemon PSS right after a small pull", pssBytes(pid) / 1e6);
    // Pull workers idle out (berth: 30 s for layer-apply workers): the per-pod figures start from the settled daemon.
    await sleep(settleS * 1000);
    const settledBase = await settled(pid);
    const base = settledBase.pss;
    fig.set(`daemon PSS ${settleS} s after a small pull`, base);
    anonFig.set(`daemon anonymous PSS ${settleS} s after a small pull`, settledBase.anon);
    let prev: { level: number; pss: number } | undefined;
    for (const level of levels) {
      pods.push(...(await startPods(client, t, run, pods.length, level)));
      await sleep(2000);
      const atBoth = await settled(pid);
      const at = atBoth.pss;
      fig.set(`daemon PSS at ${level} pods`, at);
      anonFig.set(`daemon anonymous PSS at ${level} pods`, atBoth.anon);
      anonFig.set(`daemon anonymous PSS growth per pod (0->${level} pods)`, (atBoth.anon - settledBase.anon) / level);
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
      await sleep(5000);
      fig.set("daemon PSS before the big pull (pods removed)", await settledPss(pid));
      await breakdown(t, "before the big pull", metricsUrl);
      const t0 = performance.now();
      await client.image.pullImage({ image: { image: big } });
      console.log(`  [${t.name}] big image pulled in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      fig.set("daemon PSS right after the big pull", pssBytes(pid) / 1e6);
      await sleep(settleS * 1000);
      const afterBig = await settled(pid);
      fig.set(`daemon PSS ${settleS} s after the big pull`, afterBig.pss);
      anonFig.set(`daemon anonymous PSS ${settleS} s after the big pull`, afterBig.anon);
      await breakdown(t, `${settleS} s after the big pull`, metricsUrl);
    }
  } finally {
    await removePods(client, pods).catch((err: unknown) => console.error(`[${t.name}] removing pods: ${String(err)}`));
    client.close();
  }
  for (const [k, v] of anonFig) fig.set(k, v);
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
    const other = arg("--berthd", "");
    // --breakdown reads berthd's /metrics, whose address berthd logs at info level.
    const d = await env.startBerth("", [], { ...(other ? { berthd: other } : {}), ...(flag("--breakdown") ? { logLevel: "info" } : {}) });
    console.log(`berthd pid ${d.process.pid}`);
    berth = await measure(berthTarget(env, d), levels, big, settle, flag("--breakdown") ? d.metricsUrl() : undefined);
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
    goal: GOALS[k] ?? (k.startsWith("daemon PSS growth") ? "<= 0.5" : ""),
  }));
  printTable("daemon memory (PSS, MB; median of 5 samples where settled)", rows);
  // The goal for the big pull is against the daemon's own idle figure, not containerd's.
  const after = `daemon PSS ${settle} s after the big pull`;
  const rel = (f: Figures | undefined, base: string, a = f?.get(after)): string => {
    const b = f?.get(base);
    return a !== undefined && b !== undefined && b > 0 ? (a / b).toFixed(2) : "-";
  };
  if (berth.has(after)) {
    console.log(`\n== ${after}, relative to the same daemon's own PSS (berth | containerd | goal)`);
    console.log(`  ${"/ PSS idle (fresh start)".padEnd(44)} ${rel(berth, "daemon PSS idle (fresh start)").padStart(12)} ${rel(ctrd, "daemon PSS idle (fresh start)").padStart(12)}  within 10% of idle (<= 1.10)`);
    console.log(`  ${"/ PSS before the big pull (pods removed)".padEnd(44)} ${rel(berth, "daemon PSS before the big pull (pods removed)").padStart(12)} ${rel(ctrd, "daemon PSS before the big pull (pods removed)").padStart(12)}`);
    // Without the executable's text, whose share of PSS moves with the other node processes running.
    const anonAfter = `daemon anonymous PSS ${settle} s after the big pull`;
    const idleAnon = "daemon anonymous PSS idle (fresh start)";
    console.log(`  ${"anonymous: / anonymous PSS idle".padEnd(44)} ${rel(berth, idleAnon, berth.get(anonAfter)).padStart(12)} ${rel(ctrd, idleAnon, ctrd?.get(anonAfter)).padStart(12)}`);
  }
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
