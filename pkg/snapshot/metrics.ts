import { Counter, Histogram, registry } from "../metrics/index.js";

export const applyTotal = new Counter({
  name: "berth_snapshot_layer_applies_total",
  help: "Layer applies by result (ok, error, cancelled)",
  labelNames: ["result"] as const,
  registers: [registry],
});

export const applyDuration = new Histogram({
  name: "berth_snapshot_layer_apply_duration_seconds",
  help: "Time to decompress, verify and extract one layer",
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
  registers: [registry],
});
