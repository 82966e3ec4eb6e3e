import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { Server, ServerCredentials, type ServerWritableStream } from "@grpc/grpc-js";
import {
  ContainerEventResponse,
  ContainerEventType,
  ContainerStatsResponse,
  ListContainerStatsResponse,
  ListMetricDescriptorsResponse,
  ListPodSandboxMetricsResponse,
  ListPodSandboxStatsResponse,
  MetricType,
  PodSandboxStatsResponse,
  RuntimeServiceService,
  type GetEventsRequest,
} from "../../api/gen/cri/v1/api.js";
import { containerEventBus, eventTimeNs, type ContainerEvent } from "../events/index.js";
import { registry } from "../metrics/index.js";
import { setRootLogger } from "../log/index.js";
import { StatsCollector, cgroupLayoutAt, type StatsContainerInfo, type StatsSandboxInfo } from "../stats/index.js";
import { CriClient } from "./client.js";
import { getContainerEvents } from "./events-get.js";
import { InflightTracker, ReadinessGate, serverStream } from "./instrument.js";
import { containerStats, listContainerStats } from "./stats-container.js";
import { listMetricDescriptors, listPodSandboxMetrics } from "./stats-metrics.js";
import { listPodSandboxStats, podSandboxStats } from "./stats-pod.js";

setRootLogger({ level: "silent" });

const ctx = { signal: new AbortController().signal, reqId: "t", method: "t" };

