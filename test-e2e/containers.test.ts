import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { mountsUnder } from "./harness/cni-net.js";
import { status as Grpc } from "@grpc/grpc-js";
import { ContainerState, MountPropagation, NamespaceMode, SecurityProfile_ProfileType } from "../api/gen/cri/v1/api.js";
import { startRegistry, type Registry } from "./harness/registry.js";
import { ensureTestImages } from "./harness/images.js";
import { NONROOT } from "../hack/images/index.js";
import { code, createCtr, ctrConfig, logLines, residue, runCtr, runPod, runToExit, startEnv, stopEnv, waitExited, type Env } from "./containers-helpers.js";

let reg: Registry;
let env: Env;
let bb: string;

before(async () => {
  reg = await startRegistry();
  const images = await ensureTestImages(reg);
  env = await startEnv(reg, images);
  bb = images["busybox:latest"].ref;
});

after(async () => {
  if (env) await stopEnv(env);
  await reg?.stop();
});

test("lifecycle: create, start, exit code, logs, status, list, remove", async () => {
  const pod = await runPod(env, "life");
  const id = await createCtr(env, pod, ctrConfig("echo", bb, { command: ["/bin/sh", "-c", "echo hello; echo oops >&2; exit 3"], labels: { app: "life" } }));
  let st = (await env.d.client.runtime.containerStatus({ containerId: id })).status;
  assert.equal(st?.state, ContainerState.CONTAINER_CREATED);
  assert.ok((st?.createdAt ?? 0n) > 0n);
  assert.equal(st?.startedAt, 0n);
  await env.d.client.runtime.startContainer({ containerId: id });
  st = await waitExited(env, id);
  assert.equal(st.exitCode, 3);
  assert.equal(st.reason, "Error");
  assert.ok(st.startedAt > 0n && st.finishedAt >= st.startedAt);
  assert.equal(st.imageRef, env.ids[bb]);
  assert.equal(st.image?.image, bb);
  assert.equal(st.logPath, `${pod.config.logDirectory}/echo.log`);
  const log = readFileSync(st.logPath, "utf8");
  assert.deepEqual(logLines(log, "stdout"), ["hello"]);
  assert.deepEqual(logLines(log, "stderr"), ["oops"]);
  assert.match(log, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) stdout F hello$/m);

  const listed = await env.d.client.runtime.listContainers({ filter: { podSandboxId: pod.id } });
  assert.deepEqual(listed.containers.map((c) => c.id), [id]);
  assert.equal((await env.d.client.runtime.listContainers({ filter: { labelSelector: { app: "life" } } })).containers.length, 1);
  assert.equal((await env.d.client.runtime.listContainers({ filter: { labelSelector: { app: "other" } } })).containers.length, 0);
  assert.equal((await env.d.client.runtime.listContainers({ filter: { id: id.slice(0, 12) } })).containers.length, 1);
  assert.equal((await env.d.client.runtime.listContainers({ filter: { state: { state: ContainerState.CONTAINER_RUNNING } } })).containers.filter((c) => c.id === id).length, 0);

  const verbose = await env.d.client.runtime.containerStatus({ containerId: id, verbose: true });
  const info = JSON.parse(verbose.info["info"] ?? "{}") as { runtimeSpec: { process: { args: string[] } }; sandboxID: string };
  assert.deepEqual(info.runtimeSpec.process.args, ["/bin/sh", "-c", "echo hello; echo oops >&2; exit 3"]);
  assert.equal(info.sandboxID, pod.id);

  await env.d.client.runtime.removeContainer({ containerId: id });
  await env.d.client.runtime.removeContainer({ containerId: id });
  await assert.rejects(env.d.client.runtime.containerStatus({ containerId: id }), (e) => code(e) === Grpc.NOT_FOUND);
  assert.ok(existsSync(st.logPath), "the log outlives the container");
  const metrics = await fetch(env.d.metricsUrl()).then((r) => r.text());
  assert.match(metrics, /berth_container_starts_total\{result="success",[^}]*handler="runc"\} [1-9]/);
  assert.match(metrics, /berth_container_exits_total\{reason="Error",class="error",handler="runc"\} [1-9]/);
  await env.d.client.runtime.stopPodSandbox({ podSandboxId: pod.id });
  await env.d.client.runtime.removePodSandbox({ podSandboxId: pod.id });
});

