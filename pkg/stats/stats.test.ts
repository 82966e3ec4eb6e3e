import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, linkSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  StatsCollector,
  cgroupLayoutAt,
  cgroupRelPath,
  detectCgroupLayout,
  diskUsage,
  expandSlice,
  mountPointOf,
  overlayUpperDir,
  nanoCores,
  parseFlatKeyed,
  parseNetDev,
  parsePsi,
  parseUint,
  podMetrics,
  readCgroup,
  METRIC_DESCRIPTORS,
  type CgroupSample,
  type StatsContainerInfo,
  type StatsSandboxInfo,
} from "./index.js";

function tmp(t: { after(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), "berth-stats-"));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function files(dir: string, content: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(content)) writeFileSync(join(dir, name), text);
}

const V1_MEMORY_STAT = [
  "cache 4096",
  "rss 8192",
  "total_cache 1048576",
  "total_rss 2097152",
  "total_mapped_file 65536",
  "total_inactive_file 524288",
  "total_active_file 262144",
  "total_pgfault 1000",
  "total_pgmajfault 7",
  "total_swap 0",
].join("\n");

const V2_MEMORY_STAT = ["anon 3145728", "file 1048576", "file_mapped 4096", "inactive_file 262144", "active_file 1024", "pgfault 2000", "pgmajfault 3"].join("\n");

function v1Fixture(root: string, rel: string, o: { cpuNs: string; usage: string; limit?: string; pids?: string }): void {
  files(join(root, "cpuacct", rel), { "cpuacct.usage": `${o.cpuNs}\n`, "cpuacct.stat": "user 150\nsystem 50\n" });
  files(join(root, "cpu", rel), { "cpu.stat": "nr_periods 10\nnr_throttled 2\nthrottled_time 5000000\n" });
  files(join(root, "memory", rel), {
    "memory.usage_in_bytes": `${o.usage}\n`,
    "memory.stat": V1_MEMORY_STAT,
    "memory.limit_in_bytes": `${o.limit ?? "9223372036854771712"}\n`,
    "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    "memory.failcnt": "4\n",
  });
  files(join(root, "pids", rel), { "pids.current": `${o.pids ?? "3"}\n`, "pids.max": "max\n" });
}

function v2Fixture(dir: string, o: { usageUsec: string; current: string; max?: string }): void {
  files(dir, {
    "cpu.stat": `usage_usec ${o.usageUsec}\nuser_usec 100\nsystem_usec 50\nnr_periods 4\nnr_throttled 1\nthrottled_usec 20\n`,
    "memory.current": `${o.current}\n`,
    "memory.stat": V2_MEMORY_STAT,
    "memory.max": `${o.max ?? "max"}\n`,
    "memory.events": "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n",
    "memory.swap.current": "0\n",
    "memory.swap.max": "max\n",
    "pids.current": "2\n",
    "pids.max": "100\n",
    "cpu.pressure": "some avg10=1.50 avg60=0.25 avg300=0.00 total=1234\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=56\n",
    "memory.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    "io.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=9\n",
  });
}

