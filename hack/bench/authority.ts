// ListContainers latency over the CRI socket, one long-lived connection: the cost
// of the :authority filter in front of grpc-js (pkg/cri/h2-authority) on the hot path.
//
//   node dist/hack/bench/authority.js [-n 2000] [--warmup 500] [--rounds 3] [--containers 20] [--baseline OTHER/dist/cmd/berthd/main.js]
//   node dist/hack/bench/authority.js --micro [-n 2000] [--rounds 7]
//
// Starts the berthd of this build (temp dirs), optionally with one pod and N created
// containers (local registry with the test images, private CNI network), then, per
// round, N sequential ListContainers with grpc-js sending :authority "localhost" and,
// on a second connection, the socket path (as the kubelet does; a daemon without the
// filter refuses it, which is printed). Prints p50/p90/p99/mean per round and the
// daemon's CPU time per call. --baseline also starts another build's berthd (e.g.
// the commit before the filter, built in a temp clone) and interleaves its rounds
// with this build's, so both see the same machine load (--containers applies to
// this build only).
//
// --micro measures in one process, so that a busy machine disturbs both sides alike:
// a grpc-js server serving ListContainers (empty) through bindAsync and the same
// server behind AnyAuthorityListener, called in alternation (p50 per round, CPU
// time of the process per call); and the filter alone, fed the bytes a grpc-js
// client really sent for N ListContainers calls (µs per call, best of the rounds).
// Figures only; nothing is asserted.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Server, ServerCredentials, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { ListContainersResponse, RuntimeServiceService } from "../../api/gen/cri/v1/api.js";
import { AnyAuthorityListener, ClientFrameFilter, CriClient } from "../../pkg/cri/index.js";
import { makeDirs, removeDirs, startDaemon, waitReady } from "../../test-e2e/harness/daemon.js";
import { startRegistry, type Registry } from "../../test-e2e/harness/registry.js";
import { ensureTestImages } from "../../test-e2e/harness/images.js";
import { makeTestNetwork } from "../../test-e2e/harness/cni-net.js";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? Number(process.argv[i + 1]) : def;
}

