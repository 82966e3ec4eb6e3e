// Fault 3 (part): an OCI runtime binary that fails. Two runtime handlers wrap
// the real runc and fail one command each ("create", "start"). A container on
// them must fail with a clear error naming the runtime's complaint, leave no
// container, bundle, runc state or conmon behind (create), or not be reported
// running (start); and once the cause is gone (the binaries work again) the
// same request succeeds on the same pods.

import { mkdirSync, writeFileSync } from "node:fs";
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

function failingRuntime(dir: string, command: string): string {
  const path = join(dir, `runc-fails-${command}`);
  writeFileSync(
    path,
    `#!/bin/sh\nfor a in "$@"; do [ "$a" = "${command}" ] && { echo "injected ${command} failure" >&2; exit 1; }; done\nexec ${RUNC} "$@"\n`,
    { mode: 0o755 },
  );
  return path;
}

function handlersToml(state: string, paths: Record<string, string>): string {
  return Object.entries(paths)
    .map(([name, path]) => `[runtime.handlers.${name}]\npath = ${JSON.stringify(path)}\nroot = ${JSON.stringify(join(state, "runtime", name))}\n`)
    .join("");
}

export async function runRuntimeFaults(world: World, log: (l: string) => void): Promise<RuntimeFaultsReport> {
  const rep: RuntimeFaultsReport = { outcomes: {}, failures: [] };
  const dir = join(world.work, "runtime-faults");
  mkdirSync(dir, { recursive: true });
  const broken = { "fails-create": failingRuntime(dir, "create"), "fails-start": failingRuntime(dir, "start") };
  let d: Daemon | undefined;
  try {
    const dirs = makeDirs();
    // The harness's config ends inside its [cni] table; handler tables follow it.
    const toml = (paths: Record<string, string>): string => handlersToml(dirs.state, paths);
    d = await startChaosDaemon(world, { dirs, toml: toml(broken) });
    const bb = world.images["busybox:latest"].ref;
    await d.client.image.pullImage({ image: { image: bb } });
    const pods: Record<string, { id: string; config: Record<string, unknown> }> = {};
    for (const handler of Object.keys(broken)) {
      const logDirectory = join(dirs.base, "pod-logs", handler);
      mkdirSync(logDirectory, { recursive: true });
      const config = { metadata: { name: handler, namespace: "chaos", uid: `uid-${handler}`, attempt: 0 }, hostname: handler, logDirectory };
      pods[handler] = { id: (await d.client.runtime.runPodSandbox({ config, runtimeHandler: handler })).podSandboxId, config };
    }
    const cconf = { metadata: { name: "c", attempt: 0 }, image: { image: bb }, command: ["sleep", "600"], logPath: "c.log" };
    const fc = pods["fails-create"];
    const fs = pods["fails-start"];
    if (!fc || !fs) throw new Error("pods missing");

    // create fails
    const r1 = await d.client.runtime.createContainer({ podSandboxId: fc.id, config: cconf, sandboxConfig: fc.config }).then(
      (r) => r.containerId,
      (err: unknown) => err as Error & { details?: string },
    );
    if (typeof r1 === "string") rep.failures.push("runtime fails create: CreateContainer succeeded");
    else {
      rep.outcomes["create fails"] = `${codeName(grpcCode(r1))}: ${(r1.details ?? r1.message).slice(0, 160)}`;
      if (!/injected create failure/.test(r1.details ?? r1.message)) rep.failures.push(`runtime fails create: the error does not carry the runtime's message: ${r1.message.slice(0, 300)}`);
      const left = (await d.client.runtime.listContainers({})).containers.filter((c) => c.podSandboxId === fc.id);
      if (left.length) rep.failures.push(`runtime fails create: ${left.length} containers listed after the failed create`);
      const leaks = scanLeaks(world, dirs);
      if (leaks.bundle.length || leaks["mount-overlay"].length) rep.failures.push(`runtime fails create: ${formatLeaks(leaks)}`);
      if (conmons(dirs).length) rep.failures.push(`runtime fails create: conmon left running`);
    }

    // start fails
    const cid = (await d.client.runtime.createContainer({ podSandboxId: fs.id, config: cconf, sandboxConfig: fs.config })).containerId;
    const r2 = await d.client.runtime.startContainer({ containerId: cid }).then(
      () => undefined,
      (err: unknown) => err as Error & { details?: string },
    );
    if (r2 === undefined) rep.failures.push("runtime fails start: StartContainer succeeded");
    else {
      rep.outcomes["start fails"] = `${codeName(grpcCode(r2))}: ${(r2.details ?? r2.message).slice(0, 160)}`;
      if (!/injected start failure/.test(r2.details ?? r2.message)) rep.failures.push(`runtime fails start: the error does not carry the runtime's message: ${r2.message.slice(0, 300)}`);
      const st = (await d.client.runtime.containerStatus({ containerId: cid })).status;
      rep.outcomes["state after failed start"] = ContainerState[st?.state ?? 3] ?? "?";
      if (st?.state === ContainerState.CONTAINER_RUNNING) rep.failures.push("runtime fails start: the container is reported RUNNING");
    }
    await d.client.runtime.removeContainer({ containerId: cid });

    // The cause goes away: the runtime binaries work again (same paths, same daemon).
    for (const path of Object.values(broken)) writeFileSync(path, `#!/bin/sh\nexec ${RUNC} "$@"\n`, { mode: 0o755 });
    for (const [handler, pod] of Object.entries(pods)) {
      try {
        const id = (await d.client.runtime.createContainer({ podSandboxId: pod.id, config: cconf, sandboxConfig: pod.config })).containerId;
        await d.client.runtime.startContainer({ containerId: id });
        const st = (await d.client.runtime.containerStatus({ containerId: id })).status;
        if (st?.state !== ContainerState.CONTAINER_RUNNING) rep.failures.push(`${handler} repaired: container is ${ContainerState[st?.state ?? 3]}`);
        rep.outcomes[`${handler} repaired`] = "runs";
      } catch (err) {
        rep.failures.push(`${handler} repaired: ${codeName(grpcCode(err))}: ${(err as Error).message.slice(0, 300)}`);
      }
      await d.client.runtime.stopPodSandbox({ podSandboxId: pod.id });
      await d.client.runtime.removePodSandbox({ podSandboxId: pod.id });
    }
    for (const img of (await d.client.image.listImages({})).images) await d.client.image.removeImage({ image: { image: img.id } });
    const leaks = scanLeaks(world, dirs);
    if (leakCount(leaks) > 0) rep.failures.push(`runtime faults: leaks after removing everything: ${formatLeaks(leaks)}`);
    log(`  runtime faults: ${JSON.stringify(rep.outcomes)}`);
  } catch (err) {
    rep.failures.push(`runtime faults: harness error: ${(err as Error).stack ?? String(err)}`);
  } finally {
    if (d) {
      await d.stop().catch(() => undefined);
      removeDirs(d.dirs);
    }
  }
  return rep;
}
