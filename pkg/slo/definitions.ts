/**
 * The service-level objectives berthd computes over its own counters. Each
 * definition reads the cumulative (since process start) events of its SLI from
 * the metrics registry: how many there were and how many were bad, by reason.
 * The same expressions, in PromQL, are the recording rules in
 * deploy/prometheus-rules.yaml (docs/slis.md lists both side by side).
 */
import type { SloConfig } from "../config/index.js";
import { PULL_DURATION_BUCKETS, RPC_LATENCY_BUCKETS, type registry as Registry } from "../metrics/index.js";

/** Cumulative events of one SLI: all of them, and the bad ones by reason. */
export interface SliCounts {
  total: number;
  bad: Map<string, number>;
}

export interface SloDefinition {
  name: string;
  /** What the objective promises, in a few words. */
  title: string;
  /** As a fraction (0.995); null for an indicator shown without an objective (exits, unpacks). */
  objective: number | null;
  windowSeconds: number;
  thresholdSeconds?: number;
  read(reg: typeof Registry): Promise<SliCounts>;
}

/** The CRI methods that only read state: the read-latency SLO covers them. */
export const READ_METHODS = /^(Version|Status|List.*|.*Status|.*Stats|ImageFsInfo)$/;
/** The gRPC codes that are the runtime's fault, not the caller's. */
export const SERVER_ERROR_CODES = new Set(["INTERNAL", "UNKNOWN", "UNAVAILABLE", "DEADLINE_EXCEEDED", "DATA_LOSS"]);

type Labels = Record<string, string | number>;
interface Sample {
  labels: Labels;
  value: number;
  metricName?: string;
}

async function samples(reg: typeof Registry, name: string): Promise<Sample[]> {
  const m = reg.getSingleMetric(name);
  if (!m) return [];
  const got = await m.get();
  return got.values as Sample[];
}

function add(map: Map<string, number>, key: string, n: number): void {
  if (n > 0) map.set(key, (map.get(key) ?? 0) + n);
}

const str = (v: string | number | undefined): string => (v === undefined ? "" : String(v));

/**
 * Latency SLI from a histogram: total = observations, bad = observations above the
 * threshold bucket, by the key the labels give.
 */
async function latency(reg: typeof Registry, name: string, threshold: number, keep: (l: Labels) => boolean, key: (l: Labels) => string): Promise<SliCounts> {
  const out: SliCounts = { total: 0, bad: new Map() };
  const counts = new Map<string, number>();
  const within = new Map<string, number>();
  for (const s of await samples(reg, name)) {
    if (!keep(s.labels)) continue;
    const k = key(s.labels);
    if (s.metricName === `${name}_count`) {
      counts.set(k, (counts.get(k) ?? 0) + s.value);
      out.total += s.value;
    } else if (s.metricName === `${name}_bucket` && Number(s.labels["le"]) === threshold) {
      within.set(k, (within.get(k) ?? 0) + s.value);
    }
  }
  for (const [k, n] of counts) add(out.bad, k, n - (within.get(k) ?? 0));
  return out;
}

function checkThreshold(key: string, value: number, buckets: readonly number[], metric: string): void {
  if (!buckets.includes(value)) {
    throw new Error(`config key "${key}": ${value} is not a bucket bound of ${metric}; use one of ${buckets.join(", ")}`);
  }
}

const fmtSeconds = (s: number): string => (s < 1 ? `${Math.round(s * 1000)}ms` : `${s}s`);

