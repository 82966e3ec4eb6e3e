// Mirrors critest (cri-tools pkg/validate) conformance tests of runtime info,
// pod sandboxes, containers, ExecSync, volumes and logs: the same requests
// (names, attempts, commands, labels) and the same assertions, against a real
// berthd with our local registry images instead of registry.k8s.io busybox.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { execFileSync } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { ContainerState, PodSandboxState, type ContainerConfig, type DeepPartial, type PodSandboxConfig } from "../api/gen/cri/v1/api.js";
import { startRegistry, type Registry } from "./harness/registry.js";
import { ensureTestImages } from "./harness/images.js";
import { startEnv, stopEnv, type Env } from "./containers-helpers.js";

let reg: Registry;
let env: Env;
let bb: string;
let bbDyn: string;
const tmp: string[] = [];

before(async () => {
  reg = await startRegistry();
  const images = await ensureTestImages(reg);
  env = await startEnv(reg, images);
  bb = images["busybox:latest"].ref;
  bbDyn = images["busybox-dyn:latest"].ref;
});

after(async () => {
  if (env) await stopEnv(env);
  await reg?.stop();
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

const rt = () => env.d.client.runtime;
const uuid = () => randomUUID();

// framework.CreatePodSandboxForContainer: attempt 2, empty Linux config, no hostname, no log dir.
async function critestPod(prefix = "create-PodSandbox-for-container-", extra: DeepPartial<PodSandboxConfig> = {}) {
  const config: DeepPartial<PodSandboxConfig> = {
    metadata: { name: prefix + uuid(), uid: "cri-test-uid" + uuid(), namespace: "cri-test-namespace" + uuid(), attempt: 2 },
    linux: {},
    labels: {},
    ...extra,
  };
  const r = await rt().runPodSandbox({ config });
  return { id: r.podSandboxId, config };
}

// createPodSandboxWithLogDirectory: a log dir named after the pod under a temp dir.
async function critestPodWithLogDir() {
  const name = "PodSandbox-with-log-directory-" + uuid();
  const hostPath = mkdtempSync(join(tmpdir(), "podLogTest"));
  tmp.push(hostPath);
  const logDirectory = join(hostPath, name);
  mkdirSync(logDirectory, { recursive: true, mode: 0o777 });
  return critestPod(name, { logDirectory, linux: { cgroupParent: "" } });
}

async function create(pod: { id: string; config: DeepPartial<PodSandboxConfig> }, config: DeepPartial<ContainerConfig>) {
  return (await rt().createContainer({ podSandboxId: pod.id, config, sandboxConfig: pod.config })).containerId;
}

// framework.CreateDefaultContainer: `top`, attempt 2.
const defaultCtr = (prefix: string, image = bb): DeepPartial<ContainerConfig> => ({
  metadata: { name: prefix + uuid(), attempt: 2 },
  image: { image },
  command: ["top"],
  linux: {},
});
// framework.CreatePauseContainer: `sh -c top`.
const pauseCtr = (prefix: string): DeepPartial<ContainerConfig> => ({ ...defaultCtr(prefix), command: ["sh", "-c", "top"] });

async function state(id: string) {
  return (await rt().containerStatus({ containerId: id })).status?.state;
}

async function eventually<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? String(x) : x))}`);
    await sleep(200);
  }
}

async function startRunning(id: string) {
  await rt().startContainer({ containerId: id });
  await eventually("container running", () => state(id), (s) => s === ContainerState.CONTAINER_RUNNING);
}

/**
 * Waits until the container's init catches SIGTERM. `top` installs its handler only after it
 * started; as PID 1 of its namespace it ignores a SIGTERM that comes earlier, and the stop
 * then waits out the whole timeout (critest has the same race; a faster start makes it likely).
 */
async function untilCatchesSigterm(id: string) {
  const st = await rt().containerStatus({ containerId: id, verbose: true });
  const pid = (JSON.parse(st.info["info"] ?? "{}") as { pid?: number }).pid ?? 0;
  assert.ok(pid > 0, "verbose ContainerStatus gives the pid");
  await eventually(
    "SIGTERM handler installed",
    async () => BigInt(`0x${/SigCgt:\s+([0-9a-f]+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? "0"}`),
    (mask) => ((mask >> 14n) & 1n) === 1n,
  );
}

async function stopPodAndRemove(id: string) {
  await rt().stopPodSandbox({ podSandboxId: id });
  await rt().removePodSandbox({ podSandboxId: id });
}

// kubelet's / critest's parseCRILog: "<RFC3339Nano> <stream> <tag> <log>", each line.
function parseCriLog(path: string): { time: Date; stream: string; log: string }[] {
  const out: { time: Date; stream: string; log: string }[] = [];
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line === "") continue;
    const parts = line.split(" ");
    assert.ok(parts.length >= 4, `CRI log line ${JSON.stringify(line)} has 4 fields`);
    const [ts, stream, tag] = parts as [string, string, string];
    assert.match(ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/, "RFC3339Nano timestamp");
    assert.ok(!Number.isNaN(Date.parse(ts)));
    assert.ok(stream === "stdout" || stream === "stderr", `stream ${stream}`);
    assert.ok(tag === "F" || tag === "P", `tag ${tag}`);
    out.push({ time: new Date(ts), stream, log: parts.slice(3).join(" ") + "\n" });
  }
  return out;
}

test("runtime info: Version and Status (runtime_info.go)", async () => {
  const v = await rt().version({ version: "" });
  assert.equal(v.version, "0.1.0");
  assert.ok(v.runtimeName);
  assert.ok(v.runtimeVersion);
  assert.ok(v.runtimeApiVersion);
  const s = await rt().status({});
  for (const type of ["RuntimeReady", "NetworkReady"]) {
    const c = s.status?.conditions.find((x) => x.type === type);
    assert.equal(c?.status, true, `${type} condition true`);
  }
  // Features are looked up for the handler critest uses by default: "".
  assert.ok(s.runtimeHandlers.some((h) => h.name === ""), "default runtime handler listed under the empty name");
});

test("PodSandbox: running, listing by id, stopping (NOTREADY), removing (pod.go)", async () => {
  const pod = await critestPod("PodSandbox-for-create-test-");
  const st = await rt().podSandboxStatus({ podSandboxId: pod.id });
  assert.equal(st.status?.state, PodSandboxState.SANDBOX_READY);
  const listed = await rt().listPodSandbox({ filter: { id: pod.id } });
  assert.deepEqual(listed.items.map((p) => p.id), [pod.id]);
  await rt().stopPodSandbox({ podSandboxId: pod.id });
  assert.equal((await rt().podSandboxStatus({ podSandboxId: pod.id })).status?.state, PodSandboxState.SANDBOX_NOTREADY);
  // critest's AfterEach stops again (idempotent) before removing.
  await rt().stopPodSandbox({ podSandboxId: pod.id });
  await rt().removePodSandbox({ podSandboxId: pod.id });
  assert.equal((await rt().listPodSandbox({ filter: { id: pod.id } })).items.length, 0);
  await rt().removePodSandbox({ podSandboxId: pod.id });
});

test("Container: create + list by id, start, stop within the timeout, remove created/running/stopped (container.go)", async () => {
  const pod = await critestPod();
  try {
    const created = await create(pod, defaultCtr("container-for-create-"));
    assert.deepEqual((await rt().listContainers({ filter: { id: created } })).containers.map((c) => c.id), [created]);
    assert.equal(await state(created), ContainerState.CONTAINER_CREATED);

    const started = await create(pod, defaultCtr("container-for-start-test-"));
    await startRunning(started);

    // testStopContainer: StopContainer(timeout 60) must return before 60 s.
    const t0 = Date.now();
    await untilCatchesSigterm(started);
    await rt().stopContainer({ containerId: started, timeout: 60n });
    assert.ok(Date.now() - t0 < 50_000, `StopContainer of \`top\` took ${Date.now() - t0} ms`);
    assert.equal(await state(started), ContainerState.CONTAINER_EXITED);

    const c1 = await create(pod, pauseCtr("container-for-remove-created-test-"));
    await rt().removeContainer({ containerId: c1 });
    assert.equal((await rt().listContainers({ filter: { id: c1 } })).containers.length, 0);

    const c2 = await create(pod, pauseCtr("container-for-remove-running-test-"));
    await rt().startContainer({ containerId: c2 });
    await rt().removeContainer({ containerId: c2 });
    assert.equal((await rt().listContainers({ filter: { id: c2 } })).containers.length, 0);

    const c3 = await create(pod, pauseCtr("container-for-remove-stopped-test-"));
    await startRunning(c3);
    const t1 = Date.now();
    await untilCatchesSigterm(c3);
    await rt().stopContainer({ containerId: c3, timeout: 60n });
    assert.ok(Date.now() - t1 < 50_000, `StopContainer of \`sh -c top\` took ${Date.now() - t1} ms`);
    await rt().removeContainer({ containerId: c3 });
    assert.equal((await rt().listContainers({ filter: { id: c3 } })).containers.length, 0);
  } finally {
    await stopPodAndRemove(pod.id);
  }
});

