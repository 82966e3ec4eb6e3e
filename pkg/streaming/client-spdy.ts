/**
 * SPDY clients for the streaming protocols, speaking as client-go does
 * (kubelet, kubectl, crictl): an HTTP upgrade with X-Stream-Protocol-Version,
 * then one SPDY stream per standard stream, named by the `streamtype` header.
 * Used by berthctl and by the tests (it shares only the SPDY framing with the
 * server).
 */
import http from "node:http";
import https from "node:https";
import type { Duplex, Readable, Writable } from "node:stream";
import { SpdyConnection, type SpdyStream } from "./spdy/connection.js";
import { decodeStatus } from "./status.js";
import type { TerminalSize } from "./types.js";

export interface UpgradeOptions {
  /** Extra TLS options for https URLs (ca, rejectUnauthorized …). */
  tls?: https.RequestOptions;
  signal?: AbortSignal;
  /** Headers added to the upgrade request. */
  headers?: Record<string, string>;
}

export interface SpdyUpgradeResult {
  conn: SpdyConnection;
  protocol: string;
}

/** Performs the SPDY/3.1 upgrade; rejects with the server's message on a non-101 answer. */
export function spdyUpgrade(url: string, protocols: string[], options: UpgradeOptions = {}): Promise<SpdyUpgradeResult> {
  const u = new URL(url);
  const mod = u.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(u, {
      method: "POST",
      headers: {
        ...options.headers,
        Connection: "Upgrade",
        Upgrade: "SPDY/3.1",
        ...(protocols.length > 0 ? { "X-Stream-Protocol-Version": protocols } : {}),
      },
      ...(options.tls ?? {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    req.on("upgrade", (res, socket, head) => {
      const protocol = String(res.headers["x-stream-protocol-version"] ?? "");
      if (protocols.length > 0 && !protocols.includes(protocol)) {
        socket.destroy();
        reject(new Error(`server chose no supported stream protocol (got "${protocol}")`));
        return;
      }
      socket.setNoDelay(true);
      const conn = new SpdyConnection(socket, { isServer: false });
      conn.feed(head);
      resolve({ conn, protocol });
    });
    req.on("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => reject(new StreamingHttpError(res.statusCode ?? 0, body.trim())));
    });
    req.on("error", reject);
    req.end();
  });
}

export class StreamingHttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly body: string,
  ) {
    super(`streaming server answered ${statusCode}: ${body}`);
    this.name = "StreamingHttpError";
  }
}

export interface RemoteCommandOptions {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  tty?: boolean;
  resize?: AsyncIterable<TerminalSize>;
  /** Offered protocols, preferred first (default v4, v3, v2, v1). */
  protocols?: string[];
  /** Close the remote stdin when local stdin ends (default true). */
  closeStdinOnEnd?: boolean;
}

export const DEFAULT_REMOTE_COMMAND_PROTOCOLS = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"];

function pipeOut(src: SpdyStream, dst: Writable | undefined): Promise<void> {
  return new Promise((resolve) => {
    src.on("data", (c: Buffer) => {
      if (dst && !dst.write(c)) {
        src.pause();
        dst.once("drain", () => src.resume());
      }
    });
    src.on("end", () => resolve());
    src.on("close", () => resolve());
  });
}

function readAll(s: SpdyStream): Promise<string> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    s.on("data", (c: Buffer) => parts.push(c));
    const done = () => resolve(Buffer.concat(parts).toString("utf8"));
    s.on("end", done);
    s.on("close", done);
  });
}

/**
 * Runs an exec or attach session at url. Resolves with the exit code from the
 * status (0 for attach); rejects if the server reports another failure.
 */
