// Shared helpers of the container e2e tests: a daemon with a private CNI
// network and the test images pulled from a local registry.

import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ServiceError } from "@grpc/grpc-js";
import { ContainerState, type ContainerConfig, type DeepPartial, type PodSandboxConfig } from "../api/gen/cri/v1/api.js";
import { removeDirs, startDaemon, type Daemon, type DaemonDirs } from "./harness/daemon.js";
import { makeTestNetwork, mountsUnder, type TestNetwork } from "./harness/cni-net.js";
import type { Registry } from "./harness/registry.js";
import type { TestImages } from "./harness/images.js";

export function code(err: unknown): number | undefined {
  return (err as ServiceError).code;
}

export interface Env {
  d: Daemon;
  net: TestNetwork;
  images: TestImages;
  /** image ref → image id, for the pulled images. */
  ids: Record<string, string>;
}

export async function startEnv(reg: Registry, images: TestImages, dirs?: DaemonDirs, net?: TestNetwork, extraToml = "", berthd?: string): Promise<Env> {
  const d = await startDaemon({ configToml: `${extraToml}\n[image.registries."${reg.host}"]\nplain_http = true\n`, ...(dirs ? { dirs } : {}), ...(berthd ? { berthd } : {}) });
  const network = net ?? makeTestNetwork(d.dirs.base);
  if (!net) network.install(d.dirs.cniConfDir);
  const ids: Record<string, string> = {};
  for (const name of ["busybox:latest", "nonroot:latest", "entrypoint:latest", "busybox-dyn:latest"] as const) {
    const ref = images[name].ref;
    const r = await d.client.image.pullImage({ image: { image: ref } });
    ids[ref] = r.imageRef;
  }
  return { d, net: network, images, ids };
}

let podSeq = 0;
export function podConfig(env: Env, name: string, extra: DeepPartial<PodSandboxConfig> = {}): DeepPartial<PodSandboxConfig> {
  const uid = `uid-${name}-${process.pid}-${podSeq++}`;
  const logDirectory = join(env.d.dirs.base, "pod-logs", uid);
  mkdirSync(logDirectory, { recursive: true });
  return { metadata: { name, namespace: "e2e", uid, attempt: 0 }, hostname: name, logDirectory, ...extra };
}

export async function runPod(env: Env, name: string, extra: DeepPartial<PodSandboxConfig> = {}): Promise<{ id: string; config: DeepPartial<PodSandboxConfig> }> {
  const config = podConfig(env, name, extra);
  const r = await env.d.client.runtime.runPodSandbox({ config });
  return { id: r.podSandboxId, config };
}

export function ctrConfig(name: string, image: string, extra: DeepPartial<ContainerConfig> = {}): DeepPartial<ContainerConfig> {
  return { metadata: { name, attempt: 0 }, image: { image }, logPath: `${name}.log`, ...extra };
}

export async function createCtr(env: Env, pod: { id: string; config: DeepPartial<PodSandboxConfig> }, config: DeepPartial<ContainerConfig>): Promise<string> {
  const r = await env.d.client.runtime.createContainer({ podSandboxId: pod.id, config, sandboxConfig: pod.config });
  return r.containerId;
}

export async function runCtr(env: Env, pod: { id: string; config: DeepPartial<PodSandboxConfig> }, config: DeepPartial<ContainerConfig>): Promise<string> {
  const id = await createCtr(env, pod, config);
  await env.d.client.runtime.startContainer({ containerId: id });
  return id;
}

export async function waitExited(env: Env, id: string, ms = 20_000) {
  const end = Date.now() + ms;
  for (;;) {
    const st = await env.d.client.runtime.containerStatus({ containerId: id });
    if (st.status?.state === ContainerState.CONTAINER_EXITED) return st.status;
    if (Date.now() > end) throw new Error(`container ${id} did not exit (state ${st.status?.state})`);
    await sleep(50);
  }
}

/** Runs a container to completion and returns its exit code and its stdout lines. */
export async function runToExit(env: Env, pod: { id: string; config: DeepPartial<PodSandboxConfig> }, config: DeepPartial<ContainerConfig>) {
  const id = await runCtr(env, pod, config);
  const status = await waitExited(env, id);
  const log = readFileSync(status.logPath, "utf8");
  return { id, status, log, stdout: logLines(log, "stdout"), stderr: logLines(log, "stderr") };
}

/** Reassembles the kubelet-format log into lines of one stream (P records joined to the next F). */
export function logLines(text: string, stream: "stdout" | "stderr"): string[] {
  const out: string[] = [];
  let partial = "";
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const m = /^(\S+) (stdout|stderr) ([PF]) (.*)$/s.exec(line);
    if (!m) throw new Error(`log line not in kubelet format: ${JSON.stringify(line.slice(0, 200))}`);
    if (m[2] !== stream) continue;
    partial += m[4];
    if (m[3] === "F") {
      out.push(partial);
      partial = "";
    }
  }
  if (partial) out.push(partial);
  return out;
}

/**
 * What removed pods/containers left: mounts, bundles, pod dirs, IPs, and removed bundles
 * that are still not deleted (berthd deletes those in the background: waited for up to 5 s).
 */
export async function residue(env: Env): Promise<string[]> {
  const problems: string[] = [];
  const trash = join(env.d.dirs.state, "containers.removed");
  const pending = (): string[] => (existsSync(trash) ? readdirSync(trash) : []);
  for (let i = 0; i < 100 && pending().length > 0; i++) await sleep(50);
  if (pending().length) problems.push(`removed bundles not deleted: ${pending().join(", ")}`);
  const mounts = mountsUnder(env.d.dirs.base);
  if (mounts.length) problems.push(`mounts: ${mounts.join(", ")}`);
  for (const sub of ["containers", "sandboxes"]) {
    const dir = join(env.d.dirs.state, sub);
    const left = existsSync(dir) ? readdirSync(dir) : [];
    if (left.length) problems.push(`${sub}: ${left.join(", ")}`);
  }
  const ips = env.net.allocated();
  if (ips.length) problems.push(`IPs: ${ips.join(", ")}`);
  return problems;
}

/** Removes every pod (and so every container), stops the daemon and removes its dirs. */
export async function stopEnv(env: Env): Promise<void> {
  try {
    for (const p of (await env.d.client.runtime.listPodSandbox({})).items) {
      await env.d.client.runtime.stopPodSandbox({ podSandboxId: p.id }).catch(() => undefined);
      await env.d.client.runtime.removePodSandbox({ podSandboxId: p.id }).catch(() => undefined);
    }
  } finally {
    await env.d.stop();
    env.net.cleanup();
    removeDirs(env.d.dirs);
  }
}
