import {
  MetricType,
  type ContainerStats,
  type CpuUsage,
  type DeepPartial,
  type MemoryUsage,
  type MetricDescriptor,
  type NetworkInterfaceUsage,
  type PodSandboxMetrics,
  type PodSandboxStats,
  type PsiStats,
  type UInt64Value,
} from "../../api/gen/cri/v1/api.js";
import type { ContainerStatsData, CpuStats, InterfaceCounters, MemoryStats, MetricDescriptorData, PodMetricsData, Psi, SandboxStatsData } from "../stats/index.js";

/** What the stats handlers read: pkg/stats StatsCollector implements it. */
export interface StatsProvider {
  container(id: string): ContainerStatsData | undefined;
  containers(): ContainerStatsData[];
  sandbox(id: string): SandboxStatsData | undefined;
  sandboxes(): SandboxStatsData[];
}

function u64(v: bigint | undefined): UInt64Value | undefined {
  return v === undefined ? undefined : { value: v };
}

function psiOf(p: Psi | undefined): DeepPartial<PsiStats> | undefined {
  if (!p) return undefined;
  const line = (l: Psi["some"]): DeepPartial<PsiStats["Some"]> | undefined =>
    l ? { Total: l.totalUs * 1000n, Avg10: l.avg10, Avg60: l.avg60, Avg300: l.avg300 } : undefined;
  return { Some: line(p.some), Full: line(p.full) };
}

export function cpuUsage(c: CpuStats | undefined): DeepPartial<CpuUsage> | undefined {
  if (!c) return undefined;
  return { timestamp: c.timestampNs, usageCoreNanoSeconds: u64(c.usageCoreNs), usageNanoCores: u64(c.usageNanoCores), psi: psiOf(c.psi) };
}

export function memoryUsage(m: MemoryStats | undefined): DeepPartial<MemoryUsage> | undefined {
  if (!m) return undefined;
  return {
    timestamp: m.timestampNs,
    workingSetBytes: u64(m.workingSetBytes),
    availableBytes: u64(m.availableBytes),
    usageBytes: u64(m.usageBytes),
    rssBytes: u64(m.rssBytes),
    pageFaults: u64(m.pageFaults),
    majorPageFaults: u64(m.majorPageFaults),
    psi: psiOf(m.psi),
  };
}

/** A ContainerStats message from the collector's figures. */
export function toContainerStats(c: ContainerStatsData): DeepPartial<ContainerStats> {
  const m = c.memory;
  const l = c.writableLayer;
  return {
    attributes: { id: c.info.id, metadata: { name: c.info.metadata.name, attempt: c.info.metadata.attempt }, labels: { ...c.info.labels }, annotations: { ...c.info.annotations } },
    cpu: cpuUsage(c.cpu),
    memory: memoryUsage(m),
    writableLayer: l ? { timestamp: l.timestampNs, fsId: { mountpoint: l.mountpoint }, usedBytes: u64(l.usedBytes), inodesUsed: u64(l.inodesUsed) } : undefined,
    swap:
      m && (m.swapUsageBytes !== undefined || m.swapLimitBytes !== undefined)
        ? {
            timestamp: m.timestampNs,
            swapUsageBytes: u64(m.swapUsageBytes),
            swapAvailableBytes: u64(m.swapLimitBytes === undefined ? undefined : m.swapLimitBytes > (m.swapUsageBytes ?? 0n) ? m.swapLimitBytes - (m.swapUsageBytes ?? 0n) : 0n),
          }
        : undefined,
    io: c.ioPsi ? { timestamp: c.ioPsi.timestampNs, psi: psiOf(c.ioPsi.psi) } : undefined,
  };
}

function iface(i: InterfaceCounters): DeepPartial<NetworkInterfaceUsage> {
  return { name: i.name, rxBytes: u64(i.rxBytes), rxErrors: u64(i.rxErrors), txBytes: u64(i.txBytes), txErrors: u64(i.txErrors) };
}

/** kubelet names a pod's primary interface eth0. */
const DEFAULT_INTERFACE = "eth0";

/** A PodSandboxStats message (Linux) from the collector's figures. */
export function toPodSandboxStats(s: SandboxStatsData): DeepPartial<PodSandboxStats> {
  const net = s.network;
  const ifs = net ? net.interfaces.filter((i) => i.name !== "lo") : [];
  const def = ifs.find((i) => i.name === DEFAULT_INTERFACE) ?? ifs[0];
  return {
    attributes: {
      id: s.info.id,
      metadata: { name: s.info.metadata.name, uid: s.info.metadata.uid, namespace: s.info.metadata.namespace, attempt: s.info.metadata.attempt },
      labels: { ...s.info.labels },
      annotations: { ...s.info.annotations },
    },
    linux: {
      cpu: cpuUsage(s.cpu),
      memory: memoryUsage(s.memory),
      network: net ? { timestamp: net.timestampNs, defaultInterface: def ? iface(def) : undefined, interfaces: ifs.map(iface) } : undefined,
      process: s.process ? { timestamp: s.process.timestampNs, processCount: u64(s.process.count) } : undefined,
      containers: s.containers.map(toContainerStats),
      io: s.ioPsi ? { timestamp: s.ioPsi.timestampNs, psi: psiOf(s.ioPsi.psi) } : undefined,
    },
  };
}

export function toMetricDescriptor(d: MetricDescriptorData): DeepPartial<MetricDescriptor> {
  return { name: d.name, help: d.help, labelKeys: [...d.labelKeys] };
}

export function toPodSandboxMetrics(p: PodMetricsData): DeepPartial<PodSandboxMetrics> {
  const metric = (m: PodMetricsData["metrics"][number]): DeepPartial<PodSandboxMetrics["metrics"][number]> => ({
    name: m.name,
    timestamp: m.timestampNs,
    metricType: m.type === "counter" ? MetricType.COUNTER : MetricType.GAUGE,
    labelValues: m.labelValues,
    value: { value: m.value },
  });
  return {
    podSandboxId: p.podSandboxId,
    metrics: p.metrics.map(metric),
    containerMetrics: p.containerMetrics.map((c) => ({ containerId: c.containerId, metrics: c.metrics.map(metric) })),
  };
}

/** True when every key of the selector is present with the same value. */
export function matchLabels(labels: Readonly<Record<string, string>>, selector: Readonly<Record<string, string>> | undefined): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}
