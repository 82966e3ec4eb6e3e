// Fault 1: a mixed workload against berthd, SIGKILL at random moments, restart,
// and checks after each restart against what the client was told:
//  - every pod and container the client was told exists still exists, in the
//    state the client last saw (or one an interrupted call could have led to);
//  - containers whose process exited (also while berthd was down) are EXITED
//    with the exit code their command chose;
//  - no runc container and no conmon of this daemon that berthd does not list;
//  - every few kills, and at the end: the client removes everything, GC runs,
//    and nothing is left on the host (leaks counted by kind).

import { setTimeout as sleep } from "node:timers/promises";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ServiceError } from "@grpc/grpc-js";
import { ContainerState, PodSandboxState, type ContainerConfig, type DeepPartial, type PodSandboxConfig } from "../../api/gen/cri/v1/api.js";
import type { Daemon, DaemonDirs } from "../../test-e2e/harness/daemon.js";
import { removeDirs, startChaosDaemon, type World } from "./env.js";
import { addLeaks, conmons, formatLeaks, LEAK_KINDS, leakCount, runcContainers, scanLeaks, type LeakKind } from "./leaks.js";
import { Rng } from "./rng.js";

export interface KillLoopOptions {
  kills: number;
  seed: number;
  /** Full cleanup + leak scan every this many kills (and always at the end). */
  cleanupEvery: number;
  /** Workers issuing calls at the same time. */
  concurrency: number;
  /** Stop starting new kill cycles after this long (ms). */
  budgetMs: number;
  log: (line: string) => void;
}

export interface KillLoopReport {
  seed: number;
  kills: number;
  restarts: number;
  operations: Record<string, number>;
  interrupted: number;
  cleanErrors: Record<string, number>;
  containersChecked: number;
  podsChecked: number;
  exitsWhileDown: number;
  leakScans: number;
  leaks: Record<LeakKind, number>;
  failures: string[];
}

type CtrKind = "sleeper" | "exiter";
type CtrState = "created" | "running" | "exited";

interface MCtr {
  id: string;
  name: string;
  kind: CtrKind;
  /** What an exiter's command exits with, and after how many seconds. */
  code: number;
  afterS: number;
  state: CtrState;
  /** Stopped by the client: its exit code is the signal's, not the command's. */
  stopped: boolean;
  startedAt: number;
  /** States an interrupted call could have left it in (checked and resolved after restart). */
  maybe?: { states: CtrState[]; mayBeGone: boolean };
}

interface MPod {
  id: string;
  name: string;
  config: DeepPartial<PodSandboxConfig>;
  state: "ready" | "notready";
  ctrs: Map<string, MCtr>;
  maybe?: "notready" | "gone-or-present";
}

/**
 * A call that stops containers (and maybe removes them) was interrupted: each may be left as it
 * was or exited, and one stopped by the call exits with the signal's code, not its command's.
 */
function mayHaveStopped(c: MCtr, mayBeGone: boolean): void {
  if (c.state !== "exited") c.stopped = true;
  c.maybe = { states: [c.state, "exited"], mayBeGone };
}

