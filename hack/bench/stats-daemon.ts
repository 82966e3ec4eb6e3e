// Stats at scale against the real daemon: berthd with P pods × C containers (busybox sleeping),
// then ListContainerStats, ListPodSandboxStats, ContainerStats and ListPodSandboxMetrics latency
// over the CRI socket, and the daemon's CPU time while idle (the background collector's cost).
//
//   node dist/hack/bench/stats-daemon.js [--pods 10] [--containers 10] [--interval 10] [--warmup SECONDS]
// Figures only; nothing is asserted.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startDaemon } from "../../test-e2e/harness/daemon.js";
import { startRegistry } from "../../test-e2e/harness/registry.js";
import { ensureTestImages } from "../../test-e2e/harness/images.js";
import { makeTestNetwork } from "../../test-e2e/harness/cni-net.js";
import { removeDirs } from "../../test-e2e/harness/daemon.js";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? Number(process.argv[i + 1]) : def;
}

function summary(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return `p50 ${q(0.5).toFixed(2)} ms, p90 ${q(0.9).toFixed(2)} ms, p99 ${q(0.99).toFixed(2)} ms (n=${s.length})`;
}

function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return Number(f[11] ?? 0) + Number(f[12] ?? 0); // utime + stime, clock ticks (1/100 s)
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : 0;
}

async function main(): Promise<void> {
  const P = arg("--pods", 10);
  const C = arg("--containers", 10);
  const interval = arg("--interval", 10);
  const reg = await startRegistry();
  const images = await ensureTestImages(reg);
  const d = await startDaemon({ configToml: `[stats]\ncollect_interval_seconds = ${interval}\n\n[image.registries."${reg.host}"]\nplain_http = true\n` });
  const net = makeTestNetwork(d.dirs.base);
  net.install(d.dirs.cniConfDir);
  const pid = d.process.pid as number;
  try {
    const image = images["busybox:latest"].ref;
    await d.client.image.pullImage({ image: { image } });
    const t0 = performance.now();
    const ids: string[] = [];
    for (let p = 0; p < P; p++) {
      const config = { metadata: { name: `bench-${p}`, namespace: "bench", uid: `uid-bench-${process.pid}-${p}`, attempt: 0 }, logDirectory: join(d.dirs.logs, `bench-${p}`) };
      const { podSandboxId } = await d.client.runtime.runPodSandbox({ config });
      for (let c = 0; c < C; c++) {
        const { containerId } = await d.client.runtime.createContainer({
          podSandboxId,
          config: { metadata: { name: `c${c}` }, image: { image }, command: ["sleep", "3600"], logPath: `c${c}.log` },
          sandboxConfig: config,
        });
        await d.client.runtime.startContainer({ containerId });
        ids.push(containerId);
      }
    }
    console.log(`started ${P} pods × ${C} containers in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await sleep(arg("--warmup", 2 * interval + 0.5) * 1000); // by default two sweeps: rates are available
    const time = async (fn: () => Promise<unknown>): Promise<number> => {
      const t = performance.now();
      await fn();
      return performance.now() - t;
    };
    const lcs: number[] = [];
    let n = 0;
    let withRate = 0;
    for (let i = 0; i < 50; i++) {
      lcs.push(
        await time(async () => {
          const r = await d.client.runtime.listContainerStats({});
          n = r.stats.length;
          withRate = r.stats.filter((s) => s.cpu?.usageNanoCores !== undefined).length;
        }),
      );
    }
    console.log(`ListContainerStats (${n} containers, ${withRate} with nano-cores): ${summary(lcs)}`);
    const lps: number[] = [];
    for (let i = 0; i < 50; i++) lps.push(await time(() => d.client.runtime.listPodSandboxStats({})));
    console.log(`ListPodSandboxStats (${P} pods): ${summary(lps)}`);
    const cs: number[] = [];
    for (let i = 0; i < 100; i++) cs.push(await time(() => d.client.runtime.containerStats({ containerId: ids[i % ids.length] as string })));
    console.log(`ContainerStats: ${summary(cs)}`);
    const lpm: number[] = [];
    for (let i = 0; i < 20; i++) lpm.push(await time(() => d.client.runtime.listPodSandboxMetrics({})));
    console.log(`ListPodSandboxMetrics: ${summary(lpm)}`);
    const window = 30;
    const before = cpuTicks(pid);
    await sleep(window * 1000);
    const ticks = cpuTicks(pid) - before;
    console.log(`berthd idle with ${P * C} containers: ${(ticks * 10 / window).toFixed(1)} ms CPU per second (${ticks / 100} s over ${window} s, collector every ${interval} s); RSS ${rssMb(pid).toFixed(0)} MB`);
  } finally {
    const pods = await d.client.runtime.listPodSandbox({}).catch(() => ({ items: [] }));
    for (const p of pods.items) {
      await d.client.runtime.stopPodSandbox({ podSandboxId: p.id }).catch(() => undefined);
      await d.client.runtime.removePodSandbox({ podSandboxId: p.id }).catch(() => undefined);
    }
    await d.stop();
    removeDirs(d.dirs);
    net.cleanup();
    await reg.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
