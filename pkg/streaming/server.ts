/**
 * The streaming server: hands out single-use URLs for Exec, Attach and
 * PortForward and serves them over SPDY/3.1 (kubelet, crictl) or WebSocket.
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { networkInterfaces } from "node:os";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { UnavailableError } from "../errdefs/index.js";
import { rootLogger, type Logger } from "../log/index.js";
import { SpdyConnection } from "./spdy/connection.js";
import {
  PORT_FORWARD_PROTOCOLS,
  REMOTE_COMMAND_PROTOCOLS,
  serveSpdyPortForward,
  serveSpdyRemoteCommand,
  type HandlerOptions,
} from "./spdy-handlers.js";
import { TokenCache, type PendingRequest } from "./tokens.js";
import type { AttachRequest, ExecRequest, PortForwardRequest, StreamingBackend } from "./types.js";
import { validateAttach, validateExec, validatePortForward } from "./validate.js";
import { WS_PORT_FORWARD_PROTOCOLS, WS_REMOTE_COMMAND_PROTOCOLS, serveWsPortForward, serveWsRemoteCommand } from "./websocket.js";

export interface StreamingServerOptions {
  /** host:port to listen on; port 0 picks a free one; "" disables the server. */
  address: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  tokenTtlSeconds: number;
  idleTimeoutSeconds: number;
  /** How long a client has to create its streams (kubelet uses 30 s). */
  streamCreationTimeoutSeconds?: number;
  /** Advertised base URL (default: derived from the bound address). */
  baseUrl?: string;
  backend: StreamingBackend;
  log?: Logger;
}

/** The `streaming` section of the berth config. */
export interface StreamingConfig {
  address: string;
  tls_cert_file: string;
  tls_key_file: string;
  token_ttl_seconds: number;
  idle_timeout_seconds: number;
}

const PATH_RE = /^\/(exec|attach|portforward)\/([A-Za-z0-9_-]{1,64})$/;

export class StreamingServer {
  #opts: StreamingServerOptions;
  #log: Logger;
  #tokens: TokenCache;
  #server: http.Server | https.Server | undefined;
  #wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });
  #baseUrl = "";
  #stop = new AbortController();
  #sockets = new Set<Duplex>();
  #sessions = new Set<Promise<void>>();

  constructor(opts: StreamingServerOptions) {
    this.#opts = opts;
    this.#log = (opts.log ?? rootLogger()).child({ component: "streaming" });
    this.#tokens = new TokenCache({ ttlMs: opts.tokenTtlSeconds * 1000 });
  }

  static fromConfig(config: StreamingConfig, backend: StreamingBackend, log?: Logger): StreamingServer {
    return new StreamingServer({
      address: config.address,
      ...(config.tls_cert_file ? { tlsCertFile: config.tls_cert_file } : {}),
      ...(config.tls_key_file ? { tlsKeyFile: config.tls_key_file } : {}),
      tokenTtlSeconds: config.token_ttl_seconds,
      idleTimeoutSeconds: config.idle_timeout_seconds,
      backend,
      ...(log ? { log } : {}),
    });
  }

  /** The advertised base URL, e.g. http://127.0.0.1:41234 (empty before start or when disabled). */
  get baseUrl(): string {
    return this.#baseUrl;
  }

  /** Number of open streaming connections. */
  get activeConnections(): number {
    return this.#sockets.size;
  }

