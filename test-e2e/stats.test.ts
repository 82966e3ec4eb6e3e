import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import type { ContainerStats, DeepPartial, PodSandboxConfig } from "../api/gen/cri/v1/api.js";
import { spawnSync } from "node:child_process";
import { BERTHCTL, removeDirs, startDaemon, type Daemon } from "./harness/daemon.js";
import { makeTestNetwork, type TestNetwork } from "./harness/cni-net.js";
import { startRegistry, type Registry } from "./harness/registry.js";
import { ensureTestImages, type TestImages } from "./harness/images.js";

let d: Daemon;
let net: TestNetwork;
let reg: Registry;
let images: TestImages;

before(async () => {
  reg = await startRegistry();
  images = await ensureTestImages(reg);
  d = await startDaemon({ configToml: `[stats]\ncollect_interval_seconds = 1\n\n[image.registries."${reg.host}"]\nplain_http = true\n` });
  net = makeTestNetwork(d.dirs.base);
  net.install(d.dirs.cniConfDir);
  await d.client.image.pullImage({ image: { image: images["busybox:latest"].ref } });
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

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

test("stats of real containers: CPU burn, memory, writable layer, network, pod sums, metrics", async () => {
  const podConfig: DeepPartial<PodSandboxConfig> = { metadata: { name: "stats", namespace: "e2e", uid: `uid-stats-${process.pid}`, attempt: 0 }, logDirectory: join(d.dirs.logs, "stats"), labels: { app: "stats" } };
  const { podSandboxId } = await d.client.runtime.runPodSandbox({ config: podConfig });
  const mk = async (name: string, script: string): Promise<string> => {
    const { containerId } = await d.client.runtime.createContainer({
      podSandboxId,
      config: { metadata: { name }, image: { image: images["busybox:latest"].ref }, command: ["sh", "-c", script], logPath: `${name}.log`, labels: { role: name } },
      sandboxConfig: podConfig,
    });
    await d.client.runtime.startContainer({ containerId });
    return containerId;
  };
  const burn = await mk("burn", "while :; do :; done");
  const mem = await mk("mem", "head -c 2000000 /dev/zero > /big; x=$(head -c 40000000 /dev/zero | tr '\\000' a); echo ready; sleep 3600; echo \${#x}");

  // CPU: cumulative usage grows and the rate over the last interval is a good part of a core.
  const first = await until("cpu figures", async () => (await d.client.runtime.containerStats({ containerId: burn })).stats?.cpu?.usageCoreNanoSeconds?.value);
  const busy = await until("cpu rate", async () => {
    const s = (await d.client.runtime.containerStats({ containerId: burn })).stats;
    const nc = s?.cpu?.usageNanoCores?.value;
    return s && nc !== undefined && nc > 100_000_000n && (s.cpu?.usageCoreNanoSeconds?.value ?? 0n) > first ? s : undefined;
  });
  assert.equal(busy.attributes?.id, burn);
  assert.equal(busy.attributes?.metadata?.name, "burn");
  assert.equal(busy.attributes?.labels["role"], "burn");

  // Memory: the 40 MB shell variable shows in usage, working set and RSS.
  let lastMem: unknown;
  const memStats = await until("memory figures", async () => {
    const s = (await d.client.runtime.containerStats({ containerId: mem })).stats;
    lastMem = s?.memory;
    return s?.memory?.workingSetBytes && s.memory.workingSetBytes.value > 30_000_000n ? s : undefined;
  }).catch(async (err: unknown) => {
    const st = await d.client.runtime.containerStatus({ containerId: mem, verbose: true });
    const ps = await d.client.runtime.execSync({ containerId: mem, cmd: ["sh", "-c", "ps; for p in /proc/[0-9]*; do echo $p $(grep -E 'VmRSS|State' $p/status); done; cat /proc/self/cgroup"], timeout: 10 }).catch((e: unknown) => ({ stdout: Buffer.from(String(e)), stderr: Buffer.from("") }));
    console.error(Buffer.from(ps.stdout).toString(), Buffer.from(ps.stderr).toString());
    throw new Error(`${String(err)}; last memory ${JSON.stringify(lastMem, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))}; status ${JSON.stringify(st.status?.state)} ${st.status?.reason} ${st.status?.exitCode}`);
  });
  assert.ok((memStats.memory?.usageBytes?.value ?? 0n) >= (memStats.memory?.workingSetBytes?.value ?? 0n));
  assert.ok((memStats.memory?.rssBytes?.value ?? 0n) > 30_000_000n, `rss ${memStats.memory?.rssBytes?.value}`);
  assert.ok((memStats.memory?.pageFaults?.value ?? 0n) > 0n);

  // Writable layer: the 2 MB file written to / is in the container's upper dir.
  const layer = await until("writable layer", async () => {
    const s = (await d.client.runtime.containerStats({ containerId: mem })).stats;
    return s?.writableLayer?.usedBytes && s.writableLayer.usedBytes.value >= 2_000_000n ? s.writableLayer : undefined;
  });
  assert.ok((layer.inodesUsed?.value ?? 0n) >= 2n);
  assert.ok(layer.fsId?.mountpoint?.startsWith("/"));

  // ListContainerStats with filters.
  const all = await d.client.runtime.listContainerStats({ filter: { podSandboxId } });
  assert.deepEqual(all.stats.map((s: ContainerStats) => s.attributes?.id).sort(), [burn, mem].sort());
  const byLabel = await d.client.runtime.listContainerStats({ filter: { labelSelector: { role: "mem" } } });
  assert.deepEqual(byLabel.stats.map((s: ContainerStats) => s.attributes?.id), [mem]);

  // Pod: cpu and memory cover its containers; processes counted; eth0 counters from the pod's netns.
  const pod = (await d.client.runtime.podSandboxStats({ podSandboxId })).stats;
  assert.equal(pod?.attributes?.id, podSandboxId);
  assert.equal(pod?.linux?.containers.length, 2);
  const sumCpu = (pod?.linux?.containers ?? []).reduce((a, c) => a + (c.cpu?.usageCoreNanoSeconds?.value ?? 0n), 0n);
  const sumWs = (pod?.linux?.containers ?? []).reduce((a, c) => a + (c.memory?.workingSetBytes?.value ?? 0n), 0n);
  assert.ok((pod?.linux?.cpu?.usageCoreNanoSeconds?.value ?? 0n) >= (sumCpu * 9n) / 10n, "pod cpu covers its containers");
  assert.ok((pod?.linux?.memory?.workingSetBytes?.value ?? 0n) >= (sumWs * 9n) / 10n, "pod memory covers its containers");
  assert.ok((pod?.linux?.process?.processCount?.value ?? 0n) >= 2n);
  assert.equal(pod?.linux?.network?.defaultInterface?.name, "eth0");
  assert.ok((pod?.linux?.network?.interfaces ?? []).some((i) => i.name === "eth0"));
  const eth0 = pod?.linux?.network?.defaultInterface;
  console.log(`# burn ${busy.cpu?.usageNanoCores?.value} nano-cores; mem working set ${memStats.memory?.workingSetBytes?.value} rss ${memStats.memory?.rssBytes?.value}; layer ${layer.usedBytes?.value} B / ${layer.inodesUsed?.value} inodes on ${layer.fsId?.mountpoint}; pod cpu ${pod?.linux?.cpu?.usageCoreNanoSeconds?.value} ns, ws ${pod?.linux?.memory?.workingSetBytes?.value}, procs ${pod?.linux?.process?.processCount?.value}, eth0 rx ${eth0?.rxBytes?.value} tx ${eth0?.txBytes?.value}`);
  const pods = await d.client.runtime.listPodSandboxStats({ filter: { labelSelector: { app: "stats" } } });
  assert.deepEqual(pods.stats.map((s) => s.attributes?.id), [podSandboxId]);

  // The operator's view: berthctl stats / statsp.
  const cli = spawnSync(process.execPath, [BERTHCTL, "--socket", d.dirs.socket, "stats", "--pod", podSandboxId, "-o", "json"], { encoding: "utf8", timeout: 20_000 });
  assert.equal(cli.status, 0, cli.stderr);
  const cliStats = JSON.parse(cli.stdout) as { stats: Array<{ attributes: { id: string }; memory?: { workingSetBytes?: { value: string } } }> };
  assert.deepEqual(cliStats.stats.map((x) => x.attributes.id).sort(), [burn, mem].sort());
  const cliPods = spawnSync(process.execPath, [BERTHCTL, "--socket", d.dirs.socket, "statsp"], { encoding: "utf8", timeout: 20_000 });
  assert.equal(cliPods.status, 0, cliPods.stderr);
  assert.match(cliPods.stdout, new RegExp(`^${podSandboxId.slice(0, 13)}\\s+stats\\s`, "m"));

  // cAdvisor-style metrics.
  const desc = await d.client.runtime.listMetricDescriptors({});
  assert.ok(desc.descriptors.some((x) => x.name === "container_memory_working_set_bytes"));
  const metrics = await d.client.runtime.listPodSandboxMetrics({});
  const pm = metrics.podMetrics.find((p) => p.podSandboxId === podSandboxId);
  assert.ok(pm?.metrics.some((m) => m.name === "container_network_receive_bytes_total" && m.labelValues.includes("eth0")));
  const burnMetrics = pm?.containerMetrics.find((c) => c.containerId === burn)?.metrics ?? [];
  assert.ok(burnMetrics.some((m) => m.name === "container_cpu_usage_seconds_total"));

  // Unknown ids: NotFound.
  await assert.rejects(d.client.runtime.containerStats({ containerId: "0".repeat(64) }), { code: 5 });
  await assert.rejects(d.client.runtime.podSandboxStats({ podSandboxId: "0".repeat(64) }), { code: 5 });

  // A stopped container has no cpu figures any more but is still listed; a removed one is gone.
  await d.client.runtime.stopContainer({ containerId: burn, timeout: 0 });
  await d.client.runtime.removeContainer({ containerId: burn });
  await until("removed container gone from stats", async () => {
    const l = await d.client.runtime.listContainerStats({});
    return l.stats.some((s) => s.attributes?.id === burn) ? undefined : true;
  });
});
