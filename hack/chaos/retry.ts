// Fault 5: the kubelet's retry pattern. RunPodSandbox (slowed by a chained CNI
// plugin that sleeps) and StartContainer (slowed by a conmon wrapper that
// sleeps before it execs conmon) are called with a short client deadline; once
// that deadline passed, and while the first call still runs, the same request
// is sent again. The retry must return the first call's result (or a clean
// error), and afterwards exactly one whole object exists: never a duplicate,
// never a half-created one.

import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ContainerState, PodSandboxState, type ContainerConfig, type DeepPartial, type PodSandboxConfig } from "../../api/gen/cri/v1/api.js";
import type { Daemon } from "../../test-e2e/harness/daemon.js";
import { removeDirs, startChaosDaemon, type World } from "./env.js";
import { codeName, grpcCode } from "./kill-loop.js";
import { formatLeaks, leakCount, scanLeaks } from "./leaks.js";

export interface RetryReport {
  rounds: number;
  /** Outcome of each retry: "first-result", "clean-error:CODE", … */
  outcomes: Record<string, number>;
  failures: string[];
}

const SLOW_MS = 2500;

function writeSlowHelpers(dir: string): { binDir: string; conmon: string } {
  const binDir = join(dir, "cni-bin");
  mkdirSync(binDir, { recursive: true });
  // A chained CNI plugin that waits, then passes the previous result on.
  writeFileSync(
    join(binDir, "chaos-slow"),
    `#!${process.execPath}
let s = "";
process.stdin.on("data", (d) => (s += d)).on("end", () => {
  const cmd = process.env.CNI_COMMAND;
  if (cmd === "VERSION") { process.stdout.write(JSON.stringify({ cniVersion: "1.0.0", supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0"] })); return; }
  if (cmd !== "ADD") return;
  const conf = JSON.parse(s);
  setTimeout(() => process.stdout.write(JSON.stringify({ ...conf.prevResult, cniVersion: conf.cniVersion })), conf.sleepMs);
});
`,
    { mode: 0o755 },
  );
  const conmon = join(dir, "slow-conmon.sh");
  writeFileSync(conmon, `#!/bin/sh\nsleep ${SLOW_MS / 1000}\nexec /usr/bin/conmon "$@"\n`, { mode: 0o755 });
  return { binDir, conmon };
}