test("Container: execSync output and execSync with timeout (container.go)", async () => {
  const pod = await critestPod();
  try {
    const id = await create(pod, defaultCtr("container-for-execSync-test-"));
    await rt().startContainer({ containerId: id });
    const r = await rt().execSync({ containerId: id, cmd: ["echo", "-n", "hello"], timeout: 30n });
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout.toString(), "hello");
    assert.equal(r.stderr.toString(), "");

    await assert.rejects(rt().execSync({ containerId: id, cmd: ["sleep", "4321"], timeout: 1n }), "execSync should time out");
    // critest runs `pgrep sleep || true`; our busybox has no pgrep, pidof is the equivalent.
    const left = await rt().execSync({ containerId: id, cmd: ["sh", "-c", "pidof sleep || true"], timeout: 30n });
    assert.equal(left.stderr.toString(), "");
    assert.equal(left.stdout.toString().trim(), "", "the timed-out exec process is gone");
  } finally {
    await stopPodAndRemove(pod.id);
  }
});

test("Container: volume, and volume whose host path is a symlink (container.go)", async () => {
  const pod = await critestPod();
  try {
    for (const symlink of [false, true]) {
      const hostPath = mkdtempSync(join(tmpdir(), "test" + pod.id));
      tmp.push(hostPath);
      writeFileSync(join(hostPath, "testVolume.file"), "");
      let path = hostPath;
      if (symlink) {
        path = hostPath + "-symlink";
        symlinkSync(hostPath, path);
        tmp.push(path);
      }
      const id = await create(pod, {
        metadata: { name: "container-with-volume-test-" + uuid(), attempt: 2 },
        image: { image: bb },
        command: ["sh", "-c", "top"],
        mounts: [{ hostPath: path, containerPath: path, selinuxRelabel: true }],
      });
      await startRunning(id);
      const r = await rt().execSync({ containerId: id, cmd: ["ls", "-A", path], timeout: 30n });
      assert.equal(r.exitCode, 0, r.stderr.toString());
      assert.equal(r.stderr.toString(), "");
      assert.ok(r.stdout.toString().length > 0, `ls -A ${path} shows the volume content`);
    }
  } finally {
    await stopPodAndRemove(pod.id);
  }
});