test("parsers: uint, flat keyed, psi, net/dev, mountinfo", () => {
  assert.equal(parseUint("42\n"), 42n);
  assert.equal(parseUint("max\n"), undefined);
  assert.equal(parseUint("garbage"), undefined);
  const kv = parseFlatKeyed("a 1\nb 22\nbad\nc x\n");
  assert.deepEqual([...kv], [["a", 1n], ["b", 22n]]);
  const psi = parsePsi("some avg10=1.50 avg60=0.25 avg300=0.00 total=1234\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=56\n");
  assert.equal(psi?.some?.avg10, 1.5);
  assert.equal(psi?.some?.totalUs, 1234n);
  assert.equal(psi?.full?.totalUs, 56n);
  assert.equal(parsePsi(""), undefined);
  const dev = parseNetDev(
    [
      "Inter-|   Receive                                                |  Transmit",
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed",
      "    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0",
      "  eth0: 5000 40 1 2 0 0 0 0 7000 50 3 4 0 0 0 0",
    ].join("\n"),
  );
  assert.equal(dev.length, 2);
  assert.deepEqual(dev[1], { name: "eth0", rxBytes: 5000n, rxPackets: 40n, rxErrors: 1n, rxDropped: 2n, txBytes: 7000n, txPackets: 50n, txErrors: 3n, txDropped: 4n });
  const mi = ["22 1 0:21 / / rw - ext4 /dev/sda1 rw", "30 22 0:30 / /var/lib/berth rw - xfs /dev/sdb rw", "31 22 0:31 / /var/lib/ber rw - tmpfs x rw", "32 22 0:32 / /with\\040space rw - tmpfs x rw"].join("\n");
  assert.equal(mountPointOf("/var/lib/berth/snapshots/1/fs", mi), "/var/lib/berth");
  assert.equal(mountPointOf("/var/lib/bert", mi), "/");
  assert.equal(mountPointOf("/with space/x", mi), "/with space");
  const ov = [
    "40 22 0:40 / /run/b/c1/rootfs rw,relatime - overlay overlay rw,lowerdir=/var/lib/b/s/1/fs:/var/lib/b/s/2/fs,upperdir=/var/lib/b/s/3/fs,workdir=/var/lib/b/s/3/work",
    "41 22 0:41 / /run/b/c2/rootfs rw - tmpfs tmpfs rw",
  ].join("\n");
  assert.equal(overlayUpperDir("/run/b/c1/rootfs", ov), "/var/lib/b/s/3/fs");
  assert.equal(overlayUpperDir("/run/b/c2/rootfs", ov), undefined);
  assert.equal(overlayUpperDir("/nope", ov), undefined);
});

test("cgroup paths: cgroupfs paths, systemd slice:prefix:name and slices", () => {
  assert.equal(cgroupRelPath("/kubepods/pod123/berth-abc"), "/kubepods/pod123/berth-abc");
  assert.equal(cgroupRelPath("kubepods//pod123/"), "/kubepods/pod123");
  assert.equal(cgroupRelPath("kubepods-burstable-pod123.slice:berth:abc"), "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod123.slice/berth-abc.scope");
  assert.equal(cgroupRelPath(":berth:abc"), "/system.slice/berth-abc.scope");
  assert.equal(cgroupRelPath("kubepods-besteffort-podx.slice"), "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podx.slice");
  assert.equal(cgroupRelPath(""), "/");
  assert.equal(expandSlice("-.slice"), "/");
  assert.throws(() => cgroupRelPath("a:b"), /slice:prefix:name/);
  assert.throws(() => cgroupRelPath("/a/../b"), /"\.\."/);
  assert.throws(() => expandSlice("a--b.slice"), /invalid slice/);
});

test("v1 reader: cpuacct, memory working set, rss, faults, oom, pids", (t) => {
  const root = tmp(t);
  const rel = "/kubepods/pod1/berth-c1";
  v1Fixture(root, rel, { cpuNs: "123456789", usage: "3000000", limit: "10000000" });
  const s = readCgroup(cgroupLayoutAt(root, "v1"), rel);
  assert.ok(s);
  assert.equal(s.cpu?.usageNs, 123456789n);
  assert.equal(s.cpu?.userNs, 1_500_000_000n);
  assert.equal(s.cpu?.systemNs, 500_000_000n);
  assert.equal(s.cpu?.throttledPeriods, 2n);
  assert.equal(s.cpu?.throttledNs, 5_000_000n);
  assert.equal(s.memory?.usageBytes, 3000000n);
  assert.equal(s.memory?.workingSetBytes, 3000000n - 524288n);
  assert.equal(s.memory?.rssBytes, 2097152n);
  assert.equal(s.memory?.cacheBytes, 1048576n);
  assert.equal(s.memory?.pageFaults, 1000n);
  assert.equal(s.memory?.majorPageFaults, 7n);
  assert.equal(s.memory?.limitBytes, 10000000n);
  assert.equal(s.memory?.oomKills, 2n);
  assert.equal(s.memory?.underOom, false);
  assert.equal(s.memory?.failcnt, 4n);
  assert.equal(s.pids?.current, 3n);
  assert.equal(s.pids?.limit, undefined);
  assert.equal(s.cpu?.psi, undefined);
  // Unlimited v1 memory reads as no limit; a missing cgroup reads as undefined.
  v1Fixture(root, "/other", { cpuNs: "1", usage: "100" });
  assert.equal(readCgroup(cgroupLayoutAt(root, "v1"), "/other")?.memory?.limitBytes, undefined);
  assert.equal(readCgroup(cgroupLayoutAt(root, "v1"), "/other")?.memory?.workingSetBytes, 0n, "working set never goes below 0");
  assert.equal(readCgroup(cgroupLayoutAt(root, "v1"), "/missing"), undefined);
});

