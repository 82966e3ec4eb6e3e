export { StatsCollector, nanoCores, sumContainers, type StatsCollectorOptions } from "./collector.js";
export { cgroupRelPath, expandSlice } from "./cgroup-path.js";
export { detectCgroupLayout, cgroupLayoutAt, V1_CONTROLLERS, type CgroupLayout } from "./cgroup-layout.js";
export { readCgroup, cgroupDirs, type CgroupSample, type CpuSample, type MemorySample, type PidsSample } from "./cgroup-reader.js";
export { diskUsage, type DiskUsage } from "./disk-usage.js";
export { readNetDevViaPids, readNetDevViaNsenter, netnsInode } from "./net-stats.js";
export { parseNetDev, parsePsi, parseFlatKeyed, parseUint, mountPointOf, overlayUpperDir, type Psi, type PsiLine, type InterfaceCounters } from "./parse.js";
export { METRIC_DESCRIPTORS, podMetrics, type MetricDescriptorData, type MetricData, type PodMetricsData } from "./metrics.js";
export type {
  StatsSource,
  StatsContainerInfo,
  StatsSandboxInfo,
  ContainerStatsData,
  SandboxStatsData,
  CpuStats,
  MemoryStats,
  ProcessStats,
  WritableLayerStats,
  NetworkStats,
} from "./types.js";
