/**
 * The service-level indicators berth exports, and the hooks that count them.
 *
 * Each hook is one in-memory counter update plus, for a bad event, one structured
 * log line naming the SLI it counts against and the reason: the SLO view
 * (`berthctl slo`, /slo) reads the same counters, so its reasons and the logs agree.
 * Labels are bounded: runtime handler, registry host, phase, reason class; never
 * pod, container or image names. docs/slis.md documents every series.
 */
import { statfs } from "node:fs/promises";
import { Counter, Gauge, Histogram } from "./prom.js";
import { errorKind, errorMessage } from "../errdefs/index.js";
import { logger } from "../log/index.js";
import { registry } from "./registry.js";

// ------------------------------------------------------------------ M1 container starts

export const containerStarts = new Counter({
  name: "berth_container_starts_total",
  help: "Start attempts by result (success, error), phase (sandbox: RunPodSandbox; create, start: CreateContainer, StartContainer), reason and runtime handler",
  labelNames: ["result", "phase", "reason", "handler"] as const,
  registers: [registry],
});

// ------------------------------------------------------------------ M2 / M8 image pulls

export const PULL_DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600] as const;

export const pullDuration = new Histogram({
  name: "berth_image_pull_duration_seconds",
  help: "Latency of successful image pulls by registry host and cache (hit: no layer downloaded, miss: some downloaded)",
  labelNames: ["registry", "cache"] as const,
  buckets: [...PULL_DURATION_BUCKETS],
  registers: [registry],
});

export const pullFailures = new Counter({
  name: "berth_image_pull_failures_total",
  help: "Failed image pulls by registry host and reason",
  labelNames: ["registry", "reason"] as const,
  registers: [registry],
});

export const pullLayers = new Counter({
  name: "berth_image_pull_layers_total",
  help: "Layers of pulled images by registry host and whether they were already present (cached=true) or downloaded",
  labelNames: ["registry", "cached"] as const,
  registers: [registry],
});

export const pullLayerBytes = new Counter({
  name: "berth_image_pull_layer_bytes_total",
  help: "Compressed bytes of pulled layers by registry host and whether they were already present (cached=true) or downloaded",
  labelNames: ["registry", "cached"] as const,
  registers: [registry],
});

// ------------------------------------------------------------------ M6 unpack errors

export const unpackErrors = new Counter({
  name: "berth_snapshot_unpack_errors_total",
  help: "Layer unpacks into snapshots that failed, by reason",
  labelNames: ["reason"] as const,
  registers: [registry],
});

// ------------------------------------------------------------------ M4 / M7 / M9 exits, monitors, OOM

export const containerExits = new Counter({
  name: "berth_container_exits_total",
  help: "Container exits by CRI reason (Completed, Error, OOMKilled, StartError), exit class (completed, error, signal, oom, start_error) and runtime handler",
  labelNames: ["reason", "class", "handler"] as const,
  registers: [registry],
});

export const oomKills = new Counter({
  name: "berth_container_oom_kills_total",
  help: "Containers killed by the kernel OOM killer (conmon's oom marker), by runtime handler",
  labelNames: ["handler"] as const,
  registers: [registry],
});

export const monitorLosses = new Counter({
  name: "berth_monitor_losses_total",
  help: "Containers whose conmon monitor died before reporting their exit, by runtime handler",
  labelNames: ["handler"] as const,
  registers: [registry],
});

// ------------------------------------------------------------------ reasons

/** Bounded reason of a failed container create/start, from the error's kind and the OCI runtime's message. */
export function startFailureReason(err: unknown): string {
  const kind = errorKind(err);
  if (kind === "cancelled") return "cancelled";
  if (kind === "deadline-exceeded") return "timeout";
  const msg = errorMessage(err);
  if (/\bcni\b|network plugin|network of pod/i.test(msg)) return /timed out|timeout|deadline/i.test(msg) ? "cni_timeout" : "cni_error";
  if (/executable file not found|no such file or directory|not found in \$PATH|exec: .* not found/i.test(msg) && /exec|start|\$PATH|command|entrypoint/i.test(msg)) return "command_not_found";
  if (/exec format error/i.test(msg)) return "exec_format_error";
  if (/permission denied/i.test(msg)) return "permission_denied";
  if (/timed out|timeout/i.test(msg)) return "timeout";
  if (/cannot allocate memory|out of memory|oom/i.test(msg)) return "out_of_memory";
  if (/mount|overlay|rootfs/i.test(msg)) return "rootfs";
  if (kind === "failed-precondition" && /not ready|is (exited|running|created)/i.test(msg)) return "precondition";
  if (kind === "not-found") return "not_found";
  return "oci_runtime_error";
}