test("v2 reader: cpu.stat usage_usec, memory.current − inactive_file, anon, events, psi", (t) => {
  const root = tmp(t);
  const rel = "/kubepods.slice/berth-c2.scope";
  v2Fixture(join(root, rel), { usageUsec: "2500", current: "4194304", max: "8388608" });
  const s = readCgroup(cgroupLayoutAt(root, "v2"), rel);
  assert.ok(s);
  assert.equal(s.cpu?.usageNs, 2_500_000n);
  assert.equal(s.cpu?.userNs, 100_000n);
  assert.equal(s.cpu?.throttledNs, 20_000n);
  assert.equal(s.cpu?.psi?.some?.totalUs, 1234n);
  assert.equal(s.memory?.usageBytes, 4194304n);
  assert.equal(s.memory?.workingSetBytes, 4194304n - 262144n);
  assert.equal(s.memory?.rssBytes, 3145728n);
  assert.equal(s.memory?.pageFaults, 2000n);
  assert.equal(s.memory?.majorPageFaults, 3n);
  assert.equal(s.memory?.limitBytes, 8388608n);
  assert.equal(s.memory?.oomKills, 1n);
  assert.equal(s.memory?.swapUsageBytes, 0n);
  assert.equal(s.memory?.swapLimitBytes, undefined);
  assert.equal(s.pids?.current, 2n);
  assert.equal(s.pids?.limit, 100n);
  assert.equal(s.ioPsi?.some?.totalUs, 9n);
});

test("hybrid reader: v1 controllers first, cpu falls back to the unified hierarchy, PSI from unified", (t) => {
  const root = tmp(t);
  const layout = cgroupLayoutAt(root, "hybrid");
  v1Fixture(root, "/a", { cpuNs: "999", usage: "5000" });
  files(join(root, "unified", "a"), { "cpu.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=77\n", "cpu.stat": "usage_usec 1\n" });
  const a = readCgroup(layout, "/a");
  assert.equal(a?.cpu?.usageNs, 999n, "v1 cpuacct wins in hybrid mode");
  assert.equal(a?.cpu?.psi?.some?.totalUs, 77n);
  assert.equal(a?.memory?.usageBytes, 5000n);
  // Only in the unified hierarchy (no v1 cgroup): cpu.stat there is used, memory is absent.
  files(join(root, "unified", "b"), { "cpu.stat": "usage_usec 42\n" });
  const b = readCgroup(layout, "/b");
  assert.equal(b?.cpu?.usageNs, 42_000n);
  assert.equal(b?.memory, undefined);
});

test("detectCgroupLayout parses v1 mounts including joined controllers", () => {
  const mounts = [
    "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct 0 0",
    "cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0",
    "cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0",
    "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0",
  ].join("\n");
  const l = detectCgroupLayout({ mode: "hybrid", unifiedMount: "/sys/fs/cgroup/unified", systemd: false }, mounts);
  assert.equal(l.v1.get("cpu"), "/sys/fs/cgroup/cpu,cpuacct");
  assert.equal(l.v1.get("cpuacct"), "/sys/fs/cgroup/cpu,cpuacct");
  assert.equal(l.v1.get("memory"), "/sys/fs/cgroup/memory");
  assert.equal(l.unified, "/sys/fs/cgroup/unified");
  const v2 = detectCgroupLayout({ mode: "v2", unifiedMount: "/sys/fs/cgroup", systemd: true }, mounts);
  assert.equal(v2.v1.size, 0);
});

function sample(cpuNs: bigint, monoNs: bigint): CgroupSample {
  return { timestampNs: 0n, monoNs, cpu: { usageNs: cpuNs, userNs: undefined, systemNs: undefined, periods: undefined, throttledPeriods: undefined, throttledNs: undefined, psi: undefined }, memory: undefined, pids: undefined, ioPsi: undefined };
}

