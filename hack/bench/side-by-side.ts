// Shared set-up of the side-by-side benchmarks (lifecycle, api-latency, memory):
// a local registry with the test images, a private CNI bridge network, berthd
// from dist/, and Debian's containerd with its own temp config and state, the
// same CNI config, the local registry as its mirror and a pause image built
// from busybox. Plus the small helpers every benchmark prints with: percentiles,
// process memory from /proc, monitor processes, and the comparison table.

import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CriClient } from "../../pkg/cri/index.js";
import { NamespaceMode } from "../../api/gen/cri/v1/api.js";
import { buildImage, buildStandardImages, OciLayout, pushFromLayout, DEFAULT_PATH } from "../images/index.js";
import { startDaemon, type Daemon } from "../../test-e2e/harness/daemon.js";
import { startRegistry, type Registry } from "../../test-e2e/harness/registry.js";
import { ensureTestImages } from "../../test-e2e/harness/images.js";
import { makeTestNetwork, mountsUnder, type TestNetwork } from "../../test-e2e/harness/cni-net.js";

export function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : def;
}

export const flag = (name: string): boolean => process.argv.includes(name);

/** The p-th percentile (0..100) of xs, nearest rank; 0 for an empty list. */
export function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
}

export function median(xs: readonly number[]): number {
  return pct(xs, 50);
}

export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * CPU time a process has run, all its threads, in nanoseconds (the first field of each
 * /proc/PID/task/TID/schedstat; exact, where /proc/PID/stat counts 10 ms ticks).
 * 0 if it is gone.
 */
export function cpuNs(pid: number): number {
  let total = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      } catch {
        // thread exited between the listing and the read
      }
    }
  } catch {
    return 0;
  }
  return total;
}

/**
 * A process's PSS split by kind of mapping (MB): the executable's text, shared libraries,
 * anonymous executable mappings (JIT code), glibc's main heap, 64 MiB thread-arena regions,
 * other anonymous memory (V8's heap pages, thread stacks, large malloc blocks), the rest.
 */
export function pssByMapping(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let key = "";
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, "utf8");
  } catch {
    return out;
  }
  const exe = (() => {
    try {
      return readlinkSync(`/proc/${pid}/exe`);
    } catch {
      return "";
    }
  })();
  for (const line of text.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) {
      const size = parseInt(m[2] as string, 16) - parseInt(m[1] as string, 16);
      const perms = m[3] as string;
      const name = (m[4] as string).trim();
      if (name === "") key = perms.includes("x") ? "anonymous executable (JIT code)" : size >= 64 * 1024 * 1024 - 4096 || size === 128 * 1024 * 1024 ? "anonymous 64 MiB regions (malloc thread arenas)" : "anonymous other (V8 heap, stacks, large blocks)";
      else if (name === "[heap]") key = "[heap] (malloc main arena)";
      else if (name === exe) key = "executable";
      else if (name.includes(".so")) key = "shared libraries";
      else key = "other";
      continue;
    }
    if (line.startsWith("Pss:")) out.set(key, (out.get(key) ?? 0) + Number(line.split(/\s+/)[1]) / 1024);
  }
  return out;
}

/**
 * A process's PSS (or another smaps_rollup field: "Pss_Anon" leaves out the shared text of
 * the executable, whose share depends on how many other processes run the same binary;
 * every node process on the machine shares berthd's).
 */
export function pssBytes(pid: number, field: "Pss" | "Pss_Anon" = "Pss"): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** PSS of a process and all its descendants (berthd's worker threads are in-process; its children are not). */
export function treePssBytes(pid: number): number {
  const children = new Map<number, number[]>();
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(p));
      children.set(ppid, list);
    } catch {
      /* gone */
    }
  }
  let total = 0;
  const todo = [pid];
  while (todo.length > 0) {
    const p = todo.pop() as number;
    total += pssBytes(p);
    todo.push(...(children.get(p) ?? []));
  }
  return total;
}

