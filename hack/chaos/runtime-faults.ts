// Fault 3 (part): an OCI runtime or a monitor that fails or hangs. One runtime
// handler runs a wrapper script in front of the real runc and one conmon
// wrapper stands in for the real conmon; a fault file next to them says which
// runc subcommand fails or hangs ("fail exec", "hang kill"), or that conmon
// hangs. berthd runs with short runtime timeouts. Every faulted call must end
// with a clear code naming the runtime and the step, a hung wrapper must be
// killed with everything it started, the object must stay in a consistent
// state with nothing half-made, and the same request must succeed once the
// fault file is cleared (same daemon, same pod).

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ContainerState } from "../../api/gen/cri/v1/api.js";
import type { Daemon } from "../../test-e2e/harness/daemon.js";
import { makeDirs, removeDirs, startChaosDaemon, type World } from "./env.js";
import { codeName, grpcCode } from "./kill-loop.js";
import { conmons, formatLeaks, leakCount, scanLeaks } from "./leaks.js";

export interface RuntimeFaultsReport {
  outcomes: Record<string, string>;
  failures: string[];
}

const RUNC = "/usr/sbin/runc";
const CONMON = "/usr/bin/conmon";
/** berthd's runtime timeouts in this part (seconds): short, so a hang costs little. */
const CALL_TIMEOUT_S = 3;
const CREATE_TIMEOUT_S = 5;

const GRPC = { DEADLINE_EXCEEDED: 4, FAILED_PRECONDITION: 9, UNAVAILABLE: 14 } as const;

interface Wrappers {
  dir: string;
  runc: string;
  conmon: string;
  /** "fail <subcommand>", "hang <subcommand>", "hang conmon" or "" (no fault). */
  set(fault: string): void;
  /** Pids of hung wrapper processes recorded since the last call. */
  takeHung(): number[];
}

