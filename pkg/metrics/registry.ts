import { Registry, collectDefaultMetrics } from "./prom.js";

/** The one metrics registry of the daemon. Components register their metrics here. */
export const registry = new Registry();
collectDefaultMetrics(registry, "berth_");
