// A small fault-injecting HTTP proxy in front of the test registry (loopback
// only). Requests pass through unchanged until a fault is armed; an armed fault
// hits every GET of the chosen blob digest until it is cleared.

import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

export const FAULT_KINDS = ["http-500", "reset-mid-blob", "stall", "corrupt-bytes", "short-blob", "long-blob", "wrong-content-length", "slow-loris"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultProxy {
  host: string;
  /** Arms `kind` for GETs of blob `digest`. */
  arm(kind: FaultKind, digest: string): void;
  clear(): void;
  /** Requests seen since the last reset, by "METHOD path" and how many got the fault. */
  stats(): { requests: string[]; faulted: number; blobBytes: number };
  resetStats(): void;
  close(): Promise<void>;
}

export async function startFaultProxy(upstream: { host: string }, opts: { stallMs: number; slowLorisMs: number }): Promise<FaultProxy> {
  const [upHost, upPort] = upstream.host.split(":");
  let armed: { kind: FaultKind; digest: string } | undefined;
  let requests: string[] = [];
  let faulted = 0;
  let blobBytes = 0;
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    requests.push(`${req.method} ${req.url}`);
    const isBlobGet = req.method === "GET" && /\/blobs\/sha256:[0-9a-f]{64}$/.test(req.url ?? "");
    const fault = armed !== undefined && isBlobGet && (req.url ?? "").endsWith(armed.digest) ? armed.kind : undefined;
    if (fault === "http-500") {
      faulted++;
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ errors: [{ code: "UNKNOWN", message: "injected fault" }] }));
      return;
    }
    const up = httpRequest(
      { host: upHost, port: Number(upPort), method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
      (upRes) => {
        // Redirects (none with filesystem storage) and errors pass through unchanged.
        if (!fault || upRes.statusCode !== 200) {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          upRes.on("data", (b: Buffer) => {
            if (isBlobGet) blobBytes += b.length;
          });
          upRes.pipe(res);
          return;
        }
        faulted++;
        const chunks: Buffer[] = [];
        upRes.on("data", (b: Buffer) => chunks.push(b));
        upRes.on("end", () => deliver(fault, Buffer.concat(chunks), upRes.headers, res));
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  };

  const deliver = (kind: FaultKind, body: Buffer, headers: IncomingMessage["headers"], res: ServerResponse): void => {
    const h: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(headers)) if (v !== undefined && k !== "content-length" && k !== "transfer-encoding") h[k] = v;
    const half = Math.max(1, Math.floor(body.length / 2));
    switch (kind) {
      case "reset-mid-blob":
        res.writeHead(200, { ...h, "content-length": String(body.length) });
        res.write(body.subarray(0, half), () => later(50, () => res.socket?.resetAndDestroy()));
        return;
      case "stall":
        res.writeHead(200, { ...h, "content-length": String(body.length) });
        res.write(body.subarray(0, half));
        // Longer than the daemon's stall timeout, then the rest (the daemon should have given up by then).
        later(opts.stallMs, () => res.end(body.subarray(half)));
        return;
      case "corrupt-bytes": {
        const bad = Buffer.from(body);
        const i = Math.floor(bad.length / 3);
        bad[i] = (bad[i] ?? 0) ^ 0xff;
        res.writeHead(200, { ...h, "content-length": String(bad.length) });
        res.end(bad);
        return;
      }
      case "short-blob": {
        const short = body.subarray(0, body.length - Math.min(100, half));
        res.writeHead(200, { ...h, "content-length": String(short.length) });
        res.end(short);
        return;
      }
      case "long-blob": {
        const long = Buffer.concat([body, Buffer.alloc(100, 0x41)]);
        res.writeHead(200, { ...h, "content-length": String(long.length) });
        res.end(long);
        return;
      }
      case "wrong-content-length":
        // Announces more than it sends, then closes the connection.
        res.writeHead(200, { ...h, "content-length": String(body.length + 4096) });
        res.write(body, () => later(50, () => res.socket?.destroy()));
        return;
      case "slow-loris": {
        res.writeHead(200, { ...h, "content-length": String(body.length) });
        // A trickle that never stalls long enough to trip the stall timer, for slowLorisMs.
        const ticks = Math.max(1, Math.floor(opts.slowLorisMs / 250));
        const n = Math.max(1, Math.ceil(body.length / ticks));
        let off = 0;
        const tick = (): void => {
          if (res.destroyed) return;
          res.write(body.subarray(off, off + n));
          off += n;
          if (off >= body.length) res.end();
          else later(250, tick);
        };
        tick();
        return;
      }
      case "http-500":
        return;
    }
  };

  const server: Server = createServer(forward);
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    arm(kind, digest) {
      armed = { kind, digest: digest.replace(/^sha256:/, "") };
    },
    clear() {
      armed = undefined;
    },
    stats: () => ({ requests: [...requests], faulted, blobBytes }),
    resetStats() {
      requests = [];
      faulted = 0;
      blobBytes = 0;
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