const INTERRUPT_CODES = new Set([1, 4, 14]);
const BAD_CODES = new Set([2, 13]);
const CODE_NAMES: Record<number, string> = { 0: "OK", 1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND", 6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION", 10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE", 15: "DATA_LOSS", 16: "UNAUTHENTICATED" };

export function codeName(code: number | undefined): string {
  return code === undefined ? "no-code" : (CODE_NAMES[code] ?? String(code));
}

export function grpcCode(err: unknown): number | undefined {
  const c = (err as Partial<ServiceError> | undefined)?.code;
  return typeof c === "number" ? c : undefined;
}

/** A pending creation whose answer was lost to a kill: looked up by label after restart. */
interface Pending {
  kind: "pod" | "ctr";
  name: string;
  pod?: MPod;
  ctr?: Omit<MCtr, "id">;
}

export async function runKillLoop(world: World, opts: KillLoopOptions): Promise<KillLoopReport> {
  const rng = new Rng(opts.seed);
  const rep: KillLoopReport = {
    seed: opts.seed,
    kills: 0,
    restarts: 0,
    operations: {},
    interrupted: 0,
    cleanErrors: {},
    containersChecked: 0,
    podsChecked: 0,
    exitsWhileDown: 0,
    leakScans: 0,
    leaks: Object.fromEntries(LEAK_KINDS.map((k) => [k, 0])) as Record<LeakKind, number>,
    failures: [],
  };
  const outDir = join(tmpdir(), `berth-chaos-logs-${opts.seed}`);
  mkdirSync(outDir, { recursive: true });
  /** berthd's output of each run, kept for diagnosing failures (removed when the run had none). */
  const keepOutput = (daemon: Daemon, n: number): void => writeFileSync(join(outDir, `berthd-${String(n).padStart(3, "0")}.log`), daemon.output());
  const fail = (msg: string): void => {
    rep.failures.push(`[kill ${rep.kills}] ${msg}`);
    opts.log(`  FAIL ${msg}`);
  };
  const bb = world.images["busybox:latest"].ref;
  const spareImages = [world.images["nonroot:latest"].ref, world.images["entrypoint:latest"].ref];
  const pods = new Map<string, MPod>();
  const pending: Pending[] = [];
  const busy = new Set<string>();
  let seq = 0;
  let d: Daemon = await startChaosDaemon(world);
  const dirs: DaemonDirs = d.dirs;
  const logRoot = join(dirs.base, "pod-logs");
  const started = Date.now();
  let dead = false;

  const count = (op: string): void => {
    rep.operations[op] = (rep.operations[op] ?? 0) + 1;
  };
  /** Classifies a failed call: true when a kill interrupted it (its outcome is unknown). */
  const interruptedBy = (op: string, err: unknown): boolean => {
    const code = grpcCode(err);
    if (dead || (code !== undefined && INTERRUPT_CODES.has(code))) {
      rep.interrupted++;
      opts.log(`    interrupted: ${op} (${codeName(code)})`);
      return true;
    }
    if (code === undefined || BAD_CODES.has(code)) fail(`${op}: ${codeName(code)}: ${(err as Error).message}`);
    else {
      const k = `${op}:${codeName(code)}`;
      rep.cleanErrors[k] = (rep.cleanErrors[k] ?? 0) + 1;
      fail(`${op} of a valid object answered ${codeName(code)}: ${(err as Error).message}`);
    }
    return false;
  };

  await d.client.image.pullImage({ image: { image: bb } });

  // ---------------------------------------------------------------- operations
  const ops: Array<{ name: string; weight: number; run: () => Promise<void> | undefined }> = [
    {
      name: "RunPodSandbox",
      weight: 3,
      run: () => {
        if (pods.size + pending.filter((p) => p.kind === "pod").length >= 4) return undefined;
        const name = `chaos-${opts.seed}-${seq++}`;
        const logDirectory = join(logRoot, name);
        mkdirSync(logDirectory, { recursive: true });
        const config: DeepPartial<PodSandboxConfig> = {
          metadata: { name, namespace: "chaos", uid: `uid-${name}`, attempt: 0 },
          hostname: name.slice(0, 60),
          logDirectory,
          labels: { "chaos-name": name },
          ...(rng.chance(0.3) ? { portMappings: [{ protocol: 0, containerPort: 80, hostPort: rng.int(40000, 59999), hostIp: "127.0.0.1" }] } : {}),
        };
        const pod: MPod = { id: "", name, config, state: "ready", ctrs: new Map() };
        busy.add(name);
        return d.client.runtime
          .runPodSandbox({ config })
          .then((r) => {
            pod.id = r.podSandboxId;
            pods.set(pod.id, pod);
            count("RunPodSandbox");
          })
          .catch((err: unknown) => {
            if (interruptedBy(`RunPodSandbox ${name}`, err)) pending.push({ kind: "pod", name, pod });
          })
          .finally(() => busy.delete(name));
      },
    },
    {
      name: "CreateContainer",
      weight: 4,
      run: () => {
        const pod = freePod((p) => p.state === "ready" && p.ctrs.size < 4);
        if (!pod) return undefined;
        const kind: CtrKind = rng.chance(0.5) ? "sleeper" : "exiter";
        const name = `c${seq++}`;
        const code = rng.int(1, 120);
        const afterS = rng.int(0, 3);
        const config: DeepPartial<ContainerConfig> = {
          metadata: { name, attempt: 0 },
          image: { image: bb },
          command: kind === "sleeper" ? ["sleep", "600"] : ["/bin/sh", "-c", `sleep ${afterS}; exit ${code}`],
          logPath: `${name}.log`,
          labels: { "chaos-name": name },
        };
        const ctr: Omit<MCtr, "id"> = { name, kind, code, afterS, state: "created", stopped: false, startedAt: 0 };
        return hold(pod, () =>
          d.client.runtime
            .createContainer({ podSandboxId: pod.id, config, sandboxConfig: pod.config })
            .then((r) => {
              pod.ctrs.set(r.containerId, { ...ctr, id: r.containerId });
              count("CreateContainer");
            })
            .catch((err: unknown) => {
              if (interruptedBy(`CreateContainer ${name}`, err)) pending.push({ kind: "ctr", name, pod, ctr });
            }),
        );
      },
    },
    {
      name: "StartContainer",
      weight: 4,
      run: () => withCtr((c) => c.state === "created", (_pod, c) =>
        d.client.runtime.startContainer({ containerId: c.id }).then(
          () => {
            c.state = "running";
            c.startedAt = Date.now();
            count("StartContainer");
          },
          (err: unknown) => {
            if (interruptedBy(`StartContainer ${c.name}`, err)) c.maybe = { states: ["created", "running", "exited"], mayBeGone: false };
          },
        ),
      ),
    },
    {
      name: "StopContainer",
      weight: 2,
      run: () => withCtr((c) => c.state === "running", (_pod, c) =>
        d.client.runtime.stopContainer({ containerId: c.id, timeout: BigInt(rng.int(0, 1)) }).then(
          () => {
            c.state = "exited";
            c.stopped = true;
            count("StopContainer");
          },
          (err: unknown) => {
            if (interruptedBy(`StopContainer ${c.name}`, err)) {
              c.stopped = true;
              c.maybe = { states: ["running", "exited"], mayBeGone: false };
            }
          },
        ),
      ),
    },
    {
      name: "RemoveContainer",
      weight: 2,
      run: () => withCtr((c) => c.state !== "running", (pod, c) =>
        d.client.runtime.removeContainer({ containerId: c.id }).then(
          () => {
            pod.ctrs.delete(c.id);
            count("RemoveContainer");
          },
          (err: unknown) => {
            // RemoveContainer kills a container before it removes it: an interrupted one may be left exited.
            if (interruptedBy(`RemoveContainer ${c.name}`, err)) mayHaveStopped(c, true);
          },
        ),
      ),
    },
    {
      name: "ExecSync",
      weight: 3,
      run: () => withCtr((c) => c.state === "running" && c.kind === "sleeper", (_pod, c) => {
        const token = `tok${seq++}`;
        return d.client.runtime.execSync({ containerId: c.id, cmd: ["echo", token], timeout: 10n }).then(
          (r) => {
            if (r.exitCode !== 0 || r.stdout.toString() !== `${token}\n`) fail(`ExecSync in ${c.id.slice(0, 12)}: exit ${r.exitCode}, stdout ${JSON.stringify(r.stdout.toString())}`);
            count("ExecSync");
          },
          (err: unknown) => void interruptedBy(`ExecSync ${c.name}`, err),
        );
      }),
    },
    {
      name: "ReopenContainerLog",
      weight: 1,
      run: () => withCtr((c) => c.state === "running" && c.kind === "sleeper", (_pod, c) =>
        d.client.runtime.reopenContainerLog({ containerId: c.id }).then(
          () => count("ReopenContainerLog"),
          (err: unknown) => void interruptedBy(`ReopenContainerLog ${c.name}`, err),
        ),
      ),
    },
    {
      name: "StopPodSandbox",
      weight: 1,
      run: () => {
        const pod = freePod((p) => p.state === "ready" && p.ctrs.size >= 2);
        if (!pod) return undefined;
        return hold(pod, () =>
          d.client.runtime.stopPodSandbox({ podSandboxId: pod.id }).then(
            () => {
              pod.state = "notready";
              for (const c of pod.ctrs.values()) {
                if (c.state !== "exited") c.stopped = true;
                c.state = "exited";
              }
              count("StopPodSandbox");
            },
            (err: unknown) => {
              if (interruptedBy(`StopPodSandbox ${pod.name}`, err)) {
                pod.maybe = "notready";
                for (const c of pod.ctrs.values()) mayHaveStopped(c, false);
              }
            },
          ),
        );
      },
    },
    {
      name: "RemovePodSandbox",
      weight: 1,
      run: () => {
        const pod = freePod((p) => p.state === "notready" || p.ctrs.size >= 3);
        if (!pod) return undefined;
        return hold(pod, () =>
          d.client.runtime.removePodSandbox({ podSandboxId: pod.id }).then(
            () => {
              pods.delete(pod.id);
              count("RemovePodSandbox");
            },
            (err: unknown) => {
              if (interruptedBy(`RemovePodSandbox ${pod.name}`, err)) {
                pod.maybe = "gone-or-present";
                // RemovePodSandbox stops and removes the containers first: any of them may be gone.
                for (const c of pod.ctrs.values()) mayHaveStopped(c, true);
              }
            },
          ),
        );
      },
    },
    {
      name: "PullImage",
      weight: 1,
      run: () => {
        const ref = rng.pick(spareImages);
        if (busy.has(ref)) return undefined;
        busy.add(ref);
        return d.client.image
          .pullImage({ image: { image: ref } })
          .then(
            () => count("PullImage"),
            (err: unknown) => void interruptedBy(`PullImage ${ref}`, err),
          )
          .finally(() => busy.delete(ref));
      },
    },
    {
      name: "RemoveImage",
      weight: 1,
      run: () => {
        const ref = rng.pick(spareImages);
        if (busy.has(ref)) return undefined;
        busy.add(ref);
        return d.client.image
          .removeImage({ image: { image: ref } })
          .then(
            () => count("RemoveImage"),
            (err: unknown) => void interruptedBy(`RemoveImage ${ref}`, err),
          )
          .finally(() => busy.delete(ref));
      },
    },
  ];
  const totalWeight = ops.reduce((n, o) => n + o.weight, 0);

  function freePod(pred: (p: MPod) => boolean): MPod | undefined {
    const candidates = [...pods.values()].filter((p) => !busy.has(p.id) && p.maybe === undefined && pred(p));
    return candidates.length ? rng.pick(candidates) : undefined;
  }
  function hold(pod: MPod, fn: () => Promise<void>): Promise<void> {
    busy.add(pod.id);
    return fn().finally(() => busy.delete(pod.id));
  }
  function withCtr(pred: (c: MCtr) => boolean, fn: (pod: MPod, c: MCtr) => Promise<void>): Promise<void> | undefined {
    const candidates: Array<[MPod, MCtr]> = [];
    for (const p of pods.values()) {
      if (busy.has(p.id) || p.maybe !== undefined) continue;
      for (const c of p.ctrs.values()) if (c.maybe === undefined && pred(c)) candidates.push([p, c]);
    }
    if (!candidates.length) return undefined;
    const [pod, c] = rng.pick(candidates);
    return hold(pod, () => fn(pod, c));
  }

  async function worker(stopAt: { done: boolean }): Promise<void> {
    while (!stopAt.done) {
      let r = rng.next() * totalWeight;
      const op = ops.find((o) => (r -= o.weight) < 0) ?? ops[0];
      const p = op?.run();
      if (p) await p;
      else await sleep(20);
    }
  }

  // ---------------------------------------------------------------- checks after a restart
  async function reconcile(): Promise<void> {
    const client = d.client;
    const serverPods = (await client.runtime.listPodSandbox({})).items;
    const serverCtrs = (await client.runtime.listContainers({})).containers;
    const podById = new Map(serverPods.map((p) => [p.id, p]));
    const ctrById = new Map(serverCtrs.map((c) => [c.id, c]));
    // Creations whose answer was lost: the object exists whole or not at all.
    for (const p of pending.splice(0)) {
      if (p.kind === "pod" && p.pod) {
        const found = serverPods.filter((s) => s.labels["chaos-name"] === p.name);
        if (found.length > 1) fail(`pod ${p.name}: ${found.length} sandboxes for one interrupted RunPodSandbox`);
        const s = found[0];
        if (s) {
          p.pod.id = s.id;
          p.pod.state = s.state === PodSandboxState.SANDBOX_READY ? "ready" : "notready";
          pods.set(s.id, p.pod);
        }
      } else if (p.kind === "ctr" && p.pod && p.ctr) {
        const found = serverCtrs.filter((s) => s.labels["chaos-name"] === p.name);
        if (found.length > 1) fail(`container ${p.name}: ${found.length} containers for one interrupted CreateContainer`);
        const s = found[0];
        if (s) {
          if (s.state !== ContainerState.CONTAINER_CREATED && !(p.pod.maybe !== undefined && s.state === ContainerState.CONTAINER_EXITED)) fail(`container ${p.name} from an interrupted CreateContainer is in state ${ContainerState[s.state]}`);
          if (pods.has(p.pod.id)) p.pod.ctrs.set(s.id, { ...p.ctr, id: s.id, state: s.state === ContainerState.CONTAINER_EXITED ? "exited" : "created" });
        }
      }
    }
    // Pods.
    for (const pod of [...pods.values()]) {
      rep.podsChecked++;
      const s = podById.get(pod.id);
      if (!s) {
        if (pod.maybe === "gone-or-present") pods.delete(pod.id);
        else fail(`pod ${pod.name} (${pod.id.slice(0, 12)}) the client was told exists is gone`);
        continue;
      }
      const st = s.state === PodSandboxState.SANDBOX_READY ? "ready" : "notready";
      if (pod.maybe !== undefined) pod.state = st;
      else if (st !== pod.state) fail(`pod ${pod.name}: state ${st}, the client saw ${pod.state}`);
      delete pod.maybe;
    }
    // Containers.
    for (const pod of pods.values()) {
      for (const c of [...pod.ctrs.values()]) {
        rep.containersChecked++;
        const s = ctrById.get(c.id);
        const label = `container ${c.name} (${c.id.slice(0, 12)}, ${c.kind})`;
        if (!s) {
          if (c.maybe?.mayBeGone) pod.ctrs.delete(c.id);
          else fail(`${label} the client was told exists is gone`);
          continue;
        }
        const st: CtrState = s.state === ContainerState.CONTAINER_CREATED ? "created" : s.state === ContainerState.CONTAINER_RUNNING ? "running" : "exited";
        const allowed: CtrState[] = c.maybe ? [...c.maybe.states] : [c.state];
        if (c.state === "running" && c.kind === "exiter") allowed.push("exited");
        const wrongState = !allowed.includes(st);
        if (wrongState) {
          const full = (await client.runtime.containerStatus({ containerId: c.id })).status;
          fail(`${label}: state ${st} (reason ${JSON.stringify(full?.reason)}, message ${JSON.stringify(full?.message)}, exit ${full?.exitCode}, finished ${new Date(Number((full?.finishedAt ?? 0n) / 1_000_000n)).toISOString()}), expected ${allowed.join(" or ")}`);
        }
        const wasRunning = c.state === "running";
        c.state = st;
        delete c.maybe;
        if (st === "running" && c.kind === "exiter" && c.startedAt > 0 && Date.now() - c.startedAt > c.afterS * 1000 + 8000) {
          fail(`${label}: still RUNNING ${Math.round((Date.now() - c.startedAt) / 1000)} s after start; its command exits after ${c.afterS} s`);
        }
        if (wrongState) c.stopped = true;
        else if (st === "exited" && c.kind === "exiter" && !c.stopped) {
          const full = (await client.runtime.containerStatus({ containerId: c.id })).status;
          if (full?.exitCode !== c.code) fail(`${label}: exit code ${full?.exitCode}, its command exits ${c.code}`);
          if (wasRunning) rep.exitsWhileDown++;
        }
      }
    }
    // Objects nobody asked for.
    const knownPods = new Set(pods.keys());
    for (const s of serverPods) if (!knownPods.has(s.id)) fail(`pod ${s.id.slice(0, 12)} (${s.metadata?.name}) exists but the client never created it (or removed it)`);
    const knownCtrs = new Set([...pods.values()].flatMap((p) => [...p.ctrs.keys()]));
    for (const s of serverCtrs) if (!knownCtrs.has(s.id)) fail(`container ${s.id.slice(0, 12)} (${s.metadata?.name}) exists but the client never created it (or removed it)`);
    await checkOrphans(new Set(serverCtrs.map((c) => c.id)));
  }

  /** runc containers and conmons berth does not list (polled briefly: recovery may still be finishing them). */
  async function checkOrphans(listed: Set<string>): Promise<void> {
    let problems: string[] = [];
    for (let i = 0; i < 20; i++) {
      const now = new Set((await d.client.runtime.listContainers({})).containers.map((c) => c.id));
      for (const id of listed) now.add(id);
      problems = [
        ...runcContainers(dirs).filter((id) => !now.has(id)).map((id) => `runc container ${id.slice(0, 12)} unknown to berth`),
        ...conmons(dirs).filter((c) => !now.has(c.id)).map((c) => `conmon ${c.pid} for ${c.id.slice(0, 12)} unknown to berth`),
      ];
      if (!problems.length) return;
      await sleep(250);
    }
    for (const p of problems) fail(p);
  }

  // ---------------------------------------------------------------- full cleanup + leak scan
  async function cleanupAndScan(last: boolean): Promise<void> {
    const client = d.client;
    for (const p of (await client.runtime.listPodSandbox({})).items) {
      await client.runtime.stopPodSandbox({ podSandboxId: p.id });
      await client.runtime.removePodSandbox({ podSandboxId: p.id });
    }
    pods.clear();
    for (const img of (await client.image.listImages({})).images) await client.image.removeImage({ image: { image: img.id } });
    // RemoveImage ran GC; one more pass in case an earlier removal raced a running GC.
    let leaks = scanLeaks(world, dirs);
    for (let i = 0; i < 10 && leakCount(leaks) > 0; i++) {
      await sleep(300);
      leaks = scanLeaks(world, dirs);
    }
    rep.leakScans++;
    addLeaks(rep.leaks, leaks);
    if (leakCount(leaks) > 0) fail(`leaks after removing everything and GC: ${formatLeaks(leaks)}`);
    else opts.log(`  leak scan ${rep.leakScans}: clean`);
    if (!last) await client.image.pullImage({ image: { image: bb } });
  }

  // ---------------------------------------------------------------- the loop
  try {
    for (let k = 0; k < opts.kills; k++) {
      if (Date.now() - started > opts.budgetMs) {
        opts.log(`time budget reached after ${k} kills`);
        break;
      }
      const stopAt = { done: false };
      dead = false;
      const workers = Array.from({ length: opts.concurrency }, () => worker(stopAt));
      await sleep(rng.int(500, 6000));
      dead = true;
      stopAt.done = true;
      opts.log(`  SIGKILL at ${new Date().toISOString()}`);
      await d.kill();
      rep.kills++;
      keepOutput(d, rep.kills);
      await Promise.all(workers);
      // Down for a while: short-lived containers exit meanwhile; their monitors record the codes.
      await sleep(rng.int(200, 2500));
      d = await startChaosDaemon(world, { dirs });
      rep.restarts++;
      dead = false;
      await reconcile();
      const nCtr = [...pods.values()].reduce((n, p) => n + p.ctrs.size, 0);
      opts.log(`kill ${rep.kills}: ${pods.size} pods, ${nCtr} containers checked; ops so far ${Object.values(rep.operations).reduce((a, b) => a + b, 0)}`);
      if ((k + 1) % opts.cleanupEvery === 0 && k + 1 < opts.kills) await cleanupAndScan(false);
    }
    await cleanupAndScan(true);
  } catch (err) {
    fail(`harness error: ${(err as Error).stack ?? String(err)}`);
  } finally {
    await d.stop().catch(() => undefined);
    keepOutput(d, rep.kills + 1);
    const after = scanLeaks(world, dirs);
    // After SIGTERM nothing may remain either (the daemon holds no mounts of its own).
    if (leakCount(after) > 0 && rep.failures.length === 0) fail(`after SIGTERM: ${formatLeaks(after)}`);
    removeDirs(dirs);
    if (rep.failures.length === 0) rmSync(outDir, { recursive: true, force: true });
    else opts.log(`berthd logs of this run: ${outDir}`);
  }
  return rep;
}