function makeWrappers(dir: string): Wrappers {
  const faultFile = join(dir, "fault");
  const hungFile = join(dir, "hung-pids");
  // A hang is a shell waiting on a background sleep: both must be gone after the timeout,
  // which only happens when the whole process group is killed.
  const hang = `echo $$ >> ${hungFile}; sleep 3600 & echo $! >> ${hungFile}; wait; exit 1`;
  // Not named runc: berth starts a runc container through its exec fifo, without `runc start`;
  // under another name the start goes through the wrapper, where it can fail or hang.
  const runc = join(dir, "faulty-runc");
  writeFileSync(
    runc,
    [
      "#!/bin/sh",
      `f=$(cat ${faultFile} 2>/dev/null)`,
      'mode=${f%% *}; cmd=${f#* }',
      'if [ -n "$f" ] && [ "$cmd" != conmon ]; then',
      '  for a in "$@"; do',
      '    if [ "$a" = "$cmd" ]; then',
      `      if [ "$mode" = hang ]; then ${hang}; fi`,
      '      echo "injected $cmd failure" >&2; exit 1',
      "    fi",
      "  done",
      "fi",
      `exec ${RUNC} "$@"`,
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
  const conmon = join(dir, "conmon");
  writeFileSync(conmon, ["#!/bin/sh", `if [ "$(cat ${faultFile} 2>/dev/null)" = "hang conmon" ]; then ${hang}; fi`, `exec ${CONMON} "$@"`, ""].join("\n"), { mode: 0o755 });
  return {
    dir,
    runc,
    conmon,
    set: (fault) => writeFileSync(faultFile, fault),
    takeHung: () => {
      if (!existsSync(hungFile)) return [];
      const pids = readFileSync(hungFile, "utf8").split(/\s+/).filter(Boolean).map(Number);
      rmSync(hungFile, { force: true });
      return pids;
    },
  };
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

type CallError = Error & { details?: string };

async function failsWith<T>(p: Promise<T>): Promise<CallError | undefined> {
  return p.then(
    () => undefined,
    (err: unknown) => err as CallError,
  );
}

export async function runRuntimeFaults(world: World, log: (l: string) => void): Promise<RuntimeFaultsReport> {
  const rep: RuntimeFaultsReport = { outcomes: {}, failures: [] };
  const dir = join(world.work, "runtime-faults");
  mkdirSync(dir, { recursive: true });
  const w = makeWrappers(dir);
  w.set("");
  let d: Daemon | undefined;
  try {
    const dirs = makeDirs();
    // The harness's config ends inside its [cni] table; the [runtime] tables follow it.
    const toml =
      `[runtime]\nconmon_path = ${JSON.stringify(w.conmon)}\ncall_timeout_seconds = ${CALL_TIMEOUT_S}\ncreate_timeout_seconds = ${CREATE_TIMEOUT_S}\n` +
      `[runtime.handlers.faulty]\npath = ${JSON.stringify(w.runc)}\nroot = ${JSON.stringify(join(dirs.state, "runtime", "faulty"))}\n`;
    d = await startChaosDaemon(world, { dirs, toml });
    const rt = d.client.runtime;
    const bb = world.images["busybox:latest"].ref;
    await d.client.image.pullImage({ image: { image: bb } });
    const logDirectory = join(dirs.base, "pod-logs");
    mkdirSync(logDirectory, { recursive: true });
    const newPod = async (name: string): Promise<{ id: string; config: Record<string, unknown> }> => {
      const config = { metadata: { name, namespace: "chaos", uid: `uid-${name}`, attempt: 0 }, hostname: name, logDirectory };
      return { id: (await rt.runPodSandbox({ config, runtimeHandler: "faulty" })).podSandboxId, config };
    };
    const pod = await newPod("faulty");
    let n = 0;
    const cconf = (): Record<string, unknown> => ({ metadata: { name: `c${n++}`, attempt: 0 }, image: { image: bb }, command: ["sleep", "600"], logPath: `c${n}.log` });
    const create = async (p = pod): Promise<string> => (await rt.createContainer({ podSandboxId: p.id, config: cconf(), sandboxConfig: p.config })).containerId;
    const state = async (id: string): Promise<string> => {
      const st = await rt.containerStatus({ containerId: id }).catch(() => undefined);
      return st?.status ? (ContainerState[st.status.state] ?? "?") : "gone";
    };

    /** Runs `op` under `fault`, checks its code, message and that the hung wrapper died; clears the fault. */
    const faulted = async (label: string, fault: string, op: () => Promise<unknown>, codes: number[], message: RegExp): Promise<void> => {
      w.set(fault);
      w.takeHung();
      const t0 = Date.now();
      const err = await failsWith(op());
      const secs = ((Date.now() - t0) / 1000).toFixed(1);
      w.set("");
      if (!err) {
        rep.failures.push(`${label}: the call succeeded under "${fault}"`);
        return;
      }
      const text = err.details ?? err.message;
      rep.outcomes[label] = `${codeName(grpcCode(err))} after ${secs} s: ${text.slice(0, 140)}`;
      if (!codes.includes(grpcCode(err) ?? -1)) rep.failures.push(`${label}: code ${codeName(grpcCode(err))}, want ${codes.map(codeName).join(" or ")}: ${text.slice(0, 300)}`);
      if (!message.test(text)) rep.failures.push(`${label}: the message does not name the runtime and the step (${String(message)}): ${text.slice(0, 300)}`);
      if (fault.startsWith("hang")) {
        const hung = w.takeHung();
        if (hung.length === 0) rep.failures.push(`${label}: the wrapper never hung (no pid recorded)`);
        await new Promise((r) => setTimeout(r, 200));
        const left = hung.filter(alive);
        if (left.length) rep.failures.push(`${label}: hung runtime processes still alive after the error: ${left.join(", ")}`);
      }
    };
    const ok = async (label: string, op: () => Promise<unknown>): Promise<void> => {
      try {
        await op();
      } catch (err) {
        rep.failures.push(`${label} after the fault cleared: ${codeName(grpcCode(err))}: ${(err as Error).message.slice(0, 300)}`);
      }
    };
    const nothingHalfMade = async (label: string, before: number): Promise<void> => {
      const left = (await rt.listContainers({})).containers.filter((c) => c.podSandboxId === pod.id).length;
      if (left !== before) rep.failures.push(`${label}: ${left - before} containers listed after the failed launch was removed`);
      const leaks = scanLeaks(world, dirs);
      const running = new Set((await rt.listContainers({})).containers.map((c) => c.id));
      const strayConmons = conmons(dirs).filter((c) => !running.has(c.id));
      if (strayConmons.length) rep.failures.push(`${label}: conmon left running for ${strayConmons.map((c) => c.id).join(", ")}`);
      const strayRunc = leaks["runc-container"].filter((id) => !running.has(id));
      if (strayRunc.length) rep.failures.push(`${label}: runc containers left: ${strayRunc.join(", ")}`);
    };

    // The launch (conmon + runc create) happens at StartContainer, as in containerd: runc failing
    // or hanging in create under conmon, and conmon itself hanging, fail StartContainer; the
    // container ends up exited (StartError), removable, and nothing of the launch is left.
    for (const [label, fault, codes, re] of [
      ["launch: runc create fails", "fail create", [GRPC.FAILED_PRECONDITION], /injected create failure/],
      ["launch: runc create hangs", "hang create", [GRPC.DEADLINE_EXCEEDED], /conmon \(faulty create\).*no answer within/],
      ["launch: conmon hangs", "hang conmon", [GRPC.DEADLINE_EXCEEDED], /conmon \(faulty create\).*no answer within/],
    ] as const) {
      const before = (await rt.listContainers({})).containers.filter((c) => c.podSandboxId === pod.id).length;
      const id = await create();
      await faulted(label, fault, () => rt.startContainer({ containerId: id }), [...codes], re);
      const s = await state(id);
      rep.outcomes[`${label}: state after`] = s;
      if (s !== "CONTAINER_EXITED") rep.failures.push(`${label}: the container is ${s}, want CONTAINER_EXITED`);
      await ok(`${label}: remove`, () => rt.removeContainer({ containerId: id }));
      await nothingHalfMade(label, before);
    }
    let running = "";
    await ok("create + start", async () => {
      running = await create();
      await rt.startContainer({ containerId: running });
    });

    // start: the container ends up exited (StartError), never reported running; a new one starts.
    for (const [label, fault, code, re] of [
      ["start: runc fails", "fail start", GRPC.FAILED_PRECONDITION, /faulty start \S+ failed: injected start failure/],
      ["start: runc hangs", "hang start", GRPC.DEADLINE_EXCEEDED, /faulty start \S+: the runtime did not answer within/],
    ] as const) {
      const id = await create();
      await faulted(label, fault, () => rt.startContainer({ containerId: id }), [code], re);
      const s = await state(id);
      rep.outcomes[`${label}: state after`] = s;
      if (s !== "CONTAINER_EXITED") rep.failures.push(`${label}: the container is ${s}, want CONTAINER_EXITED`);
      await ok(`${label}: remove`, () => rt.removeContainer({ containerId: id }));
    }

    // exec: a failing runc exec comes back as the command's failure; a hung one is killed.
    const exec = (timeout: number): Promise<unknown> => rt.execSync({ containerId: running, cmd: ["echo", "hi"], timeout });
    {
      w.set("fail exec");
      const r = await rt.execSync({ containerId: running, cmd: ["echo", "hi"], timeout: 10 }).catch((err: unknown) => err as CallError);
      w.set("");
      if (r instanceof Error) rep.outcomes["exec: runc fails"] = `${codeName(grpcCode(r))}: ${(r.details ?? r.message).slice(0, 140)}`;
      else {
        rep.outcomes["exec: runc fails"] = `exit ${r.exitCode}: ${Buffer.from(r.stderr).toString().trim().slice(0, 100)}`;
        if (r.exitCode === 0) rep.failures.push("exec: runc fails: exit code 0");
      }
    }
    await faulted("exec: runc hangs (no timeout)", "hang exec", () => exec(0), [GRPC.DEADLINE_EXCEEDED], /faulty exec in container .*did not start the command within/);
    await faulted("exec: runc hangs (timeout 2 s)", "hang exec", () => exec(2), [GRPC.DEADLINE_EXCEEDED], /did not finish within 2 s/);
    await ok("exec", async () => {
      const r = await rt.execSync({ containerId: running, cmd: ["echo", "hi"], timeout: 10 });
      if (r.exitCode !== 0 || Buffer.from(r.stdout).toString() !== "hi\n") throw new Error(`exec: exit ${r.exitCode}, stdout ${JSON.stringify(Buffer.from(r.stdout).toString())}`);
    });

    // stop: kill failing or hanging leaves the container running; the retry stops it.
    for (const [label, fault, code, re] of [
      ["stop: runc kill fails", "fail kill", GRPC.UNAVAILABLE, /faulty kill .*injected kill failure/],
      ["stop: runc kill hangs", "hang kill", GRPC.DEADLINE_EXCEEDED, /faulty kill .*did not answer within/],
    ] as const) {
      await faulted(label, fault, () => rt.stopContainer({ containerId: running, timeout: 2 }), [code], re);
      const s = await state(running);
      if (s !== "CONTAINER_RUNNING") rep.failures.push(`${label}: the container is ${s} after the failed stop, want CONTAINER_RUNNING`);
    }
    // The stop deletes the runtime state before it answers (a failed delete is left for the
    // removal): with delete failing from here on, RemoveContainer is the call that meets it.
    w.set("fail delete");
    await ok("stop", () => rt.stopContainer({ containerId: running, timeout: 2 }));
    if ((await state(running)) !== "CONTAINER_EXITED") rep.failures.push(`stop after the fault cleared: the container is ${await state(running)}`);

    // remove: delete failing or hanging leaves the container listed (exited); the retry removes it.
    for (const [label, fault, code, re] of [
      ["remove: runc delete fails", "fail delete", GRPC.UNAVAILABLE, /faulty delete .*injected delete failure/],
      ["remove: runc delete hangs", "hang delete", GRPC.DEADLINE_EXCEEDED, /faulty delete .*did not answer within/],
    ] as const) {
      await faulted(label, fault, () => rt.removeContainer({ containerId: running }), [code], re);
      const s = await state(running);
      if (s !== "CONTAINER_EXITED") rep.failures.push(`${label}: the container is ${s} after the failed remove, want CONTAINER_EXITED`);
    }
    await ok("remove", () => rt.removeContainer({ containerId: running }));
    if ((await state(running)) !== "gone") rep.failures.push("remove after the fault cleared: the container is still listed");

    // pod stop / remove with a running container: kill and delete fail, then work.
    let inPod = "";
    await ok("create + start in pod", async () => {
      inPod = await create();
      await rt.startContainer({ containerId: inPod });
    });
    await faulted("pod stop: runc kill fails", "fail kill", () => rt.stopPodSandbox({ podSandboxId: pod.id }), [GRPC.UNAVAILABLE], /faulty kill .*injected kill failure/);
    await faulted("pod stop: runc kill hangs", "hang kill", () => rt.stopPodSandbox({ podSandboxId: pod.id }), [GRPC.DEADLINE_EXCEEDED], /faulty kill .*did not answer within/);
    w.set("fail delete");
    await ok("pod stop", () => rt.stopPodSandbox({ podSandboxId: pod.id }));
    const ps = await state(inPod);
    if (ps !== "CONTAINER_EXITED") rep.failures.push(`pod stop after the fault cleared: its container is ${ps}`);
    await faulted("pod remove: runc delete fails", "fail delete", () => rt.removePodSandbox({ podSandboxId: pod.id }), [GRPC.UNAVAILABLE], /faulty delete .*injected delete failure/);
    await faulted("pod remove: runc delete hangs", "hang delete", () => rt.removePodSandbox({ podSandboxId: pod.id }), [GRPC.DEADLINE_EXCEEDED], /faulty delete .*did not answer within/);
    await ok("pod remove", () => rt.removePodSandbox({ podSandboxId: pod.id }));
    if ((await rt.listPodSandbox({})).items.some((p) => p.id === pod.id)) rep.failures.push("pod remove after the fault cleared: the pod is still listed");

    for (const img of (await d.client.image.listImages({})).images) await d.client.image.removeImage({ image: { image: img.id } });
    const leaks = scanLeaks(world, dirs);
    if (leakCount(leaks) > 0) rep.failures.push(`runtime faults: leaks after removing everything: ${formatLeaks(leaks)}`);
    for (const [k, v] of Object.entries(rep.outcomes)) log(`  ${k}: ${v}`);
  } catch (err) {
    rep.failures.push(`runtime faults: harness error: ${(err as Error).stack ?? String(err)}`);
  } finally {
    w.set("");
    if (d) {
      await d.stop().catch(() => undefined);
      removeDirs(d.dirs);
    }
  }
  return rep;
}
