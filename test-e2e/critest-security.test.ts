// Mirrors critest's security context tests (cri-tools
// pkg/validate/security_context_linux.go): namespace options, users and groups,
// read-only rootfs, privileged, capabilities, masked/read-only paths and seccomp.
// nginx is replaced by busybox processes, `ipcs -m` by /proc/sysvipc/shm
// (our busybox has no ipcs), and the `ls` masking test uses the dynamic busybox.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import {
  ContainerState,
  NamespaceMode,
  SecurityProfile_ProfileType,
  type ContainerConfig,
  type DeepPartial,
  type LinuxContainerSecurityContext,
  type NamespaceOption,
  type PodSandboxConfig,
  type SecurityProfile,
} from "../api/gen/cri/v1/api.js";
import { startRegistry, type Registry } from "./harness/registry.js";
import { ensureTestImages } from "./harness/images.js";
import { startEnv, stopEnv, type Env } from "./containers-helpers.js";
import { buildImage, OciLayout, pushFromLayout, skeletonEntries } from "../hack/images/index.js";

let reg: Registry;
let env: Env;
let bb: string;
let bbDyn: string;
const tmp: string[] = [];
const pods: string[] = [];

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
type Pod = { id: string; config: DeepPartial<PodSandboxConfig> };

function logDir(name: string): string {
  const hostPath = mkdtempSync(join(tmpdir(), "podLogTest"));
  tmp.push(hostPath);
  const dir = join(hostPath, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

async function pod(name: string, linux: DeepPartial<PodSandboxConfig>["linux"] = {}, withLogs = false, extra: DeepPartial<PodSandboxConfig> = {}): Promise<Pod> {
  const fullName = name + uuid();
  const config: DeepPartial<PodSandboxConfig> = {
    metadata: { name: fullName, uid: "cri-test-uid" + uuid(), namespace: "cri-test-namespace" + uuid(), attempt: 2 },
    linux,
    labels: {},
    ...(withLogs ? { logDirectory: logDir(fullName) } : {}),
    ...extra,
  };
  const r = await rt().runPodSandbox({ config });
  pods.push(r.podSandboxId);
  return { id: r.podSandboxId, config };
}

async function nsPod(ns: DeepPartial<NamespaceOption>, withLogs = false): Promise<Pod> {
  return pod("NamespaceOption-PodSandbox-", { securityContext: { namespaceOptions: ns }, cgroupParent: "" }, withLogs, { dnsConfig: {} });
}

async function ctr(p: Pod, name: string, sc: DeepPartial<LinuxContainerSecurityContext>, extra: DeepPartial<ContainerConfig> = {}): Promise<string> {
  const config: DeepPartial<ContainerConfig> = {
    metadata: { name, attempt: 2 },
    image: { image: bb },
    command: ["sh", "-c", "top"],
    linux: { securityContext: sc },
    ...extra,
  };
  return (await rt().createContainer({ podSandboxId: p.id, config, sandboxConfig: p.config })).containerId;
}

async function state(id: string) {
  return (await rt().containerStatus({ containerId: id })).status?.state;
}

async function waitState(id: string, want: ContainerState, ms = 60_000) {
  const end = Date.now() + ms;
  for (;;) {
    const s = await state(id);
    if (s === want) return;
    if (Date.now() > end) throw new Error(`container ${id} state ${s}, want ${want}`);
    await sleep(200);
  }
}

async function run(p: Pod, name: string, sc: DeepPartial<LinuxContainerSecurityContext>, extra: DeepPartial<ContainerConfig> = {}): Promise<string> {
  const id = await ctr(p, name, sc, extra);
  await rt().startContainer({ containerId: id });
  await waitState(id, ContainerState.CONTAINER_RUNNING);
  return id;
}

async function runToExit(p: Pod, name: string, sc: DeepPartial<LinuxContainerSecurityContext>, command: string[]): Promise<{ stdout: string[]; stderr: string[] }> {
  const id = await ctr(p, name, sc, { command, logPath: name + ".log" });
  await rt().startContainer({ containerId: id });
  await waitState(id, ContainerState.CONTAINER_EXITED);
  const text = readFileSync(join(p.config.logDirectory as string, name + ".log"), "utf8");
  const msgs = text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => l.split(" "));
  return {
    stdout: msgs.filter((m) => m[1] === "stdout").map((m) => m.slice(3).join(" ") + "\n"),
    stderr: msgs.filter((m) => m[1] === "stderr").map((m) => m.slice(3).join(" ") + "\n"),
  };
}

/** ExecSync as critest's helpers see it: err when the exit code is non-zero. */
async function exec(id: string, cmd: string[]) {
  const r = await rt().execSync({ containerId: id, cmd, timeout: 30n });
  return { ok: r.exitCode === 0, exitCode: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

async function cleanupPods() {
  for (const id of pods.splice(0)) {
    await rt().stopPodSandbox({ podSandboxId: id });
    await rt().removePodSandbox({ podSandboxId: id });
  }
}

test("NamespaceOption: HostPID shows another host-PID container's process", async () => {
  const ns = { pid: NamespaceMode.NODE, ipc: NamespaceMode.POD, network: NamespaceMode.POD };
  const p = await nsPod(ns);
  try {
    const first = await run(p, "sleeper-hostpid-" + uuid(), { namespaceOptions: ns }, { command: ["sh", "-c", "echo $$ > /tmp/pid; exec sleep 4242"] });
    // critest reads nginx's pid file; the host has many sleeps, so the container records its own pid.
    const pid = (await exec(first, ["sh", "-c", "while [ ! -s /tmp/pid ]; do sleep 1; done && cat /tmp/pid"])).stdout.trim();
    assert.match(pid, /^\d+$/);
    assert.match(readFileSync(`/proc/${pid}/cmdline`, "utf8"), /sleep\x004242/, "the pid is a host pid");
    const second = await run(p, "container-with-HostPID-test-" + uuid(), { namespaceOptions: ns }, { command: ["sh", "-c", "sleep 1000"] });
    const r = await exec(second, ["pidof", "sleep", "||", "true"]);
    assert.ok(r.stdout.trim().split(/\s+/).includes(pid), `pidof in the hostPID container: ${r.stdout}`);
  } finally {
    await cleanupPods();
  }
});

for (const mode of [NamespaceMode.NODE, NamespaceMode.POD]) {
  test(`NamespaceOption: HostIpc is ${mode === NamespaceMode.NODE}`, async () => {
    const out = execFileSync("ipcmk", ["-M", "1048576"], { encoding: "utf8" });
    const segmentId = out.trim().replace(/^Shared memory id: /, "");
    try {
      const ns = { pid: NamespaceMode.POD, ipc: mode, network: NamespaceMode.POD };
      const p = await nsPod(ns);
      const id = await run(p, "namespace-container-" + uuid(), { namespaceOptions: ns });
      const r = await exec(id, ["cat", "/proc/sysvipc/shm"]);
      assert.equal(r.stderr, "");
      const ids = r.stdout.split("\n").slice(1).map((l) => l.trim().split(/\s+/)[1]);
      assert.equal(ids.includes(segmentId), mode === NamespaceMode.NODE, `segment ${segmentId} in ${JSON.stringify(ids)}`);
    } finally {
      execFileSync("ipcrm", ["-m", segmentId]);
      await cleanupPods();
    }
  });
}

test("NamespaceOption: PodPID (pid 1 is not the container) and ContainerPID (pid 1 is the container)", async () => {
  try {
    const podNs = { pid: NamespaceMode.POD };
    const p1 = await nsPod(podNs);
    const a = await run(p1, "pid-pod-" + uuid(), { namespaceOptions: podNs }, { command: ["sleep", "4343"] });
    assert.doesNotMatch((await exec(a, ["cat", "/proc/1/cmdline"])).stdout, /4343/);
    const ctrNs = { pid: NamespaceMode.CONTAINER };
    const p2 = await nsPod(ctrNs);
    const b = await run(p2, "pid-ctr-" + uuid(), { namespaceOptions: ctrNs }, { command: ["sleep", "4343"] });
    assert.match((await exec(b, ["cat", "/proc/1/cmdline"])).stdout, /4343/);
  } finally {
    await cleanupPods();
  }
});

for (const hostNetwork of [true, false]) {
  test(`NamespaceOption: HostNetwork is ${hostNetwork}`, async () => {
    const srv = createServer((c) => c.end("hello"));
    await new Promise<void>((res) => srv.listen(0, res));
    const port = (srv.address() as AddressInfo).port;
    try {
      const ns = { pid: NamespaceMode.POD, ipc: NamespaceMode.POD, network: hostNetwork ? NamespaceMode.NODE : NamespaceMode.POD };
      const p = await nsPod(ns, true);
      const name = "container-with-HostNetwork-test-" + uuid();
      const { stdout } = await runToExit(p, name, { namespaceOptions: ns }, ["sh", "-c", "netstat -ln"]);
      assert.equal(stdout.some((l) => l.includes(`:${port}`)), hostNetwork, stdout.join(""));
    } finally {
      srv.close();
      await cleanupPods();
    }
  });
}

test("bucket: SupplementalGroups, RunAsUser, RunAsUserName", async () => {
  try {
    const p = await pod("create-PodSandbox-for-container-");
    const a = await run(p, "container-with-SupplementalGroups-test-" + uuid(), { supplementalGroups: [1234n, 5678n] });
    const groups = (await exec(a, ["id", "-G"])).stdout.trim().split(" ");
    assert.ok(groups.includes("1234") && groups.includes("5678"), groups.join(" "));
    const b = await run(p, "container-with-RunAsUser-test-" + uuid(), { runAsUser: { value: 1001n } });
    const u = await exec(b, ["id", "-u"]);
    assert.equal(u.stdout, "1001\n");
    assert.equal(u.stderr, "");
    const c = await run(p, "container-with-RunAsUserName-test-" + uuid(), { runAsUsername: "nobody" });
    const n = await exec(c, ["id", "-nu"]);
    assert.equal(n.stdout, "nobody\n");
    assert.equal(n.stderr, "");
  } finally {
    await cleanupPods();
  }
});

test("bucket: RunAsGroup, and RunAsGroup without RunAsUser is an error", async () => {
  try {
    const p = await pod("PodSandbox-with-log-directory-", { cgroupParent: "" }, true);
    const { stdout } = await runToExit(p, "container-with-RunAsGroup-test-" + uuid(), { runAsUser: { value: 1001n }, runAsGroup: { value: 1002n } }, ["sh", "-c", "echo $(id -u):$(id -g)"]);
    assert.ok(stdout.includes("1001:1002\n"), stdout.join(""));
    await assert.rejects(ctr(p, "container-with-RunAsGroup-without-RunAsUser-test-" + uuid(), { runAsGroup: { value: 1002n } }, { command: ["sh", "-c", "echo $(id -u):$(id -g)"] }));
  } finally {
    await cleanupPods();
  }
});

test("bucket: ReadOnlyRootfs false and true", async () => {
  try {
    const p = await pod("PodSandbox-with-log-directory-", { cgroupParent: "" }, true);
    const cmd = ["sh", "-c", "touch test.go && [ -f test.go ] && echo 'Found'"];
    const rw = await runToExit(p, "container-with-ReadOnlyRootfs-false-test-" + uuid(), { readonlyRootfs: false }, cmd);
    assert.ok(rw.stdout.includes("Found\n"), rw.stdout.join(""));
    const ro = await runToExit(p, "container-with-ReadOnlyRootfs-true-test-" + uuid(), { readonlyRootfs: true }, cmd);
    assert.ok(ro.stderr.includes("touch: test.go: Read-only file system\n"), ro.stderr.join(""));
  } finally {
    await cleanupPods();
  }
});

test("bucket: Privileged true and false (brctl addbr)", async () => {
  try {
    for (const privileged of [true, false]) {
      const p = await pod("create-Privileged-PodSandbox-for-container-", { securityContext: { privileged }, cgroupParent: "" });
      const id = await run(p, "container-with-isPrivileged-test-" + uuid(), { privileged });
      const r = await exec(id, ["brctl", "addbr", "foobar"]);
      assert.equal(r.ok, privileged, JSON.stringify(r));
    }
  } finally {
    await cleanupPods();
  }
});

test("bucket: adding and dropping capabilities, ALL", async () => {
  try {
    const p = await pod("create-PodSandbox-for-container-");
    const add = await run(p, "container-with-added-capability-test-" + uuid(), { capabilities: { addCapabilities: ["NET_ADMIN"] } });
    assert.equal((await exec(add, ["brctl", "addbr", "foobar"])).ok, true);
    const none = (await rt().createContainer({ podSandboxId: p.id, sandboxConfig: p.config, config: { metadata: { name: "container-with-notCapability-test-" + uuid(), attempt: 2 }, image: { image: bb }, command: ["top"], linux: {} } })).containerId;
    await rt().startContainer({ containerId: none });
    await waitState(none, ContainerState.CONTAINER_RUNNING);
    assert.equal((await exec(none, ["brctl", "addbr", "foobar"])).ok, false);

    const drop = await run(p, "container-with-dropped-capability-test-" + uuid(), { capabilities: { dropCapabilities: ["NET_RAW"] } });
    // critest: ping fails with "permission denied" on stderr after printing its banner.
    const ping = await exec(drop, ["ping", "-c", "1", "127.0.0.1"]);
    assert.equal(ping.ok, false, JSON.stringify(ping));
    assert.match(ping.stderr, /permission denied/i);

    const all = await run(p, "container-with-added-all-capability-test-" + uuid(), { capabilities: { addCapabilities: ["ALL"] } });
    const s1 = await exec(all, ["cat", "/proc/self/status"]);
    assert.equal(s1.stderr, "");
    assert.doesNotMatch(s1.stdout, /CapBnd:\s0000000000000000/);
    const dropAll = await run(p, "container-with-dropped-all-capability-test-" + uuid(), { capabilities: { dropCapabilities: ["ALL"] } });
    const s2 = await exec(dropAll, ["cat", "/proc/self/status"]);
    assert.equal(s2.stderr, "");
    assert.match(s2.stdout, /CapBnd:\s0000000000000000/);
  } finally {
    await cleanupPods();
  }
});

test("bucket: MaskedPaths and ReadonlyPaths", async () => {
  try {
    const p = await pod("create-PodSandbox-for-container-");
    const masked = await run(p, "container-with-maskedpaths" + uuid(), { maskedPaths: ["/bin/ls"] }, { image: { image: bbDyn } });
    const m = await exec(masked, ["/bin/sh", "-c", "ls"]);
    assert.equal(m.ok, false);
    assert.equal(m.stderr, "/bin/sh: ls: Permission denied\n");
    const ro = await run(p, "container-with-readonlypaths" + uuid(), { readonlyPaths: ["/tmp"] });
    const r = await exec(ro, ["touch", "/tmp/test"]);
    assert.equal(r.ok, false);
    assert.equal(r.stderr, "touch: /tmp/test: Read-only file system\n");
  } finally {
    await cleanupPods();
  }
});

test("SeccompProfilePath: unconfined, localhost, default, nil; sethostname with SYS_ADMIN", async () => {
  const dir = mkdtempSync(join(tmpdir(), "seccomp-tests"));
  tmp.push(dir);
  const blockHostname = join(dir, "block-host-name.json");
  writeFileSync(blockHostname, JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["sethostname"], action: "SCMP_ACT_ERRNO" }] }));
  const blockChmod = join(dir, "block-chmod.json");
  writeFileSync(blockChmod, JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["chmod", "fchmodat"], action: "SCMP_ACT_ERRNO" }] }));

  const seccompContainer = async (profile: DeepPartial<SecurityProfile> | undefined) => {
    const p = await pod("seccomp-sandbox-", { securityContext: profile === undefined ? {} : { seccomp: profile }, cgroupParent: "" });
    return run(p, "seccomp-container-" + uuid(), profile === undefined ? {} : { seccomp: profile });
  };
  const grep = ["grep", "Seccomp:", "/proc/self/status"];
  try {
    const unconfined = await seccompContainer({ profileType: SecurityProfile_ProfileType.Unconfined });
    let r = await exec(unconfined, grep);
    assert.ok(r.ok && /Seccomp:\s+0/.test(r.stdout), JSON.stringify(r));

    const local = await seccompContainer({ profileType: SecurityProfile_ProfileType.Localhost, localhostRef: blockChmod });
    r = await exec(local, ["chmod", "400", "/"]);
    assert.equal(r.ok, false);
    assert.match(r.stderr, /Operation not permitted/);

    const def = await seccompContainer({});
    r = await exec(def, grep);
    assert.ok(r.ok && /Seccomp:\s+2/.test(r.stdout), JSON.stringify(r));

    const nil = await seccompContainer(undefined);
    r = await exec(nil, grep);
    assert.ok(r.ok && /Seccomp:\s+0/.test(r.stdout), `nil profile is unconfined: ${JSON.stringify(r)}`);

    const cases: [string, DeepPartial<SecurityProfile>, boolean, boolean][] = [
      ["unconfined + SYS_ADMIN", { profileType: SecurityProfile_ProfileType.Unconfined }, false, true],
      ["block-hostname + SYS_ADMIN", { profileType: SecurityProfile_ProfileType.Localhost, localhostRef: blockHostname }, false, false],
      ["block-hostname, privileged", { profileType: SecurityProfile_ProfileType.Localhost, localhostRef: blockHostname }, true, true],
    ];
    for (const [what, profile, privileged, settable] of cases) {
      const p = privileged ? await pod("create-Privileged-PodSandbox-for-container-", { securityContext: { privileged: true }, cgroupParent: "" }) : await pod("create-PodSandbox-for-container-");
      const id = await run(p, "container-with-block-hostname-seccomp-profile-test-" + uuid(), {
        privileged,
        capabilities: { addCapabilities: privileged ? [] : ["SYS_ADMIN"] },
        seccomp: profile,
      }, { command: ["sleep", "60"], image: { image: bb, userSpecifiedImage: bb } });
      const h = await exec(id, ["hostname", "ANewHostName"]);
      assert.equal(h.ok, settable, `${what}: ${JSON.stringify(h)}`);
    }
  } finally {
    await cleanupPods();
  }
});