test("Container: log of a finished container and reopening the log (container.go)", async () => {
  const pod = await critestPodWithLogDir();
  const logDir = pod.config.logDirectory as string;
  try {
    const name = "container-with-log-test-" + uuid();
    const id = await create(pod, { metadata: { name, attempt: 2 }, image: { image: bb }, command: ["echo", "hello World"], logPath: name + ".log" });
    await rt().startContainer({ containerId: id });
    await eventually("container exited", () => state(id), (s) => s === ContainerState.CONTAINER_EXITED);
    const msgs = parseCriLog(join(logDir, name + ".log"));
    assert.ok(msgs.some((m) => m.log === "hello World\n" && m.stream === "stdout"), JSON.stringify(msgs));
    const st = (await rt().containerStatus({ containerId: id })).status;
    assert.equal(st?.logPath, join(logDir, name + ".log"));

    const name2 = "container-reopen-log-test-" + uuid();
    const logPath = name2 + ".log";
    const id2 = await create(pod, {
      metadata: { name: name2, attempt: 2 },
      image: { image: bb },
      command: ["sh", "-c", "while true; do echo hello World; sleep 1; done"],
      logPath,
    });
    await rt().startContainer({ containerId: id2 });
    await eventually("log written", async () => (existsSync(join(logDir, logPath)) ? parseCriLog(join(logDir, logPath)).length : 0), (n) => n > 0);
    renameSync(join(logDir, logPath), join(logDir, logPath + ".new"));
    await rt().reopenContainerLog({ containerId: id2 });
    assert.ok(existsSync(join(logDir, logPath)), "new container log file created");
    await eventually("new log written", async () => parseCriLog(join(logDir, logPath)).length, (n) => n > 0);
    const oldLength = parseCriLog(join(logDir, logPath + ".new")).length;
    await sleep(3000);
    assert.equal(parseCriLog(join(logDir, logPath + ".new")).length, oldLength, "old log does not change");
  } finally {
    await stopPodAndRemove(pod.id);
  }
});

