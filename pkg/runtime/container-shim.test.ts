// Root test: real conmon + runc on a busybox rootfs (skipped when not root).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, rmdirSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { setRootLogger } from "../log/index.js";
import { detectCgroups } from "../sys/index.js";
import { buildSpec, type ContainerSpecRequest, type HostFeatures } from "../oci/index.js";
import { conmonCreate, conmonReopenLog, execSync, podMonitorCgroup, podMonitorMemory, podMonitorPids, processAlive, readExitFile, runtimeDelete, runtimeKill, runtimeStart, runtimeState, startCreated, stopPodMonitors, type OciRuntime } from "../shim/index.js";

setRootLogger({ level: "silent" });
const isRoot = process.getuid?.() === 0 && existsSync("/usr/bin/conmon") && existsSync("/usr/sbin/runc");
const base = mkdtempSync(join(tmpdir(), "berth-shim-test-"));
const cgroups = detectCgroups();
const parent = `/berth-shim-test-${randomBytes(4).toString("hex")}`;
const rt: OciRuntime = { name: "runc", path: "/usr/sbin/runc", root: join(base, "runc") };
const exitDir = join(base, "exits");
const host: HostFeatures = {
  cgroupMode: cgroups.mode,
  cgroupDriver: "cgroupfs",
  apparmor: false,
  swapAccount: existsSync("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
  hugepageSizes: [],
  oomScoreAdjFloor: 0,
  hostDevices: () => [],
};

after(async () => {
  if (!isRoot) return;
  await stopPodMonitors(cgroups, parent).catch(() => undefined);
  for (const c of readdirSync("/sys/fs/cgroup")) {
    try {
      rmdirSync(join("/sys/fs/cgroup", c, parent));
    } catch {
      /* not there */
    }
  }
  rmSync(base, { recursive: true, force: true });
});

function rootfs(dir: string): void {
  mkdirSync(join(dir, "bin"), { recursive: true });
  mkdirSync(join(dir, "etc"), { recursive: true });
  copyFileSync("/bin/busybox", join(dir, "bin/busybox"));
  for (const a of ["sh", "echo", "sleep", "cat", "dd", "id", "true", "yes", "head"]) symlinkSync("busybox", join(dir, "bin", a));
  writeFileSync(join(dir, "etc/passwd"), "root:x:0:0:root:/:/bin/sh\n");
  writeFileSync(join(dir, "etc/group"), "root:x:0:\n");
}

async function create(name: string, config: ContainerSpecRequest, edit?: (spec: Record<string, unknown>) => void) {
  const id = `${name}-${randomBytes(4).toString("hex")}`;
  const bundle = join(base, "bundles", id);
  mkdirSync(join(bundle, "rootfs"), { recursive: true });
  rootfs(join(bundle, "rootfs"));
  const { spec } = buildSpec({
    id,
    config,
    image: { Cmd: ["/bin/sh"], Env: ["PATH=/bin"] },
    rootfs: join(bundle, "rootfs"),
    sandbox: { id: "sb", hostname: "shimtest", hostNetwork: true, hostPid: false, hostIpc: false, cgroupParent: parent },
    host,
  });
  edit?.(spec as unknown as Record<string, unknown>);
  writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
  const logPath = join(base, "logs", `${id}.log`);
  mkdirSync(join(base, "logs"), { recursive: true });
  const persistDir = join(base, "persist", id);
  const created = await conmonCreate(
    { conmonPath: "/usr/bin/conmon", logLevel: "info", cgroups, systemdCgroup: false },
    { id, name, runtime: rt, bundle, exitDir, persistDir, logPath, tty: config.tty ?? false, stdin: false, stdinOnce: false, monitorCgroup: podMonitorCgroup(parent), timeoutMs: 30_000 },
  );
  return { id, bundle, logPath, persistDir, created, spec };
}

async function waitExit(id: string, persistDir: string, ms = 15_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const e = readExitFile(exitDir, persistDir, id);
    if (e) return e;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no exit file for ${id}`);
}

test("create + start: log in kubelet format, exit code in the exit file", { skip: !isRoot }, async () => {
  const c = await create("basic", { command: ["/bin/sh", "-c", "echo hello; echo oops >&2; exit 3"] });
  assert.ok(c.created.pid > 0);
  assert.ok(processAlive(c.created.conmonPid, c.created.conmonStartTime));
  assert.ok(podMonitorPids(cgroups, parent).includes(c.created.conmonPid), "conmon sits in the pod's monitor cgroup");
  assert.equal((await runtimeState(rt, c.id))?.status, "created");
  await runtimeStart(rt, c.id);
  const exit = await waitExit(c.id, c.persistDir);
  assert.equal(exit.exitCode, 3);
  assert.equal(exit.oomKilled, false);
  const lines = readFileSync(c.logPath, "utf8").trim().split("\n");
  assert.match(lines[0] ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+[+-]\d\d:\d\d stdout F hello$/);
  assert.match(lines[1] ?? "", / stderr F oops$/);
  await runtimeDelete(rt, c.id);
  assert.equal(await runtimeState(rt, c.id), undefined);
});

test("runtime create failure comes back with the runtime's message", { skip: !isRoot }, async () => {
  await assert.rejects(create("badcmd", { command: ["/nonexistent-binary"] }).then(async (c) => {
    // runc 1.1 reports a missing binary at create.
    await runtimeDelete(rt, c.id);
  }), /nonexistent-binary|no such file/i);
});

test("exec sync: output, exit code, timeout kills the process", { skip: !isRoot }, async () => {
  const c = await create("exec", { command: ["/bin/sleep", "60"] });
  await runtimeStart(rt, c.id);
  const r = await execSync(rt, c.id, c.bundle, c.spec.process as unknown as Record<string, unknown>, ["/bin/sh", "-c", "echo out; echo err >&2; exit 7"], 10_000);
  assert.equal(r.stdout.toString(), "out\n");
  assert.equal(r.stderr.toString(), "err\n");
  assert.equal(r.exitCode, 7);
  const started = Date.now();
  const t = await execSync(rt, c.id, c.bundle, c.spec.process as unknown as Record<string, unknown>, ["/bin/sleep", "30"], 500);
  assert.ok(Date.now() - started < 10_000);
  assert.equal(t.timedOut, true);
  assert.notEqual(t.exitCode, 0);
  // Large output is capped at 16 MiB.
  const big = await execSync(rt, c.id, c.bundle, c.spec.process as unknown as Record<string, unknown>, ["/bin/sh", "-c", "head -c 20000000 /dev/zero"], 30_000);
  assert.equal(big.stdout.length, 16 * 1024 * 1024);
  assert.equal(big.exitCode, 0);
  // Stop: SIGTERM is ignored by sleep as pid 1, SIGKILL ends it.
  await runtimeKill(rt, c.id, "KILL");
  const exit = await waitExit(c.id, c.persistDir);
  assert.equal(exit.exitCode, 137);
  await runtimeDelete(rt, c.id);
});

test("reopen log through the control fifo writes to a new file", { skip: !isRoot }, async () => {
  const c = await create("reopen", { command: ["/bin/sh", "-c", "echo one; sleep 1; echo two; sleep 60"] });
  await runtimeStart(rt, c.id);
  await new Promise((r) => setTimeout(r, 300));
  renameSync(c.logPath, `${c.logPath}.1`);
  conmonReopenLog(c.bundle);
  const end = Date.now() + 5000;
  while (!existsSync(c.logPath) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 1500));
  assert.match(readFileSync(`${c.logPath}.1`, "utf8"), /stdout F one/);
  assert.match(readFileSync(c.logPath, "utf8"), /stdout F two/);
  await runtimeKill(rt, c.id, "KILL");
  await waitExit(c.id, c.persistDir);
  await runtimeDelete(rt, c.id);
});

test("tty container logs through the pty", { skip: !isRoot }, async () => {
  const c = await create("tty", { command: ["/bin/sh", "-c", "echo tty-out; exit 0"], tty: true });
  await runtimeStart(rt, c.id);
  const exit = await waitExit(c.id, c.persistDir);
  assert.equal(exit.exitCode, 0);
  assert.match(readFileSync(c.logPath, "utf8"), /stdout F tty-out\r?$/m);
  await runtimeDelete(rt, c.id);
});

test("a container past its memory limit is OOM-killed and the marker is written", { skip: !isRoot }, async () => {
  const resources = { cpuPeriod: 0n, cpuQuota: 0n, cpuShares: 0n, memoryLimitInBytes: 16n * 1024n * 1024n, oomScoreAdj: 0n, cpusetCpus: "", cpusetMems: "", hugepageLimits: [], unified: {}, memorySwapLimitInBytes: 0n };
  const c = await create("oom", { command: ["/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"], linux: { resources } });
  await runtimeStart(rt, c.id);
  const exit = await waitExit(c.id, c.persistDir);
  assert.equal(exit.exitCode, 137);
  assert.equal(exit.oomKilled, true);
  const mem = podMonitorMemory(cgroups, parent);
  assert.ok(Array.isArray(mem));
  await runtimeDelete(rt, c.id);
});

test("start through the exec fifo: runc state says running, the fifo is gone, the process runs to its exit", { skip: !isRoot }, async () => {
  const c = await create("fifo", { command: ["/bin/sh", "-c", "echo fifo-started; exit 4"] });
  const fifo = join(rt.root, c.id, "exec.fifo");
  assert.ok(existsSync(fifo));
  assert.equal(await startCreated(rt, c.id, c.bundle), "exec-fifo");
  assert.equal(existsSync(fifo), false);
  const exit = await waitExit(c.id, c.persistDir);
  assert.equal(exit.exitCode, 4);
  assert.match(readFileSync(c.logPath, "utf8"), /stdout F fifo-started$/m);
  await runtimeDelete(rt, c.id);

  const s = await create("fifo-state", { command: ["/bin/sleep", "60"] });
  assert.equal(await startCreated(rt, s.id, s.bundle), "exec-fifo");
  assert.equal((await runtimeState(rt, s.id))?.status, "running");
  await assert.rejects(startCreated(rt, s.id, s.bundle), /already running|running container/, "a second start is refused by runc itself");
  await runtimeKill(rt, s.id, "KILL");
  await waitExit(s.id, s.persistDir);
  await runtimeDelete(rt, s.id);
});

test("the exec-fifo start does not wait on a dead init; runc start runs instead for poststart hooks and other runtimes", { skip: !isRoot }, async () => {
  const dead = await create("fifo-dead", { command: ["/bin/sleep", "60"] });
  process.kill(dead.created.pid, "SIGKILL");
  await waitExit(dead.id, dead.persistDir);
  await assert.rejects(startCreated(rt, dead.id, dead.bundle), /init process \(pid \d+\) is gone/);
  await runtimeDelete(rt, dead.id);

  const marker = join(base, "poststart-ran");
  const hooked = await create("fifo-hook", { command: ["/bin/sleep", "60"] }, (spec) => {
    spec["hooks"] = { poststart: [{ path: "/bin/sh", args: ["sh", "-c", `touch ${marker}`] }] };
  });
  assert.equal(await startCreated(rt, hooked.id, hooked.bundle), "runtime");
  assert.equal((await runtimeState(rt, hooked.id))?.status, "running");
  assert.ok(existsSync(marker), "the poststart hook ran");
  await runtimeKill(rt, hooked.id, "KILL");
  await waitExit(hooked.id, hooked.persistDir);
  await runtimeDelete(rt, hooked.id);

  const wrapper = join(base, "runc-wrapper");
  writeFileSync(wrapper, "#!/bin/sh\nexec /usr/sbin/runc \"$@\"\n", { mode: 0o755 });
  const other = await create("fifo-other", { command: ["/bin/sleep", "60"] });
  const otherRt: OciRuntime = { ...rt, name: "wrapped", path: wrapper };
  assert.equal(await startCreated(otherRt, other.id, other.bundle), "runtime");
  assert.equal((await runtimeState(rt, other.id))?.status, "running");
  await runtimeKill(rt, other.id, "KILL");
  await waitExit(other.id, other.persistDir);
  await runtimeDelete(rt, other.id);
});
