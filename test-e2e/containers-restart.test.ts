import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { ContainerState } from "../api/gen/cri/v1/api.js";
import { startRegistry, type Registry } from "./harness/registry.js";
import { ensureTestImages, type TestImages } from "./harness/images.js";
import { ctrConfig, logLines, residue, runCtr, runPod, startEnv, stopEnv, waitExited } from "./containers-helpers.js";

let reg: Registry;
let images: TestImages;

before(async () => {
  reg = await startRegistry();
  images = await ensureTestImages(reg);
});

after(async () => {
  await reg?.stop();
});

for (const how of ["kill -9", "SIGTERM"] as const) {
  test(`containers keep running and logging across ${how} of berthd; exits meanwhile carry their real codes`, async () => {
    let env = await startEnv(reg, images);
    const bb = images["busybox:latest"].ref;
    try {
      const pod = await runPod(env, "survive");
      const long = await runCtr(env, pod, ctrConfig("long", bb, { command: ["sleep", "600"] }));
      const ender = await runCtr(env, pod, ctrConfig("ender", bb, { command: ["/bin/sh", "-c", "i=0; while [ $i -lt 20 ]; do echo line$i; i=$((i+1)); sleep 0.1; done; exit 5"] }));
      const early = await runCtr(env, pod, ctrConfig("early", bb, { command: ["true"] }));
      const earlyStatus = await waitExited(env, early);
      const created = (await env.d.client.runtime.createContainer({ podSandboxId: pod.id, config: ctrConfig("created", bb, { command: ["true"] }), sandboxConfig: pod.config })).containerId;

      if (how === "kill -9") await env.d.kill();
      else assert.equal(await env.d.stop(), 0);
      await sleep(3500);
      env = await startEnv(reg, images, env.d.dirs, env.net);

      const st = async (id: string) => (await env.d.client.runtime.containerStatus({ containerId: id })).status;
      assert.equal((await st(long))?.state, ContainerState.CONTAINER_RUNNING);
      assert.equal((await st(created))?.state, ContainerState.CONTAINER_CREATED);
      const e = await st(ender);
      assert.equal(e?.state, ContainerState.CONTAINER_EXITED);
      assert.equal(e?.exitCode, 5);
      assert.equal(e?.reason, "Error");
      assert.deepEqual(logLines(readFileSync(e?.logPath ?? "", "utf8"), "stdout"), Array.from({ length: 20 }, (_, i) => `line${i}`));
      const again = await st(early);
      assert.equal(again?.finishedAt, earlyStatus.finishedAt);
      assert.equal(again?.reason, "Completed");
      const ex = await env.d.client.runtime.execSync({ containerId: long, cmd: ["echo", "still-here"], timeout: 10n });
      assert.equal(ex.stdout.toString(), "still-here\n");
      await env.d.client.runtime.startContainer({ containerId: created });
      assert.equal((await waitExited(env, created)).exitCode, 0);

      await env.d.client.runtime.stopPodSandbox({ podSandboxId: pod.id });
      assert.equal((await st(long))?.state, ContainerState.CONTAINER_EXITED);
      await env.d.client.runtime.removePodSandbox({ podSandboxId: pod.id });
      assert.deepEqual(await residue(env), []);
    } finally {
      await stopEnv(env);
    }
  });
}

test("kill -9 of a container's conmon: reported exited with a clear reason; the pod stops and is removed cleanly", async () => {
  const env = await startEnv(reg, images);
  const bb = images["busybox:latest"].ref;
  try {
    const pod = await runPod(env, "monitorloss");
    const id = await runCtr(env, pod, ctrConfig("victim", bb, { command: ["sleep", "600"] }));
    const info = JSON.parse((await env.d.client.runtime.containerStatus({ containerId: id, verbose: true })).info["info"] ?? "{}") as { conmonPid: number; pid: number; monitorPssBytes: number };
    assert.ok(info.conmonPid > 0 && info.pid > 0);
    assert.ok(info.monitorPssBytes > 0, "monitor PSS is reported");
    process.kill(info.conmonPid, "SIGKILL");
    const end = Date.now() + 10_000;
    let status;
    for (;;) {
      status = (await env.d.client.runtime.containerStatus({ containerId: id })).status;
      if (status?.state === ContainerState.CONTAINER_EXITED || Date.now() > end) break;
      await sleep(100);
    }
    assert.equal(status?.state, ContainerState.CONTAINER_EXITED);
    assert.match(status?.message ?? "", /monitor/);
    await sleep(500);
    let stat = "";
    try {
      stat = readFileSync(`/proc/${info.pid}/stat`, "utf8");
    } catch {
      stat = "";
    }
    // Gone, or a zombie waiting for its new parent to reap it.
    assert.ok(stat === "" || stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z"), `the unmonitored container process is gone (${stat.slice(0, 80)})`);
    await env.d.client.runtime.stopPodSandbox({ podSandboxId: pod.id });
    await env.d.client.runtime.removePodSandbox({ podSandboxId: pod.id });
    assert.deepEqual(await residue(env), []);
  } finally {
    await stopEnv(env);
  }
});

// kill -9 of berthd in the middle of a launch (StartContainer) is in containers-launch.test.ts.