/** The objectives from the [slo] config; a latency threshold off the histogram's buckets is refused. */
export function sloDefinitions(cfg: SloConfig): SloDefinition[] {
  const day = 86_400;
  const pullThreshold = cfg.image_pull_latency.threshold_seconds;
  const readThreshold = cfg.cri_read_latency.threshold_seconds;
  checkThreshold("slo.image_pull_latency.threshold_seconds", pullThreshold, PULL_DURATION_BUCKETS, "berth_image_pull_duration_seconds");
  checkThreshold("slo.cri_read_latency.threshold_seconds", readThreshold, RPC_LATENCY_BUCKETS, "berth_cri_request_duration_seconds");
  return [
    {
      name: "container_start",
      title: "containers start",
      objective: cfg.container_start.objective / 100,
      windowSeconds: cfg.container_start.window_days * day,
      async read(reg) {
        const out: SliCounts = { total: 0, bad: new Map() };
        for (const s of await samples(reg, "berth_container_starts_total")) {
          // A start the caller cancelled is neither good nor bad.
          if (s.labels["reason"] === "cancelled") continue;
          out.total += s.value;
          if (s.labels["result"] !== "success") add(out.bad, `${str(s.labels["phase"])}: ${str(s.labels["reason"])} (${str(s.labels["handler"])})`, s.value);
        }
        return out;
      },
    },
    {
      name: "image_pull",
      title: "image pulls succeed",
      objective: cfg.image_pull.objective / 100,
      windowSeconds: cfg.image_pull.window_days * day,
      async read(reg) {
        const out: SliCounts = { total: 0, bad: new Map() };
        for (const s of await samples(reg, "berth_image_pull_duration_seconds")) {
          if (s.metricName === "berth_image_pull_duration_seconds_count") out.total += s.value;
        }
        for (const s of await samples(reg, "berth_image_pull_failures_total")) {
          // A pull the caller cancelled is neither good nor bad.
          if (s.labels["reason"] === "cancelled") continue;
          out.total += s.value;
          add(out.bad, `${str(s.labels["reason"])} from ${str(s.labels["registry"])}`, s.value);
        }
        return out;
      },
    },
    {
      name: "image_pull_latency",
      title: `pulls faster than ${fmtSeconds(pullThreshold)}`,
      objective: cfg.image_pull_latency.objective / 100,
      windowSeconds: cfg.image_pull_latency.window_days * day,
      thresholdSeconds: pullThreshold,
      read: (reg) =>
        latency(reg, "berth_image_pull_duration_seconds", pullThreshold, () => true, (l) => `slower than ${fmtSeconds(pullThreshold)} from ${str(l["registry"])} (cache ${str(l["cache"])})`),
    },
    {
      name: "cri_read_latency",
      title: `CRI reads faster than ${fmtSeconds(readThreshold)}`,
      objective: cfg.cri_read_latency.objective / 100,
      windowSeconds: cfg.cri_read_latency.window_days * day,
      thresholdSeconds: readThreshold,
      read: (reg) =>
        latency(
          reg,
          "berth_cri_request_duration_seconds",
          readThreshold,
          (l) => READ_METHODS.test(str(l["method"])),
          (l) => `${str(l["method"])} slower than ${fmtSeconds(readThreshold)}`,
        ),
    },
    {
      name: "cri_availability",
      title: "CRI calls without server errors",
      objective: cfg.cri_availability.objective / 100,
      windowSeconds: cfg.cri_availability.window_days * day,
      async read(reg) {
        const out: SliCounts = { total: 0, bad: new Map() };
        for (const s of await samples(reg, "berth_cri_requests_total")) {
          out.total += s.value;
          const code = str(s.labels["code"]);
          if (SERVER_ERROR_CODES.has(code)) add(out.bad, `${str(s.labels["method"])} ${code}`, s.value);
        }
        return out;
      },
    },
    {
      name: "container_exits",
      title: "exits, not clean by class",
      objective: null,
      windowSeconds: cfg.retention_days * day,
      async read(reg) {
        const out: SliCounts = { total: 0, bad: new Map() };
        for (const s of await samples(reg, "berth_container_exits_total")) {
          const cls = str(s.labels["class"]);
          if (cls === "start_error") continue;
          out.total += s.value;
          if (cls !== "completed") add(out.bad, `${cls} (${str(s.labels["handler"])})`, s.value);
        }
        return out;
      },
    },
    {
      name: "snapshot_unpack",
      title: "layer unpacks, failed by reason",
      objective: null,
      windowSeconds: cfg.retention_days * day,
      async read(reg) {
        const out: SliCounts = { total: 0, bad: new Map() };
        for (const s of await samples(reg, "berth_image_layers_unpacked_total")) out.total += s.value;
        for (const s of await samples(reg, "berth_snapshot_unpack_errors_total")) {
          out.total += s.value;
          add(out.bad, str(s.labels["reason"]), s.value);
        }
        return out;
      },
    },
    {
      name: "monitor",
      title: "exits seen by their monitor",
      objective: cfg.monitor.objective / 100,
      windowSeconds: cfg.monitor.window_days * day,
      async read(reg) {
        const out: SliCounts = { total: 0, bad: new Map() };
        for (const s of await samples(reg, "berth_container_exits_total")) {
          if (s.labels["class"] !== "start_error") out.total += s.value;
        }
        for (const s of await samples(reg, "berth_monitor_losses_total")) add(out.bad, `monitor lost (${str(s.labels["handler"])})`, s.value);
        return out;
      },
    },
  ];
}
