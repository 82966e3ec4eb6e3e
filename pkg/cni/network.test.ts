import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CniManager, parseBandwidth, resultIps } from "./index.js";

/** A plugin that logs its environment and stdin, and answers ADD with prevResult plus its own IP. */
function recordingPlugin(dir: string, name: string, log: string, ip: string): void {
  const file = join(dir, name);
  writeFileSync(
    file,
    `#!/bin/sh
input=$(cat)
printf '%s\\n' "{\\"plugin\\":\\"${name}\\",\\"cmd\\":\\"$CNI_COMMAND\\",\\"id\\":\\"$CNI_CONTAINERID\\",\\"netns\\":\\"$CNI_NETNS\\",\\"ifname\\":\\"$CNI_IFNAME\\",\\"args\\":\\"$CNI_ARGS\\",\\"path\\":\\"$CNI_PATH\\",\\"conf\\":$input}" >> ${log}
if [ "$CNI_COMMAND" = ADD ]; then
  printf '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],"ips":[{"address":"fd00::5/64"},{"address":"${ip}/24","interface":0}]}'
fi
`,
  );
  chmodSync(file, 0o755);
}

test("ADD runs the chain with the CNI environment, capability args only where declared, prevResult; DEL reverses it once", async () => {
  const base = mkdtempSync(join(tmpdir(), "berth-cni-"));
  const bin = join(base, "bin");
  const conf = join(base, "conf");
  const log = join(base, "calls.log");
  for (const d of [bin, conf]) (await import("node:fs")).mkdirSync(d);
  recordingPlugin(bin, "first", log, "10.9.8.7");
  recordingPlugin(bin, "second", log, "10.9.8.7");
  writeFileSync(
    join(conf, "10-x.conflist"),
    JSON.stringify({
      cniVersion: "1.0.0",
      name: "x",
      plugins: [
        { type: "first", capabilities: { portMappings: true } },
        { type: "second", capabilities: { bandwidth: true, portMappings: false } },
      ],
    }),
  );
  const cni = new CniManager({ confDir: conf, binDirs: ["/nonexistent", bin], cacheDir: join(base, "cache"), timeoutMs: 10_000 });
  const st = await cni.setup({
    id: "abc",
    name: "web",
    namespace: "prod",
    uid: "u-1",
    netns: "/proc/self/ns/net",
    portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp", hostIP: "" }],
    bandwidth: { ingressRate: 1000, ingressBurst: 2147483647 },
  });
  assert.deepEqual(st.ips, ["10.9.8.7", "fd00::5"]);
  assert.deepEqual(cni.cachedIps("abc"), ["10.9.8.7", "fd00::5"]);
  const calls = () => readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown> & { conf: Record<string, unknown> });
  const [a, b] = calls();
  assert.equal(a?.cmd, "ADD");
  assert.equal(a?.ifname, "eth0");
  assert.equal(a?.netns, "/proc/self/ns/net");
  assert.equal(a?.args, "IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1");
  assert.equal(a?.path, `/nonexistent:${bin}`);
  assert.equal(a?.conf["name"], "x");
  assert.deepEqual(a?.conf["runtimeConfig"], { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp", hostIP: "" }] });
  assert.equal(a?.conf["prevResult"], undefined);
  assert.deepEqual(b?.conf["runtimeConfig"], { bandwidth: { ingressRate: 1000, ingressBurst: 2147483647 } });
  assert.ok(b?.conf["prevResult"], "the second plugin gets the first one's result");

  await cni.teardown("abc");
  const dels = calls().slice(2);
  assert.deepEqual(dels.map((c) => [c.plugin, c.cmd]), [["second", "DEL"], ["first", "DEL"]]);
  assert.ok(dels[0]?.conf["prevResult"], "DEL gets the cached result");
  assert.equal(existsSync(join(base, "cache", "abc.json")), false);
  await cni.teardown("abc");
  assert.equal(calls().length, 4, "a repeated DEL with no attachment runs nothing");
});

test("a plugin error is reported with its message; a missing plugin is named", async () => {
  const base = mkdtempSync(join(tmpdir(), "berth-cni-"));
  const fs = await import("node:fs");
  fs.mkdirSync(join(base, "bin"));
  fs.mkdirSync(join(base, "conf"));
  writeFileSync(join(base, "bin", "bad"), `#!/bin/sh\ncat >/dev/null; echo '{"code":7,"msg":"no addresses left","details":"range full"}'; exit 1\n`);
  chmodSync(join(base, "bin", "bad"), 0o755);
  writeFileSync(join(base, "conf", "a.conflist"), JSON.stringify({ cniVersion: "1.0.0", name: "n", plugins: [{ type: "bad" }] }));
  const cni = new CniManager({ confDir: join(base, "conf"), binDirs: [join(base, "bin")], cacheDir: join(base, "cache"), timeoutMs: 10_000 });
  const req = { id: "p", name: "a", namespace: "b", uid: "c", netns: "/x", portMappings: [] };
  await assert.rejects(cni.setup(req), /bad ADD .*no addresses left: range full/);
  writeFileSync(join(base, "conf", "a.conflist"), JSON.stringify({ cniVersion: "1.0.0", name: "n", plugins: [{ type: "missing-plugin" }] }));
  await assert.rejects(cni.setup(req), /CNI plugin "missing-plugin" not found/);
});

test("result IPs: IPv4 first, old ip4/ip6 results too", () => {
  assert.deepEqual(resultIps({ ips: [{ address: "fd00::1/64" }, { address: "10.0.0.2/24" }] }), ["10.0.0.2", "fd00::1"]);
  assert.deepEqual(resultIps({ ip4: { ip: "10.1.1.1/16" } }), ["10.1.1.1"]);
  assert.deepEqual(resultIps(undefined), []);
});

test("bandwidth annotations become the bandwidth capability; bad quantities are rejected", () => {
  assert.equal(parseBandwidth({}), undefined);
  assert.deepEqual(parseBandwidth({ "kubernetes.io/ingress-bandwidth": "10M", "kubernetes.io/egress-bandwidth": "1Ki" }), {
    ingressRate: 10_000_000,
    ingressBurst: 2147483647,
    egressRate: 1024,
    egressBurst: 2147483647,
  });
  assert.throws(() => parseBandwidth({ "kubernetes.io/ingress-bandwidth": "fast" }), /ingress-bandwidth.*"fast"/);
});