test("several containers in one pod: stop with grace then SIGKILL, stop signal honoured, exec, pod removal cleans all", async () => {
  const pod = await runPod(env, "multi");
  const sleeper = await runCtr(env, pod, ctrConfig("sleeper", bb, { command: ["sleep", "600"] }));
  const trap = await runCtr(env, pod, ctrConfig("trap", bb, { command: ["/bin/sh", "-c", "trap 'echo got-term; exit 0' TERM; echo ready; while true; do sleep 0.1; done"] }));
  const done = await runCtr(env, pod, ctrConfig("done", bb, { command: ["true"] }));
  assert.equal((await waitExited(env, done)).reason, "Completed");
  assert.equal((await env.d.client.runtime.containerStatus({ containerId: sleeper })).status?.state, ContainerState.CONTAINER_RUNNING);

  const ex = await env.d.client.runtime.execSync({ containerId: sleeper, cmd: ["/bin/sh", "-c", "echo out; echo err >&2; hostname; exit 4"], timeout: 10n });
  assert.equal(ex.exitCode, 4);
  assert.equal(ex.stdout.toString(), "out\nmulti\n");
  assert.equal(ex.stderr.toString(), "err\n");
  const started = Date.now();
  await assert.rejects(env.d.client.runtime.execSync({ containerId: sleeper, cmd: ["sleep", "31"], timeout: 1n }), (e) => code(e) === Grpc.DEADLINE_EXCEEDED);
  assert.ok(Date.now() - started < 15_000);
  const ps = await env.d.client.runtime.execSync({ containerId: sleeper, cmd: ["/bin/sh", "-c", "ps -o args | grep '^sleep 31' || true"], timeout: 10n });
  assert.equal(ps.stdout.toString(), "", "the timed-out exec process is gone");

  // PID 1 ignores SIGTERM without a handler: the grace period runs out and SIGKILL ends it.
  const t0 = Date.now();
  await env.d.client.runtime.stopContainer({ containerId: sleeper, timeout: 1n });
  const s1 = await waitExited(env, sleeper);
  assert.equal(s1.exitCode, 137);
  assert.ok(Date.now() - t0 >= 900);
  await env.d.client.runtime.stopContainer({ containerId: sleeper, timeout: 1n });
  await env.d.client.runtime.stopContainer({ containerId: "0123456789abcdef-nope", timeout: 1n });

  await new Promise((r) => setTimeout(r, 300));
  await env.d.client.runtime.stopContainer({ containerId: trap, timeout: 10n });
  const s2 = await waitExited(env, trap);
  assert.equal(s2.exitCode, 0);
  assert.match(readFileSync(s2.logPath, "utf8"), /stdout F got-term/);
  await assert.rejects(env.d.client.runtime.execSync({ containerId: trap, cmd: ["true"], timeout: 0n }), (e) => code(e) === Grpc.FAILED_PRECONDITION);

  await env.d.client.runtime.stopPodSandbox({ podSandboxId: pod.id });
  await env.d.client.runtime.removePodSandbox({ podSandboxId: pod.id });
  assert.equal((await env.d.client.runtime.listContainers({ filter: { podSandboxId: pod.id } })).containers.length, 0);
});

test("image ENTRYPOINT/CMD/env/workdir the Kubernetes way", async () => {
  const ep = env.images["entrypoint:latest"].ref;
  const pod = await runPod(env, "entry");
  assert.deepEqual((await runToExit(env, pod, ctrConfig("plain", ep))).stdout, ["entrypoint-ok"]);
  assert.deepEqual((await runToExit(env, pod, ctrConfig("args", ep, { args: ["echo args-ok; pwd; echo $FOO $BAR"], envs: [{ key: "BAR", value: "baz" }] }))).stdout, ["args-ok", "/work", "bar baz"]);
  assert.deepEqual((await runToExit(env, pod, ctrConfig("cmd", ep, { command: ["/bin/echo"], workingDir: "/tmp" }))).stdout, [""]);
  assert.deepEqual((await runToExit(env, pod, ctrConfig("override", ep, { command: ["/bin/sh", "-c"], args: ["echo $FOO; pwd"], envs: [{ key: "FOO", value: "cri" }], workingDir: "/tmp" }))).stdout, ["cri", "/tmp"]);
  // The image's StopSignal (SIGUSR1) is what StopContainer sends first.
  const usr1 = await runCtr(env, pod, ctrConfig("usr1", ep, { args: ["trap 'echo got-usr1; exit 0' USR1; echo ready; while true; do sleep 0.1; done"] }));
  await new Promise((r) => setTimeout(r, 300));
  await env.d.client.runtime.stopContainer({ containerId: usr1, timeout: 10n });
  const su = await waitExited(env, usr1);
  assert.equal(su.exitCode, 0);
  assert.deepEqual(logLines(readFileSync(su.logPath, "utf8"), "stdout"), ["ready", "got-usr1"]);
  await env.d.client.runtime.removePodSandbox({ podSandboxId: pod.id });
});

