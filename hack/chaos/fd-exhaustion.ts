// Fault 3 (part): too many open files. berthd (with a pod and a running
// container) gets its RLIMIT_NOFILE lowered (prlimit on the live process) to a
// few fds above what it holds, then a storm of new client connections, each
// with one call that needs fds (create, exec, status, pull, list), and plain
// HTTP requests to the streaming server. Every failing call must carry a clear
// code (RESOURCE_EXHAUSTED or UNAVAILABLE; DEADLINE_EXCEEDED only as the
// client's own deadline while its connection waits to be accepted), never
// INTERNAL or UNKNOWN; berthd must not die. Once the limit is back: the old
// client and new ones are served, the streaming server answers, every listed
// container has a consistent status, the running container still runs and
// execs, a restart loads the same state, and removing everything leaks nothing.

import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { ContainerState } from "../../api/gen/cri/v1/api.js";
import { CriClient } from "../../pkg/cri/index.js";
import type { Daemon } from "../../test-e2e/harness/daemon.js";
import { makeDirs, removeDirs, startChaosDaemon, type World } from "./env.js";
import { codeName, grpcCode } from "./kill-loop.js";
import { formatLeaks, leakCount, scanLeaks } from "./leaks.js";

export interface FdExhaustionReport {
  /** Outcomes of the calls during the storm, by "op: code". */
  outcomes: Record<string, number>;
  /** Streaming-server requests during the storm, by outcome. */
  streaming: Record<string, number>;
  fdLimit: number;
  failures: string[];
}

const OK_CODES = new Set(["RESOURCE_EXHAUSTED", "UNAVAILABLE", "DEADLINE_EXCEEDED"]);

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Sets the soft limit (or "soft:hard"); the hard one is never lowered: raising it back would need CAP_SYS_RESOURCE. */
function setNofile(pid: number, limit: string): void {
  const r = spawnSync("prlimit", ["--pid", String(pid), `--nofile=${limit}`], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`prlimit --nofile=${limit} on ${pid}: ${r.stderr}`);
}

function nofile(pid: number): string {
  const r = spawnSync("prlimit", ["--pid", String(pid), "--nofile", "--noheadings", "--raw", "--output=SOFT,HARD"], { encoding: "utf8" });
  const [soft, hard] = r.stdout.trim().split(/\s+/);
  if (r.status !== 0 || !soft || !hard) throw new Error(`prlimit --nofile on ${pid}: ${r.stderr}`);
  return `${soft}:${hard}`;
}

