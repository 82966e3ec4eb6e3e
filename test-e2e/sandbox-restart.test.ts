import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { NamespaceMode, PodSandboxState, type DeepPartial, type PodSandboxConfig } from "../api/gen/cri/v1/api.js";
import { makeDirs, removeDirs, startDaemon, type Daemon, type DaemonDirs } from "./harness/daemon.js";
import { makeTestNetwork, mountsUnder, type TestNetwork } from "./harness/cni-net.js";

function pod(name: string, extra: DeepPartial<PodSandboxConfig> = {}): DeepPartial<PodSandboxConfig> {
  return { metadata: { name, namespace: "restart", uid: `uid-${name}`, attempt: 0 }, ...extra };
}

function holders(base: string): string[] {
  const out: string[] = [];
  for (const p of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8");
      if (cmd.startsWith("unshare\0") && cmd.includes(base)) out.push(p);
    } catch {
      // gone
    }
  }
  return out;
}

async function assertNoResidue(d: Daemon, net: TestNetwork): Promise<void> {
  assert.deepEqual(mountsUnder(d.dirs.base), [], "no mounts left");
  const sbDir = join(d.dirs.state, "sandboxes");
  assert.deepEqual(existsSync(sbDir) ? readdirSync(sbDir) : [], [], "no pod dirs left");
  const cache = join(d.dirs.state, "cni-cache");
  assert.deepEqual(existsSync(cache) ? readdirSync(cache).filter((f) => !f.startsWith(".")) : [], [], "no CNI cache entries left");
  assert.deepEqual(net.allocated(), [], "no IP allocations left");
  assert.deepEqual(holders(d.dirs.base), [], "no PID namespace holders left");
  assert.equal((await d.client.runtime.listPodSandbox({})).items.length, 0);
}

for (const how of ["kill -9", "SIGTERM"] as const) {
  test(`after ${how} of berthd, a restarted berthd has every pod in its state; stop and remove then leave nothing`, async () => {
    let d = await startDaemon();
    const net = makeTestNetwork(d.dirs.base);
    try {
      net.install(d.dirs.cniConfDir);
      const a = await d.client.runtime.runPodSandbox({ config: pod("a") });
      const b = await d.client.runtime.runPodSandbox({ config: pod("b") });
      const h = await d.client.runtime.runPodSandbox({ config: pod("h", { linux: { securityContext: { namespaceOptions: { network: NamespaceMode.NODE } } } }) });
      await d.client.runtime.stopPodSandbox({ podSandboxId: h.podSandboxId });
      const before = await d.client.runtime.podSandboxStatus({ podSandboxId: a.podSandboxId, verbose: true });
      if (how === "kill -9") await d.kill();
      else assert.equal(await d.stop(), 0);
      assert.equal(holders(d.dirs.base).length, 2, "pod inits survive berthd");

      d = await startDaemon({ dirs: d.dirs });
      const items = (await d.client.runtime.listPodSandbox({})).items;
      const state = Object.fromEntries(items.map((p) => [p.id, p.state]));
      assert.deepEqual(state, { [a.podSandboxId]: PodSandboxState.SANDBOX_READY, [b.podSandboxId]: PodSandboxState.SANDBOX_READY, [h.podSandboxId]: PodSandboxState.SANDBOX_NOTREADY });
      const after = await d.client.runtime.podSandboxStatus({ podSandboxId: a.podSandboxId, verbose: true });
      assert.equal(after.status?.network?.ip, before.status?.network?.ip);
      assert.equal(after.status?.createdAt, before.status?.createdAt);
      assert.equal(after.info["info"], before.info["info"]);
      const netns = (JSON.parse(after.info["info"] ?? "{}") as { netnsPath: string }).netnsPath;
      const ipB = (await d.client.runtime.podSandboxStatus({ podSandboxId: b.podSandboxId })).status?.network?.ip ?? "";
      const ping = spawnSync("nsenter", [`--net=${netns}`, "busybox", "ping", "-c1", "-W3", ipB], { encoding: "utf8" });
      assert.equal(ping.status, 0, ping.stdout + ping.stderr);
      await assert.rejects(d.client.runtime.runPodSandbox({ config: pod("a") }), /reserved/, "names are still reserved after the restart");

      for (const p of [a, b, h]) {
        await d.client.runtime.stopPodSandbox({ podSandboxId: p.podSandboxId });
        await d.client.runtime.removePodSandbox({ podSandboxId: p.podSandboxId });
      }
      await assertNoResidue(d, net);
    } finally {
      await d.stop();
      removeDirs(d.dirs);
      net.cleanup();
    }
  });
}

