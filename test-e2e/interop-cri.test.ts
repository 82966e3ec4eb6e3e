// A Go CRI client (test-e2e/interop/cri, grpc-go from Debian's packages) that
// dials berthd exactly as the kubelet 1.26 does — the socket path as target and
// so as the HTTP/2 :authority — and drives every RPC family against the real
// daemon. It prints one JSON line per check; this test fails on any failed or
// missing check.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT, removeDirs, startDaemon, type Daemon } from "./harness/daemon.js";
import { makeTestNetwork, type TestNetwork } from "./harness/cni-net.js";
import { startRegistry, type Registry } from "./harness/registry.js";
import { ensureTestImages, type TestImages } from "./harness/images.js";
import { descriptorSet, goBuild } from "./harness/go-build.js";

let d: Daemon;
let net: TestNetwork;
let reg: Registry;
let images: TestImages;
let bin: string;
let descriptors: string;

before(async () => {
  // Build first: a missing Go toolchain fails here with the packages to install.
  bin = await goBuild(join(REPO_ROOT, "test-e2e", "interop", "cri"));
  descriptors = await descriptorSet(join(REPO_ROOT, "api"), "cri/v1/api.proto");
  reg = await startRegistry();
  images = await ensureTestImages(reg);
  d = await startDaemon({ configToml: `[image.registries."${reg.host}"]\nplain_http = true\n` });
  net = makeTestNetwork(d.dirs.base);
  net.install(d.dirs.cniConfDir);
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

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function interop(args: string[], timeoutMs = 300_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ["-descriptors", descriptors, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function jsonLines<T>(text: string): T[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as T);
}

test("the Go client sends what the kubelet sends: the socket path as :authority, application/grpc", async () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-gocri-capture-"));
  try {
    const r = await interop(["-mode", "capture", "-dir", dir], 60_000);
    assert.equal(r.code, 0, r.stderr);
    const [cap] = jsonLines<{ socket: string; headers: Array<{ name: string; value: string }> }>(r.stdout);
    const h = Object.fromEntries((cap?.headers ?? []).map((x) => [x.name, x.value]));
    assert.equal(h[":authority"], join(dir, "capture.sock"));
    assert.equal(h[":path"], "/runtime.v1.RuntimeService/Version");
    assert.equal(h[":scheme"], "http");
    assert.equal(h["content-type"], "application/grpc");
    assert.match(h["user-agent"] ?? "", /^grpc-go\//);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Every family the brief of this client names; a check that does not run is a failure too.
const REQUIRED = [
  "Version", "Status", "RuntimeConfig", "UpdateRuntimeConfig", "64 concurrent calls on one connection",
  "PullImage", "ImageStatus", "ImageStatus of an unknown image", "ListImages", "ListImages with a filter", "ImageFsInfo", "RemoveImage",
  "RunPodSandbox", "PodSandboxStatus", "ListPodSandbox by id prefix", "ListPodSandbox by label", "ListPodSandbox by state", "StopPodSandbox", "RemovePodSandbox",
  "CreateContainer", "StartContainer", "ContainerStatus created", "ContainerStatus running", "ListContainers by pod", "ListContainers by label", "ListContainers by state",
  "UpdateContainerResources", "ReopenContainerLog", "StopContainer", "RemoveContainer",
  "ContainerStats", "ListContainerStats", "PodSandboxStats", "ListPodSandboxStats",
  "ExecSync", "ExecSync with 6 MB of output", "ExecSync with 17 MB of output fits 16 MiB", "ExecSync timeout", "Exec", "Attach", "PortForward",
  "GetContainerEvents created, started", "GetContainerEvents carries the statuses", "GetContainerEvents stopped",
  "StreamContainers by pod", "StreamPodSandboxes by label", "StreamImages",
  "ContainerStatus of an unknown id is NotFound", "PodSandboxStatus of an unknown id is NotFound", "StartContainer of an unknown id is NotFound",
  "ExecSync without cmd is InvalidArgument", "RunPodSandbox without metadata is InvalidArgument", "CreateContainer without config is InvalidArgument",
  "PullImage without image is InvalidArgument",
  "StopContainer of an unknown id succeeds", "RemoveContainer of an unknown id succeeds", "StopPodSandbox of an unknown id succeeds", "RemovePodSandbox of an unknown id succeeds",
];

test("every CRI RPC family from the Go client, dialled the kubelet way, against berthd", async (t) => {
  const logDir = join(d.dirs.base, "pod-logs", "gocri");
  mkdirSync(logDir, { recursive: true });
  // No -authority: the Go client sends the socket path, as the kubelet does.
  const r = await interop(["-endpoint", `unix://${d.dirs.socket}`, "-image", images["busybox:latest"].ref, "-log-dir", logDir]);
  const lines = jsonLines<{ check?: string; ok?: boolean; detail?: string; done?: boolean; failed?: number }>(r.stdout);
  const checks = lines.filter((l) => l.check !== undefined);
  const failed = checks.filter((l) => !l.ok).map((l) => `${l.check}: ${l.detail ?? ""}`);
  assert.deepEqual(failed, [], `failed checks (exit ${r.code}):\n${failed.join("\n")}\n${r.stderr}`);
  const ran = new Set(checks.map((l) => l.check));
  assert.deepEqual(REQUIRED.filter((n) => !ran.has(n)), [], "checks that did not run");
  assert.deepEqual(lines.at(-1), { done: true, failed: 0 });
  assert.equal(r.code, 0, r.stderr);
  t.diagnostic(`${checks.length} checks passed`);
  if (process.env["BERTH_INTEROP_VERBOSE"]) t.diagnostic(r.stdout); // every check with what it saw
  // The client removed what it made.
  assert.deepEqual((await d.client.runtime.listPodSandbox({})).items, []);
  assert.deepEqual((await d.client.image.listImages({})).images, []);
});

test("the Go client with localhost as :authority (newer kubelets): served on the raw socket, past the listener's own SETTINGS", async () => {
  // berthd hands such a connection to grpc-js unfiltered once it has read the first call and
  // the ACK of the empty SETTINGS frame it sent first; an ACK that reached nghttp2 would end
  // the connection (a SETTINGS ACK it did not ask for), and a client that waits for the
  // server's SETTINGS (grpc-go does) would never send its first call without that frame.
  const r = await interop(["-mode", "bench", "-n", "300", "-authority", "localhost", "-endpoint", `unix://${d.dirs.socket}`], 120_000);
  assert.equal(r.code, 0, r.stderr);
  const results = jsonLines<{ method: string; calls: number }>(r.stdout);
  assert.deepEqual(
    results.map((x) => [x.method, x.calls]),
    [
      ["RuntimeService/Version", 300],
      ["RuntimeService/ListContainers", 300],
    ],
  );
});

test("the Go client's one connection survives a berthd restart, as the kubelet's must", async (t) => {
  const child = spawn(bin, ["-descriptors", descriptors, "-mode", "reconnect", "-endpoint", `unix://${d.dirs.socket}`], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
  const up = new Promise<void>((resolve) =>
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString();
      if (stdout.includes('"phase":"up"')) resolve();
    }),
  );
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  await Promise.race([up, exited]);
  assert.match(stdout, /"phase":"up"/, stderr);
  assert.equal(await d.stop(), 0);
  d = await startDaemon({ dirs: d.dirs, configToml: `[image.registries."${reg.host}"]\nplain_http = true\n` });
  const code = await exited;
  assert.equal(code, 0, `${stdout}\n${stderr}`);
  const phases = jsonLines<{ phase: string; code?: string; after_ms?: number }>(stdout);
  assert.deepEqual(phases.map((p) => p.phase), ["up", "down", "up-again"]);
  assert.equal(phases[1]?.code, "Unavailable");
  t.diagnostic(`answering again ${phases[2]?.after_ms} ms after the first failed call`);
});
