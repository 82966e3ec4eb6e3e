import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ContainerEventType, ContainerState, type ContainerEventResponse, type DeepPartial, type PodSandboxConfig } from "../api/gen/cri/v1/api.js";
import { REPO_ROOT, removeDirs, startDaemon, type Daemon } from "./harness/daemon.js";
import { makeTestNetwork, type TestNetwork } from "./harness/cni-net.js";
import { startRegistry, type Registry } from "./harness/registry.js";
import { ensureTestImages, type TestImages } from "./harness/images.js";

let d: Daemon;
let net: TestNetwork;
let reg: Registry;
let images: TestImages;
let seq = 0;

before(async () => {
  reg = await startRegistry();
  images = await ensureTestImages(reg);
  d = await startDaemon({ configToml: `[events]\nbuffer_size = 16\n\n[image.registries."${reg.host}"]\nplain_http = true\n` });
  net = makeTestNetwork(d.dirs.base);
  net.install(d.dirs.cniConfDir);
  await d.client.image.pullImage({ image: { image: images["busybox:latest"].ref } });
});

after(async () => {
  if (d) {
    const pods = await d.client.runtime.listPodSandbox({}).catch(() => ({ items: [] }));
    for (const p of pods.items) {
      await d.client.runtime.stopPodSandbox({ podSandboxId: p.id }).catch(() => undefined);
      await d.client.runtime.removePodSandbox({ podSandboxId: p.id }).catch(() => undefined);
    }
    await d.stop();
    removeDirs(d.dirs);
  }
  net?.cleanup();
  await reg?.stop();
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await fn();
    if (v !== undefined) return v;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function podConfig(name: string): DeepPartial<PodSandboxConfig> {
  seq++;
  return { metadata: { name, namespace: "e2e", uid: `uid-${name}-${process.pid}-${seq}`, attempt: 0 }, logDirectory: join(d.dirs.logs, `${name}-${seq}`) };
}

async function lifecycle(podSandboxId: string, config: DeepPartial<PodSandboxConfig>, name: string, opts: { keep?: boolean; annotations?: Record<string, string>; command?: string[] } = {}): Promise<string> {
  const { containerId } = await d.client.runtime.createContainer({
    podSandboxId,
    config: { metadata: { name }, image: { image: images["busybox:latest"].ref }, command: opts.command ?? ["true"], logPath: `${name}.log`, annotations: opts.annotations ?? {} },
    sandboxConfig: config,
  });
  await d.client.runtime.startContainer({ containerId });
  await until(`${name} exited`, async () => ((await d.client.runtime.containerStatus({ containerId })).status?.state === ContainerState.CONTAINER_EXITED ? true : undefined));
  if (!opts.keep) await d.client.runtime.removeContainer({ containerId });
  return containerId;
}

async function droppedTotal(): Promise<number> {
  const text = await (await fetch(d.metricsUrl())).text();
  const m = /^berth_events_dropped_total\{stream="container_events"\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

test("GetContainerEvents: a container's lifecycle arrives in order with pod and container statuses", async () => {
  const stream = d.client.runtime.getContainerEvents({});
  const got: ContainerEventResponse[] = [];
  stream.on("data", (ev: ContainerEventResponse) => got.push(ev));
  stream.on("error", () => {});
  try {
    await sleep(200); // the subscription is made when the call arrives
    const config = podConfig("events");
    const { podSandboxId } = await d.client.runtime.runPodSandbox({ config });
    const id = await lifecycle(podSandboxId, config, "once", { command: ["sleep", "1"] });
    const mine = await until("4 events", () => {
      const m = got.filter((e) => e.containerId === id);
      return m.length >= 4 ? m : undefined;
    });
    assert.deepEqual(
      mine.map((e) => e.containerEventType),
      [ContainerEventType.CONTAINER_CREATED_EVENT, ContainerEventType.CONTAINER_STARTED_EVENT, ContainerEventType.CONTAINER_STOPPED_EVENT, ContainerEventType.CONTAINER_DELETED_EVENT],
    );
    for (let i = 1; i < mine.length; i++) assert.ok((mine[i]?.createdAt ?? 0n) >= (mine[i - 1]?.createdAt ?? 0n), "created_at ascends");
    const now = BigInt(Date.now()) * 1_000_000n;
    assert.ok(mine.every((e) => e.createdAt > now - 120_000_000_000n && e.createdAt <= now), "created_at is ns since the epoch");
    assert.ok(mine.every((e) => e.podSandboxStatus?.id === podSandboxId), "each carries the pod status");
    const stateIn = (e: ContainerEventResponse): ContainerState | undefined => e.containersStatuses.find((c) => c.id === id)?.state;
    assert.equal(stateIn(mine[0] as ContainerEventResponse), ContainerState.CONTAINER_CREATED);
    assert.equal(stateIn(mine[1] as ContainerEventResponse), ContainerState.CONTAINER_RUNNING);
    assert.equal(stateIn(mine[2] as ContainerEventResponse), ContainerState.CONTAINER_EXITED);
    assert.equal(mine[2]?.containersStatuses.find((c) => c.id === id)?.exitCode, 0);
  } finally {
    stream.cancel();
  }
});

test("GetContainerEvents: a pod's own lifecycle is announced under its id (kubelet drops its cache on the pod's DELETED)", async () => {
  const stream = d.client.runtime.getContainerEvents({});
  const got: ContainerEventResponse[] = [];
  stream.on("data", (ev: ContainerEventResponse) => got.push(ev));
  stream.on("error", () => {});
  try {
    await sleep(200);
    const config = podConfig("podevents");
    const { podSandboxId } = await d.client.runtime.runPodSandbox({ config });
    const id = await lifecycle(podSandboxId, config, "one", { keep: true });
    await d.client.runtime.stopPodSandbox({ podSandboxId });
    await d.client.runtime.removePodSandbox({ podSandboxId });
    const pod = await until("pod events", () => {
      const m = got.filter((e) => e.containerId === podSandboxId);
      return m.length >= 4 ? m : undefined;
    });
    assert.deepEqual(
      pod.map((e) => e.containerEventType),
      [ContainerEventType.CONTAINER_CREATED_EVENT, ContainerEventType.CONTAINER_STARTED_EVENT, ContainerEventType.CONTAINER_STOPPED_EVENT, ContainerEventType.CONTAINER_DELETED_EVENT],
    );
    assert.ok(pod.every((e) => e.podSandboxStatus?.id === podSandboxId && e.podSandboxStatus.metadata?.uid === config.metadata?.uid));
    // The pod's STOPPED event still lists its (exited) container; its DELETED comes after the container's.
    assert.ok(pod[2]?.containersStatuses.some((c) => c.id === id));
    const order = got.map((e) => `${e.containerId}:${e.containerEventType}`);
    assert.ok(order.indexOf(`${id}:${ContainerEventType.CONTAINER_DELETED_EVENT}`) < order.indexOf(`${podSandboxId}:${ContainerEventType.CONTAINER_DELETED_EVENT}`));
  } finally {
    stream.cancel();
  }
});

/** A GetContainerEvents client in its own process, frozen with SIGSTOP once subscribed: it reads nothing. */
async function frozenClient(): Promise<{ kill(): void }> {
  const dir = mkdtempSync(join(tmpdir(), "berth-events-client-"));
  const script = join(dir, "client.mjs");
  writeFileSync(
    script,
    `import { CriClient } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, "dist/pkg/cri/client.js")).href)};
const c = new CriClient(${JSON.stringify(d.dirs.socket)});
await c.runtime.version({});
const s = c.runtime.getContainerEvents({});
s.on("data", () => {});
s.on("error", () => {});
setTimeout(() => process.stdout.write("subscribed\\n"), 300);
setInterval(() => {}, 1000);
`,
  );
  // Loading the client takes about a second on a busy machine: wait for the child to say it has
  // a connection and its call is under way, not for a fixed time.
  const child = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "ignore"] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the event client did not subscribe within 30 s")), 30_000);
    child.stdout.on("data", (b: Buffer) => {
      if (b.toString().includes("subscribed")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on("exit", (code) => reject(new Error(`the event client exited (${code})`)));
  });
  child.kill("SIGSTOP");
  return {
    kill: () => {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test("GetContainerEvents: a client that stops reading does not hold up the runtime; its events are dropped and counted", async () => {
  // Baseline for the printed figure (not asserted): the same work with no event client.
  const baseConfig = podConfig("baseline");
  const base = await d.client.runtime.runPodSandbox({ config: baseConfig });
  const t0 = performance.now();
  for (let i = 0; i < 40; i++) await lifecycle(base.podSandboxId, baseConfig, `b${i}`, { keep: true, annotations: { blob: "x".repeat(4 * 1024) } });
  const baseMs = performance.now() - t0;
  await d.client.runtime.stopPodSandbox({ podSandboxId: base.podSandboxId });
  await d.client.runtime.removePodSandbox({ podSandboxId: base.podSandboxId });
  const before = await droppedTotal();
  const frozen = await frozenClient();
  try {
    const config = podConfig("stalled");
    const { podSandboxId } = await d.client.runtime.runPodSandbox({ config });
    // Each event carries the statuses of all the pod's containers (here each with a 4 KB annotation).
    // Between berthd and a client that reads nothing, a bounded number of events is held: 16 in the
    // subscription (events.buffer_size), 16 in the call's send buffer, and what the socket takes.
    // 40 containers (120 events, up to 160 KB each) go well beyond that.
    const annotations = { blob: "x".repeat(4 * 1024) };
    const started = performance.now();
    for (let i = 0; i < 40; i++) await lifecycle(podSandboxId, config, `c${i}`, { keep: true, annotations });
    const ms = performance.now() - started;
    const dropped = (await droppedTotal()) - before;
    console.log(`# 40 container lifecycles: ${baseMs.toFixed(0)} ms with no event client, ${ms.toFixed(0)} ms with a frozen one; ${dropped} events dropped`);
    assert.ok(dropped > 0, `events were dropped for the frozen client (${dropped})`);
    // Another client is served normally meanwhile.
    const live = d.client.runtime.getContainerEvents({});
    const got: ContainerEventResponse[] = [];
    live.on("data", (ev: ContainerEventResponse) => got.push(ev));
    live.on("error", () => {});
    await sleep(300);
    const id = await lifecycle(podSandboxId, config, "after");
    await until("events of a later container", () => (got.filter((e) => e.containerId === id).length === 4 ? true : undefined));
    live.cancel();
  } finally {
    frozen.kill();
  }
});
