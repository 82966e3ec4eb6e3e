// UpdateRuntimeConfig (pod CIDR into a CNI config template), UpdatePodSandboxResources
// and CheckpointContainer through berthd.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { status as Grpc, type ServiceError } from "@grpc/grpc-js";
import { NamespaceMode } from "../api/gen/cri/v1/api.js";
import { removeDirs, startDaemon, makeDirs, type Daemon } from "./harness/daemon.js";

let d: Daemon;
const code = (e: unknown) => (e as ServiceError).code;
const details = (e: unknown) => (e as ServiceError).details;

const TEMPLATE = `{
  "cniVersion": "1.0.0",
  "name": "berth-e2e-tpl-${process.pid}",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "bt${process.pid % 100000}",
      "isGateway": true,
      "ipam": {
        "type": "host-local",
        "ranges": [
          {{- range $i, $range := .PodCIDRRanges}}{{if $i}}, {{end}}[{"subnet": "{{$range}}"}]{{end}}
        ],
        "routes": [
          {{- range $i, $route := .Routes}}{{if $i}}, {{end}}{"dst": "{{$route}}"}{{end}}
        ]
      }
    }
  ]
}
`;

before(async () => {
  const dirs = makeDirs();
  const tpl = join(dirs.base, "cni-template.json");
  writeFileSync(tpl, TEMPLATE);
  d = await startDaemon({ dirs, configToml: `conf_template = "${tpl}"` /* appended to the harness's [cni] table */ });
});

after(async () => {
  if (!d) return;
  for (const p of (await d.client.runtime.listPodSandbox({})).items) await d.client.runtime.removePodSandbox({ podSandboxId: p.id });
  await d.stop();
  removeDirs(d.dirs);
});

test("UpdateRuntimeConfig: the pod CIDR is checked, rendered into the CNI template once, and the network becomes ready", async () => {
  const rt = d.client.runtime;
  const networkReady = async () => (await rt.status({ verbose: true })).status?.conditions.find((c) => c.type === "NetworkReady")?.status;
  assert.equal(await networkReady(), false);

  await assert.rejects(rt.updateRuntimeConfig({ runtimeConfig: { networkConfig: { podCidr: "10.244.0.0/33" } } }), (e) => code(e) === Grpc.INVALID_ARGUMENT && /10\.244\.0\.0\/33/.test(details(e)));
  await assert.rejects(rt.updateRuntimeConfig({ runtimeConfig: { networkConfig: { podCidr: "10.244.0.0/24,nope" } } }), (e) => code(e) === Grpc.INVALID_ARGUMENT);
  // Nothing to update: accepted, nothing written.
  await rt.updateRuntimeConfig({ runtimeConfig: { networkConfig: { podCidr: "" } } });
  const file = join(d.dirs.cniConfDir, "10-berth-net.conflist");
  assert.equal(existsSync(file), false);

  await rt.updateRuntimeConfig({ runtimeConfig: { networkConfig: { podCidr: "10.244.3.0/24, fd00:10:244:3::/64" } } });
  const conf = JSON.parse(readFileSync(file, "utf8")) as { plugins: { ipam: { ranges: unknown; routes: unknown } }[] };
  assert.deepEqual(conf.plugins[0]!.ipam.ranges, [[{ subnet: "10.244.3.0/24" }], [{ subnet: "fd00:10:244:3::/64" }]]);
  assert.deepEqual(conf.plugins[0]!.ipam.routes, [{ dst: "0.0.0.0/0" }, { dst: "::/0" }]);
  assert.equal(await networkReady(), true);
  const st = await rt.status({ verbose: true });
  assert.deepEqual(JSON.parse(st.info["podCIDRs"] ?? "[]"), ["10.244.3.0/24", "fd00:10:244:3::/64"]);

  // A network config exists now: a new CIDR is recorded, the file is left alone.
  const mtime = statSync(file).mtimeMs;
  await rt.updateRuntimeConfig({ runtimeConfig: { networkConfig: { podCidr: "10.244.4.0/24" } } });
  assert.equal(statSync(file).mtimeMs, mtime);
  assert.deepEqual(JSON.parse((await rt.status({ verbose: true })).info["podCIDRs"] ?? "[]"), ["10.244.4.0/24"]);
});

test("UpdatePodSandboxResources records the pod-level resources; unknown pods are NotFound", async () => {
  const rt = d.client.runtime;
  await assert.rejects(rt.updatePodSandboxResources({ podSandboxId: "nope" }), (e) => code(e) === Grpc.NOT_FOUND);
  await assert.rejects(rt.updatePodSandboxResources({}), (e) => code(e) === Grpc.INVALID_ARGUMENT);
  const uid = `uid-resources-${process.pid}`;
  const { podSandboxId } = await rt.runPodSandbox({
    config: {
      metadata: { name: "resources", namespace: "e2e", uid, attempt: 0 },
      linux: { securityContext: { namespaceOptions: { network: NamespaceMode.NODE } }, resources: { cpuShares: 2n } },
    },
  });
  await rt.updatePodSandboxResources({
    podSandboxId,
    overhead: { memoryLimitInBytes: 1048576n },
    resources: { cpuShares: 512n, cpuQuota: 50000n, cpuPeriod: 100000n, memoryLimitInBytes: 268435456n },
  });
  const info = JSON.parse((await rt.podSandboxStatus({ podSandboxId, verbose: true })).info["info"] ?? "{}") as {
    config: { linux: { resources: Record<string, unknown>; overhead: Record<string, unknown>; securityContext: unknown } };
  };
  assert.equal(info.config.linux.resources["cpuShares"], "512");
  assert.equal(info.config.linux.resources["memoryLimitInBytes"], "268435456");
  assert.equal(info.config.linux.overhead["memoryLimitInBytes"], "1048576");
  assert.ok(info.config.linux.securityContext, "the rest of the config is kept");
  // Only resources: the recorded overhead stays.
  await rt.updatePodSandboxResources({ podSandboxId, resources: { cpuShares: 1024n } });
  const again = JSON.parse((await rt.podSandboxStatus({ podSandboxId, verbose: true })).info["info"] ?? "{}") as typeof info;
  assert.equal(again.config.linux.resources["cpuShares"], "1024");
  assert.equal(again.config.linux.overhead["memoryLimitInBytes"], "1048576");
});

test("CheckpointContainer answers UNIMPLEMENTED saying why (CRIU missing or not working, or not supported yet)", async () => {
  const rt = d.client.runtime;
  await assert.rejects(rt.checkpointContainer({}), (e) => code(e) === Grpc.INVALID_ARGUMENT);
  await assert.rejects(rt.checkpointContainer({ containerId: "whatever", location: "/tmp/x.tar" }), (e) => code(e) === Grpc.UNIMPLEMENTED && /CRIU/.test(details(e)));
});
