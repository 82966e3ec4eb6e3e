import { readFileSync } from "node:fs";
import { statfs } from "node:fs/promises";
import { logger } from "../log/index.js";
import { cgroupRelPath } from "./cgroup-path.js";
import { detectCgroupLayout, type CgroupLayout } from "./cgroup-layout.js";
import { cgroupDirs, cgroupMissing, readCgroupDirs, type CgroupDirs, type CgroupSample } from "./cgroup-reader.js";
import { diskUsage } from "./disk-usage.js";
import { readNetDevViaNsenter, readNetDevViaPids } from "./net-stats.js";
import { mountPointOf } from "./parse.js";
import type {
  ContainerStatsData,
  CpuStats,
  MemoryStats,
  NetworkStats,
  ProcessStats,
  SandboxStatsData,
  StatsContainerInfo,
  StatsSandboxInfo,
  StatsSource,
  WritableLayerStats,
} from "./types.js";

export interface StatsCollectorOptions {
  source: StatsSource;
  /** Sampling period (config stats.collect_interval_seconds). */
  intervalSeconds: number;
  /** Override of the period in ms (tests, benchmarks). */
  intervalMs?: number;
  /** How often writable layers are walked, ms (default: 3 × interval). */
  diskIntervalMs?: number;
  /** Bound of one writable-layer walk, entries (default 1,000,000). */
  diskMaxEntries?: number;
  /** Hierarchies to read (default: detected on this host). */
  layout?: CgroupLayout;
  /** Enter a pod's netns with nsenter when no process of the pod runs in it (default true). */
  netnsExec?: boolean;
  /** Cgroups read per event-loop turn during a sweep (default 25). */
  batchSize?: number;
}

interface Track {
  rel: string;
  /** The cgroup's directories, found once and kept while they can be read. */
  dirs: CgroupDirs | undefined;
  prev: CgroupSample | undefined;
  last: CgroupSample | undefined;
}

interface ContainerTrack extends Track {
  layer: WritableLayerStats | undefined;
  layerAt: number;
}

interface SandboxTrack extends Track {
  network: NetworkStats | undefined;
  /** When the netns was last entered with nsenter (ms), to do that at most every 3 sweeps. */
  netExecAt: number;
}

/**
 * Samples the cgroups of all containers and pods in the background and answers stats queries from
 * that cache: a query never execs anything, and reads a few small cgroup files only for an object
 * the cache has not seen yet. Keeps the last two samples of each cgroup to compute nano-cores.
 */
export class StatsCollector {
  readonly #source: StatsSource;
  readonly #layout: CgroupLayout;
  readonly #intervalMs: number;
  readonly #diskIntervalMs: number;
  readonly #diskMaxEntries: number;
  readonly #netnsExec: boolean;
  readonly #batch: number;
  readonly #containers = new Map<string, ContainerTrack>();
  readonly #sandboxes = new Map<string, SandboxTrack>();
  #timer: NodeJS.Timeout | undefined;
  #sweep: Promise<void> | undefined;
  #disk: Promise<void> | undefined;
  #lastDiskRound = 0;
  #abort = new AbortController();

  constructor(opts: StatsCollectorOptions) {
    this.#source = opts.source;
    this.#layout = opts.layout ?? detectCgroupLayout();
    this.#intervalMs = opts.intervalMs ?? opts.intervalSeconds * 1000;
    this.#diskIntervalMs = opts.diskIntervalMs ?? 3 * this.#intervalMs;
    this.#diskMaxEntries = opts.diskMaxEntries ?? 1_000_000;
    this.#netnsExec = opts.netnsExec ?? true;
    this.#batch = opts.batchSize ?? 25;
  }

  get layout(): CgroupLayout {
    return this.#layout;
  }