function argString(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

/** Another build's berthd on temp dirs, the harness's way. */
async function startBaseline(berthd: string): Promise<{ pid: number; socket: string; stop(): Promise<void> }> {
  const dirs = makeDirs();
  writeFileSync(dirs.config, `[metrics]\naddress = "127.0.0.1:0"\n[cni]\nconf_dir = ${JSON.stringify(dirs.cniConfDir)}\n`);
  const child = spawn(process.execPath, [berthd, "--config", dirs.config, "--root", dirs.root, "--state", dirs.state, "--socket", dirs.socket, "--log-level", "info"], { stdio: "ignore" });
  const probe = new CriClient(dirs.socket, { authority: "localhost" });
  try {
    await waitReady(probe, child, 20_000, () => "");
  } finally {
    probe.close();
  }
  return {
    pid: child.pid as number,
    socket: dirs.socket,
    async stop() {
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
      removeDirs(dirs);
    },
  };
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
  let baseline: { stop(): Promise<void> } | undefined;
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
    const targets: { build: string; pid: number; socket: string }[] = [{ build: "this build", pid, socket: d.dirs.socket }];
    const baselinePath = argString("--baseline");
    if (baselinePath) {
      const b = await startBaseline(baselinePath);
      baseline = b;
      targets.unshift({ build: "baseline", pid: b.pid, socket: b.socket });
    }
    console.log(`${listed} containers (this build); ${rounds} rounds of ${n} ListContainers after ${warmup} warm-up calls, one connection per client, variants interleaved`);
    const variants: { label: string; client: CriClient; pid: number; p50: number[]; cpu: number[] }[] = [];
    for (const t of targets) {
      for (const [name, authority] of [
        ["localhost", "localhost"],
        ["socket path", t.socket],
      ] as const) {
        const label = `${t.build}, :authority ${name}`;
        const c = new CriClient(t.socket, { defaultTimeoutMs: 5000, authority });
        clients.push(c);
        try {
          await c.runtime.listContainers({});
          variants.push({ label, client: c, pid: t.pid, p50: [], cpu: [] });
        } catch (err) {
          console.log(`${label}: refused (${(err as Error).message})`);
        }
      }
    }
    for (const v of variants) for (let i = 0; i < warmup; i++) await v.client.runtime.listContainers({});
    for (let r = 1; r <= rounds; r++) {
      for (const v of variants) {
        const times: number[] = [];
        const cpu0 = cpuTicks(v.pid);
        for (let i = 0; i < n; i++) {
          const t = performance.now();
          await v.client.runtime.listContainers({});
          times.push(performance.now() - t);
        }
        const cpuUs = ((cpuTicks(v.pid) - cpu0) * 10_000) / n;
        v.p50.push(median(times));
        v.cpu.push(cpuUs);
        console.log(`round ${r} ${v.label.padEnd(36)} ${summary(times)}  berthd CPU ${cpuUs.toFixed(0)} µs/call`);
      }
    }
    console.log(`summary over ${rounds} rounds (median of the rounds' p50, of berthd CPU per call):`);
    for (const v of variants) console.log(`  ${v.label.padEnd(36)} p50 ${median(v.p50).toFixed(3)} ms (best round ${Math.min(...v.p50).toFixed(3)} ms)  CPU ${median(v.cpu).toFixed(0)} µs/call`);
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
    await baseline?.stop();
    net?.cleanup();
    await reg?.stop();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

async function micro(): Promise<void> {
  const n = arg("-n", 2000);
  const rounds = arg("--rounds", 7);
  const dir = mkdtempSync(join(tmpdir(), "berth-bench-authority-"));
  const impl = { listContainers: (_call: unknown, cb: (err: null, res: ListContainersResponse) => void) => cb(null, ListContainersResponse.fromPartial({})) } as unknown as UntypedServiceImplementation;
  const make = (): Server => {
    const s = new Server();
    s.addService(RuntimeServiceService, impl);
    return s;
  };
  const plain = make();
  const plainSock = join(dir, "bind.sock");
  await new Promise<void>((resolve, reject) => plain.bindAsync(`unix://${plainSock}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  const filtered = make();
  const filteredSock = join(dir, "filtered.sock");
  const listener = await AnyAuthorityListener.listen(filteredSock, filtered.createConnectionInjector(ServerCredentials.createInsecure()));
  // A recording proxy in front of the bindAsync server: the client→server bytes of real calls.
  const recorded: Buffer[] = [];
  const proxySock = join(dir, "proxy.sock");
  const proxy = createServer((c: Socket) => {
    const up = connect(plainSock);
    c.on("data", (b: Buffer) => recorded.push(Buffer.from(b)));
    c.pipe(up).pipe(c);
    c.on("error", () => up.destroy());
    up.on("error", () => c.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(proxySock, resolve));
  const variants: [string, CriClient][] = [
    ["bindAsync, :authority localhost", new CriClient(plainSock, { defaultTimeoutMs: 5000, authority: "localhost" })],
    ["filter, :authority localhost", new CriClient(filteredSock, { defaultTimeoutMs: 5000, authority: "localhost" })],
    ["filter, :authority socket path", new CriClient(filteredSock, { defaultTimeoutMs: 5000, authority: filteredSock })],
  ];
  try {
    const rec = new CriClient(proxySock, { defaultTimeoutMs: 5000, authority: proxySock.replaceAll("/", "%2F") });
    for (let i = 0; i < n; i++) await rec.runtime.listContainers({});
    rec.close();
    const bytes = recorded.reduce((a, b) => a + b.length, 0);
    const filterUs: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const f = new ClientFrameFilter();
      const t = performance.now();
      for (const chunk of recorded) f.push(chunk);
      filterUs.push(((performance.now() - t) * 1000) / n);
    }
    console.log(`filter alone: ${recorded.length} reads, ${bytes} bytes for ${n} calls; best ${Math.min(...filterUs).toFixed(2)} µs/call, median ${median(filterUs).toFixed(2)} µs/call over ${rounds} rounds`);

    const p50s = new Map<string, number[]>();
    const cpus = new Map<string, number[]>();
    for (const [, c] of variants) for (let i = 0; i < 300; i++) await c.runtime.listContainers({});
    for (let r = 0; r < rounds; r++) {
      for (const [label, c] of variants) {
        const times: number[] = [];
        const cpu0 = process.cpuUsage();
        for (let i = 0; i < n; i++) {
          const t = performance.now();
          await c.runtime.listContainers({});
          times.push(performance.now() - t);
        }
        const cpu = process.cpuUsage(cpu0);
        (p50s.get(label) ?? p50s.set(label, []).get(label))?.push(median(times));
        (cpus.get(label) ?? cpus.set(label, []).get(label))?.push((cpu.user + cpu.system) / n);
      }
    }
    console.log(`in-process client and server, ${rounds} rounds × ${n} ListContainers per variant, interleaved:`);
    for (const [label] of variants) {
      const p = p50s.get(label) ?? [];
      const c = cpus.get(label) ?? [];
      console.log(`  ${label.padEnd(32)} p50 median ${median(p).toFixed(3)} ms (best ${Math.min(...p).toFixed(3)} ms)  CPU median ${median(c).toFixed(1)} µs/call (best ${Math.min(...c).toFixed(1)})`);
    }
  } finally {
    for (const [, c] of variants) c.close();
    listener.stopAccepting();
    listener.destroyConnections();
    plain.forceShutdown();
    filtered.forceShutdown();
    proxy.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await (process.argv.includes("--micro") ? micro() : main());
