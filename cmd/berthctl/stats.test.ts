import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream, type UntypedServiceImplementation } from "@grpc/grpc-js";
import {
  ContainerEventResponse,
  ListContainerStatsResponse,
  ListPodSandboxStatsResponse,
  RuntimeServiceService,
  type GetEventsRequest,
  type ListContainerStatsRequest,
  type ListPodSandboxStatsRequest,
} from "../../api/gen/cri/v1/api.js";
import { getContainerEvents, listContainerStats, listPodSandboxStats } from "../../pkg/cri/index.js";
import { containerEventBus, eventTimeNs } from "../../pkg/events/index.js";
import { StatsCollector, cgroupLayoutAt } from "../../pkg/stats/index.js";

const BERTHCTL = join(dirname(fileURLToPath(import.meta.url)), "main.js");

function berthctl(socket: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BERTHCTL, "--socket", socket, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

async function serve(t: { after(fn: () => void): void }): Promise<{ socket: string; bus: ReturnType<typeof containerEventBus<{ id: string }, { id: string; metadata: { name: string } }>> }> {
  const root = mkdtempSync(join(tmpdir(), "berthctl-stats-"));
  const cg = join(root, "cg");
  for (const [rel, usec, mem] of [["p1", "9000", "3000000"], ["p1/c1", "5000", "2000000"]] as const) {
    mkdirSync(join(cg, rel), { recursive: true });
    writeFileSync(join(cg, rel, "cpu.stat"), `usage_usec ${usec}\n`);
    writeFileSync(join(cg, rel, "memory.current"), `${mem}\n`);
    writeFileSync(join(cg, rel, "memory.stat"), "anon 1000000\ninactive_file 0\n");
    writeFileSync(join(cg, rel, "pids.current"), "3\n");
  }
  const col = new StatsCollector({
    source: {
      containers: () => [{ id: "c1".padEnd(64, "0"), podSandboxId: "p1".padEnd(64, "0"), metadata: { name: "web", attempt: 0 }, labels: { app: "web" }, annotations: {}, cgroupPath: "/p1/c1" }],
      sandboxes: () => [{ id: "p1".padEnd(64, "0"), metadata: { name: "pod-one", uid: "u", namespace: "ns", attempt: 0 }, labels: {}, annotations: {}, cgroupParent: "/p1" }],
    },
    intervalSeconds: 10,
    layout: cgroupLayoutAt(cg, "v2"),
    netnsExec: false,
  });
  await col.collect();
  const bus = containerEventBus<{ id: string }, { id: string; metadata: { name: string } }>(100);
  const ctx = { reqId: "t", method: "t" };
  const lcs = listContainerStats(col);
  const lps = listPodSandboxStats(col);
  const events = getContainerEvents(bus);
  const impl: UntypedServiceImplementation = {
    listContainerStats: (call: ServerUnaryCall<ListContainerStatsRequest, ListContainerStatsResponse>, cb: sendUnaryData<ListContainerStatsResponse>) =>
      void lcs(call.request, { ...ctx, signal: new AbortController().signal }).then((r) => cb(null, ListContainerStatsResponse.fromPartial(r)), cb),
    listPodSandboxStats: (call: ServerUnaryCall<ListPodSandboxStatsRequest, ListPodSandboxStatsResponse>, cb: sendUnaryData<ListPodSandboxStatsResponse>) =>
      void lps(call.request, { ...ctx, signal: new AbortController().signal }).then((r) => cb(null, ListPodSandboxStatsResponse.fromPartial(r)), cb),
    getContainerEvents: (call: ServerWritableStream<GetEventsRequest, ContainerEventResponse>) => {
      const ac = new AbortController();
      call.on("cancelled", () => ac.abort());
      void events(call.request, (m) => call.write(ContainerEventResponse.fromPartial(m)), { ...ctx, signal: ac.signal }, async () => undefined).then(() => call.end());
    },
  };
  const server = new Server();
  const def = RuntimeServiceService;
  server.addService({ listContainerStats: def.listContainerStats, listPodSandboxStats: def.listPodSandboxStats, getContainerEvents: def.getContainerEvents }, impl);
  const socket = join(root, "s.sock");
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  t.after(() => {
    server.forceShutdown();
    rmSync(root, { recursive: true, force: true });
  });
  return { socket, bus };
}

test("berthctl stats / statsp print the runtime's figures; filters and bad flags", async (t) => {
  const { socket } = await serve(t);
  const s = await berthctl(socket, ["stats"]);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, /^CONTAINER\s+NAME\s+CPU %\s+MEM/m);
  assert.match(s.stdout, /c100000000000\s+web\s+-\s+2\.0MB\s+1\.0MB/);
  const json = await berthctl(socket, ["stats", "-o", "json", "--label", "app=web"]);
  const doc = JSON.parse(json.stdout) as { stats: Array<{ cpu: { usageCoreNanoSeconds: { value: string } } }> };
  assert.equal(doc.stats[0]?.cpu.usageCoreNanoSeconds.value, "5000000");
  const none = await berthctl(socket, ["stats", "--label", "app=db", "-o", "json"]);
  assert.deepEqual(JSON.parse(none.stdout), { stats: [] });
  const pod = await berthctl(socket, ["statsp"]);
  assert.equal(pod.code, 0, pod.stderr);
  assert.match(pod.stdout, /p100000000000\s+pod-one\s+-\s+3\.0MB\s+-\s+-\s+3\s+1/);
  const bad = await berthctl(socket, ["stats", "--label", "nokey"]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /KEY=VALUE/);
});

test("berthctl events follows the stream and stops after --count", async (t) => {
  const { socket, bus } = await serve(t);
  const run = berthctl(socket, ["events", "--count", "2"]);
  const deadline = Date.now() + 10_000;
  while (bus.subscriberCount === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(bus.subscriberCount, 1);
  for (const kind of ["created", "started", "stopped"] as const) {
    bus.publish({ containerId: "c1".padEnd(64, "0"), kind, createdAtNs: eventTimeNs(), podSandboxStatus: { id: "p1" }, containersStatuses: [{ id: "c1".padEnd(64, "0"), metadata: { name: "web" } }] });
  }
  const r = await run;
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 2);
  assert.match(lines[0] ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z\s+CONTAINER_CREATED_EVENT\s+c100000000000\s+web\s+pod=p1$/);
  assert.match(lines[1] ?? "", /CONTAINER_STARTED_EVENT/);
});
