import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultConfig, type SloConfig } from "../config/index.js";
import { setRootLogger } from "../log/index.js";
import { recordExit, recordMonitorLoss, recordPullFailure, recordPullSuccess, recordStartFailure, recordStartSuccess, rpcLatency } from "../metrics/index.js";
import { MetadataStore } from "../store/index.js";
import { SloEngine, type SloReport, type SloStatus } from "./index.js";

setRootLogger({ level: "silent" });

function slo(r: SloReport, name: string): SloStatus {
  const s = r.slos.find((x) => x.name === name);
  assert.ok(s, `no SLO ${name} in the report`);
  return s;
}

function withStore<T>(fn: (file: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "berth-slo-"));
  return fn(join(dir, "metadata.db")).finally(() => rmSync(dir, { recursive: true, force: true }));
}

const cfg = (): SloConfig => defaultConfig().slo;

test("start failures count against container_start: ratio, burn rate, budget and reasons per window", () =>
  withStore(async (file) => {
    let now = 1_800_000_000;
    const store = MetadataStore.open(file);
    const engine = new SloEngine({ store, config: cfg(), now: () => now });
    await engine.start();
    for (let i = 0; i < 97; i++) recordStartSuccess("runc");
    for (let i = 0; i < 2; i++) recordStartFailure("create", "runc", new Error('runc create failed: exec: "nope": executable file not found in $PATH'));
    recordStartFailure("start", "crun", new Error("runc start: timed out"));
    // Before any flush, the report already shows the pending events.
    let s = slo(await engine.report(), "container_start");
    assert.equal(s.windows[0]?.events, 100);
    assert.equal(s.windows[0]?.bad, 3);
    assert.equal(s.windows[0]?.sli, 97);
    // 3% bad against a 0.5% budget: burning six times too fast.
    assert.ok(Math.abs((s.windows[0]?.burnRate ?? 0) - 6) < 1e-9, String(s.windows[0]?.burnRate));
    assert.deepEqual(s.topReasons, [
      { reason: "create: command_not_found (runc)", events: 2 },
      { reason: "start: timeout (crun)", events: 1 },
    ]);
    const left = s.errorBudget?.remaining;
    assert.ok(typeof left === "number" && left < 0, "3% bad overspends a 0.5% budget");
    assert.equal(s.state, "exhausted");

    await engine.flush();
    // Two hours later the 1 h window is empty, the 6 h and 30 d windows still hold the events.
    now += 2 * 3600;
    s = slo(await engine.report(), "container_start");
    assert.deepEqual(
      s.windows.map((w) => [w.window, w.events, w.bad]),
      [
        ["1h", 0, 0],
        ["6h", 100, 3],
        ["30d", 100, 3],
      ],
    );
    assert.equal(s.windows[0]?.sli, null);
    await engine.stop();
    store.close();
  }));

test("windows survive a restart; a kill -9 loses only what was not flushed; buckets beyond the retention are pruned", () =>
  withStore(async (file) => {
    let now = 1_800_000_000;
    let store = MetadataStore.open(file);
    let engine = new SloEngine({ store, config: cfg(), now: () => now });
    await engine.start();
    recordPullSuccess("registry.example", 1, false);
    recordPullFailure("registry.example", Object.assign(new Error("answered HTTP 500"), { status: 500 }));
    await engine.flush();
    // Not flushed: lost with the process (a kill -9 before the next flush).
    recordPullFailure("registry.example", Object.assign(new Error("answered HTTP 503"), { status: 503 }));
    store.close();

    now += 600;
    store = MetadataStore.open(file);
    engine = new SloEngine({ store, config: cfg(), now: () => now });
    await engine.start();
    let s = slo(await engine.report(), "image_pull");
    assert.equal(s.windows[2]?.events, 2);
    assert.deepEqual(s.topReasons, [{ reason: "registry_5xx from registry.example", events: 1 }]);
    recordPullFailure("registry.example", new Error("connect ECONNREFUSED 127.0.0.1:1"));
    // A pull the kubelet cancelled is neither good nor bad.
    recordPullFailure("registry.example", Object.assign(new Error("The operation was aborted"), { name: "AbortError" }));
    await engine.stop(); // SIGTERM writes what is pending
    store.close();

    store = MetadataStore.open(file);
    engine = new SloEngine({ store, config: cfg(), now: () => now });
    await engine.start();
    s = slo(await engine.report(), "image_pull");
    assert.equal(s.windows[2]?.events, 3);
    assert.equal(s.windows[2]?.bad, 2);
    // 31 days later the old buckets are gone after the next flush.
    now += 31 * 86_400;
    recordPullSuccess("registry.example", 1, true);
    await engine.flush();
    const rows = store.db.prepare("SELECT COUNT(*) AS n FROM slo_buckets WHERE slo = 'image_pull' AND bucket < ?").get(now - 30 * 86_400) as { n: number };
    assert.equal(rows.n, 0);
    s = slo(await engine.report(), "image_pull");
    assert.equal(s.windows[2]?.events, 1);
    assert.equal(s.windows[2]?.bad, 0);
    assert.equal(s.state, "ok");
    await engine.stop();
    store.close();
  }));

test("latency SLOs count observations above the threshold bucket; monitor losses count against monitor", () =>
  withStore(async (file) => {
    const store = MetadataStore.open(file);
    const engine = new SloEngine({ store, config: cfg(), now: () => 1_800_000_000 });
    await engine.start();
    rpcLatency.observe({ service: "runtime", method: "ListContainers" }, 0.002);
    rpcLatency.observe({ service: "runtime", method: "ListContainers" }, 0.3);
    rpcLatency.observe({ service: "runtime", method: "RunPodSandbox" }, 5); // not a read
    recordPullSuccess("r.example", 45, false);
    recordPullSuccess("r.example", 2, true);
    recordMonitorLoss("runc");
    recordExit("runc", 137, "OOMKilled");
    recordExit("runc", 0, "Completed");
    const r = await engine.report();
    const exits = slo(r, "container_exits");
    assert.equal(exits.state, "indicator");
    assert.equal(exits.errorBudget, null);
    assert.equal(exits.windows[0]?.events, 2);
    assert.deepEqual(exits.topReasons, [{ reason: "oom (runc)", events: 1 }]);
    const reads = slo(r, "cri_read_latency");
    assert.equal(reads.windows[0]?.events, 2);
    assert.deepEqual(reads.topReasons, [{ reason: "ListContainers slower than 100ms", events: 1 }]);
    const pulls = slo(r, "image_pull_latency");
    assert.equal(pulls.windows[0]?.events, 2);
    assert.deepEqual(pulls.topReasons, [{ reason: "slower than 30s from r.example (cache miss)", events: 1 }]);
    assert.deepEqual(slo(r, "monitor").topReasons, [{ reason: "monitor lost (runc)", events: 1 }]);
    await engine.stop();
    store.close();
  }));

test("a latency threshold that is not a histogram bucket bound is refused, naming the key", () =>
  withStore(async (file) => {
    const store = MetadataStore.open(file);
    const c = cfg();
    c.cri_read_latency.threshold_seconds = 0.2;
    assert.throws(() => new SloEngine({ store, config: c }), /config key "slo.cri_read_latency.threshold_seconds": 0.2 is not a bucket bound of berth_cri_request_duration_seconds/);
    store.close();
  }));
