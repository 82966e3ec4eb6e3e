// Service levels end to end: real failures (a registry answering 500, a command that
// does not exist, a container killed by its memory limit, a conmon killed) are counted
// in the right SLI, shown by `berthctl slo` with their reasons, logged with the same
// reason, and kept across a restart. The dashboard and the rules name only series a
// real berthd exports.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, get as httpGet, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parse as parseYaml } from "yaml";
import { ContainerState } from "../api/gen/cri/v1/api.js";
import type { SloReport, SloStatus } from "../pkg/slo/index.js";
import { BERTHCTL, REPO_ROOT } from "./harness/daemon.js";
import { startRegistry, type Registry } from "./harness/registry.js";
import { ensureTestImages, type TestImages } from "./harness/images.js";
import { ctrConfig, createCtr, runCtr, runPod, startEnv, stopEnv, waitExited, type Env } from "./containers-helpers.js";
import { exportedMetricNames, promqlMetricNames } from "./slo-promql.js";

let reg: Registry;
let images: TestImages;
let env: Env;
let bb: string;
let broken: Server;
let brokenHost: string;
let brokenHits = 0;

const sloToml = (): string => `[slo]\nflush_interval_seconds = 1\n[image.registries."${brokenHost}"]\nplain_http = true\n`;

before(async () => {
  // A registry that answers 500 to everything.
  broken = createServer((req, res) => {
    brokenHits++;
    req.resume();
    res.writeHead(500, { "content-type": "application/json" });
    res.end('{"errors":[{"code":"UNKNOWN","message":"storage backend down"}]}');
  });
  await new Promise<void>((resolve) => broken.listen(0, "127.0.0.1", resolve));
  brokenHost = `127.0.0.1:${(broken.address() as AddressInfo).port}`;
  reg = await startRegistry();
  images = await ensureTestImages(reg);
  env = await startEnv(reg, images, undefined, undefined, sloToml());
  bb = images["busybox:latest"].ref;
});

after(async () => {
  if (env) await stopEnv(env);
  await reg?.stop();
  broken?.close();
});

function metricsAddress(): string {
  return new URL(env.d.metricsUrl()).host;
}

function berthctl(...args: string[]): string {
  return execFileSync(process.execPath, [BERTHCTL, "--socket", env.d.dirs.socket, ...args], { encoding: "utf8", timeout: 30_000 });
}

function report(): SloReport {
  return JSON.parse(berthctl("slo", "--address", metricsAddress(), "-o", "json")) as SloReport;
}

function sloOf(r: SloReport, name: string): SloStatus {
  const s = r.slos.find((x) => x.name === name);
  assert.ok(s, `berthctl slo shows ${name}`);
  return s;
}

function reasonCount(s: SloStatus, reason: string): number {
  return s.topReasons.find((x) => x.reason === reason)?.events ?? 0;
}

/** berthd's structured log lines that count a bad event against `sli` (and the raw text of any that do not parse). */
function sliLogLines(sli: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of env.d.output().split("\n")) {
    if (!line.includes(`"sli":"${sli}"`)) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      out.push({ unparsed: line });
    }
  }
  return out;
}

/**
 * The log lines once at least `n` arrived: berthd writes them before it answers, but the
 * test reads its pipe only when its event loop runs (berthctl runs synchronously).
 */
async function waitSliLogLines(sli: string, n: number): Promise<Array<Record<string, unknown>>> {
  const end = Date.now() + 5000;
  for (;;) {
    const lines = sliLogLines(sli);
    if (lines.length >= n || Date.now() > end) return lines;
    await sleep(50);
  }
}

// A fresh connection per scrape (no keep-alive): a pooled fetch connection that the
// server closes as idle at the moment of reuse fails the call ("fetch failed").
function scrape(): Promise<string> {
  return new Promise((resolve, reject) => {
    httpGet(env.d.metricsUrl(), { agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve(body));
      res.on("error", reject);
    }).on("error", reject);
  });
}

test("a pull from a registry that answers 500 counts against image_pull (registry_5xx) in /slo, berthctl slo, the metrics and the log", async () => {
  const before = reasonCount(sloOf(report(), "image_pull"), `registry_5xx from ${brokenHost}`);
  await assert.rejects(env.d.client.image.pullImage({ image: { image: `${brokenHost}/broken/app:1.0` } }), /500/);
  assert.ok(brokenHits > 0, "the broken registry was asked");
  const s = sloOf(report(), "image_pull");
  assert.equal(reasonCount(s, `registry_5xx from ${brokenHost}`), before + 1, JSON.stringify(s.topReasons));
  assert.ok((s.windows[0]?.events ?? 0) >= 5, "the successful pulls of the set-up count as good events");
  assert.ok((s.windows[0]?.burnRate ?? 0) > 0);
  const lines = await waitSliLogLines("image_pull", 1);
  assert.equal(lines.length, 1, `one log line per failed pull: ${JSON.stringify(lines)}`);
  assert.equal(lines[0]?.["registry"], brokenHost);
  assert.equal(lines[0]?.["reason"], "registry_5xx");
  assert.match(await scrape(), new RegExp(`berth_image_pull_failures_total\\{registry="${brokenHost.replace(/\./g, "\\.")}",reason="registry_5xx"\\} 1`));
});

