import type { ContainerStatsData, SandboxStatsData } from "./types.js";

/** A cAdvisor-named metric as ListMetricDescriptors describes it. */
export interface MetricDescriptorData {
  name: string;
  help: string;
  labelKeys: string[];
  type: "counter" | "gauge";
}

/** One value of a metric, labels in the descriptor's order. */
export interface MetricData {
  name: string;
  timestampNs: bigint;
  type: "counter" | "gauge";
  labelValues: string[];
  value: bigint;
}

export interface PodMetricsData {
  podSandboxId: string;
  metrics: MetricData[];
  containerMetrics: Array<{ containerId: string; metrics: MetricData[] }>;
}

/** Labels every metric carries, as cAdvisor and CRI-O name them: container id, container name, image. */
const BASE = ["id", "name", "image"];
const NET = [...BASE, "interface"];

function d(name: string, type: "counter" | "gauge", help: string, labelKeys: string[] = BASE): MetricDescriptorData {
  return { name, help, labelKeys, type };
}

/** Every metric berth reports through ListPodSandboxMetrics (kubelet's /metrics/cadvisor from CRI). */
export const METRIC_DESCRIPTORS: readonly MetricDescriptorData[] = [
  d("container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed in seconds.", [...BASE, "cpu"]),
  d("container_cpu_user_seconds_total", "counter", "Cumulative user cpu time consumed in seconds."),
  d("container_cpu_system_seconds_total", "counter", "Cumulative system cpu time consumed in seconds."),
  d("container_cpu_cfs_periods_total", "counter", "Number of elapsed enforcement period intervals."),
  d("container_cpu_cfs_throttled_periods_total", "counter", "Number of throttled period intervals."),
  d("container_cpu_cfs_throttled_seconds_total", "counter", "Total time duration the container has been throttled."),
  d("container_memory_usage_bytes", "gauge", "Current memory usage in bytes, including all memory regardless of when it was accessed"),
  d("container_memory_working_set_bytes", "gauge", "Current working set in bytes."),
  d("container_memory_rss", "gauge", "Size of RSS in bytes."),
  d("container_memory_cache", "gauge", "Number of bytes of page cache memory."),
  d("container_memory_mapped_file", "gauge", "Size of memory mapped files in bytes."),
  d("container_memory_swap", "gauge", "Container swap usage in bytes."),
  d("container_memory_failcnt", "counter", "Number of memory usage hits limits"),
  d("container_memory_failures_total", "counter", "Cumulative count of memory allocation failures.", [...BASE, "failure_type", "scope"]),
  d("container_spec_memory_limit_bytes", "gauge", "Memory limit for the container in bytes."),
  d("container_oom_events_total", "counter", "Count of out of memory events observed for the container"),
  d("container_processes", "gauge", "Number of processes running inside the container."),
  d("container_fs_usage_bytes", "gauge", "Number of bytes that are consumed by the container on this filesystem."),
  d("container_fs_inodes_total", "gauge", "Number of Inodes"),
  d("container_fs_inodes_free", "gauge", "Number of available Inodes"),
  d("container_fs_limit_bytes", "gauge", "Number of bytes that can be consumed by the container on this filesystem."),
  d("container_network_receive_bytes_total", "counter", "Cumulative count of bytes received", NET),
  d("container_network_receive_packets_total", "counter", "Cumulative count of packets received", NET),
  d("container_network_receive_packets_dropped_total", "counter", "Cumulative count of packets dropped while receiving", NET),
  d("container_network_receive_errors_total", "counter", "Cumulative count of errors encountered while receiving", NET),
  d("container_network_transmit_bytes_total", "counter", "Cumulative count of bytes transmitted", NET),
  d("container_network_transmit_packets_total", "counter", "Cumulative count of packets transmitted", NET),
  d("container_network_transmit_packets_dropped_total", "counter", "Cumulative count of packets dropped while transmitting", NET),
  d("container_network_transmit_errors_total", "counter", "Cumulative count of errors encountered while transmitting", NET),
  d("container_last_seen", "gauge", "Last time a container was seen by the exporter"),
];

const TYPE = new Map(METRIC_DESCRIPTORS.map((m) => [m.name, m.type]));
const NS_PER_S = 1_000_000_000n;

class Builder {
  readonly out: MetricData[] = [];
  constructor(readonly base: string[]) {}

