// Fault 4 (streaming part): hostile use of the streaming RPCs and endpoints.
// - GetContainerEvents: many concurrent subscribers cancelled at random
//   moments, and one that never reads while lifecycle events pile up.
// - Exec / Attach / PortForward requests with random ids, huge cmd arrays and
//   contradictory flags: the right code (never INTERNAL/UNKNOWN), within a deadline.
// - The streaming server's URLs: random tokens, malformed upgrade requests and
//   garbage after a real upgrade: an answer or a close within a deadline.
// Afterwards berthd runs, its container still runs, the streaming server still
// answers, a fresh subscriber sees a new event, and removing everything leaks nothing.

import { connect, type Socket } from "node:net";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ContainerState } from "../../api/gen/cri/v1/api.js";
import type { Daemon } from "../../test-e2e/harness/daemon.js";
import { makeDirs, removeDirs, startChaosDaemon, type World } from "./env.js";
import { codeName, grpcCode } from "./kill-loop.js";
import { formatLeaks, leakCount, scanLeaks } from "./leaks.js";
import { Rng } from "./rng.js";

export interface StreamFuzzReport {
  rpcCases: number;
  rpcCodes: Record<string, number>;
  /** "case:code" for the first pass over every case. */
  firstRound: string[];
  subscribers: number;
  httpCases: number;
  httpOutcomes: Record<string, number>;
  crashes: number;
  hangs: number;
  failures: string[];
}

const BAD_CODES = new Set(["INTERNAL", "UNKNOWN", "no-code"]);
const DEADLINE_MS = 10_000;

function randomId(rng: Rng): string {
  const kinds = [
    () => "",
    () => "x".repeat(rng.int(1, 70_000)),
    () => "../../etc/passwd",
    () => Array.from({ length: 64 }, () => "0123456789abcdef"[rng.int(0, 15)]).join(""),
    () => String.fromCharCode(...Array.from({ length: rng.int(1, 40) }, () => rng.int(1, 0xd7ff))),
    () => "a",
    () => "\u0000\n\r",
  ];
  return rng.pick(kinds)();
}

/** Sends raw bytes to host:port and resolves with what came back before a close or the deadline (1 s after a 101). */
function rawExchange(host: string, port: number, chunks: Buffer[], ms: number): Promise<{ reply: string; closed: boolean }> {
  return new Promise((resolve) => {
    let reply = "";
    let done = false;
    const s: Socket = connect(port, host);
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ reply, closed });
    };
    const timer = setTimeout(() => finish(false), ms);
    s.on("data", (b: Buffer) => {
      const first = reply === "";
      reply += b.toString("latin1");
      if (reply.length > 1 << 16) finish(true);
      // Upgraded: what follows is the session's own business; give it a second to close on the garbage.
      else if (first && reply.startsWith("HTTP/1.1 101")) setTimeout(() => finish(false), 1000);
    });
    s.on("error", () => finish(true));
    s.on("close", () => finish(true));
    s.on("connect", () => {
      for (const c of chunks) s.write(c);
    });
  });
}

