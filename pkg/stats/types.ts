import type { Psi, InterfaceCounters } from "./parse.js";
import type { MemorySample } from "./cgroup-reader.js";

/** What the stats collector needs to know of a container; the runtime core provides it. */
export interface StatsContainerInfo {
  id: string;
  podSandboxId: string;
  metadata: { name: string; attempt: number };
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
  /** The OCI spec's linux.cgroupsPath: a cgroupfs path or systemd "slice:prefix:name". */
  cgroupPath: string;
  /** The overlay upper dir (the container's writable layer), when it has one. */
  upperDir?: string | undefined;
  /** Host pid of the container's init process while it runs. */
  pid?: number | undefined;
  /** Image reference for metric labels. */
  image?: string | undefined;
}

/** What the stats collector needs to know of a pod sandbox; the runtime core provides it. */
export interface StatsSandboxInfo {
  id: string;
  metadata: { name: string; uid: string; namespace: string; attempt: number };
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
  /** The CRI linux.cgroup_parent of the pod ("" when none: pod figures are then summed from its containers). */
  cgroupParent: string;
  /** The pod's pinned network namespace file; undefined for host-network pods. */
  netnsPath?: string | undefined;
}

/** The runtime core's view the collector samples. Both calls must be cheap (in-memory). */
export interface StatsSource {
  containers(): readonly StatsContainerInfo[];
  sandboxes(): readonly StatsSandboxInfo[];
  /** One container by id (optional: ContainerStats then avoids listing every container). */
  container?(id: string): StatsContainerInfo | undefined;
  /** One pod by id (optional, as container()). */
  sandbox?(id: string): StatsSandboxInfo | undefined;
  /** The containers of one pod (optional: PodSandboxStats then avoids listing every container). */
  containersOf?(podSandboxId: string): readonly StatsContainerInfo[];
}

export interface CpuStats {
  timestampNs: bigint;
  usageCoreNs: bigint;
  /** Δusage / Δwall over the last two samples; undefined until there are two. */
  usageNanoCores: bigint | undefined;
  userNs: bigint | undefined;
  systemNs: bigint | undefined;
  periods: bigint | undefined;
  throttledPeriods: bigint | undefined;
  throttledNs: bigint | undefined;
  psi: Psi | undefined;
}

export interface MemoryStats extends MemorySample {
  timestampNs: bigint;
  /** limit − working set when a limit is set. */
  availableBytes: bigint | undefined;
}

export interface ProcessStats {
  timestampNs: bigint;
  count: bigint;
  limit: bigint | undefined;
}

export interface WritableLayerStats {
  timestampNs: bigint;
  /** Mount point of the filesystem holding the upper dir. */
  mountpoint: string;
  usedBytes: bigint;
  inodesUsed: bigint;
  /** statfs of that filesystem. */
  fsCapacityBytes: bigint | undefined;
  fsInodesTotal: bigint | undefined;
  fsInodesFree: bigint | undefined;
}

export interface NetworkStats {
  timestampNs: bigint;
  interfaces: InterfaceCounters[];
}

export interface ContainerStatsData {
  info: StatsContainerInfo;
  cpu: CpuStats | undefined;
  memory: MemoryStats | undefined;
  process: ProcessStats | undefined;
  writableLayer: WritableLayerStats | undefined;
  ioPsi: { timestampNs: bigint; psi: Psi } | undefined;
}

export interface SandboxStatsData {
  info: StatsSandboxInfo;
  cpu: CpuStats | undefined;
  memory: MemoryStats | undefined;
  process: ProcessStats | undefined;
  network: NetworkStats | undefined;
  ioPsi: { timestampNs: bigint; psi: Psi } | undefined;
  containers: ContainerStatsData[];
}