  add(name: string, ts: bigint, value: bigint | undefined, extra: string[] = []): void {
    if (value === undefined) return;
    const type = TYPE.get(name);
    if (!type) throw new Error(`metric ${name} has no descriptor`);
    this.out.push({ name, timestampNs: ts, type, labelValues: [...this.base, ...extra], value });
  }
}

function containerMetrics(c: ContainerStatsData, nowNs: bigint): MetricData[] {
  const b = new Builder([c.info.id, c.info.metadata.name, c.info.image ?? ""]);
  const cpu = c.cpu;
  if (cpu) {
    const ts = cpu.timestampNs;
    const secs = (v: bigint | undefined): bigint | undefined => (v === undefined ? undefined : v / NS_PER_S);
    b.add("container_cpu_usage_seconds_total", ts, secs(cpu.usageCoreNs), ["total"]);
    b.add("container_cpu_user_seconds_total", ts, secs(cpu.userNs));
    b.add("container_cpu_system_seconds_total", ts, secs(cpu.systemNs));
    b.add("container_cpu_cfs_periods_total", ts, cpu.periods);
    b.add("container_cpu_cfs_throttled_periods_total", ts, cpu.throttledPeriods);
    b.add("container_cpu_cfs_throttled_seconds_total", ts, secs(cpu.throttledNs));
  }
  const m = c.memory;
  if (m) {
    const ts = m.timestampNs;
    b.add("container_memory_usage_bytes", ts, m.usageBytes);
    b.add("container_memory_working_set_bytes", ts, m.workingSetBytes);
    b.add("container_memory_rss", ts, m.rssBytes);
    b.add("container_memory_cache", ts, m.cacheBytes);
    b.add("container_memory_mapped_file", ts, m.mappedFileBytes);
    b.add("container_memory_swap", ts, m.swapUsageBytes);
    b.add("container_memory_failcnt", ts, m.failcnt);
    if (m.pageFaults !== undefined && m.majorPageFaults !== undefined) {
      b.add("container_memory_failures_total", ts, m.pageFaults - m.majorPageFaults, ["pgfault", "container"]);
      b.add("container_memory_failures_total", ts, m.majorPageFaults, ["pgmajfault", "container"]);
    }
    b.add("container_spec_memory_limit_bytes", ts, m.limitBytes ?? 0n);
    b.add("container_oom_events_total", ts, m.oomKills ?? 0n);
  }
  if (c.process) b.add("container_processes", c.process.timestampNs, c.process.count);
  const l = c.writableLayer;
  if (l) {
    b.add("container_fs_usage_bytes", l.timestampNs, l.usedBytes);
    b.add("container_fs_inodes_total", l.timestampNs, l.fsInodesTotal);
    b.add("container_fs_inodes_free", l.timestampNs, l.fsInodesFree);
    b.add("container_fs_limit_bytes", l.timestampNs, l.fsCapacityBytes);
  }
  b.add("container_last_seen", nowNs, nowNs / NS_PER_S);
  return b.out;
}

/**
 * The metrics of a pod: network counters per interface at pod level (labelled as the "POD"
 * container, as cAdvisor and CRI-O do), and per container its cpu, memory, OOM, process and
 * filesystem metrics. Values are cumulative counters or gauges; seconds are whole seconds.
 */
export function podMetrics(s: SandboxStatsData, nowNs: bigint = BigInt(Date.now()) * 1_000_000n): PodMetricsData {
  const b = new Builder([s.info.id, "POD", ""]);
  const net = s.network;
  if (net) {
    for (const i of net.interfaces) {
      if (i.name === "lo") continue;
      const ts = net.timestampNs;
      b.add("container_network_receive_bytes_total", ts, i.rxBytes, [i.name]);
      b.add("container_network_receive_packets_total", ts, i.rxPackets, [i.name]);
      b.add("container_network_receive_packets_dropped_total", ts, i.rxDropped, [i.name]);
      b.add("container_network_receive_errors_total", ts, i.rxErrors, [i.name]);
      b.add("container_network_transmit_bytes_total", ts, i.txBytes, [i.name]);
      b.add("container_network_transmit_packets_total", ts, i.txPackets, [i.name]);
      b.add("container_network_transmit_packets_dropped_total", ts, i.txDropped, [i.name]);
      b.add("container_network_transmit_errors_total", ts, i.txErrors, [i.name]);
    }
  }
  return {
    podSandboxId: s.info.id,
    metrics: b.out,
    containerMetrics: s.containers.map((c) => ({ containerId: c.info.id, metrics: containerMetrics(c, nowNs) })),
  };
}
