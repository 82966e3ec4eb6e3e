// Containers are launched (conmon + `runc create`) by StartContainer, as in containerd:
// what a created-but-not-launched container answers to every call, start failures,
// the exec-fifo start, the runtime state deleted at exit, and kill -9 in the middle of a start.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { status as Grpc } from "@grpc/grpc-js";
import { ContainerState } from "../api/gen/cri/v1/api.js";
import { startRegistry, type Registry } from "./harness/registry.js";
import { ensureTestImages, type TestImages } from "./harness/images.js";
import { mountsUnder } from "./harness/cni-net.js";
import { code, createCtr, ctrConfig, logLines, residue, runPod, startEnv, stopEnv, waitExited, type Env } from "./containers-helpers.js";

let reg: Registry;
let images: TestImages;

before(async () => {
  reg = await startRegistry();
  images = await ensureTestImages(reg);
});

after(async () => {
  await reg?.stop();
});

/** `runc state` of a container under the daemon's runtime root, undefined when runc does not know it. */
function runcState(env: Env, id: string): { status: string; pid: number } | undefined {
  const r = spawnSync("/usr/sbin/runc", [`--root=${join(env.d.dirs.state, "runtime", "runc")}`, "state", id], { encoding: "utf8" });
  return r.status === 0 ? (JSON.parse(r.stdout) as { status: string; pid: number }) : undefined;
}

/** The children of a process. */
function childrenOf(pid: number): number[] {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, "utf8");
        return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Processes whose command line names the container id (its conmon, its runc calls). */