/** Pids of processes whose argv[0] ends with `name` and whose command line mentions one of `ids`. */
export function monitorPids(name: string, ids: string[]): number[] {
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

/** One runtime under test. */
export interface Target {
  name: string;
  socket: string;
  pid: number | undefined;
  /** The busybox test image as this runtime pulls it. */
  image: string;
  logDir: string;
  /** Monitor process name (argv[0] suffix) and whether its cmdline names pod or container ids. */
  monitor: { name: string; by: "pod" | "container" } | undefined;
}

export const CONMON = { name: "conmon", by: "container" } as const;
export const CONTAINERD_SHIM = { name: "containerd-shim-runc-v2", by: "pod" } as const;

/**
 * The namespace options kubelet (1.26+, `namespacesForPod`) sends for a default
 * pod, in both the PodSandboxConfig and every ContainerConfig: network and IPC
 * of the pod, a PID namespace per container unless the pod sets
 * shareProcessNamespace (`--share-pid`: pid POD).
 */
export function kubeletNamespaceOptions(): { network: NamespaceMode; pid: NamespaceMode; ipc: NamespaceMode; targetId: string } {
  return { network: NamespaceMode.POD, pid: flag("--share-pid") ? NamespaceMode.POD : NamespaceMode.CONTAINER, ipc: NamespaceMode.POD, targetId: "" };
}

/** A pod config with a unique uid and its own log directory. */
export function podConfig(t: Target, run: string, k: string) {
  return {
    metadata: { name: `bench-${k}`, namespace: "bench", uid: `bench-${run}-${k}`, attempt: 0 },
    logDirectory: join(t.logDir, `${run}-${k}`),
    linux: { securityContext: { namespaceOptions: kubeletNamespaceOptions() } },
  };
}

export function sleeperConfig(t: Target) {
  return {
    metadata: { name: "sleeper", attempt: 0 },
    image: { image: t.image },
    command: ["sleep", "3600"],
    logPath: "sleeper.log",
    linux: { securityContext: { namespaceOptions: kubeletNamespaceOptions() } },
  };
}

export interface RunningPod {
  podSandboxId: string;
  containerId: string;
}

/** Starts pods with one sleeping container each, `parallel` at a time. */
export async function startPods(client: CriClient, t: Target, run: string, from: number, to: number, parallel = 4): Promise<RunningPod[]> {
  const out: RunningPod[] = [];
  let next = from;
  const worker = async (): Promise<void> => {
    while (next < to) {
      const config = podConfig(t, run, String(next++));
      const { podSandboxId } = await client.runtime.runPodSandbox({ config });
      const { containerId } = await client.runtime.createContainer({ podSandboxId, config: sleeperConfig(t), sandboxConfig: config });
      await client.runtime.startContainer({ containerId });
      out.push({ podSandboxId, containerId });
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return out;
}

export async function removePods(client: CriClient, pods: readonly RunningPod[], parallel = 4): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < pods.length) {
      const p = pods[next++] as RunningPod;
      await client.runtime.stopPodSandbox({ podSandboxId: p.podSandboxId });
      await client.runtime.removePodSandbox({ podSandboxId: p.podSandboxId });
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

// ------------------------------------------------------------------ printing

export interface Row {
  figure: string;
  unit: "ms" | "µs" | "s" | "MB" | "";
  berth: number | undefined;
  containerd: number | undefined;
  /** The issue's goal for the ratio berth/containerd (or an absolute goal), as text. */
  goal?: string;
}

function fmt(v: number | undefined, unit: Row["unit"]): string {
  if (v === undefined || !Number.isFinite(v)) return "-";
  return `${v.toFixed(unit === "µs" || unit === "" ? 0 : 2)}${unit ? ` ${unit}` : ""}`;
}

/** Prints rows as `figure | berth | containerd | ratio | goal`. */
export function printTable(title: string, rows: readonly Row[]): void {
  const w = Math.max(44, ...rows.map((r) => r.figure.length));
  console.log(`\n== ${title}`);
  console.log(`  ${"figure".padEnd(w)} ${"berth".padStart(12)} ${"containerd".padStart(12)} ${"ratio".padStart(7)}  goal`);
  for (const r of rows) {
    const ratio = r.berth !== undefined && r.containerd !== undefined && r.containerd > 0 ? (r.berth / r.containerd).toFixed(2) : "-";
    console.log(`  ${r.figure.padEnd(w)} ${fmt(r.berth, r.unit).padStart(12)} ${fmt(r.containerd, r.unit).padStart(12)} ${ratio.padStart(7)}  ${r.goal ?? ""}`);
  }
}

// ------------------------------------------------------------------ environment

/** The pause image containerd needs, built from the host's busybox. */
export async function pushPause(registryHost: string, workDir: string): Promise<string> {
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

export interface Containerd {
  socket: string;
  child: ChildProcess;
  stop: () => Promise<void>;
}

/** Debian's containerd with its own root, state and socket under base; the CRI plugin on our CNI conf dir and registry. */
export async function startContainerd(base: string, cniConfDir: string, registryHost: string, pause: string): Promise<Containerd> {
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

/** Builds (cached in $TMPDIR) the generated multi-layer "big" image: `mb` MB uncompressed in `layers` data layers plus a base. */
export async function buildBig(mb: number, layers: number): Promise<string> {
  const out = join(tmpdir(), `berth-bench-big-${mb}mb-${layers}l`);
  const marker = join(out, "big", "index.json");
  if (!existsSync(marker) || !readFileSync(marker, "utf8").includes("latest")) {
    process.stderr.write(`building the big image (${mb} MB, ${layers} layers) in ${out} …\n`);
    await buildStandardImages(out, { cacheDir: join(tmpdir(), "berth-test-images", "host-cache"), only: ["big"], bigMb: mb, bigLayers: layers });
  }
  return join(out, "big");
}

/**
 * Everything both runtimes share: registry (with the test images pushed), a work dir,
 * a CNI bridge network whose conflist lives in `cniConfDir`. `close()` removes it all.
 */
export interface BenchEnv {
  reg: Registry;
  work: string;
  cniConfDir: string;
  net: TestNetwork;
  /** The busybox test image in the registry. */
  image: string;
  /** berthd on the shared network and registry (plain HTTP), at warn level. */
  startBerth(extraToml?: string, args?: string[], opts?: { berthd?: string; logLevel?: string }): Promise<Daemon>;
  /** containerd on the shared network, with a pause image pushed and pulled. */
  startContainerd(): Promise<Containerd>;
  close(): Promise<void>;
}

export async function benchEnv(): Promise<BenchEnv> {
  const reg = await startRegistry();
  const images = await ensureTestImages(reg);
  const work = mkdtempSync(join(tmpdir(), "berth-bench-"));
  const cniConfDir = join(work, "cni");
  mkdirSync(cniConfDir, { recursive: true });
  const net = makeTestNetwork(work);
  net.install(cniConfDir);
  const daemons: Daemon[] = [];
  const env: BenchEnv = {
    reg,
    work,
    cniConfDir,
    net,
    image: images["busybox:latest"].ref,
    async startBerth(extraToml = "", args = [], opts = {}) {
      const d = await startDaemon({
        configToml: `[image.registries."${reg.host}"]\nplain_http = true\n${extraToml}`,
        logLevel: opts.logLevel ?? "warn",
        args,
        ...(opts.berthd ? { berthd: opts.berthd } : {}),
      });
      // The daemon's own CNI conf dir gets the shared network.
      net.install(d.dirs.cniConfDir);
      daemons.push(d);
      return d;
    },
    async startContainerd() {
      const pause = await pushPause(reg.host, work);
      const c = await startContainerd(work, cniConfDir, reg.host, pause);
      const pc = new CriClient(c.socket, { defaultTimeoutMs: 120_000 });
      await pc.image.pullImage({ image: { image: pause } });
      pc.close();
      return c;
    },
    async close() {
      for (const d of daemons) if (d.process.exitCode === null && d.process.signalCode === null) await d.stop();
      net.cleanup();
      await reg.stop();
      for (const dir of [work, ...daemons.map((d) => d.dirs.base)]) {
        if (!existsSync(dir)) continue;
        if (mountsUnder(dir).length === 0) rmSync(dir, { recursive: true, force: true });
        else console.error(`leaving ${dir}: mounts remain under it`);
      }
    },
  };
  return env;
}

/** The target record of a berthd started by benchEnv. */
export function berthTarget(env: BenchEnv, d: Daemon): Target {
  return { name: "berth", socket: d.dirs.socket, pid: d.process.pid, image: env.image, logDir: join(env.work, "logs"), monitor: CONMON };
}

export function containerdTarget(env: BenchEnv, c: Containerd): Target {
  return { name: "containerd", socket: c.socket, pid: c.child.pid, image: env.image, logDir: join(env.work, "logs"), monitor: CONTAINERD_SHIM };
}