export async function runFdExhaustion(world: World, log: (l: string) => void, opts: { rounds?: number; clients?: number } = {}): Promise<FdExhaustionReport> {
  const rep: FdExhaustionReport = { outcomes: {}, streaming: {}, fdLimit: 0, failures: [] };
  const rounds = opts.rounds ?? 3;
  const clients = opts.clients ?? 24;
  let d: Daemon | undefined;
  let restore: (() => void) | undefined;
  try {
    const dirs = makeDirs();
    d = await startChaosDaemon(world, { dirs });
    const rt = d.client.runtime;
    const bb = world.images["busybox:latest"].ref;
    const other = world.images["entrypoint:latest"].ref;
    await d.client.image.pullImage({ image: { image: bb } });
    const logDirectory = join(dirs.base, "pod-logs");
    mkdirSync(logDirectory, { recursive: true });
    const podConfig = { metadata: { name: "fds", namespace: "chaos", uid: "uid-fds", attempt: 0 }, hostname: "fds", logDirectory };
    const podId = (await rt.runPodSandbox({ config: podConfig })).podSandboxId;
    let n = 0;
    const cconf = (): Record<string, unknown> => ({ metadata: { name: `c${n++}`, attempt: 0 }, image: { image: bb }, command: ["sleep", "600"], logPath: `c${n}.log` });
    const c1 = (await rt.createContainer({ podSandboxId: podId, config: cconf(), sandboxConfig: podConfig })).containerId;
    await rt.startContainer({ containerId: c1 });
    const streamUrl = (await rt.exec({ containerId: c1, cmd: ["true"], stdout: true })).url;
    const streamBase = new URL(streamUrl).origin;

    const pid = d.process.pid;
    if (pid === undefined) throw new Error("berthd has no pid");
    const original = nofile(pid);
    restore = () => setNofile(pid, original);
    const ops: Array<[string, (c: CriClient) => Promise<unknown>]> = [
      ["version", (c) => c.runtime.version({})],
      ["list", (c) => c.runtime.listContainers({})],
      ["status", (c) => c.runtime.containerStatus({ containerId: c1 })],
      ["exec", (c) => c.runtime.execSync({ containerId: c1, cmd: ["echo", "hi"], timeout: 10 })],
      ["create", (c) => c.runtime.createContainer({ podSandboxId: podId, config: cconf(), sandboxConfig: podConfig })],
      ["imageStatus", (c) => c.image.imageStatus({ image: { image: bb } })],
      ["pull", (c) => c.image.pullImage({ image: { image: other } })],
    ];
    for (let round = 0; round < rounds; round++) {
      rep.fdLimit = fdCount(pid) + round * 4;
      setNofile(pid, `${rep.fdLimit}:`);
      const open: CriClient[] = [];
      const calls: Array<Promise<void>> = [];
      for (let i = 0; i < clients; i++) {
        const c = new CriClient(dirs.socket, { defaultTimeoutMs: 8000, authority: dirs.socket });
        open.push(c);
        const [name, op] = ops[(i + round) % ops.length]!;
        calls.push(
          op(c).then(
            () => void (rep.outcomes[`${name}: OK`] = (rep.outcomes[`${name}: OK`] ?? 0) + 1),
            (err: unknown) => {
              const code = codeName(grpcCode(err));
              rep.outcomes[`${name}: ${code}`] = (rep.outcomes[`${name}: ${code}`] ?? 0) + 1;
              if (!OK_CODES.has(code)) rep.failures.push(`fds: ${name} failed with ${code}: ${(err as Error).message.slice(0, 300)}`);
            },
          ),
        );
        if (i % 4 === 0) {
          calls.push(
            fetch(`${streamBase}/no-such-token`, { signal: AbortSignal.timeout(8000) }).then(
              (r) => void (rep.streaming[`HTTP ${r.status}`] = (rep.streaming[`HTTP ${r.status}`] ?? 0) + 1),
              () => void (rep.streaming["connection failed"] = (rep.streaming["connection failed"] ?? 0) + 1),
            ),
          );
        }
      }
      await Promise.all(calls);
      for (const c of open) c.close();
      if (d.process.exitCode !== null || d.process.signalCode !== null) {
        rep.failures.push(`fds: berthd died during round ${round} (limit ${rep.fdLimit}): exit ${d.process.exitCode ?? d.process.signalCode}\n${d.output().slice(-3000)}`);
        return rep;
      }
    }
    restore();
    restore = undefined;
    const failed = Object.entries(rep.outcomes).filter(([k]) => !k.endsWith(": OK")).reduce((s, [, v]) => s + v, 0);
    if (failed === 0) rep.failures.push("fds: no call failed under the low fd limit: the storm never exhausted berthd's fds");

    // The limit is back: old and new clients are served, the streaming server answers.
    await new Promise((r) => setTimeout(r, 500));
    const fresh = new CriClient(dirs.socket, { defaultTimeoutMs: 20_000, authority: dirs.socket });
    try {
      await fresh.runtime.version({});
      await rt.version({});
    } catch (err) {
      rep.failures.push(`fds: the CRI socket does not serve after the limit is back: ${codeName(grpcCode(err))}: ${(err as Error).message.slice(0, 300)}`);
    } finally {
      fresh.close();
    }
    const r = await fetch(`${streamBase}/no-such-token`, { signal: AbortSignal.timeout(10_000) }).catch((err: unknown) => err as Error);
    if (r instanceof Error) rep.failures.push(`fds: the streaming server does not answer after the limit is back: ${r.message}`);
    else if (r.status !== 404) rep.failures.push(`fds: the streaming server answers an unknown token with HTTP ${r.status}, want 404`);

    // State: every listed container has a consistent status; the first still runs and execs.
    const listed = (await rt.listContainers({})).containers;
    for (const c of listed) {
      const st = (await rt.containerStatus({ containerId: c.id })).status;
      if (!st || st.state !== c.state) rep.failures.push(`fds: container ${c.id} listed ${ContainerState[c.state]} but its status says ${ContainerState[st?.state ?? 3]}`);
      if (c.id !== c1 && st?.state !== ContainerState.CONTAINER_CREATED) rep.failures.push(`fds: container ${c.id} created during the storm is ${ContainerState[st?.state ?? 3]}`);
    }
    const e = await rt.execSync({ containerId: c1, cmd: ["echo", "hi"], timeout: 10 });
    if (e.exitCode !== 0 || Buffer.from(e.stdout).toString() !== "hi\n") rep.failures.push(`fds: exec after the storm: exit ${e.exitCode}`);
    // A container created in the storm starts.
    const stormed = listed.find((c) => c.id !== c1);
    if (stormed) await rt.startContainer({ containerId: stormed.id }).catch((err: unknown) => rep.failures.push(`fds: a container created during the storm does not start: ${(err as Error).message.slice(0, 300)}`));

    // A restart loads the same state.
    await d.stop();
    d = await startChaosDaemon(world, { dirs });
    const after = (await d.client.runtime.listContainers({})).containers.map((c) => c.id).sort();
    if (JSON.stringify(after) !== JSON.stringify(listed.map((c) => c.id).sort())) rep.failures.push(`fds: after a restart ${after.length} containers are listed, before it ${listed.length}`);
    const s1 = (await d.client.runtime.containerStatus({ containerId: c1 })).status;
    if (s1?.state !== ContainerState.CONTAINER_RUNNING) rep.failures.push(`fds: after a restart the first container is ${ContainerState[s1?.state ?? 3]}`);

    await d.client.runtime.stopPodSandbox({ podSandboxId: podId });
    await d.client.runtime.removePodSandbox({ podSandboxId: podId });
    for (const img of (await d.client.image.listImages({})).images) await d.client.image.removeImage({ image: { image: img.id } });
    const leaks = scanLeaks(world, dirs);
    if (leakCount(leaks) > 0) rep.failures.push(`fds: leaks after removing everything: ${formatLeaks(leaks)}`);
    log(`  too many open files: calls ${JSON.stringify(rep.outcomes)}; streaming ${JSON.stringify(rep.streaming)}; last limit ${rep.fdLimit}`);
  } catch (err) {
    rep.failures.push(`fds: harness error: ${(err as Error).stack ?? String(err)}`);
  } finally {
    try {
      restore?.();
    } catch {
      /* the daemon is gone */
    }
    if (d) {
      await d.stop().catch(() => undefined);
      removeDirs(d.dirs);
    }
  }
  return rep;
}