test("nano-cores: Δcpu_ns / Δwall_s; undefined without two samples or when the counter went back", () => {
  assert.equal(nanoCores(sample(0n, 0n), sample(500_000_000n, 1_000_000_000n)), 500_000_000n, "half a core");
  assert.equal(nanoCores(sample(1_000n, 1_000_000_000n), sample(4_000_001_000n, 3_000_000_000n)), 2_000_000_000n, "two cores");
  assert.equal(nanoCores(undefined, sample(1n, 1n)), undefined);
  assert.equal(nanoCores(sample(10n, 1n), sample(5n, 2n)), undefined);
  assert.equal(nanoCores(sample(10n, 2n), sample(20n, 2n)), undefined);
});

function containerInfo(id: string, pod: string, cgroupPath: string, extra: Partial<StatsContainerInfo> = {}): StatsContainerInfo {
  return { id, podSandboxId: pod, metadata: { name: `name-${id}`, attempt: 0 }, labels: { app: id }, annotations: {}, cgroupPath, ...extra };
}

function sandboxInfo(id: string, cgroupParent: string): StatsSandboxInfo {
  return { id, metadata: { name: `pod-${id}`, uid: `uid-${id}`, namespace: "default", attempt: 0 }, labels: {}, annotations: {}, cgroupParent };
}

test("collector: caches samples, computes nano-cores from the last two, reads cold objects on demand, forgets removed ones", async (t) => {
  const root = tmp(t);
  const layout = cgroupLayoutAt(root, "v1");
  v1Fixture(root, "/kubepods/podA/c1", { cpuNs: "1000000000", usage: "1000" });
  v1Fixture(root, "/kubepods/podA/c2", { cpuNs: "3000000000", usage: "2000" });
  let containers = [containerInfo("c1", "A", "/kubepods/podA/c1"), containerInfo("c2", "A", "/kubepods/podA/c2")];
  const sandboxes = [sandboxInfo("A", "")];
  const col = new StatsCollector({ source: { containers: () => containers, sandboxes: () => sandboxes }, intervalSeconds: 10, layout, netnsExec: false });

  // Cold: read on demand, no rate yet.
  const cold = col.container("c1");
  assert.equal(cold?.cpu?.usageCoreNs, 1_000_000_000n);
  assert.equal(cold?.cpu?.usageNanoCores, undefined);

  await col.collect();
  const t0 = process.hrtime.bigint();
  writeFileSync(join(root, "cpuacct/kubepods/podA/c1/cpuacct.usage"), "1500000000\n");
  await new Promise((r) => setTimeout(r, 50));
  await col.collect();
  const dt = process.hrtime.bigint() - t0;
  const c1 = col.container("c1");
  assert.equal(c1?.cpu?.usageCoreNs, 1_500_000_000n);
  // 0.5 s of CPU over ≈50 ms of wall time: about 10 cores (bounded by the measured elapsed time).
  const nc = c1?.cpu?.usageNanoCores ?? 0n;
  assert.ok(nc > 0n && nc <= (500_000_000n * 1_000_000_000n) / 40_000_000n, `nano-cores ${nc}`);
  assert.ok(dt > 0n);
  // The cache answers without touching the files: a change shows only after the next sweep.
  writeFileSync(join(root, "memory/kubepods/podA/c2/memory.usage_in_bytes"), "999999\n");
  assert.equal(col.container("c2")?.memory?.usageBytes, 2000n);
  await col.collect();
  assert.equal(col.container("c2")?.memory?.usageBytes, 999999n);

  // Pod without a cgroup of its own: sums its containers.
  const pod = col.sandbox("A");
  assert.equal(pod?.containers.length, 2);
  assert.equal(pod?.cpu?.usageCoreNs, 1_500_000_000n + 3_000_000_000n);
  assert.equal(pod?.memory?.usageBytes, 1000n + 999999n);
  assert.equal(pod?.process?.count, 6n);

  // Removed containers are forgotten and no longer listed; unknown ids answer undefined.
  containers = containers.filter((c) => c.id !== "c2");
  await col.collect();
  assert.deepEqual(col.containers().map((c) => c.info.id), ["c1"]);
  assert.equal(col.container("c2"), undefined);
  assert.equal(col.sandbox("nope"), undefined);
});

