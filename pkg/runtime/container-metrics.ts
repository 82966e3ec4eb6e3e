import { Gauge, Histogram, registry } from "../metrics/index.js";

export const containerCreateDuration = new Histogram({
  name: "berth_container_create_duration_seconds",
  help: "CreateContainer latency inside the runtime (rootfs, spec, conmon + OCI runtime create)",
  buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});

export const containerStartDuration = new Histogram({
  name: "berth_container_start_duration_seconds",
  help: "StartContainer latency inside the runtime (OCI runtime start)",
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  registers: [registry],
});

/** Set by the container manager: the number of live monitors, read at scrape time. */
export const monitorsRunning = new Gauge({
  name: "berth_monitors_running",
  help: "conmon monitors of created or running containers",
  registers: [registry],
});
