// ListContainers latency over the CRI socket, one long-lived connection: the cost
// of the :authority filter in front of grpc-js (pkg/cri/h2-authority) on the hot path.
//
//   node dist/hack/bench/authority.js [-n 2000] [--warmup 500] [--rounds 3] [--containers 20]
//
// Starts the berthd of this build (temp dirs), optionally with one pod and N created
// containers (local registry with the test images, private CNI network), then, per
// round, N sequential ListContainers with grpc-js sending :authority "localhost" and,
// on a second connection, the socket path (as the kubelet does; a daemon without the
// filter refuses it, which is printed). Prints p50/p90/p99/mean per round and the
// daemon's CPU time per call. To compare with another build, run this same file
// from that build. Figures only; nothing is asserted.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CriClient } from "../../pkg/cri/index.js";
import { removeDirs, startDaemon } from "../../test-e2e/harness/daemon.js";
import { startRegistry, type Registry } from "../../test-e2e/harness/registry.js";
import { ensureTestImages } from "../../test-e2e/harness/images.js";
import { makeTestNetwork } from "../../test-e2e/harness/cni-net.js";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? Number(process.argv[i + 1]) : def;
}

function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return Number(f[11] ?? 0) + Number(f[12] ?? 0); // utime + stime, 1/100 s
}

function summary(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): string => (s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN).toFixed(3);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return `p50 ${q(0.5)} ms  p90 ${q(0.9)} ms  p99 ${q(0.99)} ms  mean ${mean.toFixed(3)} ms`;
}

async function main(): Promise<void> {
  const n = arg("-n", 2000);
  const warmup = arg("--warmup", 500);
  const rounds = arg("--rounds", 3);
  const containers = arg("--containers", 0);
  let reg: Registry | undefined;
  let toml = "";
  if (containers > 0) {
    reg = await startRegistry();
    toml = `[image.registries."${reg.host}"]\nplain_http = true\n`;
  }
  const d = await startDaemon({ configToml: toml, logLevel: "info" });
  const net = containers > 0 ? makeTestNetwork(d.dirs.base) : undefined;
  const pid = d.process.pid as number;
  const clients: CriClient[] = [];
  try {
    if (reg && net) {
      net.install(d.dirs.cniConfDir);
      const image = (await ensureTestImages(reg))["busybox:latest"].ref;
      await d.client.image.pullImage({ image: { image } });
      const config = { metadata: { name: "bench", namespace: "bench", uid: `uid-bench-${process.pid}`, attempt: 0 }, logDirectory: join(d.dirs.logs, "bench") };
      const { podSandboxId } = await d.client.runtime.runPodSandbox({ config });
      for (let c = 0; c < containers; c++) {
        await d.client.runtime.createContainer({ podSandboxId, config: { metadata: { name: `c${c}` }, image: { image }, command: ["sleep", "3600"], logPath: `c${c}.log` }, sandboxConfig: config });
      }
    }
    const listed = (await d.client.runtime.listContainers({})).containers.length;
    console.log(`berthd ${d.process.pid}, ${listed} containers; ${rounds} rounds of ${n} ListContainers after ${warmup} warm-up calls, one connection per client`);
    const variants: [string, CriClient][] = [];
    for (const [label, authority] of [
      ["localhost", "localhost"],
      ["socket path", d.dirs.socket],
    ] as const) {
      const c = new CriClient(d.dirs.socket, { defaultTimeoutMs: 5000, authority });
      clients.push(c);
      try {
        await c.runtime.listContainers({});
        variants.push([label, c]);
      } catch (err) {
        console.log(`:authority ${label}: refused by this build (${(err as Error).message})`);
      }
    }
    for (let r = 1; r <= rounds; r++) {
      for (const [label, c] of variants) {
        for (let i = 0; i < warmup; i++) await c.runtime.listContainers({});
        const times: number[] = [];
        const cpu0 = cpuTicks(pid);
        for (let i = 0; i < n; i++) {
          const t = performance.now();
          await c.runtime.listContainers({});
          times.push(performance.now() - t);
        }
        const cpuUs = ((cpuTicks(pid) - cpu0) * 10_000) / n;
        console.log(`round ${r} :authority ${label.padEnd(11)} ${summary(times)}  berthd CPU ${cpuUs.toFixed(0)} µs/call`);
      }
    }
  } finally {
    for (const c of clients) c.close();
    if (containers > 0) {
      const pods = await d.client.runtime.listPodSandbox({}).catch(() => ({ items: [] }));
      for (const p of pods.items) {
        await d.client.runtime.stopPodSandbox({ podSandboxId: p.id }).catch(() => undefined);
        await d.client.runtime.removePodSandbox({ podSandboxId: p.id }).catch(() => undefined);
      }
    }
    await d.stop();
    removeDirs(d.dirs);
    net?.cleanup();
    await reg?.stop();
  }
}

await main();