test("collector: pod with a cgroup parent reads the pod cgroup; the root cgroup is never used", async (t) => {
  const root = tmp(t);
  const layout = cgroupLayoutAt(root, "v2");
  v2Fixture(join(root, "kubepods/podB"), { usageUsec: "7000", current: "10000" });
  v2Fixture(join(root, "kubepods/podB/c3"), { usageUsec: "5000", current: "6000" });
  v2Fixture(root, { usageUsec: "99999999", current: "99999999" });
  const containers = [containerInfo("c3", "B", "/kubepods/podB/c3"), containerInfo("c4", "C", "/")];
  const sandboxes = [sandboxInfo("B", "/kubepods/podB"), sandboxInfo("C", "/")];
  const col = new StatsCollector({ source: { containers: () => containers, sandboxes: () => sandboxes }, intervalSeconds: 10, layout, netnsExec: false });
  await col.collect();
  const b = col.sandbox("B");
  assert.equal(b?.cpu?.usageCoreNs, 7_000_000n);
  assert.equal(b?.memory?.usageBytes, 10000n);
  assert.equal(b?.containers[0]?.cpu?.usageCoreNs, 5_000_000n);
  const c = col.sandbox("C");
  assert.equal(c?.cpu, undefined, "a container or pod at the root cgroup gets no figures");
  assert.equal(c?.containers[0]?.cpu, undefined);
});

test("collector: start() samples in the background and stop() ends it", async (t) => {
  const root = tmp(t);
  const layout = cgroupLayoutAt(root, "v2");
  v2Fixture(join(root, "x"), { usageUsec: "1", current: "1" });
  let calls = 0;
  const containers = [containerInfo("x", "P", "/x")];
  const col = new StatsCollector({
    source: {
      containers: () => {
        calls++;
        return containers;
      },
      sandboxes: () => [],
    },
    intervalSeconds: 1,
    intervalMs: 20,
    layout,
    netnsExec: false,
  });
  col.start();
  await new Promise((r) => setTimeout(r, 130));
  await col.stop();
  const seen = calls;
  assert.ok(seen >= 3, `sweeps ran: ${seen}`);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(calls, seen, "no sweep after stop()");
  assert.equal(col.container("x")?.cpu?.usageNanoCores, 0n, "two sweeps of an idle cgroup give a rate of 0");
});

test("diskUsage counts bytes and inodes, hard links once, does not follow symlinks, bounded", async (t) => {
  const root = tmp(t);
  mkdirSync(join(root, "d/e"), { recursive: true });
  writeFileSync(join(root, "d/a"), Buffer.alloc(64 * 1024, 1));
  writeFileSync(join(root, "d/e/b"), Buffer.alloc(10, 1));
  linkSync(join(root, "d/a"), join(root, "d/a-link"));
  symlinkSync("/usr", join(root, "d/usr-link"));
  const u = await diskUsage(join(root, "d"));
  assert.ok(u);
  // d, e, a (hard link counted once), b, usr-link
  assert.equal(u.inodesUsed, 5n);
  assert.ok(u.usedBytes >= 64n * 1024n, `used ${u.usedBytes}`);
  assert.ok(u.usedBytes < 1024n * 1024n, "the symlink target was not walked");
  assert.equal(u.truncated, false);
  const bounded = await diskUsage(join(root, "d"), { maxEntries: 2 });
  assert.equal(bounded?.truncated, true);
  assert.equal(await diskUsage(join(root, "missing")), undefined);
});

test("collector walks writable layers in the background", async (t) => {
  const root = tmp(t);
  const layout = cgroupLayoutAt(root, "v2");
  v2Fixture(join(root, "x"), { usageUsec: "1", current: "1" });
  mkdirSync(join(root, "upper/etc"), { recursive: true });
  writeFileSync(join(root, "upper/etc/f"), Buffer.alloc(8192, 1));
  const containers = [containerInfo("x", "P", "/x", { upperDir: join(root, "upper") })];
  const col = new StatsCollector({ source: { containers: () => containers, sandboxes: () => [] }, intervalSeconds: 10, layout, netnsExec: false });
  await col.collect();
  await col.collectLayers();
  const l = col.container("x")?.writableLayer;
  assert.equal(l?.inodesUsed, 3n);
  assert.ok((l?.usedBytes ?? 0n) >= 8192n);
  assert.ok(l?.mountpoint.startsWith("/"));
  assert.ok((l?.fsInodesTotal ?? 0n) >= 0n);
});