test("kill -9 in the middle of RunPodSandbox (during CNI ADD): the restart rolls it back and nothing leaks", async () => {
  const dirs: DaemonDirs = makeDirs();
  const bin = join(dirs.base, "cni-bin");
  mkdirSync(bin);
  const pidFile = join(dirs.base, "slow.pid");
  // A chained plugin that hangs in ADD (after bridge allocated the IP) and succeeds at DEL.
  writeFileSync(
    join(bin, "slow"),
    `#!/bin/sh\ncat >/dev/null\nif [ "$CNI_COMMAND" = ADD ]; then echo $$ > ${pidFile}; exec sleep 120; fi\nexit 0\n`,
  );
  chmodSync(join(bin, "slow"), 0o755);
  const toml = `bin_dirs = [${JSON.stringify(bin)}, "/usr/lib/cni"]`;
  let d = await startDaemon({ dirs, configToml: toml });
  const net = makeTestNetwork(dirs.base);
  try {
    net.install(dirs.cniConfDir, "10-berth-e2e.conflist", [{ type: "slow" }]);
    const run = d.client.runtime.runPodSandbox({ config: pod("crash") }).catch((e: unknown) => e);
    const deadline = Date.now() + 20_000;
    while (!existsSync(pidFile) && Date.now() < deadline) await sleep(20);
    assert.ok(existsSync(pidFile), "the slow plugin started");
    assert.equal(net.allocated().length, 1, "bridge allocated an IP before the crash");
    assert.ok(mountsUnder(dirs.base).length >= 3, "namespaces were pinned before the crash");
    await d.kill();
    await run;
    try {
      process.kill(Number(readFileSync(pidFile, "utf8")), "SIGKILL");
    } catch {
      // already gone
    }

    d = await startDaemon({ dirs, configToml: toml });
    await assertNoResidue(d, net);
    assert.match(d.output(), /rolling back a RunPodSandbox interrupted by a crash/);
  } finally {
    await d.stop();
    removeDirs(dirs);
    net.cleanup();
  }
});

test("a pod whose network namespace vanished while berthd was down comes back NOTREADY; stop releases its IP", async () => {
  let d = await startDaemon();
  const net = makeTestNetwork(d.dirs.base);
  try {
    net.install(d.dirs.cniConfDir);
    const { podSandboxId: id } = await d.client.runtime.runPodSandbox({ config: pod("lost") });
    const i = JSON.parse((await d.client.runtime.podSandboxStatus({ podSandboxId: id, verbose: true })).info["info"] ?? "{}") as { netnsPath: string };
    await d.kill();
    assert.equal(spawnSync("umount", [i.netnsPath]).status, 0);
    d = await startDaemon({ dirs: d.dirs });
    assert.equal((await d.client.runtime.podSandboxStatus({ podSandboxId: id })).status?.state, PodSandboxState.SANDBOX_NOTREADY);
    assert.equal(net.allocated().length, 1);
    await d.client.runtime.stopPodSandbox({ podSandboxId: id });
    assert.deepEqual(net.allocated(), []);
    await d.client.runtime.removePodSandbox({ podSandboxId: id });
    await assertNoResidue(d, net);
  } finally {
    await d.stop();
    removeDirs(d.dirs);
    net.cleanup();
  }
});