test("Container: ListContainers filters by state, label and pod; ContainerStatus fields", async () => {
  const pod = await critestPod();
  const other = await critestPod();
  try {
    const labels = { foo: "bar" };
    const a = await create(pod, { ...defaultCtr("container-for-filter-"), labels, annotations: { note: "x" } });
    const b = await create(other, defaultCtr("container-for-filter-"));
    await startRunning(b);
    const ids = async (filter: object) => (await rt().listContainers({ filter })).containers.map((c) => c.id).filter((x) => x === a || x === b).sort();
    assert.deepEqual(await ids({ state: { state: ContainerState.CONTAINER_CREATED } }), [a]);
    assert.deepEqual(await ids({ state: { state: ContainerState.CONTAINER_RUNNING } }), [b]);
    assert.deepEqual(await ids({ labelSelector: labels }), [a]);
    assert.deepEqual(await ids({ labelSelector: { foo: "baz" } }), []);
    assert.deepEqual(await ids({ podSandboxId: other.id }), [b]);
    assert.deepEqual(await ids({ podSandboxId: pod.id, labelSelector: labels }), [a]);
    const listed = (await rt().listContainers({ filter: { id: a } })).containers[0];
    assert.equal(listed?.podSandboxId, pod.id);
    assert.equal(listed?.metadata?.attempt, 2);
    assert.equal(listed?.imageRef, env.ids[bb]);
    assert.deepEqual(listed?.labels, labels);
    assert.deepEqual(listed?.annotations, { note: "x" });

    const st = (await rt().containerStatus({ containerId: b })).status;
    assert.equal(st?.metadata?.name.startsWith("container-for-filter-"), true);
    assert.ok((st?.createdAt ?? 0n) > 0n && (st?.startedAt ?? 0n) >= (st?.createdAt ?? 0n));
    assert.equal(st?.finishedAt, 0n);
    assert.equal(st?.image?.image, bb);
    assert.equal(st?.imageRef, env.ids[bb]);
    await rt().stopContainer({ containerId: b, timeout: 0n });
    const done = (await rt().containerStatus({ containerId: b })).status;
    assert.equal(done?.state, ContainerState.CONTAINER_EXITED);
    assert.ok((done?.finishedAt ?? 0n) >= (done?.startedAt ?? 0n) && (done?.finishedAt ?? 0n) > 0n);
    assert.deepEqual(await ids({ state: { state: ContainerState.CONTAINER_EXITED } }), [b]);
  } finally {
    await stopPodAndRemove(pod.id);
    await stopPodAndRemove(other.id);
  }
});

