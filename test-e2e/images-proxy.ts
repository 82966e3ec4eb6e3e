// A small fault-injecting HTTP proxy for registry tests: counts requests per
// path, records Range headers, flips a byte in chosen blobs, cuts a response
// in the middle, or holds it until the test says so.

import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface ProxyRule {
  /** Flip one byte in the middle of the body. */
  flip?: boolean;
  /** Send this fraction of the body, then cut the connection (once per rule). */
  cutAt?: number;
  /** Send this fraction, hold until release(), then cut the connection (as a registry dying mid-blob would). */
  holdAt?: number;
}

export class RegistryProxy {
  upstream: string;
  readonly gets = new Map<string, number>();
  readonly ranges: Array<{ path: string; range: string }> = [];
  readonly rules = new Map<string, ProxyRule>();
  #server: Server | undefined;
  #held: Array<() => void> = [];
  #onHold: Array<() => void> = [];
  port = 0;

  constructor(upstream: string) {
    this.upstream = upstream;
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.#server = createServer((req, res) => this.#handle(req, res));
    await new Promise<void>((resolve) => this.#server?.listen(0, "127.0.0.1", resolve));
    this.port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  /** Resolves when a response is being held. */
  held(): Promise<void> {
    return new Promise((r) => this.#onHold.push(r));
  }

  release(): void {
    for (const r of this.#held) r();
    this.#held = [];
  }

  blobGets(digest: string): number {
    let n = 0;
    for (const [p, c] of this.gets) if (p.endsWith(`/blobs/${digest}`)) n += c;
    return n;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const path = req.url ?? "/";
    if (req.method === "GET") this.gets.set(path, (this.gets.get(path) ?? 0) + 1);
    const range = req.headers["range"];
    if (typeof range === "string") this.ranges.push({ path, range });
    const digest = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(path)?.[1];
    const rule = digest ? this.rules.get(digest) : undefined;
    const up = new URL(path, `http://${this.upstream}`);
    const headers = { ...req.headers, host: this.upstream };
    const upReq = request(up, { method: req.method ?? "GET", headers }, (upRes) => {
      const total = Number(upRes.headers["content-length"] ?? 0);
      if (!rule || req.method !== "GET" || upRes.statusCode !== 200 && upRes.statusCode !== 206 || total === 0) {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
        return;
      }
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      let sent = 0;
      const flipAt = rule.flip ? Math.floor(total / 2) : -1;
      const cutAt = rule.cutAt !== undefined ? Math.floor(total * rule.cutAt) : -1;
      const holdAt = rule.holdAt !== undefined ? Math.floor(total * rule.holdAt) : -1;
      if (rule.cutAt !== undefined) delete rule.cutAt;
      if (rule.holdAt !== undefined) delete rule.holdAt;
      let holding = false;
      upRes.on("data", (chunk: Buffer) => {
        let c = chunk;
        if (flipAt >= sent && flipAt < sent + c.length) {
          c = Buffer.from(c);
          c[flipAt - sent] = ((c[flipAt - sent] as number) ^ 0xff) & 0xff;
        }
        if (cutAt >= 0 && sent + c.length >= cutAt) {
          res.write(c.subarray(0, Math.max(0, cutAt - sent)));
          upRes.destroy();
          res.socket?.destroy();
          return;
        }
        if (holdAt >= 0 && !holding && sent + c.length >= holdAt) {
          holding = true;
          res.write(c.subarray(0, Math.max(0, holdAt - sent)));
          const rest = c.subarray(Math.max(0, holdAt - sent));
          sent += c.length;
          upRes.pause();
          this.#held.push(() => {
            void rest;
            upRes.destroy();
            res.socket?.destroy();
          });
          for (const r of this.#onHold) r();
          this.#onHold = [];
          return;
        }
        sent += c.length;
        res.write(c);
      });
      upRes.on("end", () => res.end());
      upRes.on("error", () => res.socket?.destroy());
      upRes.on("close", () => {
        if (!upRes.complete) res.socket?.destroy();
      });
    });
    upReq.on("error", () => {
      if (!res.headersSent) {
        res.writeHead(502, { "content-type": "text/plain" });
        res.end("upstream unavailable\n");
      } else res.socket?.destroy();
    });
    req.pipe(upReq);
  }

  async stop(): Promise<void> {
    this.release();
    const s = this.#server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}