test("a container whose command does not exist counts against container_start (command_not_found)", async () => {
  const pod = await runPod(env, "nocmd");
  let phase = "create";
  try {
    const id = await createCtr(env, pod, ctrConfig("nocmd", bb, { command: ["/no/such/binary"] }));
    phase = "start";
    await assert.rejects(env.d.client.runtime.startContainer({ containerId: id }));
  } catch (err) {
    if (phase === "start") throw err;
  }
  const s = sloOf(report(), "container_start");
  const reason = `${phase}: command_not_found (runc)`;
  assert.equal(reasonCount(s, reason), 1, `${reason} in ${JSON.stringify(s.topReasons)}`);
  assert.equal(s.windows[0]?.bad, 1);
  const lines = await waitSliLogLines("container_start", 1);
  assert.equal(lines.length, 1);
  assert.equal(lines[0]?.["reason"], "command_not_found");
  assert.equal(lines[0]?.["phase"], phase);
  assert.match(String(lines[0]?.["err"]), /no\/such\/binary/);
  await env.d.client.runtime.stopPodSandbox({ podSandboxId: pod.id });
  await env.d.client.runtime.removePodSandbox({ podSandboxId: pod.id });
});

test("a container killed by its memory limit is an OOM kill: M9, exits by class, and the exits indicator of berthctl slo", async () => {
  const pod = await runPod(env, "oom");
  const id = await runCtr(env, pod, ctrConfig("hog", bb, { command: ["dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"], linux: { resources: { memoryLimitInBytes: 32n * 1024n * 1024n } } }));
  const st = await waitExited(env, id);
  assert.equal(st.reason, "OOMKilled");
  const text = await scrape();
  assert.match(text, /berth_container_oom_kills_total\{handler="runc"\} 1/);
  assert.match(text, /berth_container_exits_total\{reason="OOMKilled",class="oom",handler="runc"\} 1/);
  const exits = sloOf(report(), "container_exits");
  assert.equal(exits.state, "indicator");
  assert.equal(reasonCount(exits, "oom (runc)"), 1);
  await env.d.client.runtime.stopPodSandbox({ podSandboxId: pod.id });
  await env.d.client.runtime.removePodSandbox({ podSandboxId: pod.id });
});

test("a killed conmon counts against the monitor SLO (monitor lost)", async () => {
  const pod = await runPod(env, "monitorloss");
  const id = await runCtr(env, pod, ctrConfig("victim", bb, { command: ["sleep", "600"] }));
  const info = JSON.parse((await env.d.client.runtime.containerStatus({ containerId: id, verbose: true })).info["info"] ?? "{}") as { conmonPid: number };
  assert.ok(info.conmonPid > 0);
  process.kill(info.conmonPid, "SIGKILL");
  const end = Date.now() + 15_000;
  for (;;) {
    const state = (await env.d.client.runtime.containerStatus({ containerId: id })).status?.state;
    if (state === ContainerState.CONTAINER_EXITED) break;
    assert.ok(Date.now() < end, "the container is reported exited once its monitor is gone");
    await sleep(100);
  }
  const s = sloOf(report(), "monitor");
  assert.equal(reasonCount(s, "monitor lost (runc)"), 1);
  assert.ok((s.windows[0]?.burnRate ?? 0) > 1, "one loss among a handful of exits burns the 99.9% budget");
  const lines = await waitSliLogLines("monitor", 1);
  assert.equal(lines.length, 1, JSON.stringify(lines));
  assert.equal(lines[0]?.["reason"], "monitor_lost");
  assert.match(await scrape(), /berth_monitor_losses_total\{handler="runc"\} 1/);
  await env.d.client.runtime.stopPodSandbox({ podSandboxId: pod.id });
  await env.d.client.runtime.removePodSandbox({ podSandboxId: pod.id });
});