test("NoNewPrivs: a setuid-root binary does not raise the effective uid when true, does when false", async () => {
  // critest's nonewprivs image: a setuid-root program printing its effective uid. Built here from C.
  const dir = mkdtempSync(join(tmpdir(), "critest-nnp-"));
  tmp.push(dir);
  writeFileSync(join(dir, "nnp.c"), '#include <stdio.h>\n#include <unistd.h>\nint main(void){printf("Effective uid: %d\\n", (int)geteuid());return 0;}\n');
  execFileSync("gcc", ["-static", "-O2", "-o", join(dir, "nnp"), join(dir, "nnp.c")]);
  const layoutDir = join(dir, "layout");
  const layout = await OciLayout.open(layoutDir);
  const built = await buildImage(layout, {
    layers: [{ entries: [...skeletonEntries(), { type: "file", path: "usr/bin/nnp", content: await readFile(join(dir, "nnp")), mode: 0o4755, uid: 0, gid: 0 }] }],
    config: { Entrypoint: ["/usr/bin/nnp"] },
  });
  layout.tag(built.manifest, "1.3");
  await layout.save();
  await pushFromLayout(layoutDir, "1.3", reg.host, "nonewprivs", "1.3");
  const image = `${reg.host}/nonewprivs:1.3`;
  await env.d.client.image.pullImage({ image: { image } });
  try {
    const p = await pod("PodSandbox-with-log-directory-", { cgroupParent: "" }, true);
    for (const [noNewPrivs, want] of [[true, "Effective uid: 1000\n"], [false, "Effective uid: 0\n"]] as const) {
      const name = `alpine-nnp-${noNewPrivs}-` + uuid();
      const id = await ctr(p, name, { noNewPrivs, runAsUser: { value: 1000n } }, { image: { image }, command: [], logPath: name + ".log" });
      await rt().startContainer({ containerId: id });
      await waitState(id, ContainerState.CONTAINER_EXITED);
      const out = readFileSync(join(p.config.logDirectory as string, name + ".log"), "utf8");
      assert.ok(out.split("\n").some((l) => l.split(" ").slice(3).join(" ") + "\n" === want), `no_new_privs=${noNewPrivs}: ${out}`);
    }
  } finally {
    await cleanupPods();
  }
});