/** Bounded reason of a failed pull, from the error's kind, HTTP status or network error code. */
export function pullFailureReason(err: unknown): string {
  const e = err as { status?: unknown; code?: unknown; name?: unknown };
  if (typeof e.status === "number") {
    if (e.status >= 500) return "registry_5xx";
    if (e.status === 401 || e.status === 403) return "unauthorized";
    if (e.status === 404) return "not_found";
    if (e.status === 429) return "rate_limited";
    return "registry_4xx";
  }
  if (typeof e.code === "string" && /^(ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE|ETIMEDOUT)$/.test(e.code)) return "network";
  if (e.name === "ContentVerificationError") return "verification";
  const msg = errorMessage(err);
  const kind = errorKind(err);
  if (/answered HTTP 5\d\d|HTTP 5\d\d/.test(msg)) return "registry_5xx";
  if (/unpack|apply layer|tar|gzip|zlib|whiteout/i.test(msg)) return "unpack";
  switch (kind) {
    case "not-found":
      return "not_found";
    case "permission-denied":
      return "unauthorized";
    case "deadline-exceeded":
      return "timeout";
    case "cancelled":
      return "cancelled";
    case "unavailable":
      return "registry_unavailable";
    case "invalid-argument":
      return "invalid";
    case "failed-precondition":
      return "verification";
    case "resource-exhausted":
      return "no_space";
    default:
      return /ECONN|socket hang up|network/i.test(msg) ? "network" : "internal";
  }
}

/** Bounded reason of a failed layer unpack. */
export function unpackFailureReason(err: unknown): string {
  const kind = errorKind(err);
  if (kind === "cancelled") return "cancelled";
  const code = (err as { code?: unknown }).code;
  if (code === "ENOSPC" || code === "EDQUOT" || kind === "resource-exhausted") return "no_space";
  const msg = errorMessage(err);
  if (/ENOSPC|no space left/i.test(msg)) return "no_space";
  if (/diff ?id|digest|does not match|mismatch/i.test(msg)) return "digest_mismatch";
  if (/gzip|zlib|zstd|unexpected end|truncated|corrupt|invalid tar|checksum/i.test(msg)) return "corrupt_layer";
  if (kind === "invalid-argument" || kind === "failed-precondition") return "invalid_layer";
  if (/EIO|EROFS|EACCES|EPERM/.test(msg)) return "io";
  return "internal";
}

/** Exit class of a container exit: 0, error (1-128), signal (>128 or killed), OOM. */
export function exitClass(exitCode: number, reason: string): string {
  if (reason === "OOMKilled") return "oom";
  if (reason === "StartError") return "start_error";
  if (exitCode === 0) return "completed";
  if (exitCode > 128) return "signal";
  return "error";
}

// ------------------------------------------------------------------ hooks

/** A container reached running (phase start), or a pod sandbox became ready (phase sandbox). */
export function recordStartSuccess(handler: string, phase: "start" | "sandbox" = "start"): void {
  containerStarts.inc({ result: "success", phase, reason: "ok", handler });
}

/** RunPodSandbox, CreateContainer or StartContainer failed after work began: counts against the container start SLI. */
export function recordStartFailure(phase: "sandbox" | "create" | "start", handler: string, err: unknown, fields: Record<string, unknown> = {}): string {
  const reason = startFailureReason(err);
  containerStarts.inc({ result: "error", phase, reason, handler });
  logger().warn({ ...fields, sli: "container_start", phase, reason, handler, err: errorMessage(err) }, `container ${phase} failed (counts against container_start: ${reason})`);
  return reason;
}

