// The minimum the pull benchmark needs to run Debian's containerd 1.6 side by side
// with berthd: its own config and state under a temp dir, the CRI plugin with the
// local registry as a plain-HTTP mirror, and process memory from /proc. (lifecycle.ts
// has a fuller set-up with CNI and a pause image; the lead unifies the two.)

import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CriClient } from "../../pkg/cri/index.js";
import { mountsUnder } from "../../test-e2e/harness/cni-net.js";

/** Proportional set size of a process (its threads included), from /proc/PID/smaps_rollup; NaN when gone. */
export function pssBytes(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Number of threads of a process (berthd's worker threads show here). */
/** CPU seconds (user + system) a process has used, its exited threads included. */
export function cpuSeconds(pid: number): number {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return NaN;
  }
}

/** The scheduler's figures for one thread: ns run, ns spent runnable waiting for a CPU, time slices. */
export function schedStat(pid: number, tid = pid): { runNs: number; waitNs: number; slices: number } {
  try {
    const [run, wait, slices] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").trim().split(" ").map(Number);
    return { runNs: run ?? NaN, waitNs: wait ?? NaN, slices: slices ?? NaN };
  } catch {
    return { runNs: NaN, waitNs: NaN, slices: NaN };
  }
}

export function threadCount(pid: number): number {
  try {
    const m = /^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

export interface Containerd {
  socket: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts /usr/bin/containerd on `base` (root, state, socket, log) with `registryHost` as an http mirror of itself. */
export async function startContainerdForPull(base: string, registryHost: string): Promise<Containerd> {
  const dir = join(base, "containerd");
  const root = join(dir, "root");
  const state = join(dir, "state");
  const cniConf = join(dir, "cni");
  for (const d of [root, state, cniConf]) mkdirSync(d, { recursive: true });
  const socket = join(dir, "containerd.sock");
  const config = join(dir, "config.toml");
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
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = ${JSON.stringify(cniConf)}
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors.${JSON.stringify(registryHost)}]
    endpoint = [${JSON.stringify(`http://${registryHost}`)}]
`,
  );
  const logFd = openSync(join(dir, "containerd.log"), "a");
  const child = spawn("/usr/bin/containerd", ["--config", config], { stdio: ["ignore", logFd, logFd] });
  closeSync(logFd);
  const end = Date.now() + 30_000;
  const client = new CriClient(socket, { defaultTimeoutMs: 2000 });
  try {
    for (;;) {
      try {
        await client.image.listImages({});
        break;
      } catch (err) {
        if (Date.now() > end || child.exitCode !== null) throw new Error(`containerd did not come up: ${(err as Error).message}; see ${join(dir, "containerd.log")}`);
        await sleep(200);
      }
    }
  } finally {
    client.close();
  }
  return {
    socket,
    child,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once("exit", r)));
      }
      for (const m of mountsUnder(dir).sort().reverse()) spawn("umount", ["-l", m]);
      await sleep(300);
    },
  };
}