test("berthctl slo: one screen with every objective and the reasons; the windows survive a restart and a kill -9", async (t) => {
  const screen = berthctl("slo", "--address", metricsAddress());
  t.diagnostic(`berthctl slo\n${screen}`);
  for (const name of ["container_start", "image_pull", "image_pull_latency", "cri_read_latency", "cri_availability", "monitor", "container_exits", "snapshot_unpack"]) {
    assert.match(screen, new RegExp(`^${name} `, "m"));
  }
  assert.match(screen, /^ {2}container_start: 1 bad: 1 (create|start): command_not_found \(runc\)$/m);
  assert.match(screen, new RegExp(`^  image_pull: 1 bad: 1 registry_5xx from ${brokenHost.replace(/\./g, "\\.")}$`, "m"));
  assert.match(screen, /^ {2}monitor: 1 bad: 1 monitor lost \(runc\)$/m);
  const r1 = report();

  // SIGTERM flushes; the next berthd on the same root shows the same 30-day windows.
  const dirs = env.d.dirs;
  const net = env.net;
  assert.equal(await env.d.stop(), 0);
  env = await startEnv(reg, images, dirs, net, sloToml());
  const r2 = report();
  for (const name of ["container_start", "image_pull", "monitor", "container_exits"]) {
    const a = sloOf(r1, name);
    const b = sloOf(r2, name);
    assert.deepEqual(b.topReasons, a.topReasons, `${name} keeps its reasons across a restart`);
    assert.ok((b.windows[2]?.events ?? 0) >= (a.windows[2]?.events ?? 0), `${name} keeps its events across a restart`);
  }
  // A kill -9 loses at most one flush interval (1 s here): after 2 s everything is on disk.
  await sleep(2500);
  await env.d.kill();
  env = await startEnv(reg, images, dirs, net, sloToml());
  const r3 = report();
  for (const name of ["container_start", "image_pull", "monitor", "container_exits"]) {
    assert.deepEqual(sloOf(r3, name).topReasons, sloOf(r1, name).topReasons, `${name} keeps its reasons across a kill -9`);
  }
  const after = berthctl("slo", "--address", metricsAddress());
  t.diagnostic(`berthctl slo after a restart and a kill -9\n${after}`);
});

test("the dashboard and the rules name only series a real berthd exports (or rules record)", async () => {
  const exported = exportedMetricNames(await scrape());
  assert.ok(exported.has("berth_cri_request_duration_seconds_bucket") && exported.has("berth_container_starts_total"));
  const rules = parseYaml(readFileSync(join(REPO_ROOT, "deploy", "prometheus-rules.yaml"), "utf8")) as { groups: Array<{ rules: Array<{ record?: string; alert?: string; expr: string }> }> };
  const recorded = new Set(rules.groups.flatMap((g) => g.rules.flatMap((r) => (r.record ? [r.record] : []))));
  const known = (n: string): boolean => exported.has(n) || recorded.has(n) || n === "up";
  const unknown: string[] = [];
  const ruleInputs = new Set<string>();
  for (const r of rules.groups.flatMap((g) => g.rules)) {
    for (const n of promqlMetricNames(r.expr)) {
      ruleInputs.add(n);
      if (!known(n)) unknown.push(`rule ${r.record ?? r.alert}: ${n}`);
    }
  }
  const dash = JSON.parse(readFileSync(join(REPO_ROOT, "deploy", "grafana-dashboard.json"), "utf8")) as {
    panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
    templating: { list: Array<{ name: string; definition?: string }> };
  };
  let queries = 0;
  for (const p of dash.panels) {
    for (const tgt of p.targets ?? []) {
      queries++;
      for (const n of promqlMetricNames(tgt.expr)) if (!known(n)) unknown.push(`panel "${p.title}": ${n}`);
    }
  }
  for (const v of dash.templating.list) {
    const m = /label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)/.exec(v.definition ?? "");
    if (m && !known(m[1] as string)) unknown.push(`variable ${v.name}: ${m[1]}`);
  }
  assert.ok(queries >= 20, `the dashboard has its panels (${queries} queries)`);
  assert.deepEqual(unknown, []);
  // Every SLI series (M1..M10) feeds at least one rule.
  for (const n of [
    "berth_container_starts_total",
    "berth_image_pull_duration_seconds_bucket",
    "berth_cri_request_duration_seconds_bucket",
    "berth_monitor_losses_total",
    "berth_store_bytes",
    "berth_filesystem_free_bytes",
    "berth_snapshot_unpack_errors_total",
    "berth_container_exits_total",
    "berth_image_pull_layers_total",
    "berth_image_pull_layer_bytes_total",
    "berth_container_oom_kills_total",
    "berth_cri_errors_total",
  ]) {
    assert.ok(exported.has(n), `berthd exports ${n}`);
    assert.ok(ruleInputs.has(n), `a rule reads ${n}`);
  }
});
