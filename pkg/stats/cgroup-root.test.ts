// Root tests against the real cgroup hierarchies of this host: create a cgroup, run processes in it,
// and read their CPU, memory and process figures back. Skipped when not root or a hierarchy is missing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync } from "node:fs";
import { StatsCollector, detectCgroupLayout, netnsInode, readCgroup, readNetDevViaNsenter, readNetDevViaPids, type CgroupLayout } from "./index.js";

const isRoot = process.getuid?.() === 0;
const layout = detectCgroupLayout();
const V1 = ["cpuacct", "cpu", "memory", "pids"].filter((c) => layout.v1.has(c));
const haveV1 = layout.mode !== "v2" && layout.v1.has("cpuacct") && layout.v1.has("memory");
const haveV2 = layout.unified !== undefined && existsSync(`${layout.unified}/cgroup.procs`);

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A cgroup made in the given directories (one per hierarchy), removed with its processes at the end. */
class TestCgroup {
  readonly rel = `/berth-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  readonly dirs: string[];
  readonly children: ChildProcess[] = [];

  constructor(mounts: string[]) {
    this.dirs = mounts.map((m) => `${m}${this.rel}`);
    for (const d of this.dirs) mkdirSync(d);
  }

  /** Starts `script` in a shell that first moves itself into the cgroup (so every allocation is charged there). */
  run(script: string): ChildProcess {
    const join = this.dirs.map((d) => `echo $$ > ${d}/cgroup.procs`).join("; ");
    const child = spawn("/bin/sh", ["-c", `${join}; ${script}`], { stdio: ["ignore", "pipe", "inherit"] });
    this.children.push(child);
    return child;
  }

  async cleanup(): Promise<void> {
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await Promise.all(this.children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once("exit", r)))));
    for (const d of this.dirs) {
      for (let i = 0; i < 50 && existsSync(d); i++) {
        try {
          rmdirSync(d);
        } catch {
          await sleep(20);
        }
      }
    }
  }
}

function waitLine(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = "";
    child.stdout?.on("data", (d: Buffer) => {
      buf += d.toString();
      if (buf.includes(text)) resolve();
    });
    child.once("exit", (code) => reject(new Error(`child exited (${code}) before printing ${text}`)));
  });
}

const HOG_MB = 64;
const HOG = `exec ${process.execPath} -e "globalThis.b = Buffer.alloc(${HOG_MB} * 1024 * 1024, 1); console.log('ready'); setInterval(() => {}, 1e6)"`;

async function exercise(name: string, mounts: string[], lay: CgroupLayout, expectMemory: boolean): Promise<void> {
  const cg = new TestCgroup(mounts);
  try {
    const first = readCgroup(lay, cg.rel);
    assert.ok(first, `${name}: the new cgroup is readable`);
    cg.run("while :; do :; done");
    const hog = cg.run(HOG);
    await waitLine(hog, "ready");
    const containers = [{ id: "busy", podSandboxId: "p", metadata: { name: "busy", attempt: 0 }, labels: {}, annotations: {}, cgroupPath: cg.rel }];
    const col = new StatsCollector({ source: { containers: () => containers, sandboxes: () => [] }, intervalSeconds: 10, layout: lay, netnsExec: false });
    await col.collect();
    const a = col.container("busy");
    await sleep(500);
    await col.collect();
    const b = col.container("busy");
    assert.ok(a?.cpu && b?.cpu, `${name}: cpu figures`);
    assert.ok(b.cpu.usageCoreNs > a.cpu.usageCoreNs, `${name}: cpu usage grows (${a.cpu.usageCoreNs} → ${b.cpu.usageCoreNs})`);
    const nc = b.cpu.usageNanoCores ?? 0n;
    // A busy loop uses up to one core; on a loaded 2-core machine it gets less, but clearly some.
    assert.ok(nc > 50_000_000n && nc < 2_500_000_000n, `${name}: nano-cores ${nc}`);
    if (expectMemory) {
      const m = b.memory;
      assert.ok(m, `${name}: memory figures`);
      const floor = BigInt(HOG_MB) * 1024n * 1024n;
      assert.ok(m.usageBytes >= floor, `${name}: usage ${m.usageBytes} ≥ ${HOG_MB} MiB`);
      assert.ok(m.workingSetBytes >= floor && m.workingSetBytes <= m.usageBytes, `${name}: working set ${m.workingSetBytes}`);
      assert.ok((m.rssBytes ?? 0n) >= floor, `${name}: rss ${m.rssBytes}`);
      assert.ok((m.pageFaults ?? 0n) > 0n, `${name}: page faults`);
      assert.equal(m.oomKills ?? 0n, 0n);
    }
    if (b.process) assert.ok(b.process.count >= 2n, `${name}: processes ${b.process.count}`);
  } finally {
    await cg.cleanup();
  }
  for (const d of cg.dirs) assert.equal(existsSync(d), false, `${d} removed`);
}

test("v1 hierarchies: a busy process and a 64 MiB allocation show in cpuacct, memory and pids", { skip: !isRoot || !haveV1 ? "needs root and cgroup v1 controllers" : false }, async () => {
  const mounts = [...new Set(V1.map((c) => layout.v1.get(c) as string))];
  await exercise("v1", mounts, { mode: "v1", unified: undefined, v1: layout.v1 }, true);
});

test("unified (v2) hierarchy: a busy process shows in cpu.stat; memory when the controller is enabled", { skip: !isRoot || !haveV2 ? "needs root and a cgroup2 mount" : false }, async () => {
  const unified = layout.unified as string;
  const controllers = readFileSync(`${unified}/cgroup.subtree_control`, "utf8");
  const v2only: CgroupLayout = { mode: "v2", unified, v1: new Map() };
  await exercise("v2", [unified], v2only, /\bmemory\b/.test(controllers));
});

test("hybrid: PSI of the unified hierarchy is read when the kernel provides it", { skip: !isRoot || !haveV2 ? "needs root and a cgroup2 mount" : false }, async () => {
  const unified = layout.unified as string;
  const cg = new TestCgroup([unified]);
  try {
    const s = readCgroup({ mode: "v2", unified, v1: new Map() }, cg.rel);
    if (existsSync(`${unified}${cg.rel}/cpu.pressure`)) assert.ok(s?.cpu?.psi?.some, "cpu PSI parsed");
    else assert.equal(s?.cpu?.psi, undefined);
  } finally {
    await cg.cleanup();
  }
});

test("network counters of a netns: through a pid living in it, or nsenter when none is given", { skip: !isRoot ? "needs root" : false }, async () => {
  const child = spawn("unshare", ["--net", "sh", "-c", "ip link set lo up 2>/dev/null; exec sleep 60"], { stdio: "ignore" });
  try {
    const pid = child.pid as number;
    const nsFile = `/proc/${pid}/ns/net`;
    // Wait until unshare has moved the child into the new netns.
    for (let i = 0; i < 100 && netnsInode(nsFile) === netnsInode("/proc/self/ns/net"); i++) await sleep(20);
    assert.notEqual(netnsInode(nsFile), netnsInode("/proc/self/ns/net"));
    assert.equal(readNetDevViaPids(nsFile, [process.pid]), undefined, "a pid of another netns is not used");
    const viaPid = readNetDevViaPids(nsFile, [process.pid, pid]);
    assert.deepEqual(viaPid?.map((i) => i.name), ["lo"], "a fresh netns has only lo");
    const viaExec = await readNetDevViaNsenter(nsFile);
    assert.deepEqual(viaExec?.map((i) => i.name), ["lo"]);
    const sandboxes = [{ id: "p", metadata: { name: "p", uid: "u", namespace: "n", attempt: 0 }, labels: {}, annotations: {}, cgroupParent: "", netnsPath: nsFile }];
    const col = new StatsCollector({ source: { containers: () => [], sandboxes: () => sandboxes }, intervalSeconds: 10, layout, netnsExec: true });
    await col.collect();
    assert.deepEqual(col.sandbox("p")?.network?.interfaces.map((i) => i.name), ["lo"], "the collector entered the netns");
  } finally {
    child.kill("SIGKILL");
  }
});