export async function spdyRemoteCommand(url: string, options: RemoteCommandOptions, upgrade: UpgradeOptions = {}): Promise<{ exitCode: number }> {
  const { conn, protocol } = await spdyUpgrade(url, options.protocols ?? DEFAULT_REMOTE_COMMAND_PROTOCOLS, upgrade);
  try {
    // v5 over SPDY is v4 (JSON status, resize stream).
    const jsonStatus = protocol === "v5.channel.k8s.io" || protocol === "v4.channel.k8s.io";
    const v3plus = jsonStatus || protocol === "v3.channel.k8s.io";
    const errorStream = await conn.openStream({ streamtype: "error" });
    const errorText = readAll(errorStream);
    const stdin = options.stdin ? await conn.openStream({ streamtype: "stdin" }) : undefined;
    const stdout = options.stdout ? await conn.openStream({ streamtype: "stdout" }) : undefined;
    const stderr = options.stderr && !options.tty ? await conn.openStream({ streamtype: "stderr" }) : undefined;
    const resize = options.tty && options.resize && v3plus ? await conn.openStream({ streamtype: "resize" }) : undefined;
    errorStream.end();
    stdout?.end();
    stderr?.end();
    if (resize && options.resize) {
      void (async () => {
        for await (const size of options.resize!) {
          if (resize.writableEnded || resize.destroyed) break;
          resize.write(JSON.stringify({ Width: size.width, Height: size.height }) + "\n");
        }
        resize.end();
      })().catch(() => undefined);
    }
    if (stdin && options.stdin) {
      const src = options.stdin;
      src.on("data", (c: Buffer) => {
        if (!stdin.write(c)) {
          src.pause();
          stdin.once("drain", () => src.resume());
        }
      });
      src.on("end", () => {
        if (options.closeStdinOnEnd !== false) stdin.end();
      });
      stdin.resume(); // the server sends nothing on stdin but its FIN
    }
    const outputs: Promise<void>[] = [];
    if (stdout) outputs.push(pipeOut(stdout, options.stdout));
    if (stderr) outputs.push(pipeOut(stderr, options.stderr));
    await Promise.all(outputs);
    const text = await errorText;
    if (!errorStream.finReceived) throw new Error("the streaming connection closed before the exit status arrived");
    const result = decodeStatus(text, jsonStatus);
    if ("error" in result) throw new Error(result.error);
    return result;
  } finally {
    conn.goAway();
    conn.destroy();
  }
}

/** A SPDY port-forward session: each forward() is one TCP connection to the pod port. */
export class SpdyPortForwardClient {
  readonly conn: SpdyConnection;
  #nextRequestId = 0;

  private constructor(conn: SpdyConnection) {
    this.conn = conn;
  }

  static async connect(url: string, upgrade: UpgradeOptions = {}): Promise<SpdyPortForwardClient> {
    const { conn } = await spdyUpgrade(url, ["portforward.k8s.io"], upgrade);
    return new SpdyPortForwardClient(conn);
  }

  /**
   * Forwards one local connection (any Duplex) to port; resolves when both
   * directions are done, rejects with the server's error message.
   */
  async forward(port: number, local: Duplex): Promise<void> {
    const requestId = String(this.#nextRequestId++);
    const errorStream = await this.conn.openStream({ streamtype: "error", port: String(port), requestid: requestId });
    errorStream.end();
    const errorText = readAll(errorStream);
    const data = await this.conn.openStream({ streamtype: "data", port: String(port), requestid: requestId });
    local.on("error", () => data.destroy());
    const up = new Promise<void>((resolve) => {
      local.on("data", (c: Buffer) => {
        if (!data.write(c)) {
          local.pause();
          data.once("drain", () => local.resume());
        }
      });
      local.on("end", () => {
        data.end();
        resolve();
      });
      local.on("close", () => resolve());
    });
    const down = new Promise<void>((resolve) => {
      data.on("data", (c: Buffer) => {
        if (!local.write(c)) {
          data.pause();
          local.once("drain", () => data.resume());
        }
      });
      data.on("end", () => {
        local.end();
        resolve();
      });
      data.on("close", () => resolve());
    });
    const text = await errorText;
    await down;
    if (text.trim() !== "") {
      local.destroy();
      throw new Error(text.trim());
    }
    await Promise.race([up, new Promise((r) => setTimeout(r, 100))]);
  }

  close(): void {
    this.conn.goAway();
    this.conn.destroy();
  }
}