test("podMetrics: cAdvisor names, label values in descriptor order, types from descriptors", () => {
  const names = new Set(METRIC_DESCRIPTORS.map((d) => d.name));
  for (const n of ["container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_memory_usage_bytes", "container_memory_rss", "container_network_receive_bytes_total", "container_network_transmit_bytes_total", "container_fs_usage_bytes", "container_oom_events_total", "container_processes"]) {
    assert.ok(names.has(n), n);
  }
  const m = podMetrics(
    {
      info: sandboxInfo("P", ""),
      cpu: undefined,
      memory: undefined,
      process: undefined,
      ioPsi: undefined,
      network: {
        timestampNs: 5n,
        interfaces: [
          { name: "lo", rxBytes: 1n, rxPackets: 1n, rxErrors: 0n, rxDropped: 0n, txBytes: 1n, txPackets: 1n, txErrors: 0n, txDropped: 0n },
          { name: "eth0", rxBytes: 100n, rxPackets: 2n, rxErrors: 0n, rxDropped: 0n, txBytes: 200n, txPackets: 3n, txErrors: 0n, txDropped: 0n },
        ],
      },
      containers: [
        {
          info: containerInfo("c", "P", "/c", { image: "busybox:latest" }),
          cpu: { timestampNs: 7n, usageCoreNs: 3_500_000_000n, usageNanoCores: 1n, userNs: undefined, systemNs: undefined, periods: undefined, throttledPeriods: undefined, throttledNs: undefined, psi: undefined },
          memory: undefined,
          process: { timestampNs: 7n, count: 4n, limit: undefined },
          writableLayer: undefined,
          ioPsi: undefined,
        },
      ],
    },
    9_000_000_000n,
  );
  const rx = m.metrics.find((x) => x.name === "container_network_receive_bytes_total");
  assert.deepEqual(rx?.labelValues, ["P", "POD", "", "eth0"]);
  assert.equal(rx?.value, 100n);
  assert.equal(rx?.type, "counter");
  assert.equal(m.metrics.length, 8, "lo is not reported");
  const cm = m.containerMetrics[0]?.metrics ?? [];
  const cpu = cm.find((x) => x.name === "container_cpu_usage_seconds_total");
  assert.deepEqual(cpu?.labelValues, ["c", "name-c", "busybox:latest", "total"]);
  assert.equal(cpu?.value, 3n);
  assert.equal(cm.find((x) => x.name === "container_processes")?.type, "gauge");
  for (const x of [...m.metrics, ...cm]) {
    const desc = METRIC_DESCRIPTORS.find((d) => d.name === x.name);
    assert.equal(desc?.labelKeys.length, x.labelValues.length, x.name);
  }
});

test("collector: single lookups use the source's container()/sandbox()/containersOf() when it has them", async (t) => {
  const root = tmp(t);
  const layout = cgroupLayoutAt(root, "v2");
  v2Fixture(join(root, "a"), { usageUsec: "3", current: "30" });
  const infos = [containerInfo("a", "P", "/a"), containerInfo("b", "Q", "/b")];
  const calls: string[] = [];
  const source = {
    containers: () => (calls.push("containers"), infos),
    sandboxes: () => (calls.push("sandboxes"), [sandboxInfo("P", "")]),
    container: (id: string) => (calls.push(`container:${id}`), infos.find((c) => c.id === id)),
    sandbox: (id: string) => (calls.push(`sandbox:${id}`), id === "P" ? sandboxInfo("P", "") : undefined),
    containersOf: (pod: string) => (calls.push(`containersOf:${pod}`), infos.filter((c) => c.podSandboxId === pod)),
  };
  const col = new StatsCollector({ source, intervalSeconds: 10, layout, netnsExec: false });
  assert.equal(col.container("a")?.cpu?.usageCoreNs, 3000n);
  assert.equal(col.sandbox("P")?.containers.length, 1);
  assert.equal(col.sandbox("P")?.memory?.usageBytes, 30n);
  assert.deepEqual(calls, ["container:a", "sandbox:P", "containersOf:P", "sandbox:P", "containersOf:P"], "no full listing");
});