export async function runStreamFuzz(world: World, opts: { cases: number; seed: number; log: (l: string) => void }): Promise<StreamFuzzReport> {
  const rep: StreamFuzzReport = { rpcCases: 0, rpcCodes: {}, firstRound: [], subscribers: 0, httpCases: 0, httpOutcomes: {}, crashes: 0, hangs: 0, failures: [] };
  const rng = new Rng(opts.seed ^ 0x5eed);
  let d: Daemon | undefined;
  try {
    const dirs = makeDirs();
    d = await startChaosDaemon(world, { dirs });
    const rt = d.client.runtime;
    const bb = world.images["busybox:latest"].ref;
    await d.client.image.pullImage({ image: { image: bb } });
    const logDirectory = join(dirs.base, "pod-logs");
    mkdirSync(logDirectory, { recursive: true });
    const podConfig = { metadata: { name: "sfuzz", namespace: "chaos", uid: "uid-sfuzz", attempt: 0 }, hostname: "sfuzz", logDirectory };
    const podId = (await rt.runPodSandbox({ config: podConfig })).podSandboxId;
    let n = 0;
    const newContainer = async (): Promise<string> => {
      const id = (await rt.createContainer({ podSandboxId: podId, config: { metadata: { name: `c${n++}`, attempt: 0 }, image: { image: bb }, command: ["sleep", "600"], logPath: `c${n}.log` }, sandboxConfig: podConfig })).containerId;
      await rt.startContainer({ containerId: id });
      return id;
    };
    const cid = await newContainer();
    const alive = (): boolean => d !== undefined && d.process.exitCode === null && d.process.signalCode === null;

    // 1. GetContainerEvents: subscribers cancelled at random moments, one that never reads.
    const stalled = rt.getContainerEvents({});
    stalled.pause();
    stalled.on("error", () => undefined);
    const subs = Array.from({ length: Math.min(40, 10 + Math.floor(opts.cases / 25)) }, () => {
      const s = rt.getContainerEvents({});
      s.on("data", () => undefined);
      s.on("error", () => undefined);
      setTimeout(() => s.cancel(), rng.int(0, 3000));
      return s;
    });
    rep.subscribers = subs.length + 1;
    const churn: string[] = [];
    for (let i = 0; i < 4; i++) churn.push(await newContainer());
    for (const id of churn) {
      await rt.stopContainer({ containerId: id, timeout: 0 });
      await rt.removeContainer({ containerId: id });
    }
    await new Promise((r) => setTimeout(r, 3200));
    stalled.cancel();

    // 2. Exec / Attach / PortForward validation.
    const hugeCmd = (): string[] => Array.from({ length: rng.int(1000, 20_000) }, () => "y".repeat(rng.int(0, 64)));
    const cases: Array<() => Promise<unknown>> = [
      () => rt.exec({ containerId: randomId(rng), cmd: ["sh"], stdout: true }),
      () => rt.exec({ containerId: cid, cmd: [], stdout: true }),
      () => rt.exec({ containerId: cid, cmd: hugeCmd(), stdout: true }),
      () => rt.exec({ containerId: cid, cmd: ["sh"], stdin: false, stdout: false, stderr: false }),
      () => rt.exec({ containerId: cid, cmd: ["sh"], tty: true, stdout: true, stderr: true }),
      () => rt.exec({ containerId: cid, cmd: ["x".repeat(rng.int(1, 200_000))], stdout: true }),
      () => rt.attach({ containerId: randomId(rng), stdout: true }),
      () => rt.attach({ containerId: cid, stdin: false, stdout: false, stderr: false }),
      () => rt.attach({ containerId: cid, tty: true, stdout: true, stderr: true }),
      () => rt.portForward({ podSandboxId: randomId(rng), port: [80] }),
      () => rt.portForward({ podSandboxId: podId, port: [rng.pick([-1, 0, 65536, 2 ** 31 - 1, -(2 ** 31)])] }),
      () => rt.portForward({ podSandboxId: podId, port: Array.from({ length: rng.int(100, 5000) }, () => rng.int(-100, 70_000)) }),
      () => rt.execSync({ containerId: cid, cmd: hugeCmd(), timeout: 5 }),
      () => rt.execSync({ containerId: randomId(rng), cmd: ["true"], timeout: rng.int(-5, 5) }),
    ];
    const rpcTotal = Math.max(cases.length, Math.min(300, Math.floor(opts.cases / 2)));
    for (let i = 0; i < rpcTotal && alive(); i++) {
      const which = i < cases.length ? i : rng.int(0, cases.length - 1);
      const t0 = Date.now();
      const timeout = new Promise<"hang">((r) => setTimeout(() => r("hang"), DEADLINE_MS + 5000).unref());
      const res = await Promise.race([
        cases[which]!().then(
          () => "OK",
          (err: unknown) => codeName(grpcCode(err)),
        ),
        timeout,
      ]);
      rep.rpcCases++;
      if (res === "hang") {
        rep.hangs++;
        rep.failures.push(`stream fuzz: case ${which} did not answer within ${DEADLINE_MS + 5000} ms`);
        continue;
      }
      rep.rpcCodes[res] = (rep.rpcCodes[res] ?? 0) + 1;
      if (i < cases.length) rep.firstRound.push(`${which}:${res}`);
      if (BAD_CODES.has(res) && res !== "DEADLINE_EXCEEDED") rep.failures.push(`stream fuzz: case ${which} got ${res} after ${Date.now() - t0} ms`);
    }

    // 3. The streaming server's URLs.
    const url = new URL((await rt.exec({ containerId: cid, cmd: ["sh"], stdout: true, stdin: true })).url);
    const host = url.hostname;
    const port = Number(url.port);
    const realExecUrl = async (): Promise<string> => new URL((await rt.exec({ containerId: cid, cmd: ["cat"], stdin: true, stdout: true })).url).pathname;
    const garbage = (len: number): Buffer => Buffer.from(Array.from({ length: len }, () => rng.int(0, 255)));
    const requests: Array<() => Promise<Buffer[]>> = [
      async () => [Buffer.from(`GET /exec/${randomId(rng).slice(0, 2000)} HTTP/1.1\r\nHost: x\r\n\r\n`, "latin1")],
      async () => [Buffer.from(`GET ${url.pathname.replace(/[^/]+$/, randomId(rng).slice(0, 500))} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n`, "latin1")],
      async () => [Buffer.from(`GET ${await realExecUrl()} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: ${rng.pick(["garbage", "", "SPDY/2", "websocket"])}\r\n\r\n`, "latin1")],
      async () => [Buffer.from(`GET ${await realExecUrl()} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n`, "latin1")],
      async () => [Buffer.from(`GET ${await realExecUrl()} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n`, "latin1"), garbage(rng.int(1, 4096))],
      async () => [
        Buffer.from(`GET ${await realExecUrl()} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n`, "latin1"),
        garbage(rng.int(1, 4096)),
      ],
      async () => [garbage(rng.int(1, 8192))],
      async () => [Buffer.from(`GET /exec/x HTTP/1.1\r\n${"X-A: b\r\n".repeat(rng.int(100, 3000))}\r\n`, "latin1")],
      async () => [Buffer.from(`POST /portforward/${randomId(rng).slice(0, 100)} HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n`, "latin1"), garbage(1000)],
    ];
    const httpTotal = Math.max(requests.length, Math.min(300, Math.floor(opts.cases / 2)));
    for (let i = 0; i < httpTotal && alive(); i++) {
      const which = i < requests.length ? i : rng.int(0, requests.length - 1);
      const r = await rawExchange(host, port, await requests[which]!(), DEADLINE_MS);
      rep.httpCases++;
      const status = /^HTTP\/1\.1 (\d{3})/.exec(r.reply)?.[1];
      const outcome = status === "101" ? (r.closed ? "HTTP 101, closed on the garbage" : "HTTP 101, session still open after 1 s") : status ? `HTTP ${status}` : r.closed ? "closed" : "open at the deadline";
      rep.httpOutcomes[outcome] = (rep.httpOutcomes[outcome] ?? 0) + 1;
      // A 101 and then garbage: the server may keep the session until its idle timeout; that is no hang of berthd.
      if (outcome === "open at the deadline") {
        rep.hangs++;
        rep.failures.push(`stream fuzz: streaming request ${which} got no answer and no close within ${DEADLINE_MS} ms`);
      }
      if (status === "500") rep.failures.push(`stream fuzz: streaming request ${which} got HTTP 500`);
    }

    if (!alive()) {
      rep.crashes++;
      rep.failures.push(`stream fuzz: berthd died: exit ${d.process.exitCode ?? d.process.signalCode}\n${d.output().slice(-3000)}`);
      return rep;
    }
    // Afterwards: the container runs, the server answers, a fresh subscriber sees a new event.
    const st = (await rt.containerStatus({ containerId: cid })).status;
    if (st?.state !== ContainerState.CONTAINER_RUNNING) rep.failures.push(`stream fuzz: the container is ${ContainerState[st?.state ?? 3]} afterwards`);
    const probe = await fetch(`http://${host}:${port}/exec/not-a-token`, { signal: AbortSignal.timeout(DEADLINE_MS) }).catch((err: unknown) => err as Error);
    if (probe instanceof Error || (probe.status !== 404 && probe.status !== 400)) rep.failures.push(`stream fuzz: the streaming server does not answer afterwards: ${probe instanceof Error ? probe.message : `HTTP ${probe.status}`}`);
    const fresh = rt.getContainerEvents({});
    const seen = new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), DEADLINE_MS);
      fresh.on("data", () => {
        clearTimeout(t);
        resolve(true);
      });
      fresh.on("error", () => undefined);
    });
    await new Promise((r) => setTimeout(r, 200));
    const last = await newContainer();
    if (!(await seen)) rep.failures.push("stream fuzz: a fresh GetContainerEvents subscriber saw no event for a new container");
    fresh.cancel();
    await rt.stopContainer({ containerId: last, timeout: 0 });

    await rt.stopPodSandbox({ podSandboxId: podId });
    await rt.removePodSandbox({ podSandboxId: podId });
    for (const img of (await d.client.image.listImages({})).images) await d.client.image.removeImage({ image: { image: img.id } });
    const leaks = scanLeaks(world, dirs);
    if (leakCount(leaks) > 0) rep.failures.push(`stream fuzz: leaks after removing everything: ${formatLeaks(leaks)}`);
    opts.log(`  streaming fuzz: ${rep.rpcCases} RPC cases ${JSON.stringify(rep.rpcCodes)}; ${rep.subscribers} event subscribers; ${rep.httpCases} streaming-URL requests ${JSON.stringify(rep.httpOutcomes)}`);
  } catch (err) {
    rep.failures.push(`stream fuzz: harness error: ${(err as Error).stack ?? String(err)}`);
  } finally {
    if (d) {
      if (d.process.exitCode !== null && rep.crashes === 0) rep.crashes++;
      await d.stop().catch(() => undefined);
      removeDirs(d.dirs);
    }
  }
  return rep;
}