export async function runRetries(world: World, rounds: number, log: (l: string) => void): Promise<RetryReport> {
  const rep: RetryReport = { rounds: 0, outcomes: {}, failures: [] };
  if (rounds === 0) return rep;
  const helpers = writeSlowHelpers(world.work);
  const note = (what: string): void => {
    rep.outcomes[what] = (rep.outcomes[what] ?? 0) + 1;
  };
  let d: Daemon | undefined;
  try {
    d = await startChaosDaemon(world, {
      // The harness's config ends inside its [cni] table (conf_dir): bin_dirs continues that table.
      toml: `bin_dirs = ${JSON.stringify([helpers.binDir, "/opt/cni/bin", "/usr/lib/cni"])}\n[runtime]\nconmon_path = ${JSON.stringify(helpers.conmon)}\n`,
      extraPlugins: [{ type: "chaos-slow", sleepMs: SLOW_MS }],
    });
    const client = d.client;
    const bb = world.images["busybox:latest"].ref;
    await client.image.pullImage({ image: { image: bb } });
    for (let i = 0; i < rounds; i++) {
      rep.rounds++;
      const name = `retry-${i}`;
      const logDirectory = join(d.dirs.base, "pod-logs", name);
      mkdirSync(logDirectory, { recursive: true });
      const config: DeepPartial<PodSandboxConfig> = { metadata: { name, namespace: "chaos", uid: `uid-${name}`, attempt: 0 }, hostname: name, logDirectory };

      // RunPodSandbox: first call times out on the client, the retry comes while it still runs.
      const first = client.runtime.runPodSandbox({ config }, { timeoutMs: 600 }).then(
        (r) => r.podSandboxId,
        (err: unknown) => err,
      );
      const firstRes = await first;
      let podId: string | undefined;
      if (typeof firstRes === "string") {
        rep.failures.push(`RunPodSandbox ${name}: the first call finished within 600 ms, the slow CNI plugin did not slow it (retry not exercised)`);
        podId = firstRes;
      } else if (grpcCode(firstRes) !== 4) {
        rep.failures.push(`RunPodSandbox ${name}: the first call failed with ${codeName(grpcCode(firstRes))}, expected DEADLINE_EXCEEDED`);
      }
      // A kubelet retry, and a second identical call at the same moment.
      const [retryA, retryB] = await Promise.all(
        [0, 1].map(() =>
          client.runtime.runPodSandbox({ config }, { timeoutMs: 60_000 }).then(
            (r) => r.podSandboxId,
            (err: unknown) => err,
          ),
        ),
      );
      for (const r of [retryA, retryB]) {
        if (typeof r === "string") {
          note("RunPodSandbox:first-result");
          podId ??= r;
          if (r !== podId) rep.failures.push(`RunPodSandbox ${name}: two retries got different sandboxes (${podId.slice(0, 12)}, ${r.slice(0, 12)})`);
        } else {
          const c = codeName(grpcCode(r));
          note(`RunPodSandbox:clean-error:${c}`);
          rep.failures.push(`RunPodSandbox ${name}: a retry while the first call runs answered ${c} (${(r as Error).message.slice(0, 160)}), not the first call's result`);
        }
      }
      // The first call finishes in the background (a retry that got an error did not wait for it).
      const podsNow = async () => (await client.runtime.listPodSandbox({})).items.filter((p) => p.metadata?.name === name);
      for (let t = 0; t < 60 && (await podsNow()).length === 0; t++) await sleep(500);
      await sleep(500);
      const pods = await podsNow();
      if (pods.length !== 1) rep.failures.push(`RunPodSandbox ${name}: ${pods.length} sandboxes after a call and its retries, expected 1`);
      const pod = pods[0];
      if (pod && pod.state !== PodSandboxState.SANDBOX_READY) rep.failures.push(`RunPodSandbox ${name}: the sandbox is not ready`);
      if (pod && podId && pod.id !== podId) rep.failures.push(`RunPodSandbox ${name}: the retry answered ${podId.slice(0, 12)} but ${pod.id.slice(0, 12)} exists`);
      if (!pod) continue;

      // CreateContainer no longer launches anything (conmon and runc create run at
      // StartContainer, as in containerd), so it answers well within a kubelet deadline: the
      // retry pattern is the StartContainer one, which the slow conmon wrapper delays. The first
      // call gives up after 600 ms while its start goes on; the container must end up running,
      // exactly once, and a retry meanwhile gets either success or a clean precondition error.
      const cconf: DeepPartial<ContainerConfig> = { metadata: { name: "c", attempt: 0 }, image: { image: bb }, command: ["sleep", "600"], logPath: "c.log" };
      const req = { podSandboxId: pod.id, config: cconf, sandboxConfig: config };
      const ctrId = (await client.runtime.createContainer(req, { timeoutMs: 60_000 })).containerId;
      const sfirst = await client.runtime.startContainer({ containerId: ctrId }, { timeoutMs: 600 }).then(
        () => undefined,
        (err: unknown) => err,
      );
      if (sfirst === undefined) rep.failures.push(`StartContainer in ${name}: the first call finished within 600 ms (retry not exercised)`);
      else if (grpcCode(sfirst) !== 4) rep.failures.push(`StartContainer in ${name}: the first call failed with ${codeName(grpcCode(sfirst))}, expected DEADLINE_EXCEEDED`);
      const sretry = await client.runtime.startContainer({ containerId: ctrId }, { timeoutMs: 60_000 }).then(
        () => "ok",
        (err: unknown) => err,
      );
      if (sretry === "ok") note("StartContainer:retry-ok");
      else {
        const c = codeName(grpcCode(sretry));
        note(`StartContainer:clean-error:${c}`);
        if (grpcCode(sretry) !== 9) rep.failures.push(`StartContainer in ${name}: a retry answered ${c} (${(sretry as Error).message.slice(0, 160)}), want OK or FAILED_PRECONDITION`);
      }
      const ctrsNow = async () => (await client.runtime.listContainers({ filter: { podSandboxId: pod.id } })).containers;
      for (let t = 0; t < 60 && (await ctrsNow()).some((c) => c.state !== ContainerState.CONTAINER_RUNNING); t++) await sleep(500);
      const ctrs = await ctrsNow();
      if (ctrs.length !== 1) rep.failures.push(`StartContainer in ${name}: ${ctrs.length} containers after a start and its retry, expected 1`);
      const ctr = ctrs[0];
      if (ctr && ctr.state !== ContainerState.CONTAINER_RUNNING) rep.failures.push(`StartContainer in ${name}: the container is ${ContainerState[ctr.state]}, expected RUNNING`);
      if (ctr && ctr.state === ContainerState.CONTAINER_RUNNING) {
        const ex = await client.runtime.execSync({ containerId: ctr.id, cmd: ["echo", "whole"], timeout: 10n });
        if (ex.stdout.toString() !== "whole\n") rep.failures.push(`StartContainer in ${name}: the container of the retried start does not run whole`);
      }
      await client.runtime.stopPodSandbox({ podSandboxId: pod.id });
      await client.runtime.removePodSandbox({ podSandboxId: pod.id });
      log(`  retry round ${i + 1}: ${JSON.stringify(rep.outcomes)}`);
    }
    for (const img of (await client.image.listImages({})).images) await client.image.removeImage({ image: { image: img.id } });
    const leaks = scanLeaks(world, d.dirs);
    if (leakCount(leaks) > 0) rep.failures.push(`retries: leaks after removing everything: ${formatLeaks(leaks)}`);
  } catch (err) {
    rep.failures.push(`retries: harness error: ${(err as Error).stack ?? String(err)}`);
  } finally {
    if (d) {
      await d.stop().catch(() => undefined);
      if (rep.failures.length > 0) {
        const file = join(tmpdir(), `berth-chaos-retry-${process.pid}.log`);
        writeFileSync(file, d.output());
        log(`  berthd log of the retry rounds: ${file}`);
      }
      removeDirs(d.dirs);
    }
  }
  return rep;
}
