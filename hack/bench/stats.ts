// Benchmark: stats at 100 containers. Creates 100 real cgroups with a sleeping process each, then
// measures a collector sweep, ListContainerStats from the warm cache and cold (fresh collector),
// ListContainerStats over gRPC, and the cost of reading a netns's counters via a pid vs nsenter.
// Run as root: node dist/hack/bench/stats.js [count]
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData } from "@grpc/grpc-js";
import { ListContainerStatsResponse, ListPodSandboxMetricsResponse, ListPodSandboxStatsResponse, RuntimeServiceService, type ListContainerStatsRequest } from "../../api/gen/cri/v1/api.js";
import { CriClient, listContainerStats, listPodSandboxMetrics, listPodSandboxStats } from "../../pkg/cri/index.js";
import { setRootLogger } from "../../pkg/log/index.js";
import { StatsCollector, detectCgroupLayout, readNetDevViaNsenter, readNetDevViaPids, type StatsContainerInfo } from "../../pkg/stats/index.js";

setRootLogger({ level: "silent" });
const N = Number(process.argv[2] ?? 100);
const layout = detectCgroupLayout();
const mounts =
  layout.mode === "v2"
    ? [layout.unified as string]
    : [...new Set(["cpuacct", "cpu", "memory", "pids"].map((c) => layout.v1.get(c)).filter((m): m is string => !!m))];
const base = `/berth-bench-${process.pid}`;
const children: ChildProcess[] = [];
const dirs: string[] = [];

function stats(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return `p50 ${q(0.5).toFixed(2)} ms, p90 ${q(0.9).toFixed(2)} ms, max ${q(1).toFixed(2)} ms (n=${s.length})`;
}

