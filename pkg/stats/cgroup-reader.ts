import { existsSync, readFileSync } from "node:fs";
import type { CgroupLayout } from "./cgroup-layout.js";
import { parseFlatKeyed, parsePsi, parseUint, type Psi } from "./parse.js";

/** One reading of a cgroup. Absent parts were not available (controller missing, cgroup gone). */
export interface CgroupSample {
  /** Wall clock, ns since the epoch. */
  timestampNs: bigint;
  /** Monotonic clock, ns (for rates). */
  monoNs: bigint;
  cpu: CpuSample | undefined;
  memory: MemorySample | undefined;
  pids: PidsSample | undefined;
  ioPsi: Psi | undefined;
}

export interface CpuSample {
  /** Cumulative CPU time, ns. */
  usageNs: bigint;
  userNs: bigint | undefined;
  systemNs: bigint | undefined;
  periods: bigint | undefined;
  throttledPeriods: bigint | undefined;
  throttledNs: bigint | undefined;
  psi: Psi | undefined;
}

export interface MemorySample {
  usageBytes: bigint;
  /** usage − inactive_file, never below 0. */
  workingSetBytes: bigint;
  rssBytes: bigint | undefined;
  cacheBytes: bigint | undefined;
  mappedFileBytes: bigint | undefined;
  pageFaults: bigint | undefined;
  majorPageFaults: bigint | undefined;
  /** undefined when unlimited. */
  limitBytes: bigint | undefined;
  swapUsageBytes: bigint | undefined;
  swapLimitBytes: bigint | undefined;
  failcnt: bigint | undefined;
  /** OOM kills in this cgroup (v1 memory.oom_control oom_kill, v2 memory.events oom_kill). */
  oomKills: bigint | undefined;
  /** v1 memory.oom_control under_oom: the cgroup is out of memory now (v2 has no such flag). */
  underOom: boolean | undefined;
  psi: Psi | undefined;
}

export interface PidsSample {
  current: bigint;
  limit: bigint | undefined;
}

/** v1 reports "no limit" as a page-rounded huge number. */
const V1_UNLIMITED = 1n << 62n;

