// Pod + container lifecycle benchmark.
//
//   node dist/hack/bench/lifecycle.js --socket PATH [--pid DAEMON_PID] [--image REF] [-n 20] [-c 1,4] [--monitors 10]
//       runs the workload against any CRI runtime socket (the image must be pullable by it);
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

import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CriClient } from "../../pkg/cri/index.js";
import { buildImage, OciLayout, pushFromLayout, DEFAULT_PATH } from "../images/index.js";
import { startDaemon } from "../../test-e2e/harness/daemon.js";
import { startRegistry } from "../../test-e2e/harness/registry.js";
import { ensureTestImages } from "../../test-e2e/harness/images.js";
import { makeTestNetwork, mountsUnder } from "../../test-e2e/harness/cni-net.js";

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : def;
}
const flag = (name: string): boolean => process.argv.includes(name);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
}

function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function pssBytes(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Pids of processes whose argv[0] ends with `name` and whose command line mentions one of `ids`. */
function monitorPids(name: string, ids: string[]): number[] {
  const out: number[] = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0");
      if (!(argv[0] ?? "").endsWith(name)) continue;
      const line = argv.join(" ");
      if (ids.some((id) => line.includes(id))) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

const CALLS = ["RunPodSandbox", "CreateContainer", "StartContainer", "ContainerStatus", "StopContainer", "RemoveContainer", "StopPodSandbox", "RemovePodSandbox"] as const;

/** Figures of one runtime, keyed "c=1 RunPodSandbox p50" etc. (ms, s or bytes). */
type Figures = Map<string, { value: number; unit: "ms" | "s" | "MB" }>;

interface Target {
  name: string;
  socket: string;
  pid: number | undefined;
  image: string;
  logDir: string;
  /** Monitor process name (argv[0] suffix) and whether its cmdline names pod or container ids. */
  monitor: { name: string; by: "pod" | "container" } | undefined;
}

async function workload(t: Target, n: number, concurrencies: number[], monitors: number): Promise<Figures> {
  const fig: Figures = new Map();
  const client = new CriClient(t.socket, { defaultTimeoutMs: 180_000 });
  const run = `${process.pid}-${Date.now().toString(36)}`;
  try {
    await client.image.pullImage({ image: { image: t.image } });
    const podCfg = (k: string) => ({ metadata: { name: `bench-${k}`, namespace: "bench", uid: `bench-${run}-${k}`, attempt: 0 }, logDirectory: join(t.logDir, `${run}-${k}`), linux: {} });
    const ctrCfg = { metadata: { name: "sleeper", attempt: 0 }, image: { image: t.image }, command: ["sleep", "3600"], logPath: "sleeper.log", linux: {} };
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
          const { podSandboxId } = await timed("RunPodSandbox", () => client.runtime.runPodSandbox({ config }));
          const { containerId } = await timed("CreateContainer", () => client.runtime.createContainer({ podSandboxId, config: ctrCfg, sandboxConfig: config }));
          await timed("StartContainer", () => client.runtime.startContainer({ containerId }));
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

function compare(a: Figures, b: Figures): void {
  console.log(`\n== berth / containerd`);
  console.log(`  ${"figure".padEnd(44)} ${"berth".padStart(12)} ${"containerd".padStart(12)} ${"ratio".padStart(7)}`);
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w) continue;
    const ratio = w.value > 0 ? (v.value / w.value).toFixed(2) : "-";
    const fmt = (x: number) => `${x.toFixed(v.unit === "ms" ? 1 : 2)} ${v.unit}`;
    console.log(`  ${k.padEnd(44)} ${fmt(v.value).padStart(12)} ${fmt(w.value).padStart(12)} ${ratio.padStart(7)}`);
  }
}

async function pushPause(registryHost: string, workDir: string): Promise<string> {
  const layout = await OciLayout.open(join(workDir, "pause-layout"));
  const busybox = readFileSync("/bin/busybox");
  const built = await buildImage(layout, {
    layers: [
      {
        createdBy: "COPY busybox as pause",
        entries: [
          { type: "dir", path: "bin" },
          { type: "file", path: "bin/busybox", content: busybox, mode: 0o755 },
          { type: "hardlink", path: "bin/sleep", target: "bin/busybox" },
        ],
      },
    ],
    config: { Env: [DEFAULT_PATH], Entrypoint: ["/bin/sleep"], Cmd: ["2147483647"] },
  });
  if (built.kind !== "image") throw new Error("pause: expected an image");
  layout.tag(built.manifest, "latest");
  await layout.save();
  await pushFromLayout(layout.dir, "latest", registryHost, "pause", "latest");
  return `${registryHost}/pause:latest`;
}

async function startContainerd(base: string, cniConfDir: string, registryHost: string, pause: string): Promise<{ socket: string; child: ChildProcess; stop: () => Promise<void> }> {
  const root = join(base, "containerd", "root");
  const state = join(base, "containerd", "state");
  mkdirSync(root, { recursive: true });
  mkdirSync(state, { recursive: true });
  const socket = join(base, "containerd", "containerd.sock");
  const config = join(base, "containerd", "config.toml");
  writeFileSync(
    config,
    `version = 2
root = ${JSON.stringify(root)}
state = ${JSON.stringify(state)}
[grpc]
  address = ${JSON.stringify(socket)}
[ttrpc]
  address = ${JSON.stringify(`${socket}.ttrpc`)}
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${JSON.stringify(pause)}
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = ${JSON.stringify(cniConfDir)}
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors.${JSON.stringify(registryHost)}]
    endpoint = [${JSON.stringify(`http://${registryHost}`)}]
`,
  );
  const logFd = openSync(join(base, "containerd", "containerd.log"), "a");
  const child = spawn("/usr/bin/containerd", ["--config", config], { stdio: ["ignore", logFd, logFd] });
  closeSync(logFd);
  const end = Date.now() + 30_000;
  const client = new CriClient(socket, { defaultTimeoutMs: 2000 });
  for (;;) {
    try {
      await client.runtime.version({});
      break;
    } catch (err) {
      if (Date.now() > end || child.exitCode !== null) throw new Error(`containerd did not come up: ${(err as Error).message}; see ${join(base, "containerd", "containerd.log")}`);
      await sleep(200);
    }
  }
  client.close();
  return {
    socket,
    child,
    stop: async () => {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once("exit", r)));
      for (const m of mountsUnder(join(base, "containerd")).sort().reverse()) spawn("umount", ["-l", m]);
      await sleep(500);
    },
  };
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

  const reg = await startRegistry();
  const images = await ensureTestImages(reg);
  const image = images["busybox:latest"].ref;
  const work = mkdtempSync(join(tmpdir(), "berth-bench-"));
  const d = await startDaemon({ configToml: `[image.registries."${reg.host}"]\nplain_http = true\n`, logLevel: "warn" });
  const net = makeTestNetwork(d.dirs.base);
  net.install(d.dirs.cniConfDir);
  let berth: Figures | undefined;
  let ctrd: Figures | undefined;
  try {
    console.log(`berthd pid ${d.process.pid}, ${n} cycles, concurrency ${concurrencies.join(",")}, ${monitors} steady pods`);
    berth = await workload({ name: "berth", socket: d.dirs.socket, pid: d.process.pid, image, logDir: join(work, "logs"), monitor: { name: "conmon", by: "container" } }, n, concurrencies, monitors);
    print("berth", berth);
    await d.stop();
    if (!flag("--no-containerd")) {
      const pause = await pushPause(reg.host, work);
      const c = await startContainerd(work, d.dirs.cniConfDir, reg.host, pause);
      try {
        const pc = new CriClient(c.socket, { defaultTimeoutMs: 120_000 });
        await pc.image.pullImage({ image: { image: pause } });
        pc.close();
        ctrd = await workload({ name: "containerd", socket: c.socket, pid: c.child.pid, image, logDir: join(work, "logs"), monitor: { name: "containerd-shim-runc-v2", by: "pod" } }, n, concurrencies, monitors);
        print("containerd 1.6 (Debian)", ctrd);
      } finally {
        await c.stop();
      }
      compare(berth, ctrd);
    }
  } finally {
    if (d.process.exitCode === null) await d.stop();
    net.cleanup();
    await reg.stop();
    for (const dir of [work, d.dirs.base]) {
      if (mountsUnder(dir).length === 0) rmSync(dir, { recursive: true, force: true });
      else console.error(`leaving ${dir}: mounts remain under it`);
    }
    if (existsSync(work) && mountsUnder(work).length === 0) rmSync(work, { recursive: true, force: true });
  }
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