async function time<T>(fn: () => Promise<T> | T): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function cleanup(): Promise<void> {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once("exit", r)))));
  for (const d of dirs.reverse()) {
    for (let i = 0; i < 50 && existsSync(d); i++) {
      try {
        rmdirSync(d);
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("run as root (creates cgroups)");
  console.log(`cgroups: mode ${layout.mode}, hierarchies: ${mounts.join(" ")}`);
  for (const m of mounts) {
    mkdirSync(`${m}${base}`);
    dirs.push(`${m}${base}`);
  }
  const containers: StatsContainerInfo[] = [];
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const rel = `${base}/c${i}`;
    for (const m of mounts) {
      mkdirSync(`${m}${rel}`);
      dirs.push(`${m}${rel}`);
    }
    const join_ = mounts.map((m) => `echo $$ > ${m}${rel}/cgroup.procs`).join("; ");
    const child = spawn("/bin/sh", ["-c", `${join_}; exec sleep 600`], { stdio: "ignore" });
    children.push(child);
    containers.push({ id: `c${i}`, podSandboxId: `p${i % 10}`, metadata: { name: `c${i}`, attempt: 0 }, labels: { i: String(i) }, annotations: {}, cgroupPath: rel, pid: child.pid });
  }
  await new Promise((r) => setTimeout(r, 300));
  console.log(`created ${N} cgroups with a process each in ${(performance.now() - t0).toFixed(0)} ms`);
  const pods = Array.from({ length: 10 }, (_, i) => ({ id: `p${i}`, metadata: { name: `p${i}`, uid: `u${i}`, namespace: "bench", attempt: 0 }, labels: {}, annotations: {}, cgroupParent: "" }));
  const source = { containers: () => containers, sandboxes: () => pods };

  // Cold: a fresh collector answers ListContainerStats by reading every cgroup on demand.
  const cold: number[] = [];
  for (let i = 0; i < 10; i++) {
    const col = new StatsCollector({ source, intervalSeconds: 10, layout, netnsExec: false });
    const h = listContainerStats(col);
    cold.push(await time(() => h({ filter: undefined }, { signal: new AbortController().signal, reqId: "b", method: "b" }).then((r) => ListContainerStatsResponse.encode(ListContainerStatsResponse.fromPartial(r)).finish())));
  }
  console.log(`ListContainerStats cold (reads ${N} cgroups on demand, builds + encodes): ${stats(cold)}`);

  const col = new StatsCollector({ source, intervalSeconds: 10, layout, netnsExec: false });
  const sweeps: number[] = [];
  for (let i = 0; i < 10; i++) sweeps.push(await time(() => col.collect()));
  console.log(`background sweep of ${N} cgroups (yields every 25): ${stats(sweeps)}`);

  const h = listContainerStats(col);
  const warm: number[] = [];
  for (let i = 0; i < 200; i++) {
    warm.push(await time(() => h({ filter: undefined }, { signal: new AbortController().signal, reqId: "b", method: "b" }).then((r) => ListContainerStatsResponse.encode(ListContainerStatsResponse.fromPartial(r)).finish())));
  }
  console.log(`ListContainerStats from the cache (builds + encodes ${N}): ${stats(warm)}`);
  const ctx = { signal: new AbortController().signal, reqId: "b", method: "b" };
  const lps = listPodSandboxStats(col);
  const podTimes: number[] = [];
  for (let i = 0; i < 100; i++) podTimes.push(await time(async () => ListPodSandboxStatsResponse.encode(ListPodSandboxStatsResponse.fromPartial(await lps({ filter: undefined }, ctx))).finish()));
  console.log(`ListPodSandboxStats from the cache (10 pods, ${N} containers, builds + encodes): ${stats(podTimes)}`);
  const lpm = listPodSandboxMetrics(col);
  let metricCount = 0;
  const metricTimes: number[] = [];
  for (let i = 0; i < 50; i++) {
    metricTimes.push(
      await time(async () => {
        const r = ListPodSandboxMetricsResponse.fromPartial(await lpm({}, ctx));
        metricCount = r.podMetrics.reduce((a, p) => a + p.metrics.length + p.containerMetrics.reduce((b, c) => b + c.metrics.length, 0), 0);
        return ListPodSandboxMetricsResponse.encode(r).finish();
      }),
    );
  }
  console.log(`ListPodSandboxMetrics from the cache (${metricCount} metrics): ${stats(metricTimes)}`);

  // Over a real gRPC unix socket, as kubelet calls it.
  const dir = mkdtempSync(join(tmpdir(), "berth-bench-"));
  const socket = join(dir, "s.sock");
  const server = new Server();
  const handler = (call: ServerUnaryCall<ListContainerStatsRequest, ListContainerStatsResponse>, cb: sendUnaryData<ListContainerStatsResponse>): void => {
    h(call.request, { signal: new AbortController().signal, reqId: "b", method: "ListContainerStats" }).then(
      (r) => cb(null, ListContainerStatsResponse.fromPartial(r)),
      (e: Error) => cb(e),
    );
  };
  server.addService({ listContainerStats: RuntimeServiceService.listContainerStats }, { listContainerStats: handler as (call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => void });
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  const client = new CriClient(socket);
  await client.runtime.listContainerStats({});
  const rpc: number[] = [];
  let count = 0;
  for (let i = 0; i < 100; i++) rpc.push(await time(async () => (count = (await client.runtime.listContainerStats({})).stats.length)));
  console.log(`ListContainerStats over gRPC (${count} containers): ${stats(rpc)}`);
  client.close();
  server.forceShutdown();
  rmSync(dir, { recursive: true, force: true });

  // Network counters of a netns: via /proc/<pid>/net/dev of a process in it, or nsenter (exec).
  const pid = containers[0]?.pid as number;
  const viaPid: number[] = [];
  for (let i = 0; i < 200; i++) viaPid.push(await time(() => readNetDevViaPids("/proc/1/ns/net", [pid])));
  const viaExec: number[] = [];
  for (let i = 0; i < 20; i++) viaExec.push(await time(() => readNetDevViaNsenter("/proc/1/ns/net")));
  console.log(`netns counters via /proc/<pid>/net/dev: ${stats(viaPid)}`);
  console.log(`netns counters via nsenter --net cat /proc/net/dev: ${stats(viaExec)}`);
  const mem = process.memoryUsage();
  console.log(`heap used ${(mem.heapUsed / 1e6).toFixed(1)} MB, rss ${(mem.rss / 1e6).toFixed(1)} MB`);
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => cleanup());
