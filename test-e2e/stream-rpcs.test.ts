import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { ClientReadableStream } from "@grpc/grpc-js";
import { ContainerState, PodSandboxState } from "../api/gen/cri/v1/api.js";
import { startRegistry, type Registry } from "./harness/registry.js";
import { ensureTestImages } from "./harness/images.js";
import { createCtr, ctrConfig, runCtr, runPod, startEnv, stopEnv, type Env } from "./containers-helpers.js";

let reg: Registry;
let env: Env;
let bb: string;
let podA: Awaited<ReturnType<typeof runPod>>;
let podB: Awaited<ReturnType<typeof runPod>>;
let ctrA: string;
let ctrB: string;

/** Every message of a server stream, until EOF. */
function collect<T>(stream: ClientReadableStream<T>): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const out: T[] = [];
    stream.on("data", (m: T) => out.push(m));
    stream.on("error", reject);
    stream.on("end", () => resolve(out));
  });
}

const byId = <T extends { id: string }>(xs: T[]): T[] => [...xs].sort((a, b) => a.id.localeCompare(b.id));

before(async () => {
  reg = await startRegistry();
  const images = await ensureTestImages(reg);
  env = await startEnv(reg, images);
  bb = images["busybox:latest"].ref;
  podA = await runPod(env, "stream-a", { labels: { app: "a" } });
  podB = await runPod(env, "stream-b", { labels: { app: "b" } });
  ctrA = await runCtr(env, podA, ctrConfig("sleeper", bb, { command: ["sleep", "3600"], labels: { app: "a" } }));
  ctrB = await createCtr(env, podB, ctrConfig("idle", bb, { command: ["sleep", "3600"], labels: { app: "b" } }));
});

after(async () => {
  if (env) await stopEnv(env);
  await reg?.stop();
});

test("StreamPodSandboxes: the union of the messages is ListPodSandbox's result, per filter; no empty message", async () => {
  const rt = env.d.client.runtime;
  for (const filter of [undefined, { labelSelector: { app: "a" } }, { id: podB.id.slice(0, 10) }, { state: { state: PodSandboxState.SANDBOX_READY } }, { labelSelector: { app: "none" } }]) {
    const msgs = await collect(rt.streamPodSandboxes(filter ? { filter } : {}));
    for (const m of msgs) assert.ok(m.podSandboxes.length > 0, "every message holds at least one item");
    const listed = (await rt.listPodSandbox(filter ? { filter } : {})).items;
    assert.deepEqual(byId(msgs.flatMap((m) => m.podSandboxes)), byId(listed), JSON.stringify(filter));
  }
  assert.deepEqual((await collect(rt.streamPodSandboxes({ filter: { labelSelector: { app: "a" } } }))).flatMap((m) => m.podSandboxes.map((p) => p.id)), [podA.id]);
  assert.deepEqual(await collect(rt.streamPodSandboxes({ filter: { labelSelector: { app: "none" } } })), []);
});

test("StreamContainers: the union of the messages is ListContainers' result, per filter", async () => {
  const rt = env.d.client.runtime;
  for (const filter of [undefined, { podSandboxId: podA.id }, { labelSelector: { app: "b" } }, { state: { state: ContainerState.CONTAINER_CREATED } }, { id: ctrA.slice(0, 12) }]) {
    const msgs = await collect(rt.streamContainers(filter ? { filter } : {}));
    for (const m of msgs) assert.ok(m.containers.length > 0);
    const listed = (await rt.listContainers(filter ? { filter } : {})).containers;
    assert.deepEqual(byId(msgs.flatMap((m) => m.containers)), byId(listed), JSON.stringify(filter));
  }
  const created = await collect(rt.streamContainers({ filter: { state: { state: ContainerState.CONTAINER_CREATED } } }));
  assert.deepEqual(created.flatMap((m) => m.containers.map((c) => c.id)), [ctrB]);
});

test("StreamContainerStats, StreamPodSandboxStats, StreamPodSandboxMetrics: the same items as the List* calls", async () => {
  const rt = env.d.client.runtime;
  const ids = (xs: Array<{ attributes?: { id: string } | undefined }>): string[] => xs.map((x) => x.attributes?.id ?? "").sort();
  for (const filter of [undefined, { podSandboxId: podA.id }, { labelSelector: { app: "b" } }, { id: ctrA }]) {
    const msgs = await collect(rt.streamContainerStats(filter ? { filter } : {}));
    const listed = (await rt.listContainerStats(filter ? { filter } : {})).stats;
    assert.deepEqual(ids(msgs.flatMap((m) => m.containerStats)), ids(listed), JSON.stringify(filter));
  }
  const cs = await collect(rt.streamContainerStats({ filter: { podSandboxId: podA.id } }));
  assert.deepEqual(ids(cs.flatMap((m) => m.containerStats)), [ctrA]);
  for (const filter of [undefined, { id: podA.id }, { labelSelector: { app: "b" } }]) {
    const msgs = await collect(rt.streamPodSandboxStats(filter ? { filter } : {}));
    const listed = (await rt.listPodSandboxStats(filter ? { filter } : {})).stats;
    assert.deepEqual(ids(msgs.flatMap((m) => m.podSandboxStats)), ids(listed), JSON.stringify(filter));
  }
  const ps = await collect(rt.streamPodSandboxStats({ filter: { labelSelector: { app: "b" } } }));
  assert.deepEqual(ids(ps.flatMap((m) => m.podSandboxStats)), [podB.id]);
  const metrics = await collect(rt.streamPodSandboxMetrics({}));
  const listedMetrics = (await rt.listPodSandboxMetrics({})).podMetrics;
  const podIds = (xs: Array<{ podSandboxId: string }>): string[] => xs.map((x) => x.podSandboxId).sort();
  assert.deepEqual(podIds(metrics.flatMap((m) => m.podSandboxMetrics)), podIds(listedMetrics));
  assert.deepEqual(podIds(listedMetrics), [podA.id, podB.id].sort());
});

test("StreamImages: the union of the messages is ListImages' result, with and without a filter", async () => {
  const img = env.d.client.image;
  const all = await collect(img.streamImages({}));
  assert.deepEqual(byId(all.flatMap((m) => m.images)), byId((await img.listImages({})).images));
  assert.equal(all.flatMap((m) => m.images).length, Object.keys(env.ids).length);
  const one = await collect(img.streamImages({ filter: { image: { image: bb } } }));
  assert.deepEqual(one.flatMap((m) => m.images.map((i) => i.id)), [env.ids[bb]]);
  assert.deepEqual(await collect(img.streamImages({ filter: { image: { image: "nosuch.example/none:1" } } })), []);
});

test("StreamContainers splits a large result into messages of at most 100 items, each item once", async () => {
  const rt = env.d.client.runtime;
  const pod = await runPod(env, "stream-many");
  const made: string[] = [];
  for (let i = 0; i < 105; i += 15) {
    const batch = Array.from({ length: Math.min(15, 105 - i) }, (_, j) => createCtr(env, pod, ctrConfig(`c${i + j}`, bb, { command: ["true"] })));
    made.push(...(await Promise.all(batch)));
  }
  const msgs = await collect(rt.streamContainers({ filter: { podSandboxId: pod.id } }));
  assert.deepEqual(msgs.map((m) => m.containers.length), [100, 5]);
  const got = msgs.flatMap((m) => m.containers.map((c) => c.id));
  assert.equal(new Set(got).size, got.length, "no item appears twice");
  assert.deepEqual(got.sort(), made.sort());
});
