import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { NamespaceMode, Protocol } from "../api/gen/cri/v1/api.js";
import { startRegistry, type Registry } from "./harness/registry.js";
import { ensureTestImages } from "./harness/images.js";
import { ctrConfig, runCtr, runPod, runToExit, startEnv, stopEnv, type Env } from "./containers-helpers.js";

let reg: Registry;
let env: Env;
let bb: string;

before(async () => {
  reg = await startRegistry();
  env = await startEnv(reg, await ensureTestImages(reg));
  bb = env.images["busybox:latest"].ref;
});

after(async () => {
  if (env) await stopEnv(env);
  await reg?.stop();
});

async function podIp(id: string): Promise<string> {
  return (await env.d.client.runtime.podSandboxStatus({ podSandboxId: id })).status?.network?.ip ?? "";
}

test("containers of two pods reach each other by IP; hostname and DNS options appear inside", async () => {
  const a = await runPod(env, "neta", { dnsConfig: { servers: ["10.0.0.53"], searches: ["svc.example"], options: ["ndots:3"] } });
  const b = await runPod(env, "netb");
  const ipB = await podIp(b.id);
  assert.match(ipB, /^\d+\.\d+\.\d+\.\d+$/);
  const server = await runCtr(env, b, ctrConfig("srv", bb, { command: ["/bin/sh", "-c", "while true; do echo pong | nc -l -p 7070; done"] }));
  const r = await runToExit(env, a, ctrConfig("client", bb, { command: ["/bin/sh", "-c", `hostname; cat /etc/resolv.conf; ping -c1 -W3 ${ipB} >/dev/null && echo ping-ok; i=0; while [ $i -lt 30 ]; do out=$(nc ${ipB} 7070 </dev/null) && [ -n "$out" ] && echo "tcp-$out" && break; i=$((i+1)); sleep 0.1; done`] }));
  assert.equal(r.status.exitCode, 0, r.log);
  assert.equal(r.stdout[0], "neta");
  assert.ok(r.stdout.includes("nameserver 10.0.0.53"), r.stdout.join("\n"));
  assert.ok(r.stdout.some((l) => /^search .*svc\.example/.test(l)));
  assert.ok(r.stdout.some((l) => /^options .*ndots:3/.test(l)));
  assert.ok(r.stdout.includes("ping-ok"), r.log);
  assert.ok(r.stdout.includes("tcp-pong"), r.log);
  await env.d.client.runtime.stopContainer({ containerId: server, timeout: 0n });
  for (const p of [a, b]) await env.d.client.runtime.removePodSandbox({ podSandboxId: p.id });
});

test("a hostPort mapping reaches a container from the host", async () => {
  const hostIp = Object.values(networkInterfaces()).flat().find((x) => x && x.family === "IPv4" && !x.internal)?.address;
  assert.ok(hostIp);
  const hostPort = 20000 + Math.floor(Math.random() * 20000);
  const pod = await runPod(env, "hostport", { portMappings: [{ protocol: Protocol.TCP, containerPort: 8080, hostPort }] });
  const www = join(env.d.dirs.base, `www-${hostPort}`);
  mkdirSync(www);
  writeFileSync(join(www, "index.html"), "hello from a container\n");
  await runCtr(env, pod, ctrConfig("httpd", bb, { command: ["httpd", "-f", "-p", "8080", "-h", "/www"], mounts: [{ containerPath: "/www", hostPath: www, readonly: true }] }));
  let body = "";
  for (let i = 0; i < 50 && !body; i++) {
    body = await fetch(`http://${hostIp}:${hostPort}/`).then((res) => res.text(), () => "");
    if (!body) await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal(body, "hello from a container\n");
  await env.d.client.runtime.removePodSandbox({ podSandboxId: pod.id });
});

test("a hostNetwork container sees the host's interfaces", async () => {
  const pod = await runPod(env, "hostnet", { linux: { securityContext: { namespaceOptions: { network: NamespaceMode.NODE } } } });
  const r = await runToExit(env, pod, ctrConfig("ifaces", bb, { command: ["/bin/sh", "-c", "ls /sys/class/net"], linux: { securityContext: { namespaceOptions: { network: NamespaceMode.NODE } } } }));
  const hostIfaces = Object.keys(networkInterfaces()).sort();
  const seen = r.stdout.join(" ").split(/\s+/).filter(Boolean);
  for (const i of hostIfaces) assert.ok(seen.includes(i), `host interface ${i} visible in ${seen.join(",")}`);
  assert.ok(seen.includes(env.net.bridge), "the test bridge (a host interface) is visible");
  await env.d.client.runtime.removePodSandbox({ podSandboxId: pod.id });
});
