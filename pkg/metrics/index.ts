import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, Histogram, Gauge } from "./prom.js";
import { registry } from "./registry.js";

export { Counter, Histogram, Gauge } from "./prom.js";
export { registry } from "./registry.js";
export * from "./sli.js";

/** Latency buckets of CRI calls: 100 µs reads up to ten-minute pulls. */
export const RPC_LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600] as const;

export const rpcRequests = new Counter({
  name: "berth_cri_requests_total",
  help: "CRI calls by service, method and gRPC status code",
  labelNames: ["service", "method", "code"] as const,
  registers: [registry],
});

export const rpcErrors = new Counter({
  name: "berth_cri_errors_total",
  help: "CRI calls that ended in an error, by method and gRPC status code",
  labelNames: ["service", "method", "code"] as const,
  registers: [registry],
});

export const rpcLatency = new Histogram({
  name: "berth_cri_request_duration_seconds",
  help: "CRI call latency by service and method",
  labelNames: ["service", "method"] as const,
  buckets: [...RPC_LATENCY_BUCKETS],
  registers: [registry],
});

/**
 * CRI calls being served now, by service: counted in a plain object on each call and read
 * into the gauge when /metrics is scraped (a labelled inc/dec hashes its labels twice a call).
 */
export const rpcInflightCount: Record<string, number> = Object.create(null) as Record<string, number>;

export const rpcInflight = new Gauge({
  name: "berth_cri_requests_in_flight",
  help: "CRI calls being served now",
  labelNames: ["service"] as const,
  registers: [registry],
  collect() {
    for (const service of Object.keys(rpcInflightCount)) this.set({ service }, rpcInflightCount[service] ?? 0);
  },
});

/** Extra JSON documents served next to /metrics (e.g. /slo), keyed by path. */
export type JsonRoutes = Record<string, () => unknown>;

/** Serves GET /metrics on host:port (loopback by default), plus /healthz and the given JSON routes. */
export class MetricsServer {
  #server: Server | undefined;

  constructor(private readonly routes: JsonRoutes = {}) {}

  async listen(address: string): Promise<AddressInfo> {
    const i = address.lastIndexOf(":");
    const host = address.slice(0, i).replace(/^\[|\]$/g, "");
    const port = Number(address.slice(i + 1));
    const server = createServer((req, res) => {
      if (req.method === "GET" && (req.url === "/metrics" || req.url?.startsWith("/metrics?"))) {
        registry
          .metrics()
          .then((body) => {
            res.writeHead(200, { "content-type": registry.contentType });
            res.end(body);
          })
          .catch((err: unknown) => {
            res.writeHead(500);
            res.end(String(err));
          });
        return;
      }
      const path = (req.url ?? "").split("?")[0] ?? "";
      const route = req.method === "GET" ? this.routes[path] : undefined;
      if (route) {
        Promise.resolve()
          .then(route)
          .then((doc) => {
            res.writeHead(200, { "content-type": "application/json" });
            res.end(JSON.stringify(doc, null, 2) + "\n");
          })
          .catch((err: unknown) => {
            res.writeHead(500, { "content-type": "text/plain" });
            res.end(`${String(err)}\n`);
          });
        return;
      }
      if (req.url === "/healthz") {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("ok\n");
        return;
      }
      res.writeHead(404, { "content-type": "text/plain" });
      res.end(`not found; try /metrics${Object.keys(this.routes).map((r) => ` or ${r}`).join("")}\n`);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
    this.#server = server;
    return server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    const s = this.#server;
    if (!s) return;
    this.#server = undefined;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