test("Networking: DNS config and hostname (networking.go)", async () => {
  const pod = await critestPod("PodSandbox-with-DNS-config-", {
    dnsConfig: { servers: ["10.10.10.10"], searches: ["google.com"], options: ["ndots:8"] },
    hostname: "critest-host",
  });
  try {
    const id = await create(pod, defaultCtr("container-for-DNS-config-test-"));
    await startRunning(id);
    const r = await rt().execSync({ containerId: id, cmd: ["cat", "/etc/resolv.conf"], timeout: 30n });
    for (const line of ["nameserver 10.10.10.10", "search google.com", "options ndots:8"]) assert.ok(r.stdout.toString().includes(line), `${line} in ${r.stdout.toString()}`);
    const h = await rt().execSync({ containerId: id, cmd: ["hostname"], timeout: 30n });
    assert.equal(h.stdout.toString(), "critest-host\n");
  } finally {
    await stopPodAndRemove(pod.id);
  }
});

test("Container with the dynamic busybox (exec through $PATH) runs `top` and stops in time", async () => {
  const pod = await critestPod();
  try {
    const id = await create(pod, defaultCtr("container-dyn-", bbDyn));
    await startRunning(id);
    await untilCatchesSigterm(id);
    const t0 = Date.now();
    await rt().stopContainer({ containerId: id, timeout: 60n });
    assert.ok(Date.now() - t0 < 50_000);
  } finally {
    await stopPodAndRemove(pod.id);
  }
});

test("Container OOM: exit code 137 and reason OOMKilled (container_linux.go: privileged pod, 15 MiB memory and swap)", async () => {
  const pod = await critestPod("create-Privileged-PodSandbox-for-container-", { linux: { securityContext: { privileged: true }, cgroupParent: "" } });
  try {
    const id = await create(pod, {
      metadata: { name: "OOM-test-" + uuid(), attempt: 2 },
      image: { image: bb },
      command: ["sh", "-c", "dd if=/dev/zero of=/dev/null bs=20M"],
      linux: { resources: { memoryLimitInBytes: 15n * 1024n * 1024n, memorySwapLimitInBytes: 15n * 1024n * 1024n } },
    });
    await rt().containerStatus({ containerId: id, verbose: true });
    await rt().startContainer({ containerId: id });
    const st = await eventually("container OOMKilled", async () => (await rt().containerStatus({ containerId: id })).status, (s) => s?.state === ContainerState.CONTAINER_EXITED && s.reason === "OOMKilled");
    assert.equal(st?.exitCode, 137);
  } finally {
    await stopPodAndRemove(pod.id);
  }
});

test("Container Mount Readonly: a non-recursive read-only mount leaves its submounts writable; status lists the mount", async () => {
  const pod = await critestPod("create-Privileged-PodSandbox-for-container-", { linux: { securityContext: { privileged: true }, cgroupParent: "" } });
  const hostPath = mkdtempSync(join(tmpdir(), "test" + pod.id));
  tmp.push(hostPath);
  const tmpfs = join(hostPath, "tmpfs");
  mkdirSync(tmpfs, { mode: 0o700 });
  execFileSync("mount", ["-t", "tmpfs", "none", tmpfs]);
  try {
    const id = await create(pod, {
      metadata: { name: "test-mount-" + uuid(), attempt: 2 },
      image: { image: bb },
      command: ["sh", "-c", "top"],
      mounts: [{ hostPath, containerPath: "/mnt", readonly: true, recursiveReadOnly: false, selinuxRelabel: true }],
    });
    const st = (await rt().containerStatus({ containerId: id, verbose: true })).status;
    assert.equal(st?.mounts.length, 1);
    assert.equal(st?.mounts[0]?.containerPath, "/mnt");
    assert.equal(st?.mounts[0]?.hostPath, hostPath);
    assert.equal(st?.mounts[0]?.readonly, true);
    await startRunning(id);
    const r = await rt().execSync({ containerId: id, cmd: ["touch", "/mnt/tmpfs/file"], timeout: 30n });
    assert.equal(r.exitCode, 0, r.stderr.toString());
    const top = await rt().execSync({ containerId: id, cmd: ["touch", "/mnt/file"], timeout: 30n });
    assert.notEqual(top.exitCode, 0, "the mount itself is read-only");
  } finally {
    await stopPodAndRemove(pod.id);
    execFileSync("umount", ["-l", tmpfs]);
  }
});
