// Starts the built berthd (dist/cmd/berthd/main.js) with a temp root, state dir
// and socket, and gives the test a CRI client on that socket. The daemon is a
// real process: tests can SIGTERM it, kill -9 it and start it again on the same
// directories to check recovery.

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { CriClient } from "../../pkg/cri/index.js";

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root (this file runs from dist/test-e2e/harness). */
export const REPO_ROOT = resolve(here, "..", "..", "..");
export const BERTHD = join(REPO_ROOT, "dist", "cmd", "berthd", "main.js");
export const BERTHCTL = join(REPO_ROOT, "dist", "cmd", "berthctl", "main.js");

export interface DaemonOptions {
  /** Extra TOML appended to the generated config (root/state/socket are set by the harness). */
  configToml?: string;
  /** Reuse these directories (to restart a daemon on the state of a previous one). */
  dirs?: DaemonDirs;
  logLevel?: string;
  /** Node.js options for berthd (e.g. `--cpu-prof`); default: BERTH_NODE_ARGS (space-separated). */
  nodeArgs?: string[];
  /** Extra command-line arguments. */
  args?: string[];
  startTimeoutMs?: number;
  /** Another build's berthd entry point (benchmarks compare builds, upgrade tests); default: this tree's dist. */
  berthd?: string;
}

export interface DaemonDirs {
  base: string;
  root: string;
  state: string;
  socket: string;
  config: string;
  logs: string;
  cniConfDir: string;
}

export interface Daemon {
  dirs: DaemonDirs;
  client: CriClient;
  process: ChildProcess;
  /** Everything berthd wrote to stdout/stderr so far. */
  output(): string;
  /** http://127.0.0.1:PORT/metrics of this daemon (its metrics server binds a free port). */
  metricsUrl(): string;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
  /** SIGKILL and wait. */
  kill(): Promise<void>;
  /** Resolves with the exit code when the process exits. */
  exited: Promise<number | null>;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of live) p.kill("SIGKILL");
});

export function makeDirs(): DaemonDirs {
  const base = mkdtempSync(join(tmpdir(), "berth-e2e-"));
  const dirs = {
    base,
    root: join(base, "root"),
    state: join(base, "state"),
    socket: join(base, "state", "berth.sock"),
    config: join(base, "config.toml"),
    logs: join(base, "logs"),
    cniConfDir: join(base, "cni"),
  };
  mkdirSync(dirs.logs, { recursive: true });
  mkdirSync(dirs.cniConfDir, { recursive: true });
  return dirs;
}

/** Waits until Version answers on the socket. */
export async function waitReady(client: CriClient, child: ChildProcess, timeoutMs: number, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`berthd exited with ${child.exitCode} during start-up:\n${output()}`);
    try {
      await client.runtime.version({}, { timeoutMs: 1000 });
      // Version answers before start-up recovery has finished; a gated call waits for it (a restarted
      // daemon's rollbacks are done when this returns).
      await client.runtime.listPodSandbox({}, { timeoutMs: Math.max(1000, deadline - Date.now()) });
      return;
    } catch (err) {
      last = err;
    }
    await sleep(50);
  }
  throw new Error(`berthd did not answer within ${timeoutMs} ms: ${String(last)}\n${output()}`);
}

export async function startDaemon(opts: DaemonOptions = {}): Promise<Daemon> {
  const berthd = opts.berthd ?? BERTHD;
  if (!existsSync(berthd)) throw new Error(`${berthd} is missing: build first (npm run build)`);
  const dirs = opts.dirs ?? makeDirs();
  const toml = [
    `[metrics]`,
    `address = "127.0.0.1:0"`,
    `[cni]`,
    `conf_dir = ${JSON.stringify(dirs.cniConfDir)}`,
    opts.configToml ?? "",
  ].join("\n");
  writeFileSync(dirs.config, toml + "\n");
  // BERTH_NODE_ARGS: extra Node.js flags for the daemon (profiling: "--cpu-prof --cpu-prof-dir=DIR").
  const nodeArgs = (process.env["BERTH_NODE_ARGS"] ?? "").split(" ").filter((a) => a !== "");
  const child = spawn(
    process.execPath,
    [...(opts.nodeArgs ?? nodeArgs), berthd, "--config", dirs.config, "--root", dirs.root, "--state", dirs.state, "--socket", dirs.socket, "--log-level", opts.logLevel ?? "debug", ...(opts.args ?? [])],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  live.add(child);
  let out = "";
  child.stdout?.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr?.on("data", (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((res) =>
    child.once("exit", (code) => {
      live.delete(child);
      res(code);
    }),
  );
  // The socket path as :authority, like the kubelet and crictl 1.26: every e2e test exercises it.
  const client = new CriClient(dirs.socket, { defaultTimeoutMs: 120_000, authority: dirs.socket });
  try {
    await waitReady(client, child, opts.startTimeoutMs ?? 20_000, () => out);
  } catch (err) {
    child.kill("SIGKILL");
    client.close();
    throw err;
  }
  const daemon: Daemon = {
    dirs,
    client,
    process: child,
    output: () => out,
    metricsUrl: () => {
      const m = /"address":"(127\.0\.0\.1:\d+)","msg":"metrics served at \/metrics"/.exec(out);
      if (!m) throw new Error(`berthd did not log its metrics address:\n${out}`);
      return `http://${m[1]}/metrics`;
    },
    exited,
    async stop(timeoutMs = 30_000) {
      client.close();
      if (child.exitCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
    async kill() {
      client.close();
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
  return daemon;
}

/** Removes a daemon's temp directories (after it stopped). */
export function removeDirs(dirs: DaemonDirs): void {
  rmSync(dirs.base, { recursive: true, force: true });
}