function processesOf(id: string): number[] {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").includes(id);
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function verbose(env: Env, id: string): Promise<{ pid: number; conmonPid: number }> {
  const r = await env.d.client.runtime.containerStatus({ containerId: id, verbose: true });
  return JSON.parse(r.info["info"] ?? "{}") as { pid: number; conmonPid: number };
}

test("a created container is not launched: status, list, update, exec and log reopen refused, stop marks it exited, remove needs no runtime", async () => {
  const env = await startEnv(reg, images);
  const bb = images["busybox:latest"].ref;
  try {
    const pod = await runPod(env, "created");
    const rt = env.d.client.runtime;
    const a = await createCtr(env, pod, ctrConfig("a", bb, { command: ["sleep", "600"] }));
    const st = (await rt.containerStatus({ containerId: a })).status;
    assert.equal(st?.state, ContainerState.CONTAINER_CREATED);
    assert.equal(st?.startedAt, 0n);
    const before = await verbose(env, a);
    assert.equal(before.pid, 0);
    assert.equal(before.conmonPid, 0);
    assert.equal(runcState(env, a), undefined, "runc does not know a container before StartContainer");
    assert.deepEqual(processesOf(a), [], "no monitor runs for it");
    assert.deepEqual((await rt.listContainers({ filter: { state: { state: ContainerState.CONTAINER_CREATED } } })).containers.map((c) => c.id), [a]);

    await assert.rejects(rt.execSync({ containerId: a, cmd: ["true"], timeout: 5n }), (e) => code(e) === Grpc.FAILED_PRECONDITION && /created, not running/.test((e as Error).message));
    await assert.rejects(rt.exec({ containerId: a, cmd: ["true"], stdout: true }), (e) => code(e) === Grpc.FAILED_PRECONDITION);
    await assert.rejects(rt.attach({ containerId: a, stdout: true }), (e) => code(e) === Grpc.FAILED_PRECONDITION);
    await assert.rejects(rt.reopenContainerLog({ containerId: a }), (e) => code(e) === Grpc.FAILED_PRECONDITION);
    const stats = await rt.listContainerStats({});
    assert.ok(stats.stats.some((s) => s.attributes?.id === a), "stats list the created container");

    // The new limit goes into the spec the launch uses.
    await rt.updateContainerResources({ containerId: a, linux: { memoryLimitInBytes: 48n * 1024n * 1024n } });
    assert.equal((await rt.containerStatus({ containerId: a })).status?.resources?.linux?.memoryLimitInBytes, 48n * 1024n * 1024n);
    await rt.startContainer({ containerId: a });
    assert.equal((await rt.containerStatus({ containerId: a })).status?.state, ContainerState.CONTAINER_RUNNING);
    const lim = await rt.execSync({ containerId: a, cmd: ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"], timeout: 10n });
    assert.equal(lim.stdout.toString().trim(), String(48 * 1024 * 1024));
    const info = await verbose(env, a);
    assert.ok(info.pid > 0 && info.conmonPid > 0);
    assert.equal(runcState(env, a)?.status, "running", "runc sees the container running after the exec-fifo start");
    assert.equal(existsSync(join(env.d.dirs.state, "runtime", "runc", a, "exec.fifo")), false);
    assert.match(env.d.output(), new RegExp(`"containerId":"${a}"[^\\n]*"startPath":"exec-fifo"`));

    // Stop of a created container: no runtime call, exited, no longer startable.
    const b = await createCtr(env, pod, ctrConfig("b", bb, { command: ["true"] }));
    await rt.stopContainer({ containerId: b, timeout: 10n });
    const sb = (await rt.containerStatus({ containerId: b })).status;
    assert.equal(sb?.state, ContainerState.CONTAINER_EXITED);
    assert.equal(sb?.exitCode, 137);
    assert.match(sb?.message ?? "", /before it was started/);
    await assert.rejects(rt.startContainer({ containerId: b }), (e) => code(e) === Grpc.FAILED_PRECONDITION);
    await rt.removeContainer({ containerId: b });

    // Remove of a created container.
    const c = await createCtr(env, pod, ctrConfig("c", bb, { command: ["true"] }));
    await rt.removeContainer({ containerId: c });
    await assert.rejects(rt.containerStatus({ containerId: c }), (e) => code(e) === Grpc.NOT_FOUND);
    assert.deepEqual(readdirSync(join(env.d.dirs.state, "containers")), [a]);

    // A pod stopped and removed with a created container in it.
    const d = await createCtr(env, pod, ctrConfig("d", bb, { command: ["true"] }));
    await rt.stopPodSandbox({ podSandboxId: pod.id });
    assert.equal((await rt.containerStatus({ containerId: d })).status?.state, ContainerState.CONTAINER_EXITED);
    assert.equal((await rt.containerStatus({ containerId: a })).status?.state, ContainerState.CONTAINER_EXITED);
    await rt.removePodSandbox({ podSandboxId: pod.id });
    assert.deepEqual(await residue(env), []);
  } finally {
    await stopEnv(env);
  }
});

test("a launch failure fails StartContainer with the runtime's reason and leaves the container EXITED, 128, StartError, nothing running", async () => {
  const env = await startEnv(reg, images);
  const bb = images["busybox:latest"].ref;
  try {
    const pod = await runPod(env, "startfail");
    const rt = env.d.client.runtime;
    const id = await createCtr(env, pod, ctrConfig("missing", bb, { command: ["/no/such/command"] }));
    assert.equal((await rt.containerStatus({ containerId: id })).status?.state, ContainerState.CONTAINER_CREATED, "the missing command is found at start, not at create");
    await assert.rejects(rt.startContainer({ containerId: id }), (e) => code(e) === Grpc.FAILED_PRECONDITION && /\/no\/such\/command/.test((e as Error).message) && (e as Error).message.includes(id));
    const st = (await rt.containerStatus({ containerId: id })).status;
    assert.equal(st?.state, ContainerState.CONTAINER_EXITED);
    assert.equal(st?.exitCode, 128);
    assert.equal(st?.reason, "StartError");
    assert.match(st?.message ?? "", /\/no\/such\/command/);
    assert.deepEqual(processesOf(id), [], "no monitor is left");
    assert.equal(runcState(env, id), undefined, "no runtime state is left");
    await assert.rejects(rt.startContainer({ containerId: id }), (e) => code(e) === Grpc.FAILED_PRECONDITION);
    await rt.removeContainer({ containerId: id });
    await rt.stopPodSandbox({ podSandboxId: pod.id });
    await rt.removePodSandbox({ podSandboxId: pod.id });
    assert.deepEqual(await residue(env), []);
  } finally {
    await stopEnv(env);
  }
});

test("the runtime state of an exited container is deleted at exit, so removal only removes files", async () => {
  const env = await startEnv(reg, images);
  const bb = images["busybox:latest"].ref;
  try {
    const pod = await runPod(env, "exitdelete");
    const rt = env.d.client.runtime;
    const id = await createCtr(env, pod, ctrConfig("short", bb, { command: ["/bin/sh", "-c", "echo done"] }));
    await rt.startContainer({ containerId: id });
    const st = await waitExited(env, id);
    assert.equal(st.exitCode, 0);
    const end = Date.now() + 10_000;
    while (runcState(env, id) !== undefined && Date.now() < end) await sleep(50);
    assert.equal(runcState(env, id), undefined, "runc no longer knows the exited container");
    assert.deepEqual(logLines(readFileSync(st.logPath, "utf8"), "stdout"), ["done"]);
    assert.equal((await rt.containerStatus({ containerId: id })).status?.exitCode, 0, "the status stays");
    await rt.removeContainer({ containerId: id });
    await rt.stopPodSandbox({ podSandboxId: pod.id });
    await rt.removePodSandbox({ podSandboxId: pod.id });
    assert.deepEqual(await residue(env), []);
  } finally {
    await stopEnv(env);
  }
});

test("berthd runs with 2 malloc arenas (MALLOC_ARENA_MAX from its re-exec); conmon does not inherit the setting", { skip: process.env["MALLOC_ARENA_MAX"] !== undefined ? "MALLOC_ARENA_MAX is set for the test run" : false }, async () => {
  const env = await startEnv(reg, images);
  const bb = images["busybox:latest"].ref;
  const environ = (pid: number): string[] => readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
  try {
    assert.ok(environ(env.d.process.pid as number).includes("MALLOC_ARENA_MAX=2"), "berthd was started with the cap");
    const pod = await runPod(env, "arenas");
    const id = await createCtr(env, pod, ctrConfig("sleeper", bb, { command: ["sleep", "60"] }));
    await env.d.client.runtime.startContainer({ containerId: id });
    const conmon = processesOf(id).filter((p) => readFileSync(`/proc/${p}/comm`, "utf8").trim() === "conmon");
    assert.equal(conmon.length, 1, "one conmon for the container");
    const vars = environ(conmon[0] as number);
    assert.ok(vars.some((v) => v.startsWith("PATH=")), "conmon's environment was read");
    assert.ok(!vars.some((v) => v.startsWith("MALLOC_ARENA_MAX=") || v.startsWith("BERTH_REEXEC_ADDED_ENV=")), `conmon's environment: ${vars.join(" ")}`);
    await env.d.client.runtime.stopPodSandbox({ podSandboxId: pod.id });
    await env.d.client.runtime.removePodSandbox({ podSandboxId: pod.id });
  } finally {
    await stopEnv(env);
  }
});

test("kill -9 of berthd in the middle of StartContainer: the restart cleans the launch; the container is CREATED again, starts, and is removed cleanly", async () => {
  const base = mkdtempSync(join(tmpdir(), "berth-slowconmon-"));
  const slow = join(base, "slow-conmon.sh");
  // A monitor that takes its time: berthd is killed while StartContainer waits for it.
  writeFileSync(slow, `#!/bin/sh\nsleep 300\nexec /usr/bin/conmon "$@"\n`, { mode: 0o755 });
  let env = await startEnv(reg, images, undefined, undefined, `[runtime]\nconmon_path = ${JSON.stringify(slow)}\n`);
  const bb = images["busybox:latest"].ref;
  try {
    const pod = await runPod(env, "midstart");
    const id = await createCtr(env, pod, ctrConfig("half", bb, { command: ["echo", "second-try"] }));
    const spare = await createCtr(env, pod, ctrConfig("spare", bb, { command: ["true"] }));
    const pending = env.d.client.runtime.startContainer({ containerId: id }).catch((e: unknown) => e);
    const end = Date.now() + 15_000;
    let holders: number[] = [];
    while (holders.length === 0 && Date.now() < end) {
      holders = processesOf(id);
      await sleep(50);
    }
    assert.ok(holders.length > 0, "the slow monitor started");
    await env.d.kill();
    await pending;
    for (const p of holders.flatMap((h) => [...childrenOf(h), h])) process.kill(p, "SIGKILL");
    // A removed bundle the crash left before its background deletion: the restart deletes it (residue() below).
    mkdirSync(join(env.d.dirs.state, "containers.removed", "c0ffee-1234abcd", "rootfs"), { recursive: true });
    writeFileSync(join(env.d.dirs.state, "containers.removed", "c0ffee-1234abcd", "config.json"), "{}");

    env = await startEnv(reg, images, env.d.dirs, env.net);
    const rt = env.d.client.runtime;
    assert.equal((await rt.containerStatus({ containerId: id })).status?.state, ContainerState.CONTAINER_CREATED, "back to created");
    assert.match(env.d.output(), /cleaning up a launch interrupted by a crash/);
    assert.equal(runcState(env, id), undefined);
    // The restarted daemon uses the real conmon (no extra config): the start now works.
    await rt.startContainer({ containerId: id });
    const st = await waitExited(env, id);
    assert.equal(st.exitCode, 0);
    assert.deepEqual(logLines(readFileSync(st.logPath, "utf8"), "stdout"), ["second-try"]);
    await rt.removeContainer({ containerId: id });
    await rt.removeContainer({ containerId: spare });
    assert.deepEqual(readdirSync(join(env.d.dirs.state, "containers")), []);
    assert.deepEqual(mountsUnder(join(env.d.dirs.state, "containers")), []);
    await rt.stopPodSandbox({ podSandboxId: pod.id });
    await rt.removePodSandbox({ podSandboxId: pod.id });
    assert.deepEqual(await residue(env), []);
  } finally {
    await stopEnv(env);
    rmSync(base, { recursive: true, force: true });
  }
});

// A build that launched containers at CreateContainer (main before this change), e.g. /work/main/dist/cmd/berthd/main.js.
const previous = process.env["BERTH_E2E_PREVIOUS_BERTHD"];

test("upgrade: containers created by a berthd that launched at create still start, run and are removed after a restart on this build", { skip: previous ? false : "set BERTH_E2E_PREVIOUS_BERTHD to the previous build's dist/cmd/berthd/main.js" }, async () => {
  let env = await startEnv(reg, images, undefined, undefined, "", previous);
  const bb = images["busybox:latest"].ref;
  try {
    const pod = await runPod(env, "upgrade");
    const old = await createCtr(env, pod, ctrConfig("old", bb, { command: ["echo", "from-before"] }));
    const long = await createCtr(env, pod, ctrConfig("long", bb, { command: ["sleep", "600"] }));
    await env.d.client.runtime.startContainer({ containerId: long });
    assert.equal(runcState(env, old)?.status, "created", "the previous build launched it at create");
    assert.equal(await env.d.stop(), 0);
    env = await startEnv(reg, images, env.d.dirs, env.net);
    const rt = env.d.client.runtime;
    assert.equal((await rt.containerStatus({ containerId: old })).status?.state, ContainerState.CONTAINER_CREATED);
    assert.equal((await rt.containerStatus({ containerId: long })).status?.state, ContainerState.CONTAINER_RUNNING);
    await rt.startContainer({ containerId: old });
    const st = await waitExited(env, old);
    assert.equal(st.exitCode, 0);
    assert.deepEqual(logLines(readFileSync(st.logPath, "utf8"), "stdout"), ["from-before"]);
    assert.match(env.d.output(), new RegExp(`"containerId":"${old}"[^\\n]*"startPath":"exec-fifo"`));
    await rt.stopPodSandbox({ podSandboxId: pod.id });
    assert.equal((await rt.containerStatus({ containerId: long })).status?.state, ContainerState.CONTAINER_EXITED);
    await rt.removePodSandbox({ podSandboxId: pod.id });
    assert.equal(runcState(env, old), undefined);
    assert.equal(runcState(env, long), undefined);
    assert.deepEqual(await residue(env), []);
  } finally {
    await stopEnv(env);
  }
});
