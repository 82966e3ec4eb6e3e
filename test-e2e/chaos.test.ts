// The reliability harness (hack/chaos) in a short, bounded form: each part on
// its own daemon, sharing one registry and one CNI network. The long form is
// `make chaos`. The seed is random unless BERTH_CHAOS_SEED is set; a failure
// names it, and `node dist/hack/chaos/main.js --seed S …` replays the same choices.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { makeWorld, type World } from "../hack/chaos/env.js";
import { FAULT_KINDS } from "../hack/chaos/fault-proxy.js";
import { runFuzz } from "../hack/chaos/fuzz.js";
import { runKillLoop } from "../hack/chaos/kill-loop.js";
import { LEAK_KINDS } from "../hack/chaos/leaks.js";
import { runRegistryFaults } from "../hack/chaos/registry-faults.js";
import { runRetries } from "../hack/chaos/retry.js";
import { runRuntimeFaults } from "../hack/chaos/runtime-faults.js";
import { runFdExhaustion } from "../hack/chaos/fd-exhaustion.js";
import { runStreamFuzz } from "../hack/chaos/stream-fuzz.js";
import { runDiskFull } from "../hack/chaos/disk-full.js";

let world: World;
const log = (l: string): void => console.log(l);
const seed = process.env["BERTH_CHAOS_SEED"] ? Number(process.env["BERTH_CHAOS_SEED"]) : Math.floor(Math.random() * 2 ** 31);

before(async () => {
  console.log(`chaos seed ${seed}`);
  world = await makeWorld();
});

after(async () => {
  await world?.close();
});

test(`kill -9 ten times under a mixed workload: nothing the client was told exists is lost, exits keep their codes, no orphans, no leaks (seed ${seed})`, async () => {
  const r = await runKillLoop(world, { kills: 10, seed, cleanupEvery: 5, concurrency: 3, budgetMs: 6 * 60_000, log });
  assert.deepEqual(r.failures, [], `seed ${seed}`);
  assert.equal(r.kills, 10);
  assert.equal(r.restarts, 10);
  assert.ok(Object.values(r.operations).reduce((a, b) => a + b, 0) >= 20, `operations ran: ${JSON.stringify(r.operations)}`);
  assert.ok(r.containersChecked > 0, "containers were checked after restarts");
  assert.equal(r.leakScans, 2);
  for (const k of LEAK_KINDS) assert.equal(r.leaks[k], 0, `${k} leaked`);
});

test("registry faults, each once: a pull succeeds with the right digests or fails with a clear error and leaves nothing visible; the retry succeeds", async () => {
  const r = await runRegistryFaults(world, FAULT_KINDS, log);
  assert.deepEqual(r.failures, []);
  assert.equal(r.outcomes.length, FAULT_KINDS.length);
  for (const o of r.outcomes) assert.equal(o.retry, "ok", o.kind);
  // Faults no client could be handed bytes through must fail the pull.
  for (const kind of ["http-500", "corrupt-bytes", "short-blob", "long-blob"]) {
    assert.notEqual(r.outcomes.find((o) => o.kind === kind)?.firstPull, "ok", `${kind} failed the first pull`);
  }
});

test(`hostile CRI input: no crash, no hang, no INTERNAL/UNKNOWN, no state change on rejection (seed ${seed})`, async () => {
  const r = await runFuzz(world, { cases: 250, seed, log });
  assert.deepEqual(r.failures, [], `seed ${seed}`);
  assert.equal(r.cases, 250);
  assert.ok(r.rejected > 50, `most hostile requests are rejected (${r.rejected})`);
  assert.equal(r.crashes + r.hangs + r.wrongCodes + r.stateChanges, 0);
});

test("kubelet retry: the same RunPodSandbox/StartContainer sent again while the first still runs gets the first call's result or a clean error; exactly one whole object exists", async () => {
  const r = await runRetries(world, 2, log);
  assert.deepEqual(r.failures, []);
  assert.equal(r.outcomes["RunPodSandbox:first-result"], 4);
  assert.equal((r.outcomes["StartContainer:retry-ok"] ?? 0) + (r.outcomes["StartContainer:clean-error:FAILED_PRECONDITION"] ?? 0), 2);
});

test("a runc failing or hanging in create/start/exec/kill/delete and a hanging conmon (create and start both at StartContainer): clear codes naming the runtime and step, hung processes killed, nothing half-made, the same call works once the fault clears", async () => {
  const r = await runRuntimeFaults(world, log);
  assert.deepEqual(r.failures, []);
  const want: Record<string, string> = {
    "launch: runc create fails": "FAILED_PRECONDITION",
    "launch: runc create hangs": "DEADLINE_EXCEEDED",
    "launch: conmon hangs": "DEADLINE_EXCEEDED",
    "start: runc fails": "FAILED_PRECONDITION",
    "start: runc hangs": "DEADLINE_EXCEEDED",
    "exec: runc hangs (no timeout)": "DEADLINE_EXCEEDED",
    "exec: runc hangs (timeout 2 s)": "DEADLINE_EXCEEDED",
    "stop: runc kill fails": "UNAVAILABLE",
    "stop: runc kill hangs": "DEADLINE_EXCEEDED",
    "remove: runc delete fails": "UNAVAILABLE",
    "remove: runc delete hangs": "DEADLINE_EXCEEDED",
    "pod stop: runc kill fails": "UNAVAILABLE",
    "pod stop: runc kill hangs": "DEADLINE_EXCEEDED",
    "pod remove: runc delete fails": "UNAVAILABLE",
    "pod remove: runc delete hangs": "DEADLINE_EXCEEDED",
  };
  for (const [label, code] of Object.entries(want)) assert.match(r.outcomes[label] ?? "(missing)", new RegExp(`^${code} `), label);
  assert.match(r.outcomes["exec: runc fails"] ?? "(missing)", /^exit 1: injected exec failure/);
});

test("too many open files: failing calls are RESOURCE_EXHAUSTED/UNAVAILABLE, berthd and its containers survive, the listener and streaming server serve again, state intact after a restart, no leaks", async () => {
  const r = await runFdExhaustion(world, log, { rounds: 2, clients: 16 });
  assert.deepEqual(r.failures, []);
  assert.ok(Object.keys(r.outcomes).some((k) => !k.endsWith(": OK")), JSON.stringify(r.outcomes));
});

test("hostile streaming use: events subscribers cancelled or never reading, bad Exec/Attach/PortForward requests, malformed streaming URLs and upgrades: no crash, no hang, right codes", async () => {
  const r = await runStreamFuzz(world, { cases: 20, seed: 11, log });
  assert.deepEqual(r.failures, []);
  assert.equal(r.crashes, 0);
  assert.equal(r.hangs, 0);
  assert.ok(r.rpcCases >= 14 && r.httpCases >= 9);
  assert.ok((r.rpcCodes["INVALID_ARGUMENT"] ?? 0) > 0 && (r.rpcCodes["NOT_FOUND"] ?? 0) > 0, JSON.stringify(r.rpcCodes));
});

test("the root filesystem full during a pull (download, unpack) and during CreateContainer: ResourceExhausted, nothing visible, success once there is room, no leaks", async () => {
  const r = await runDiskFull(world, log);
  assert.deepEqual(r.failures, []);
  assert.equal(r.outcomes["create after making room"], "runs");
});