test("a pod-wide PID namespace: containers see each other's processes; a container PID namespace does not", async () => {
  const pod = await runPod(env, "sharedpid", { linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.POD } } } });
  await runCtr(env, pod, ctrConfig("holder", bb, { command: ["sleep", "4242"], linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.POD } } } }));
  const seen = await runToExit(env, pod, ctrConfig("looker", bb, { command: ["/bin/sh", "-c", "ps -o args | grep -c '^sleep 4242'"], linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.POD } } } }));
  assert.deepEqual(seen.stdout, ["1"]);
  const own = await runToExit(env, pod, ctrConfig("own", bb, { command: ["/bin/sh", "-c", "ps -o args | grep -c '^sleep 4242'; echo pid=$$"], linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.CONTAINER } } } }));
  assert.deepEqual(own.stdout, ["0", "pid=1"]);
  await env.d.client.runtime.removePodSandbox({ podSandboxId: pod.id });
});

test("long lines are split into P records that reassemble; ReopenContainerLog writes a new file", async () => {
  const pod = await runPod(env, "logs");
  const r = await runToExit(env, pod, ctrConfig("long", bb, { command: ["/bin/sh", "-c", "head -c 40000 /dev/zero | tr '\\0' a; echo; echo short"] }));
  assert.deepEqual(r.stdout.map((l) => l.length), [40000, 5]);
  assert.ok(/ stdout P a+$/m.test(r.log), "partial records present");

  const id = await runCtr(env, pod, ctrConfig("rot", bb, { command: ["/bin/sh", "-c", "echo before; sleep 2; echo after; sleep 600"] }));
  const st = (await env.d.client.runtime.containerStatus({ containerId: id })).status;
  const path = st?.logPath ?? "";
  await new Promise((r2) => setTimeout(r2, 500));
  renameSync(path, `${path}.1`);
  await env.d.client.runtime.reopenContainerLog({ containerId: id });
  assert.ok(existsSync(path));
  await new Promise((r2) => setTimeout(r2, 2500));
  assert.deepEqual(logLines(readFileSync(`${path}.1`, "utf8"), "stdout"), ["before"]);
  assert.deepEqual(logLines(readFileSync(path, "utf8"), "stdout"), ["after"]);
  await env.d.client.runtime.stopContainer({ containerId: id, timeout: 0n });
  await assert.rejects(env.d.client.runtime.reopenContainerLog({ containerId: id }), (e) => code(e) === Grpc.FAILED_PRECONDITION);
  await env.d.client.runtime.removePodSandbox({ podSandboxId: pod.id });
});

test("users and groups: image USER, run_as_user/group, run_as_username, supplemental groups", async () => {
  const nr = env.images["nonroot:latest"].ref;
  const pod = await runPod(env, "users");
  const id = (cfg: Parameters<typeof ctrConfig>[2]) => runToExit(env, pod, ctrConfig(`u${Math.random().toString(36).slice(2, 8)}`, nr, { command: ["/bin/sh", "-c", "id -u; id -g; id -G"], ...cfg }));
  assert.deepEqual((await id({})).stdout, [String(NONROOT.uid), String(NONROOT.gid), `${NONROOT.gid} ${NONROOT.extraGid}`]);
  assert.deepEqual((await id({ linux: { securityContext: { runAsUser: { value: 1000n }, runAsGroup: { value: 2000n }, supplementalGroups: [3000n] } } })).stdout, ["1000", "2000", "2000 3000"]);
  assert.deepEqual((await id({ linux: { securityContext: { runAsUser: { value: 0n } } } })).stdout, ["0", "0", "0"]);
  assert.deepEqual((await id({ linux: { securityContext: { runAsUsername: NONROOT.user } } })).stdout, [String(NONROOT.uid), String(NONROOT.gid), `${NONROOT.gid} ${NONROOT.extraGid}`]);
  await assert.rejects(createCtr(env, pod, ctrConfig("nouser", nr, { linux: { securityContext: { runAsUsername: "nobody-here" } } })), (e) => code(e) === Grpc.INVALID_ARGUMENT);
  await env.d.client.runtime.removePodSandbox({ podSandboxId: pod.id });
});