  async start(): Promise<void> {
    if (!this.#opts.address || this.#server) return;
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(this.#opts.address);
    if (!m) throw new Error(`streaming.address "${this.#opts.address}" is not host:port`);
    const host = m[1] ?? m[2]!;
    const port = Number(m[3]);
    const tls = this.#opts.tlsCertFile && this.#opts.tlsKeyFile;
    const server = tls
      ? https.createServer({ cert: readFileSync(this.#opts.tlsCertFile!), key: readFileSync(this.#opts.tlsKeyFile!) })
      : http.createServer();
    server.on("request", (req, res) => this.#onRequest(req, res));
    server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head));
    server.on("clientError", (_err, socket: Duplex) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        // An accept that fails (EMFILE/ENFILE with no fd left) is emitted here: without a
        // listener it would crash berthd; the server keeps accepting once fds are free.
        server.on("error", (err) => this.#log.warn({ err }, "streaming server accept error"));
        resolve();
      });
    });
    this.#server = server;
    const addr = server.address() as AddressInfo;
    this.#baseUrl = this.#opts.baseUrl ?? `${tls ? "https" : "http"}://${advertisedHost(addr.address)}:${addr.port}`;
    this.#log.info({ url: this.#baseUrl }, "streaming server listening");
  }

  /** Stops listening, aborts every session (their backends get the abort) and closes connections. */
  async stop(): Promise<void> {
    this.#stop.abort(new Error("streaming server stopping"));
    const server = this.#server;
    this.#server = undefined;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    // Sessions see the abort and wind down; whatever is left after a grace period is cut.
    await Promise.race([Promise.allSettled([...this.#sessions]), new Promise((r) => setTimeout(r, 5000).unref())]);
    for (const s of this.#sockets) s.destroy();
    server?.closeAllConnections();
    this.#wss.close();
    await closed;
  }

  getExec(req: ExecRequest): { url: string } {
    validateExec(req);
    return this.#url("exec", { kind: "exec", req });
  }

  getAttach(req: AttachRequest): { url: string } {
    validateAttach(req);
    return this.#url("attach", { kind: "attach", req });
  }

  getPortForward(req: PortForwardRequest): { url: string } {
    validatePortForward(req);
    return this.#url("portforward", { kind: "portforward", req });
  }

  #url(path: string, pending: PendingRequest): { url: string } {
    if (!this.#server) throw new UnavailableError("the streaming server is not running (streaming.address is empty or berthd is stopping)");
    const token = this.#tokens.insert(pending);
    return { url: `${this.#baseUrl}/${path}/${token}` };
  }

  #onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const m = PATH_RE.exec(new URL(req.url ?? "/", "http://x").pathname);
    if (!m) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    this.#tokens.consume(m[2]!);
    res.writeHead(400, { "content-type": "text/plain" }).end("an upgrade to SPDY/3.1 or websocket is required\n");
  }

  #onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", (err) => this.#log.debug({ err }, "streaming socket error"));
    const url = new URL(req.url ?? "/", "http://x");
    const m = PATH_RE.exec(url.pathname);
    if (!m) return reject(socket, 404, "not found");
    const kind = m[1] as PendingRequest["kind"];
    const pending = this.#tokens.consume(m[2]!);
    if (!pending || pending.kind !== kind) return reject(socket, 404, "unknown or expired streaming token");
    const upgrade = (req.headers.upgrade ?? "").toLowerCase();
    const log = this.#log.child(
      pending.kind === "portforward"
        ? { op: kind, podSandboxId: pending.req.podSandboxId }
        : { op: kind, containerId: pending.req.containerId },
    );
    if (upgrade === "websocket") return this.#upgradeWebSocket(req, socket, head, pending, url, log);
    if (upgrade.startsWith("spdy/3.1")) return this.#upgradeSpdy(req, socket, head, pending, log);
    return reject(socket, 400, `unsupported upgrade "${req.headers.upgrade ?? ""}"`);
  }

  #track(socket: Duplex, session: Promise<void>, log: Logger): void {
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
    const p = session
      .catch((err) => log.warn({ err }, "streaming session failed"))
      .finally(() => {
        this.#sessions.delete(p);
        log.debug("streaming session ended");
      });
    this.#sessions.add(p);
  }

  #upgradeSpdy(req: http.IncomingMessage, socket: Duplex, head: Buffer, pending: PendingRequest, log: Logger): void {
    const offered = (req.headersDistinct["x-stream-protocol-version"] ?? [])
      .flatMap((v) => v.split(","))
      .map((v) => v.trim())
      .filter((v) => v !== "");
    const supported = pending.kind === "portforward" ? PORT_FORWARD_PROTOCOLS : REMOTE_COMMAND_PROTOCOLS;
    let protocol: string;
    if (offered.length === 0) {
      protocol = supported[supported.length - 1]!; // a legacy client: the oldest protocol, no header
    } else {
      const chosen = offered.find((p) => supported.includes(p));
      if (!chosen) {
        const accepted = supported.map((p) => `X-Accepted-Stream-Protocol-Versions: ${p}\r\n`).join("");
        return reject(
          socket,
          403,
          `unable to upgrade: unable to negotiate protocol: client supports ${JSON.stringify(offered)}, server accepts ${JSON.stringify(supported)}`,
          accepted,
        );
      }
      protocol = chosen;
    }
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n" +
        (offered.length > 0 ? `X-Stream-Protocol-Version: ${protocol}\r\n` : "") +
        "\r\n",
    );
    if ("setNoDelay" in socket && typeof socket.setNoDelay === "function") socket.setNoDelay(true);
    const conn = new SpdyConnection(socket, { isServer: true, idleTimeoutMs: this.#opts.idleTimeoutSeconds * 1000 });
    conn.on("timeout", () => log.info("streaming connection idle timeout"));
    const opts: HandlerOptions = {
      backend: this.#opts.backend,
      log,
      serverSignal: this.#stop.signal,
      streamCreationTimeoutMs: (this.#opts.streamCreationTimeoutSeconds ?? 30) * 1000,
      closeGraceMs: 10_000,
    };
    log.debug({ protocol, transport: "spdy" }, "streaming session started");
    const session =
      pending.kind === "portforward"
        ? serveSpdyPortForward(conn, pending.req.podSandboxId, opts)
        : serveSpdyRemoteCommand(conn, protocol, pending, opts);
    this.#track(socket, session, log);
    conn.feed(head);
  }

  #upgradeWebSocket(req: http.IncomingMessage, socket: Duplex, head: Buffer, pending: PendingRequest, url: URL, log: Logger): void {
    const offered = (req.headers["sec-websocket-protocol"] ?? "")
      .split(",")
      .map((v) => v.trim())
      .filter((v) => v !== "");
    const supported = pending.kind === "portforward" ? WS_PORT_FORWARD_PROTOCOLS : WS_REMOTE_COMMAND_PROTOCOLS;
    const chosen = offered.find((p) => supported.includes(p));
    if (offered.length > 0 && !chosen) {
      return reject(socket, 400, `unable to negotiate a websocket protocol: client supports ${JSON.stringify(offered)}, server accepts ${JSON.stringify(supported)}`);
    }
    let ports: number[] = [];
    if (pending.kind === "portforward") {
      ports = pending.req.port.length > 0 ? pending.req.port : parsePorts(url);
      if (ports.length === 0) return reject(socket, 400, "port forward over websocket needs at least one port");
    }
    const protocol = chosen ?? (pending.kind === "portforward" ? "portforward.k8s.io" : "channel.k8s.io");
    this.#wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      ws.on("error", (err) => log.debug({ err }, "websocket error"));
      const idleMs = this.#opts.idleTimeoutSeconds * 1000;
      let last = Date.now();
      const touch = () => {
        last = Date.now();
      };
      ws.on("message", touch);
      const idle = setInterval(() => {
        if (Date.now() - last >= idleMs) {
          log.info("streaming websocket idle timeout");
          ws.terminate();
        }
      }, Math.max(50, Math.min(1000, Math.floor(idleMs / 4))));
      idle.unref();
      ws.once("close", () => clearInterval(idle));
      const origSend = ws.send.bind(ws);
      ws.send = ((data: unknown, ...rest: unknown[]) => {
        touch();
        return (origSend as (...a: unknown[]) => void)(data, ...rest);
      }) as typeof ws.send;
      const opts = { backend: this.#opts.backend, log, serverSignal: this.#stop.signal };
      log.debug({ protocol, transport: "websocket" }, "streaming session started");
      const session =
        pending.kind === "portforward"
          ? serveWsPortForward(ws, protocol, pending.req.podSandboxId, ports, opts)
          : serveWsRemoteCommand(ws, protocol, pending, opts);
      this.#track(socket, session, log);
    });
  }
}

function parsePorts(url: URL): number[] {
  const raw = [...url.searchParams.getAll("ports"), ...url.searchParams.getAll("port")].flatMap((v) => v.split(","));
  const ports = raw.map((v) => Number(v.trim())).filter((p) => Number.isInteger(p) && p >= 1 && p <= 65535);
  return ports.length === raw.length ? ports : [];
}

function reject(socket: Duplex, status: number, message: string, extraHeaders = ""): void {
  const text = http.STATUS_CODES[status] ?? "Error";
  const body = message + "\n";
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Connection: close\r\n${extraHeaders}\r\n${body}`,
  );
}

function advertisedHost(address: string): string {
  let host = address;
  if (host === "0.0.0.0" || host === "::") {
    const candidates = Object.values(networkInterfaces())
      .flat()
      .filter((i) => i && !i.internal && (host === "::" || i.family === "IPv4"));
    host = candidates[0]?.address ?? (host === "::" ? "::1" : "127.0.0.1");
  }
  return host.includes(":") ? `[${host}]` : host;
}
