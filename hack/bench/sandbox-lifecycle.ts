// Pod sandbox lifecycle benchmark against any CRI socket:
//   node dist/hack/bench/sandbox-lifecycle.js --socket PATH [-n 50] [-c 1,4] [--pid BERTHD_PID]
// Runs N RunPodSandbox → PodSandboxStatus → StopPodSandbox → RemovePodSandbox cycles,
// sequentially and with each concurrency given, and prints p50/p99 per call, wall time
// and (with --pid) the daemon's RSS afterwards. Figures only; it asserts nothing.

import { readFileSync } from "node:fs";
import { CriClient } from "../../pkg/cri/index.js";

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : def;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
}

function rssMb(pid: string): string {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? `${(Number(m[1]) / 1024).toFixed(1)} MB` : "?";
  } catch {
    return "?";
  }
}

async function main(): Promise<void> {
  const socket = arg("--socket", "/run/berth/berth.sock");
  const n = Number(arg("-n", "50"));
  const concurrencies = arg("-c", "1,4").split(",").map(Number);
  const pid = arg("--pid", "");
  const client = new CriClient(socket, { defaultTimeoutMs: 120_000 });
  const run = Date.now().toString(36);
  for (const c of concurrencies) {
    const times: Record<string, number[]> = { RunPodSandbox: [], PodSandboxStatus: [], StopPodSandbox: [], RemovePodSandbox: [] };
    const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
      const t = performance.now();
      const r = await fn();
      times[name]?.push(performance.now() - t);
      return r;
    };
    let next = 0;
    const started = performance.now();
    const worker = async (): Promise<void> => {
      while (next < n) {
        const k = next++;
        const config = { metadata: { name: `bench-${k}`, namespace: "bench", uid: `bench-${run}-${c}-${k}`, attempt: 0 } };
        const { podSandboxId } = await timed("RunPodSandbox", () => client.runtime.runPodSandbox({ config }));
        await timed("PodSandboxStatus", () => client.runtime.podSandboxStatus({ podSandboxId }));
        await timed("StopPodSandbox", () => client.runtime.stopPodSandbox({ podSandboxId }));
        await timed("RemovePodSandbox", () => client.runtime.removePodSandbox({ podSandboxId }));
      }
    };
    await Promise.all(Array.from({ length: c }, worker));
    const wall = performance.now() - started;
    console.log(`concurrency ${c}, ${n} pods: wall ${(wall / 1000).toFixed(2)} s (${((n * 1000) / wall).toFixed(1)} pods/s)${pid ? `, daemon RSS ${rssMb(pid)}` : ""}`);
    for (const [name, xs] of Object.entries(times)) console.log(`  ${name.padEnd(18)} p50 ${pct(xs, 50).toFixed(1).padStart(7)} ms   p99 ${pct(xs, 99).toFixed(1).padStart(7)} ms`);
  }
  client.close();
}

void main();