test("security: read-only rootfs, capabilities, privileged, masked paths, seccomp RuntimeDefault", async () => {
  const pod = await runPod(env, "sec");
  const sh = (name: string, script: string, sc: Record<string, unknown> = {}) => runToExit(env, pod, ctrConfig(name, bb, { command: ["/bin/sh", "-c", script], linux: { securityContext: sc } }));
  const ro = await sh("ro", "touch /x 2>/dev/null && echo writable || echo readonly; touch /tmp/x 2>/dev/null && echo tmp-writable || echo tmp-ro", { readonlyRootfs: true });
  assert.equal(ro.stdout[0], "readonly");
  const rw = await sh("rw", "touch /x && echo writable");
  assert.deepEqual(rw.stdout, ["writable"]);

  const capEff = async (name: string, sc: Record<string, unknown>) => BigInt(`0x${/CapEff:\s+([0-9a-f]+)/.exec((await sh(name, "grep CapEff /proc/self/status", sc)).stdout[0] ?? "")?.[1] ?? "0"}`);
  const NET_RAW = 1n << 13n;
  const NET_ADMIN = 1n << 12n;
  const CHOWN = 1n << 0n;
  const def = await capEff("capdef", {});
  assert.ok(def & NET_RAW && def & CHOWN && !(def & NET_ADMIN));
  const changed = await capEff("capchg", { capabilities: { addCapabilities: ["NET_ADMIN"], dropCapabilities: ["NET_RAW"] } });
  assert.ok(changed & NET_ADMIN && !(changed & NET_RAW) && changed & CHOWN);
  assert.equal(await capEff("capnone", { capabilities: { dropCapabilities: ["ALL"] } }), 0n);
  const priv = await capEff("priv", { privileged: true });
  assert.ok(priv & (1n << 21n), "privileged has CAP_SYS_ADMIN");

  const masked = await sh("masked", "cat /proc/kcore 2>/dev/null | head -c 1 | wc -c; echo x > /proc/sysrq-trigger 2>/dev/null && echo sysrq-w || echo sysrq-ro");
  assert.deepEqual(masked.stdout, ["0", "sysrq-ro"]);

  const unshare = "unshare -U true 2>/dev/null && echo allowed || echo blocked";
  assert.deepEqual((await sh("unconf", unshare, { seccomp: { profileType: SecurityProfile_ProfileType.Unconfined } })).stdout, ["allowed"]);
  assert.deepEqual((await sh("rtdef", unshare, { seccomp: { profileType: SecurityProfile_ProfileType.RuntimeDefault } })).stdout, ["blocked"]);
  await env.d.client.runtime.removePodSandbox({ podSandboxId: pod.id });
});

for (const [name, propagation] of [["rprivate", MountPropagation.PROPAGATION_PRIVATE], ["rslave", MountPropagation.PROPAGATION_HOST_TO_CONTAINER], ["rshared", MountPropagation.PROPAGATION_BIDIRECTIONAL]] as const) {
  test(`mount propagation ${name}: host mounts ${name === "rprivate" ? "do not reach" : "reach"} the container; container mounts ${name === "rshared" ? "reach" : "do not reach"} the host`, async () => {
    const base = mkdtempSync(join(env.d.dirs.base, "prop-"));
    const src = join(base, "mnt");
    const hostMnt = join(src, "fromhost");
    const flagDir = join(base, "flag");
    mkdirSync(hostMnt, { recursive: true });
    mkdirSync(flagDir);
    writeFileSync(join(flagDir, "flagFile"), "x");
    execFileSync("mount", ["--bind", src, src]);
    execFileSync("mount", [name === "rprivate" ? "--make-rprivate" : "--make-rshared", src]);
    const pod = await runPod(env, `prop${name}`);
    try {
      const id = await runCtr(env, pod, ctrConfig("prop", bb, { command: ["sleep", "600"], mounts: [{ containerPath: src, hostPath: src, propagation }], linux: { securityContext: { privileged: true } } }));
      const st = (await env.d.client.runtime.containerStatus({ containerId: id })).status;
      assert.equal(st?.mounts[0]?.propagation, propagation);
      execFileSync("mount", ["--bind", flagDir, hostMnt]);
      const seen = (await env.d.client.runtime.execSync({ containerId: id, cmd: ["ls", "-A", hostMnt], timeout: 10n })).stdout.toString().trim();
      assert.equal(seen, name === "rprivate" ? "" : "flagFile");
      const fromCtr = join(src, "fromctr");
      await env.d.client.runtime.execSync({ containerId: id, cmd: ["/bin/sh", "-c", `mkdir -p ${fromCtr} && mount --bind /etc ${fromCtr}`], timeout: 10n });
      assert.equal(readdirSync(fromCtr).length > 0, name === "rshared");
      await env.d.client.runtime.removePodSandbox({ podSandboxId: pod.id });
    } finally {
      while (mountsUnder(src).length > 0) for (const m of mountsUnder(src).sort().reverse()) spawnSync("umount", ["-l", m]);
    }
  });
}

