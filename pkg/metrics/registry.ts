import { Registry, collectDefaultMetrics } from "prom-client";

/** The one metrics registry of the daemon. Components register their metrics here. */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: "berth_" });