function fixture(t: { after(fn: () => void): void }): StatsCollector {
  const root = mkdtempSync(join(tmpdir(), "berth-cri-stats-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const cg = (rel: string, usec: string, current: string): void => {
    mkdirSync(join(root, rel), { recursive: true });
    writeFileSync(join(root, rel, "cpu.stat"), `usage_usec ${usec}\n`);
    writeFileSync(join(root, rel, "memory.current"), `${current}\n`);
    writeFileSync(join(root, rel, "memory.stat"), "anon 100\ninactive_file 10\npgfault 5\npgmajfault 1\n");
    writeFileSync(join(root, rel, "memory.max"), "1000\n");
    writeFileSync(join(root, rel, "pids.current"), "1\n");
  };
  cg("pods/p1", "30", "500");
  cg("pods/p1/c1", "10", "200");
  cg("pods/p1/c2", "20", "300");
  cg("pods/p2/c3", "40", "400");
  const c = (id: string, pod: string, labels: Record<string, string>): StatsContainerInfo => ({
    id,
    podSandboxId: pod,
    metadata: { name: `n-${id}`, attempt: 1 },
    labels,
    annotations: { a: "b" },
    cgroupPath: `/pods/${pod}/${id}`,
    image: "busybox",
  });
  const s = (id: string, parent: string, labels: Record<string, string>): StatsSandboxInfo => ({
    id,
    metadata: { name: `pod-${id}`, uid: `u-${id}`, namespace: "ns", attempt: 0 },
    labels,
    annotations: {},
    cgroupParent: parent,
  });
  const containers = [c("c1", "p1", { app: "web" }), c("c2", "p1", { app: "db" }), c("c3", "p2", { app: "web" })];
  const sandboxes = [s("p1", "/pods/p1", { tier: "a" }), s("p2", "", { tier: "b" })];
  return new StatsCollector({ source: { containers: () => containers, sandboxes: () => sandboxes }, intervalSeconds: 10, layout: cgroupLayoutAt(root, "v2"), netnsExec: false });
}

test("ContainerStats / ListContainerStats: messages, filters by id, pod and labels, errors", async (t) => {
  const col = fixture(t);
  await col.collect();
  const one = ContainerStatsResponse.fromPartial(await containerStats(col)({ containerId: "c1" }, ctx));
  assert.equal(one.stats?.attributes?.id, "c1");
  assert.equal(one.stats?.attributes?.metadata?.name, "n-c1");
  assert.deepEqual(one.stats?.attributes?.annotations, { a: "b" });
  assert.equal(one.stats?.cpu?.usageCoreNanoSeconds?.value, 10_000n);
  assert.equal(one.stats?.memory?.workingSetBytes?.value, 190n);
  assert.equal(one.stats?.memory?.availableBytes?.value, 810n);
  assert.equal(one.stats?.memory?.rssBytes?.value, 100n);
  assert.equal(one.stats?.memory?.majorPageFaults?.value, 1n);
  assert.ok(ContainerStatsResponse.encode(one).finish().length > 0);
  await assert.rejects(containerStats(col)({ containerId: "" }, ctx), { name: "InvalidArgumentError" });
  await assert.rejects(containerStats(col)({ containerId: "nope" }, ctx), { name: "NotFoundError" });

  const list = listContainerStats(col);
  const ids = async (filter: Parameters<typeof list>[0]["filter"]): Promise<string[]> =>
    ListContainerStatsResponse.fromPartial(await list({ filter }, ctx)).stats.map((s) => s.attributes?.id ?? "").sort();
  assert.deepEqual(await ids(undefined), ["c1", "c2", "c3"]);
  assert.deepEqual(await ids({ id: "", podSandboxId: "p1", labelSelector: {} }), ["c1", "c2"]);
  assert.deepEqual(await ids({ id: "", podSandboxId: "", labelSelector: { app: "web" } }), ["c1", "c3"]);
  assert.deepEqual(await ids({ id: "c3", podSandboxId: "p1", labelSelector: {} }), []);
  assert.deepEqual(await ids({ id: "c3", podSandboxId: "", labelSelector: { app: "web" } }), ["c3"]);
  assert.deepEqual(await ids({ id: "zz", podSandboxId: "", labelSelector: {} }), []);
});

test("PodSandboxStats / ListPodSandboxStats: pod cgroup or sum of containers, containers listed", async (t) => {
  const col = fixture(t);
  await col.collect();
  const p1 = PodSandboxStatsResponse.fromPartial(await podSandboxStats(col)({ podSandboxId: "p1" }, ctx));
  assert.equal(p1.stats?.attributes?.metadata?.uid, "u-p1");
  assert.equal(p1.stats?.linux?.cpu?.usageCoreNanoSeconds?.value, 30_000n, "read from the pod cgroup");
  assert.equal(p1.stats?.linux?.containers.length, 2);
  assert.equal(p1.stats?.linux?.process?.processCount?.value, 1n);
  const all = ListPodSandboxStatsResponse.fromPartial(await listPodSandboxStats(col)({ filter: undefined }, ctx));
  const p2 = all.stats.find((s) => s.attributes?.id === "p2");
  assert.equal(p2?.linux?.cpu?.usageCoreNanoSeconds?.value, 40_000n, "summed from its one container");
  const filtered = ListPodSandboxStatsResponse.fromPartial(await listPodSandboxStats(col)({ filter: { id: "", labelSelector: { tier: "b" } } }, ctx));
  assert.deepEqual(filtered.stats.map((s) => s.attributes?.id), ["p2"]);
  await assert.rejects(podSandboxStats(col)({ podSandboxId: "x" }, ctx), { name: "NotFoundError" });
});

test("ListMetricDescriptors / ListPodSandboxMetrics: every metric has a descriptor with matching labels", async (t) => {
  const col = fixture(t);
  await col.collect();
  const desc = ListMetricDescriptorsResponse.fromPartial(await listMetricDescriptors()({}, ctx)).descriptors;
  const byName = new Map(desc.map((d) => [d.name, d]));
  const res = ListPodSandboxMetricsResponse.fromPartial(await listPodSandboxMetrics(col)({}, ctx));
  assert.equal(res.podMetrics.length, 2);
  const metrics = res.podMetrics.flatMap((p) => [...p.metrics, ...p.containerMetrics.flatMap((c) => c.metrics)]);
  assert.ok(metrics.length > 10);
  for (const m of metrics) {
    const d = byName.get(m.name);
    assert.ok(d, `descriptor for ${m.name}`);
    assert.equal(m.labelValues.length, d.labelKeys.length, m.name);
  }
  const ws = metrics.find((m) => m.name === "container_memory_working_set_bytes" && m.labelValues[0] === "c2");
  assert.equal(ws?.metricType, MetricType.GAUGE);
  assert.equal(ws?.value?.value, 290n);
  assert.ok(ListPodSandboxMetricsResponse.encode(res).finish().length > 0);
});

interface Harness {
  client: CriClient;
  socket: string;
  close(): Promise<void>;
}

async function serveEvents(t: { after(fn: () => Promise<void>): void }, bus: ReturnType<typeof containerEventBus<{ state: number }, { id: string; state: number }>>): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), "berth-events-"));
  const socket = join(dir, "s.sock");
  const gate = new ReadinessGate();
  gate.open();
  const impl = getContainerEvents(bus, {
    converters: { podStatus: (p) => ({ id: "pod", state: p.state }), containerStatus: (c) => ({ id: c.id, state: c.state }) },
  });
  const server = new Server();
  server.addService(
    { getContainerEvents: RuntimeServiceService.getContainerEvents },
    {
      getContainerEvents: serverStream<GetEventsRequest, ContainerEventResponse>({ service: "runtime", gate, inflight: new InflightTracker() }, "GetContainerEvents", (req, write, c, drained) =>
        impl(req, (m) => write(ContainerEventResponse.fromPartial(m)), c, drained),
      ) as (call: ServerWritableStream<unknown, unknown>) => void,
    },
  );
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  const client = new CriClient(socket);
  const h = {
    client,
    socket,
    close: async () => {
      client.close();
      server.forceShutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  t.after(h.close);
  return h;
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("GetContainerEvents over gRPC: a full lifecycle arrives in order with statuses", async (t) => {
  const bus = containerEventBus<{ state: number }, { id: string; state: number }>(100);
  const { client } = await serveEvents(t, bus);
  const stream = client.runtime.getContainerEvents({});
  stream.on("error", () => {}); // CANCELLED after cancel()
  const got: ContainerEventResponse[] = [];
  stream.on("data", (m: ContainerEventResponse) => got.push(m));
  await waitFor(() => bus.subscriberCount === 1);
  const kinds = ["created", "started", "stopped", "deleted"] as const;
  kinds.forEach((kind, i) => {
    const ev: ContainerEvent<{ state: number }, { id: string; state: number }> = { containerId: "c1", kind, createdAtNs: eventTimeNs(), podSandboxStatus: { state: 0 }, containersStatuses: [{ id: "c1", state: i }] };
    bus.publish(ev);
  });
  await waitFor(() => got.length === 4);
  assert.deepEqual(
    got.map((e) => e.containerEventType),
    [ContainerEventType.CONTAINER_CREATED_EVENT, ContainerEventType.CONTAINER_STARTED_EVENT, ContainerEventType.CONTAINER_STOPPED_EVENT, ContainerEventType.CONTAINER_DELETED_EVENT],
  );
  assert.ok(got.every((e, i) => i === 0 || e.createdAt >= (got[i - 1]?.createdAt ?? 0n)));
  assert.equal(got[0]?.podSandboxStatus?.id, "pod");
  assert.equal(got[3]?.containersStatuses[0]?.state, 3);
  stream.cancel();
  await waitFor(() => bus.subscriberCount === 0);
});

/** A GetContainerEvents client in its own process, so it can be frozen with SIGSTOP (it then reads nothing). */
function childClient(t: { after(fn: () => void): void }, socket: string): ChildProcess {
  const dir = mkdtempSync(join(tmpdir(), "berth-events-client-"));
  const script = join(dir, "client.mjs");
  const clientModule = new URL("./client.js", import.meta.url).href;
  writeFileSync(
    script,
    `import { CriClient } from ${JSON.stringify(clientModule)};
const s = new CriClient(${JSON.stringify(socket)}).runtime.getContainerEvents({});
s.on("data", () => {});
s.on("error", () => {});
setInterval(() => {}, 1000);
`,
  );
  const child = spawn(process.execPath, [script], { stdio: "ignore" });
  t.after(() => {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });
  return child;
}

test("GetContainerEvents: a frozen client does not block publishers; the handler stops writing, drops are counted", async (t) => {
  const bus = containerEventBus<{ state: number }, { id: string; state: number }>(50);
  const { socket } = await serveEvents(t, bus);
  const before = (await registry.getSingleMetric("berth_events_dropped_total")?.get())?.values.reduce((a, v) => a + v.value, 0) ?? 0;
  const child = childClient(t, socket);
  await waitFor(() => bus.subscriberCount === 1);
  child.kill("SIGSTOP"); // alive, connected, reads nothing
  const big = Array.from({ length: 20 }, (_, i) => ({ id: `container-${i}-${"x".repeat(1000)}`, state: 1 }));
  const N = 5000; // ≈ 100 MB of messages
  const started = performance.now();
  for (let i = 0; i < N; i++) {
    bus.publish({ containerId: `c${i}`, kind: "started", createdAtNs: eventTimeNs(), podSandboxStatus: { state: 0 }, containersStatuses: big });
    if (i % 20 === 19) await new Promise((r) => setTimeout(r, 1)); // give the handler every chance to write
  }
  const ms = performance.now() - started;
  const after = (await registry.getSingleMetric("berth_events_dropped_total")?.get())?.values.reduce((a, v) => a + v.value, 0) ?? 0;
  const dropped = after - before;
  // In flight at most: the subscription's 50, the call's 16-message buffer and what the socket holds.
  assert.ok(dropped >= N - 200, `dropped ${dropped} of ${N}: the handler must wait for the call to drain`);
  console.log(`# ${N} events (~20 KB each) published past a frozen client in ${ms.toFixed(0)} ms; ${dropped} dropped`);
  child.kill("SIGKILL");
  await waitFor(() => bus.subscriberCount === 0); // the dead client's call is cancelled and its subscription closed
});

test("GetContainerEvents handler: ends when the daemon's lifetime ends or the call is cancelled, and unsubscribes", async () => {
  const bus = containerEventBus<{ state: number }, { id: string; state: number }>(10);
  const lifetime = new AbortController();
  const call = new AbortController();
  const written: unknown[] = [];
  const impl = getContainerEvents(bus, { lifetime: lifetime.signal });
  const run = impl({}, (m) => (written.push(m), true), { signal: call.signal, reqId: "t", method: "GetContainerEvents" }, async () => undefined);
  await waitFor(() => bus.subscriberCount === 1);
  bus.publish({ containerId: "c", kind: "deleted", createdAtNs: 5n, podSandboxStatus: undefined, containersStatuses: [] });
  await waitFor(() => written.length === 1);
  assert.deepEqual(written[0], { containerId: "c", containerEventType: ContainerEventType.CONTAINER_DELETED_EVENT, createdAt: 5n, podSandboxStatus: undefined, containersStatuses: [] });
  lifetime.abort();
  await run;
  assert.equal(bus.subscriberCount, 0);
  const run2 = getContainerEvents(bus)({}, () => true, { signal: call.signal, reqId: "t", method: "GetContainerEvents" }, async () => undefined);
  await waitFor(() => bus.subscriberCount === 1);
  call.abort();
  await run2;
  assert.equal(bus.subscriberCount, 0);
});