test("a container past its memory limit is OOMKilled with 137; UpdateContainerResources changes a running container's limit", async () => {
  const pod = await runPod(env, "oom");
  const r = await runToExit(env, pod, ctrConfig("hog", bb, { command: ["dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"], linux: { resources: { memoryLimitInBytes: 32n * 1024n * 1024n } } }));
  assert.equal(r.status.exitCode, 137);
  assert.equal(r.status.reason, "OOMKilled");

  // UpdateContainerResources changes the limit of a running container.
  const id = await runCtr(env, pod, ctrConfig("resize", bb, { command: ["sleep", "600"], linux: { resources: { memoryLimitInBytes: 32n * 1024n * 1024n } } }));
  const limit = async () => (await env.d.client.runtime.execSync({ containerId: id, cmd: ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"], timeout: 10n })).stdout.toString().trim();
  assert.equal(await limit(), String(32 * 1024 * 1024));
  await env.d.client.runtime.updateContainerResources({ containerId: id, linux: { memoryLimitInBytes: 64n * 1024n * 1024n } });
  assert.equal(await limit(), String(64 * 1024 * 1024));
  const st = (await env.d.client.runtime.containerStatus({ containerId: id })).status;
  assert.equal(st?.resources?.linux?.memoryLimitInBytes, 64n * 1024n * 1024n);
  await env.d.client.runtime.removePodSandbox({ podSandboxId: pod.id });
});

test("invalid requests get the right code and leave no residue", async () => {
  const pod = await runPod(env, "bad");
  await assert.rejects(createCtr(env, pod, ctrConfig("img", "127.0.0.1:1/none:latest")), (e) => code(e) === Grpc.NOT_FOUND);
  await assert.rejects(createCtr(env, { id: "f".repeat(64), config: pod.config }, ctrConfig("nopod", bb)), (e) => code(e) === Grpc.NOT_FOUND);
  await assert.rejects(
    createCtr(env, pod, ctrConfig("mnt", bb, { mounts: [{ containerPath: "/data", hostPath: "/nonexistent/berth-e2e-path" }] })),
    (e) => code(e) === Grpc.INVALID_ARGUMENT && /nonexistent\/berth-e2e-path/.test((e as Error).message),
  );
  await assert.rejects(createCtr(env, pod, ctrConfig("", bb)), (e) => code(e) === Grpc.INVALID_ARGUMENT);
  const first = await createCtr(env, pod, ctrConfig("dup", bb, { command: ["true"] }));
  await assert.rejects(createCtr(env, pod, ctrConfig("dup", bb, { command: ["true"] })), (e) => code(e) === Grpc.ALREADY_EXISTS && (e as Error).message.includes(first));
  await assert.rejects(env.d.client.runtime.startContainer({ containerId: "f".repeat(64) }), (e) => code(e) === Grpc.NOT_FOUND);
  await env.d.client.runtime.removeContainer({ containerId: first });
  assert.equal((await env.d.client.runtime.listContainers({})).containers.filter((c) => c.podSandboxId === pod.id).length, 0);
  await env.d.client.runtime.stopPodSandbox({ podSandboxId: pod.id });
  await env.d.client.runtime.removePodSandbox({ podSandboxId: pod.id });
  if ((await env.d.client.runtime.listPodSandbox({})).items.length === 0) assert.deepEqual(await residue(env), []);
});