  /** Starts background sampling: one sweep now, then one per interval (timer unref'd). */
  start(): void {
    if (this.#timer) return;
    if (this.#abort.signal.aborted) this.#abort = new AbortController();
    const tick = (): void => {
      if (this.#sweep) return; // the previous sweep still runs: skip this tick
      this.#sweep = this.collect()
        .catch((err: unknown) => logger().warn({ err }, "stats sweep failed"))
        .finally(() => {
          this.#sweep = undefined;
        });
    };
    this.#timer = setInterval(tick, this.#intervalMs);
    this.#timer.unref();
    tick();
  }

  /** Stops sampling and waits for a running sweep and layer walk to end. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#abort.abort();
    await Promise.allSettled([this.#sweep, this.#disk]);
  }

  /**
   * One sweep: samples every container and pod cgroup, pod network counters, and (when due) starts a
   * walk of the writable layers in the background. Forgets objects the source no longer lists.
   */
  async collect(): Promise<void> {
    const containers = this.#source.containers();
    const sandboxes = this.#source.sandboxes();
    forgetMissing(this.#containers, containers);
    forgetMissing(this.#sandboxes, sandboxes);
    let n = 0;
    for (const c of containers) {
      this.#sampleContainer(c);
      if (++n % this.#batch === 0) await yieldLoop();
    }
    const pids = pidsByPod(containers);
    for (const s of sandboxes) {
      const t = this.#sampleSandbox(s);
      if (t && s.netnsPath) {
        let ifs = readNetDevViaPids(s.netnsPath, pids.get(s.id) ?? []);
        // No process of the pod runs in its netns (a pod without running containers): enter the
        // namespace file with an exec, but not more often than every 3 sweeps.
        if (ifs === undefined && this.#netnsExec && !this.#abort.signal.aborted && Date.now() - t.netExecAt >= 3 * this.#intervalMs) {
          t.netExecAt = Date.now();
          ifs = await readNetDevViaNsenter(s.netnsPath, this.#abort.signal).catch(() => undefined);
        }
        if (ifs !== undefined) t.network = { timestampNs: nowNs(), interfaces: ifs };
      }
      if (++n % this.#batch === 0) await yieldLoop();
    }
    if (!this.#disk && Date.now() - this.#lastDiskRound >= this.#diskIntervalMs) {
      this.#lastDiskRound = Date.now();
      this.#disk = this.collectLayers()
        .catch((err: unknown) => logger().warn({ err }, "writable layer walk failed"))
        .finally(() => {
          this.#disk = undefined;
        });
    }
  }

  /** Walks every container's writable layer (one at a time) and caches bytes and inodes. */
  async collectLayers(): Promise<void> {
    const containers = this.#source.containers().filter((c) => c.upperDir);
    if (containers.length === 0) return;
    let mountinfo = "";
    try {
      mountinfo = readFileSync("/proc/self/mountinfo", "utf8");
    } catch {
      mountinfo = "";
    }
    const fsCache = new Map<string, { capacity: bigint; inodes: bigint; inodesFree: bigint } | undefined>();
    for (const c of containers) {
      if (this.#abort.signal.aborted) return;
      const upper = c.upperDir as string;
      const usage = await diskUsage(upper, { maxEntries: this.#diskMaxEntries, signal: this.#abort.signal }).catch(() => undefined);
      const t = this.#containers.get(c.id);
      if (!usage || !t) continue;
      const mountpoint = mountPointOf(upper, mountinfo) ?? "/";
      if (!fsCache.has(mountpoint)) {
        const st = await statfs(mountpoint, { bigint: true }).catch(() => undefined);
        fsCache.set(mountpoint, st ? { capacity: st.blocks * st.bsize, inodes: st.files, inodesFree: st.ffree } : undefined);
      }
      const fs = fsCache.get(mountpoint);
      t.layer = {
        timestampNs: nowNs(),
        mountpoint,
        usedBytes: usage.usedBytes,
        inodesUsed: usage.inodesUsed,
        fsCapacityBytes: fs?.capacity,
        fsInodesTotal: fs?.inodes,
        fsInodesFree: fs?.inodesFree,
      };
      t.layerAt = Date.now();
    }
  }

  /** Stats of one container: from the cache, or read now if the cache has not seen it. */
  container(id: string): ContainerStatsData | undefined {
    const src = this.#source;
    const info = src.container ? src.container(id) : src.containers().find((c) => c.id === id);
    return info ? this.#containerData(info) : undefined;
  }

  /** Stats of all containers the source lists. */
  containers(): ContainerStatsData[] {
    return this.#source.containers().map((c) => this.#containerData(c));
  }

  /** Stats of one pod and its containers. */
  sandbox(id: string): SandboxStatsData | undefined {
    const src = this.#source;
    const info = src.sandbox ? src.sandbox(id) : src.sandboxes().find((s) => s.id === id);
    if (!info) return undefined;
    const mine = src.containersOf ? src.containersOf(id) : src.containers().filter((c) => c.podSandboxId === id);
    return this.#sandboxData(info, mine.map((c) => this.#containerData(c)));
  }

  /** Stats of all pods the source lists, each with its containers. */
  sandboxes(): SandboxStatsData[] {
    const byPod = new Map<string, ContainerStatsData[]>();
    for (const c of this.containers()) {
      const list = byPod.get(c.info.podSandboxId);
      if (list) list.push(c);
      else byPod.set(c.info.podSandboxId, [c]);
    }
    return this.#source.sandboxes().map((s) => this.#sandboxData(s, byPod.get(s.id) ?? []));
  }

  #sampleContainer(c: StatsContainerInfo): ContainerTrack | undefined {
    let rel: string;
    try {
      rel = cgroupRelPath(c.cgroupPath);
    } catch {
      return undefined;
    }
    if (rel === "/") return undefined; // never report the root cgroup as a container
    let t = this.#containers.get(c.id);
    if (!t || t.rel !== rel) {
      t = { rel, dirs: undefined, prev: undefined, last: undefined, layer: t?.layer, layerAt: t?.layerAt ?? 0 };
      this.#containers.set(c.id, t);
    }
    rotate(t, this.#read(t));
    return t;
  }

  #sampleSandbox(s: StatsSandboxInfo): SandboxTrack | undefined {
    let rel = "/";
    try {
      rel = cgroupRelPath(s.cgroupParent);
    } catch {
      rel = "/";
    }
    let t = this.#sandboxes.get(s.id);
    if (!t || t.rel !== rel) {
      t = { rel, dirs: undefined, prev: undefined, last: undefined, network: t?.network, netExecAt: t?.netExecAt ?? 0 };
      this.#sandboxes.set(s.id, t);
    }
    // A pod without its own cgroup ("" or "/") is summed from its containers, never read from the root.
    if (rel !== "/") rotate(t, this.#read(t));
    return t;
  }

  #read(t: Track): CgroupSample | undefined {
    if (t.dirs) {
      const s = readCgroupDirs(t.dirs);
      if (s) return s;
    }
    // First read, or the cgroup went away (or was recreated): look the directories up again.
    const dirs = cgroupDirs(this.#layout, t.rel);
    t.dirs = cgroupMissing(dirs) ? undefined : dirs;
    return t.dirs ? readCgroupDirs(t.dirs) : undefined;
  }

  #containerData(info: StatsContainerInfo): ContainerStatsData {
    let t = this.#containers.get(info.id);
    if (!t?.last) t = this.#sampleContainer(info) ?? t;
    const base = fromTrack(t);
    return { info, ...base, writableLayer: t?.layer };
  }

  #sandboxData(info: StatsSandboxInfo, containers: ContainerStatsData[]): SandboxStatsData {
    let t = this.#sandboxes.get(info.id);
    if (!t || (t.rel !== "/" && !t.last)) {
      t = this.#sampleSandbox(info) ?? t;
      if (t && !t.network && info.netnsPath) {
        const pids = containers.map((c) => c.info.pid).filter((p): p is number => typeof p === "number");
        const ifs = readNetDevViaPids(info.netnsPath, pids);
        if (ifs) t.network = { timestampNs: nowNs(), interfaces: ifs };
      }
    }
    const own = t && t.rel !== "/" && t.last ? fromTrack(t) : sumContainers(containers);
    return { info, ...own, network: t?.network, containers };
  }
}

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

function yieldLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function forgetMissing(map: Map<string, unknown>, present: readonly { id: string }[]): void {
  if (map.size === 0) return;
  const ids = new Set(present.map((p) => p.id));
  for (const id of map.keys()) if (!ids.has(id)) map.delete(id);
}

function pidsByPod(containers: readonly StatsContainerInfo[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const c of containers) {
    if (typeof c.pid !== "number") continue;
    const list = out.get(c.podSandboxId);
    if (list) list.push(c.pid);
    else out.set(c.podSandboxId, [c.pid]);
  }
  return out;
}

function rotate(t: Track, sample: CgroupSample | undefined): void {
  if (!sample) {
    // The cgroup is gone (the container exited and was cleaned up): keep no stale figures.
    t.prev = undefined;
    t.last = undefined;
    return;
  }
  t.prev = t.last;
  t.last = sample;
}

/** Nano-cores between two samples: Δcpu_ns / Δwall_s. Undefined if not computable. */
export function nanoCores(prev: CgroupSample | undefined, last: CgroupSample | undefined): bigint | undefined {
  if (!prev?.cpu || !last?.cpu) return undefined;
  const dWall = last.monoNs - prev.monoNs;
  const dCpu = last.cpu.usageNs - prev.cpu.usageNs;
  if (dWall <= 0n || dCpu < 0n) return undefined;
  return (dCpu * 1_000_000_000n) / dWall;
}

type Own = Pick<SandboxStatsData, "cpu" | "memory" | "process" | "ioPsi">;

function fromTrack(t: Track | undefined): Own {
  const s = t?.last;
  if (!s) return { cpu: undefined, memory: undefined, process: undefined, ioPsi: undefined };
  const cpu: CpuStats | undefined = s.cpu
    ? {
        timestampNs: s.timestampNs,
        usageCoreNs: s.cpu.usageNs,
        usageNanoCores: nanoCores(t.prev, s),
        userNs: s.cpu.userNs,
        systemNs: s.cpu.systemNs,
        periods: s.cpu.periods,
        throttledPeriods: s.cpu.throttledPeriods,
        throttledNs: s.cpu.throttledNs,
        psi: s.cpu.psi,
      }
    : undefined;
  const memory: MemoryStats | undefined = s.memory
    ? {
        ...s.memory,
        timestampNs: s.timestampNs,
        availableBytes: s.memory.limitBytes === undefined ? undefined : s.memory.limitBytes > s.memory.workingSetBytes ? s.memory.limitBytes - s.memory.workingSetBytes : 0n,
      }
    : undefined;
  const process: ProcessStats | undefined = s.pids ? { timestampNs: s.timestampNs, count: s.pids.current, limit: s.pids.limit } : undefined;
  return { cpu, memory, process, ioPsi: s.ioPsi ? { timestampNs: s.timestampNs, psi: s.ioPsi } : undefined };
}

function addOpt(a: bigint | undefined, b: bigint | undefined): bigint | undefined {
  return a === undefined ? b : b === undefined ? a : a + b;
}

/** Pod figures as the sum of its containers (for pods without a cgroup of their own). */
export function sumContainers(list: readonly ContainerStatsData[]): Own {
  let cpu: CpuStats | undefined;
  let memory: MemoryStats | undefined;
  let process: ProcessStats | undefined;
  let allNano = true;
  for (const c of list) {
    if (c.cpu) {
      if (c.cpu.usageNanoCores === undefined) allNano = false;
      cpu = cpu
        ? {
            ...cpu,
            timestampNs: c.cpu.timestampNs > cpu.timestampNs ? c.cpu.timestampNs : cpu.timestampNs,
            usageCoreNs: cpu.usageCoreNs + c.cpu.usageCoreNs,
            usageNanoCores: addOpt(cpu.usageNanoCores, c.cpu.usageNanoCores),
            userNs: addOpt(cpu.userNs, c.cpu.userNs),
            systemNs: addOpt(cpu.systemNs, c.cpu.systemNs),
            periods: undefined,
            throttledPeriods: undefined,
            throttledNs: undefined,
            psi: undefined,
          }
        : { ...c.cpu, psi: undefined, periods: undefined, throttledPeriods: undefined, throttledNs: undefined };
    }
    if (c.memory) {
      const m = c.memory;
      memory = memory
        ? {
            ...memory,
            timestampNs: m.timestampNs > memory.timestampNs ? m.timestampNs : memory.timestampNs,
            usageBytes: memory.usageBytes + m.usageBytes,
            workingSetBytes: memory.workingSetBytes + m.workingSetBytes,
            rssBytes: addOpt(memory.rssBytes, m.rssBytes),
            cacheBytes: addOpt(memory.cacheBytes, m.cacheBytes),
            mappedFileBytes: addOpt(memory.mappedFileBytes, m.mappedFileBytes),
            pageFaults: addOpt(memory.pageFaults, m.pageFaults),
            majorPageFaults: addOpt(memory.majorPageFaults, m.majorPageFaults),
            swapUsageBytes: addOpt(memory.swapUsageBytes, m.swapUsageBytes),
            oomKills: addOpt(memory.oomKills, m.oomKills),
            failcnt: addOpt(memory.failcnt, m.failcnt),
            underOom: memory.underOom === true || m.underOom === true ? true : (memory.underOom ?? m.underOom),
            limitBytes: undefined,
            swapLimitBytes: undefined,
            availableBytes: undefined,
            psi: undefined,
          }
        : { ...m, limitBytes: undefined, swapLimitBytes: undefined, availableBytes: undefined, psi: undefined };
    }
    if (c.process) {
      process = process ? { timestampNs: c.process.timestampNs, count: process.count + c.process.count, limit: undefined } : { ...c.process, limit: undefined };
    }
  }
  if (cpu && !allNano) cpu.usageNanoCores = undefined;
  return { cpu, memory, process, ioPsi: undefined };
}