/** A pull finished. */
export function recordPullSuccess(registryHost: string, seconds: number, cacheHit: boolean): void {
  pullDuration.observe({ registry: registryHost, cache: cacheHit ? "hit" : "miss" }, seconds);
}

/** A pull failed: counts against the image pull SLI. */
export function recordPullFailure(registryHost: string, err: unknown, fields: Record<string, unknown> = {}): string {
  const reason = pullFailureReason(err);
  pullFailures.inc({ registry: registryHost, reason });
  logger().warn({ ...fields, sli: "image_pull", registry: registryHost, reason, err: errorMessage(err) }, `image pull failed (counts against image_pull: ${reason} from ${registryHost})`);
  return reason;
}

/** One layer of a pull: already present (cached) or downloaded. */
export function recordPullLayer(registryHost: string, cached: boolean, bytes: number): void {
  const labels = { registry: registryHost, cached: cached ? "true" : "false" };
  pullLayers.inc(labels);
  pullLayerBytes.inc(labels, Math.max(0, bytes));
}

/** A layer unpack failed: counts against the unpack SLI (and fails the pull). */
export function recordUnpackFailure(err: unknown, fields: Record<string, unknown> = {}): string {
  const reason = unpackFailureReason(err);
  unpackErrors.inc({ reason });
  logger().warn({ ...fields, sli: "snapshot_unpack", reason, err: errorMessage(err) }, `layer unpack failed (counts against snapshot_unpack: ${reason})`);
  return reason;
}

/** A container exited (or was found exited); OOM kills are counted apart too. */
export function recordExit(handler: string, exitCode: number, reason: string): void {
  containerExits.inc({ reason, class: exitClass(exitCode, reason), handler });
  if (reason === "OOMKilled") oomKills.inc({ handler });
}

/** A monitor died without an exit file: counts against the monitor SLI. */
export function recordMonitorLoss(handler: string, fields: Record<string, unknown> = {}): void {
  monitorLosses.inc({ handler });
  logger().warn({ ...fields, sli: "monitor", reason: "monitor_lost", handler }, "container monitor lost (counts against monitor: monitor_lost)");
}

// ------------------------------------------------------------------ M5 disk

const storeBytes = new Gauge({
  name: "berth_store_bytes",
  help: "Bytes held by a store (content: blobs and partial downloads; snapshots: unpacked layers and container upper dirs)",
  labelNames: ["store"] as const,
  registers: [registry],
  async collect() {
    for (const s of diskStores) {
      // Snapshot usage walks the upper dirs of running containers: at most every 15 s.
      if (!s.used || Date.now() - s.measuredAt < 15_000) continue;
      try {
        this.set({ store: s.store }, await s.used());
        s.measuredAt = Date.now();
      } catch {
        // A store being closed during a scrape: keep the last value.
      }
    }
  },
});

const fsFree = new Gauge({
  name: "berth_filesystem_free_bytes",
  help: "Free bytes (for unprivileged users) of the filesystem holding a store",
  labelNames: ["store"] as const,
  registers: [registry],
  async collect() {
    for (const s of diskStores) {
      try {
        const st = await statfs(s.path);
        this.set({ store: s.store }, Number(st.bavail) * Number(st.bsize));
        fsSize.set({ store: s.store }, Number(st.blocks) * Number(st.bsize));
      } catch {
        // The directory is gone (shutting down): no value this scrape.
      }
    }
  },
});

const fsSize = new Gauge({
  name: "berth_filesystem_size_bytes",
  help: "Size of the filesystem holding a store",
  labelNames: ["store"] as const,
  registers: [registry],
});

interface DiskStore {
  store: string;
  path: string;
  used?: () => number | Promise<number>;
  measuredAt: number;
}
const diskStores: DiskStore[] = [];

/** Reports a store's bytes and its filesystem's free space at each scrape. */
export function watchStoreDisk(store: string, path: string, used?: () => number | Promise<number>): void {
  const i = diskStores.findIndex((s) => s.store === store);
  const entry: DiskStore = used ? { store, path, used, measuredAt: 0 } : { store, path, measuredAt: 0 };
  if (i >= 0) diskStores[i] = entry;
  else diskStores.push(entry);
  void fsFree;
  void storeBytes;
}
