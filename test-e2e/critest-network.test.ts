// Mirrors critest's networking (networking.go), multiple-containers
// (multi_container_linux.go) and sysctl (pod_linux.go) tests. critest's nginx
// and httpd images are replaced by busybox httpd serving a page on port 80.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { ContainerState, Protocol, type ContainerConfig, type DeepPartial, type PodSandboxConfig } from "../api/gen/cri/v1/api.js";
import { startRegistry, type Registry } from "./harness/registry.js";
import { ensureTestImages } from "./harness/images.js";
import { startEnv, stopEnv, type Env } from "./containers-helpers.js";

let reg: Registry;
let env: Env;
let bb: string;
const tmp: string[] = [];

before(async () => {
  reg = await startRegistry();
  const images = await ensureTestImages(reg);
  env = await startEnv(reg, images);
  bb = images["busybox:latest"].ref;
});

after(async () => {
  if (env) await stopEnv(env);
  await reg?.stop();
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

const rt = () => env.d.client.runtime;
const uuid = () => randomUUID();
type Pod = { id: string; config: DeepPartial<PodSandboxConfig> };

async function pod(name: string, extra: DeepPartial<PodSandboxConfig> = {}): Promise<Pod> {
  const config: DeepPartial<PodSandboxConfig> = {
    metadata: { name: name + uuid(), uid: "cri-test-uid" + uuid(), namespace: "cri-test-namespace" + uuid(), attempt: 2 },
    linux: { cgroupParent: "" },
    labels: {},
    ...extra,
  };
  const r = await rt().runPodSandbox({ config });
  return { id: r.podSandboxId, config };
}

async function startCtr(p: Pod, config: DeepPartial<ContainerConfig>): Promise<string> {
  const id = (await rt().createContainer({ podSandboxId: p.id, config, sandboxConfig: p.config })).containerId;
  await rt().startContainer({ containerId: id });
  const end = Date.now() + 60_000;
  while ((await rt().containerStatus({ containerId: id })).status?.state !== ContainerState.CONTAINER_RUNNING) {
    if (Date.now() > end) throw new Error(`container ${id} not running`);
    await sleep(200);
  }
  return id;
}

async function remove(p: Pod) {
  await rt().stopPodSandbox({ podSandboxId: p.id });
  await rt().removePodSandbox({ podSandboxId: p.id });
}

// A web server on port 80 answering "/" with 200 (critest uses nginx/httpd images).
const webServer = (prefix: string, extra: DeepPartial<ContainerConfig> = {}): DeepPartial<ContainerConfig> => ({
  metadata: { name: prefix + uuid(), attempt: 2 },
  image: { image: bb },
  command: ["sh", "-c", "mkdir -p /www && echo httpd > /www/index.html && echo httpd started && exec httpd -f -v -p 80 -h /www"],
  linux: {},
  ...extra,
});

/** critest's checkMainPage: GET / until it answers, then expect 200. */
async function checkMainPage(url: string) {
  const end = Date.now() + 60_000;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      assert.equal(res.status, 200, `GET ${url}`);
      return;
    } catch (err) {
      last = err;
      await sleep(1000);
    }
  }
  throw new Error(`GET ${url} failed: ${String(last)}`);
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((res) => srv.listen(0, "0.0.0.0", res));
  const port = (srv.address() as AddressInfo).port;
  await new Promise((res) => srv.close(res));
  return port;
}

test("port mapping with only container port (host_port 0): the pod IP serves the page", async () => {
  const p = await pod("create-PodSandbox-with-port-mapping", { portMappings: [{ containerPort: 80 }] });
  try {
    await startCtr(p, webServer("container-for-container-port"));
    const ip = (await rt().podSandboxStatus({ podSandboxId: p.id })).status?.network?.ip;
    assert.ok(ip, "pod IP");
    await checkMainPage(`http://${ip}:80/`);
  } finally {
    await remove(p);
  }
});

test("port mapping with host port and container port: 127.0.0.1:hostPort serves the page", async () => {
  // critest uses host port 12000; a free port keeps concurrent runs apart.
  const hostPort = await freePort();
  const p = await pod("create-PodSandbox-with-port-mapping", { portMappings: [{ containerPort: 80, hostPort, protocol: Protocol.TCP }] });
  try {
    await startCtr(p, webServer("container-for-host-port"));
    await checkMainPage(`http://127.0.0.1:${hostPort}/`);
  } finally {
    await remove(p);
  }
});

test("multiple containers in a pod: network, container log, container exec", async () => {
  const name = "PodSandbox-for-multi-container-test-" + uuid();
  const logRoot = mkdtempSync(join(tmpdir(), "podLogTest"));
  tmp.push(logRoot);
  const logDirectory = join(logRoot, name);
  mkdirSync(logDirectory, { recursive: true });
  const config: DeepPartial<PodSandboxConfig> = {
    metadata: { name, uid: "cri-test-uid" + uuid(), namespace: "cri-test-namespace" + uuid(), attempt: 2 },
    logDirectory,
    portMappings: [{ containerPort: 80 }],
    labels: {},
    linux: { cgroupParent: "" },
  };
  const p = { id: (await rt().runPodSandbox({ config })).podSandboxId, config };
  try {
    const httpdName = "httpd" + uuid();
    const httpd = await startCtr(p, webServer("", { metadata: { name: httpdName, attempt: 2 }, logPath: httpdName + ".log" }));
    const bbName = "busybox" + uuid();
    const busybox = await startCtr(p, { metadata: { name: bbName, attempt: 2 }, image: { image: bb }, command: ["sh", "-c", "echo hello World; sleep 1000"], logPath: bbName + ".log" });

    const ip = (await rt().podSandboxStatus({ podSandboxId: p.id })).status?.network?.ip;
    await checkMainPage(`http://${ip}:80/`);

    for (const [id, want] of [[httpd, "httpd"], [busybox, "hello World"]] as const) {
      const logPath = (await rt().containerStatus({ containerId: id })).status?.logPath ?? "";
      const end = Date.now() + 60_000;
      while (!readFileSync(logPath, "utf8").includes(want)) {
        if (Date.now() > end) throw new Error(`${logPath} lacks ${want}`);
        await sleep(100);
      }
    }

    for (const [id, word] of [[httpd, "httpd"], [busybox, "busybox"]] as const) {
      const r = await rt().execSync({ containerId: id, cmd: ["echo", word], timeout: 30n });
      assert.equal(r.stdout.toString(), word + "\n");
      assert.equal(r.stderr.toString(), "");
    }
  } finally {
    await remove(p);
  }
});

test("sysctls: safe (kernel.shm_rmid_forced) and unsafe (fs.mqueue.msg_max)", async () => {
  for (const [key, path, value] of [
    ["kernel.shm_rmid_forced", "/proc/sys/kernel/shm_rmid_forced", "1"],
    ["fs.mqueue.msg_max", "/proc/sys/fs/mqueue/msg_max", "100"],
  ] as const) {
    const p = await pod("pod-sandbox-with-sysctls-", { linux: { cgroupParent: "", sysctls: { [key]: value } } });
    try {
      const id = await startCtr(p, { metadata: { name: "container-sysctl-" + uuid(), attempt: 2 }, image: { image: bb }, command: ["top"], linux: {} });
      const r = await rt().execSync({ containerId: id, cmd: ["cat", path], timeout: 30n });
      assert.equal(r.exitCode, 0);
      assert.equal(r.stdout.toString().trim(), value);
    } finally {
      await remove(p);
    }
  }
});