function read(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

function join(mount: string, rel: string): string {
  return rel === "/" ? mount : `${mount}${rel}`;
}

/** The directories of one cgroup in each hierarchy where it exists. */
export interface CgroupDirs {
  cpuacct: string | undefined;
  cpu: string | undefined;
  memory: string | undefined;
  pids: string | undefined;
  unified: string | undefined;
  /** The unified dir has pressure files (PSI enabled). */
  psi: boolean;
  /** The v1 memory dir has memsw files (swap accounting enabled). */
  memsw: boolean;
}

export function cgroupDirs(layout: CgroupLayout, rel: string): CgroupDirs {
  const v1 = (c: string): string | undefined => {
    const m = layout.v1.get(c);
    if (!m) return undefined;
    const d = join(m, rel);
    return existsSync(d) ? d : undefined;
  };
  let unified: string | undefined;
  if (layout.unified) {
    const d = join(layout.unified, rel);
    unified = existsSync(d) ? d : undefined;
  }
  const memory = v1("memory");
  return {
    cpuacct: v1("cpuacct"),
    cpu: v1("cpu"),
    memory,
    pids: v1("pids"),
    unified,
    psi: unified !== undefined && existsSync(`${unified}/cpu.pressure`),
    memsw: memory !== undefined && existsSync(`${memory}/memory.memsw.usage_in_bytes`),
  };
}

/** True when the dirs name no existing cgroup. */
export function cgroupMissing(dirs: CgroupDirs): boolean {
  return !dirs.cpuacct && !dirs.cpu && !dirs.memory && !dirs.pids && !dirs.unified;
}

/**
 * Reads the stats of the cgroup at `rel` (relative to each hierarchy's root). On v1 and hybrid hosts the
 * v1 controllers are read; a resource whose v1 cgroup is missing falls back to the unified hierarchy
 * (cpu.stat is there even without controllers). PSI comes from the unified hierarchy when present.
 * Returns undefined when the cgroup exists in no hierarchy.
 */
export function readCgroup(layout: CgroupLayout, rel: string): CgroupSample | undefined {
  const dirs = cgroupDirs(layout, rel);
  if (cgroupMissing(dirs)) return undefined;
  return readCgroupDirs(dirs);
}

/**
 * Reads a cgroup whose directories were found before (the collector keeps them between sweeps).
 * Returns undefined when nothing could be read any more (the cgroup was removed).
 */
export function readCgroupDirs(dirs: CgroupDirs): CgroupSample | undefined {
  const timestampNs = BigInt(Date.now()) * 1_000_000n;
  const monoNs = process.hrtime.bigint();
  const psi = dirs.psi && dirs.unified ? dirs.unified : undefined;
  const cpuPsi = psi ? readPsi(`${psi}/cpu.pressure`) : undefined;
  const memPsi = psi ? readPsi(`${psi}/memory.pressure`) : undefined;
  const ioPsi = psi ? readPsi(`${psi}/io.pressure`) : undefined;
  const cpu = readCpu(dirs, cpuPsi);
  const memory = readMemory(dirs, memPsi);
  const pids = readPids(dirs);
  if (!cpu && !memory && !pids) return undefined;
  return { timestampNs, monoNs, cpu, memory, pids, ioPsi };
}

function readPsi(file: string): Psi | undefined {
  const t = read(file);
  return t === undefined ? undefined : parsePsi(t);
}

/** USER_HZ on Linux is 100: cpuacct.stat counts ticks of 10 ms. */
const TICK_NS = 10_000_000n;

function readCpu(dirs: CgroupDirs, psi: Psi | undefined): CpuSample | undefined {
  if (dirs.cpuacct) {
    const usage = parseUint(read(`${dirs.cpuacct}/cpuacct.usage`) ?? "");
    if (usage !== undefined) {
      const st = parseFlatKeyed(read(`${dirs.cpuacct}/cpuacct.stat`) ?? "");
      const thr = dirs.cpu ? parseFlatKeyed(read(`${dirs.cpu}/cpu.stat`) ?? "") : new Map<string, bigint>();
      const user = st.get("user");
      const system = st.get("system");
      return {
        usageNs: usage,
        userNs: user === undefined ? undefined : user * TICK_NS,
        systemNs: system === undefined ? undefined : system * TICK_NS,
        periods: thr.get("nr_periods"),
        throttledPeriods: thr.get("nr_throttled"),
        throttledNs: thr.get("throttled_time"),
        psi,
      };
    }
  }
  if (dirs.unified) {
    const text = read(`${dirs.unified}/cpu.stat`);
    if (text !== undefined) {
      const st = parseFlatKeyed(text);
      const usage = st.get("usage_usec");
      if (usage !== undefined) {
        const us = (k: string): bigint | undefined => {
          const v = st.get(k);
          return v === undefined ? undefined : v * 1000n;
        };
        return {
          usageNs: usage * 1000n,
          userNs: us("user_usec"),
          systemNs: us("system_usec"),
          periods: st.get("nr_periods"),
          throttledPeriods: st.get("nr_throttled"),
          throttledNs: us("throttled_usec"),
          psi,
        };
      }
    }
  }
  return undefined;
}

function sub(a: bigint, b: bigint | undefined): bigint {
  const r = a - (b ?? 0n);
  return r < 0n ? 0n : r;
}

function readMemory(dirs: CgroupDirs, psi: Psi | undefined): MemorySample | undefined {
  if (dirs.memory) {
    const usage = parseUint(read(`${dirs.memory}/memory.usage_in_bytes`) ?? "");
    if (usage !== undefined) {
      const st = parseFlatKeyed(read(`${dirs.memory}/memory.stat`) ?? "");
      const oom = parseFlatKeyed(read(`${dirs.memory}/memory.oom_control`) ?? "");
      const limit = parseUint(read(`${dirs.memory}/memory.limit_in_bytes`) ?? "");
      const memsw = dirs.memsw ? parseUint(read(`${dirs.memory}/memory.memsw.usage_in_bytes`) ?? "") : undefined;
      const memswLimit = dirs.memsw ? parseUint(read(`${dirs.memory}/memory.memsw.limit_in_bytes`) ?? "") : undefined;
      // Hierarchical totals ("total_*") include child cgroups, as a pod cgroup needs.
      const get = (k: string): bigint | undefined => st.get(`total_${k}`) ?? st.get(k);
      return {
        usageBytes: usage,
        workingSetBytes: sub(usage, get("inactive_file")),
        rssBytes: get("rss"),
        cacheBytes: get("cache"),
        mappedFileBytes: get("mapped_file"),
        pageFaults: get("pgfault"),
        majorPageFaults: get("pgmajfault"),
        limitBytes: limit !== undefined && limit < V1_UNLIMITED ? limit : undefined,
        swapUsageBytes: memsw !== undefined ? sub(memsw, usage) : get("swap"),
        swapLimitBytes: memswLimit !== undefined && memswLimit < V1_UNLIMITED && limit !== undefined && limit < V1_UNLIMITED ? sub(memswLimit, limit) : undefined,
        failcnt: parseUint(read(`${dirs.memory}/memory.failcnt`) ?? ""),
        oomKills: oom.get("oom_kill"),
        underOom: oom.has("under_oom") ? oom.get("under_oom") !== 0n : undefined,
        psi,
      };
    }
  }
  if (dirs.unified) {
    const current = parseUint(read(`${dirs.unified}/memory.current`) ?? "");
    if (current !== undefined) {
      const st = parseFlatKeyed(read(`${dirs.unified}/memory.stat`) ?? "");
      const ev = parseFlatKeyed(read(`${dirs.unified}/memory.events`) ?? "");
      const swap = parseUint(read(`${dirs.unified}/memory.swap.current`) ?? "");
      return {
        usageBytes: current,
        workingSetBytes: sub(current, st.get("inactive_file")),
        rssBytes: st.get("anon"),
        cacheBytes: st.get("file"),
        mappedFileBytes: st.get("file_mapped"),
        pageFaults: st.get("pgfault"),
        majorPageFaults: st.get("pgmajfault"),
        limitBytes: parseUint(read(`${dirs.unified}/memory.max`) ?? ""),
        swapUsageBytes: swap,
        swapLimitBytes: parseUint(read(`${dirs.unified}/memory.swap.max`) ?? ""),
        failcnt: ev.get("max"),
        oomKills: ev.get("oom_kill"),
        underOom: undefined,
        psi,
      };
    }
  }
  return undefined;
}

function readPids(dirs: CgroupDirs): PidsSample | undefined {
  for (const d of [dirs.pids, dirs.unified]) {
    if (!d) continue;
    const current = parseUint(read(`${d}/pids.current`) ?? "");
    if (current !== undefined) return { current, limit: parseUint(read(`${d}/pids.max`) ?? "") };
  }
  return undefined;
}
