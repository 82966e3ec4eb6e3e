/**
 * The Kubernetes channel protocols over WebSocket (server side). Each message
 * carries one channel: binary protocols prefix a channel byte, base64 ones a
 * digit character and base64 text.
 *   exec/attach: 0 stdin, 1 stdout, 2 stderr, 3 error (status), 4 resize;
 *                v5 adds 255 = "close channel N" (the client's stdin EOF).
 *   port forward: per requested port i, channel 2i data and 2i+1 error; the
 *                first message on each is the port, 2 bytes little endian.
 */
import { Duplex, Readable, Writable } from "node:stream";
import type { WebSocket } from "ws";
import type { Logger } from "../log/index.js";
import { SizeQueue, parseSize, runRemoteCommand, endAndFlush } from "./session.js";
import { encodeStatus } from "./status.js";
import type { PendingRequest } from "./tokens.js";
import type { StreamingBackend } from "./types.js";
import { abortOnClose } from "./abort-on-close.js";

export const WS_REMOTE_COMMAND_PROTOCOLS = [
  "v5.channel.k8s.io",
  "v4.channel.k8s.io",
  "v4.base64.channel.k8s.io",
  "channel.k8s.io",
  "base64.channel.k8s.io",
];
export const WS_PORT_FORWARD_PROTOCOLS = ["v4.channel.k8s.io", "v4.base64.channel.k8s.io", "portforward.k8s.io"];

export const CHANNEL_STDIN = 0;
export const CHANNEL_STDOUT = 1;
export const CHANNEL_STDERR = 2;
export const CHANNEL_ERROR = 3;
export const CHANNEL_RESIZE = 4;
export const CHANNEL_CLOSE = 255;

/** Outbound bytes buffered in the socket before writers wait. */
const WS_HIGH_WATER = 1024 * 1024;

export function isBase64Protocol(p: string): boolean {
  return p.includes("base64");
}

/** Multiplexes channels over one WebSocket with backpressure both ways. */
export class WsChannels {
  readonly ws: WebSocket;
  readonly base64: boolean;
  #readers = new Map<number, Readable>();
  #paused = new Set<number>();
  onClose: ((channel: number) => void) | undefined;
  onMessage: ((channel: number, data: Buffer) => void) | undefined;

  constructor(ws: WebSocket, base64: boolean) {
    this.ws = ws;
    this.base64 = base64;
    ws.on("message", (raw: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      const msg = Array.isArray(raw) ? Buffer.concat(raw) : Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
      if (msg.length === 0) return;
      let channel: number;
      let data: Buffer;
      if (this.base64 && !isBinary) {
        channel = msg[0]! - 0x30;
        data = Buffer.from(msg.subarray(1).toString("latin1"), "base64");
      } else {
        channel = msg[0]!;
        data = msg.subarray(1);
      }
      if (channel === CHANNEL_CLOSE && data.length > 0) {
        const which = data[0]!;
        const r = this.#readers.get(which);
        if (r) r.push(null);
        // An ended channel is never read again: it must not hold the socket paused.
        if (this.#paused.delete(which) && this.#paused.size === 0) this.#resume();
        this.onClose?.(which);
        return;
      }
      const r = this.#readers.get(channel);
      if (r) {
        if (data.length > 0 && !r.push(data)) {
          this.#paused.add(channel);
          ws.pause();
        }
        return;
      }
      this.onMessage?.(channel, data);
    });
    ws.on("close", () => {
      for (const r of this.#readers.values()) if (!r.readableEnded) r.push(null);
    });
  }

  /**
   * Resumes reading. ws.resume() leaves the socket paused while its frame parser
   * still holds unparsed bytes, and nothing resumes it later in that case; resume
   * the socket itself.
   */
  #resume(): void {
    this.ws.resume();
    const sock = (this.ws as unknown as { _socket?: { isPaused(): boolean; resume(): void } })._socket;
    if (sock?.isPaused()) sock.resume();
  }

  send(channel: number, data: Uint8Array, cb?: (err?: Error) => void): void {
    if (this.ws.readyState !== this.ws.OPEN) {
      cb?.(new Error("websocket is closed"));
      return;
    }
    if (this.base64) {
      this.ws.send(String.fromCharCode(0x30 + channel) + Buffer.from(data).toString("base64"), { binary: false }, cb);
    } else {
      const msg = Buffer.allocUnsafe(data.length + 1);
      msg[0] = channel;
      msg.set(data, 1);
      this.ws.send(msg, { binary: true }, cb);
    }
  }

  /** A Readable fed by a channel's messages. */
  readable(channel: number): Readable {
    const r = new Readable({
      highWaterMark: 256 * 1024,
      read: () => {
        if (this.#paused.delete(channel) && this.#paused.size === 0) this.#resume();
      },
    });
    r.on("error", () => undefined);
    this.#readers.set(channel, r);
    return r;
  }

  #writeChunk(channel: number, chunk: Buffer, cb: (err?: Error | null) => void): void {
    if (this.ws.bufferedAmount < WS_HIGH_WATER) {
      this.send(channel, chunk);
      cb();
    } else this.send(channel, chunk, (err) => cb(err ?? null));
  }

  /** A Writable that sends each chunk as a message on a channel. */
  writable(channel: number): Writable {
    const w = new Writable({
      highWaterMark: 256 * 1024,
      write: (chunk: Buffer, _enc, cb) => this.#writeChunk(channel, chunk, cb),
    });
    w.on("error", () => undefined);
    return w;
  }

  /** A Duplex over one channel (port forward data). */
  duplex(channel: number): Duplex {
    const d = new Duplex({
      allowHalfOpen: true,
      readableHighWaterMark: 256 * 1024,
      read: () => {
        if (this.#paused.delete(channel) && this.#paused.size === 0) this.#resume();
      },
      write: (chunk: Buffer, _enc, cb) => this.#writeChunk(channel, chunk, cb),
    });
    d.on("error", () => undefined);
    this.#readers.set(channel, d);
    return d;
  }

  /** Closes the WebSocket after everything queued was sent. */
  close(code = 1000, reason = ""): void {
    // Read again so the client's close frame is seen (a paused socket would hold it).
    this.#paused.clear();
    this.#resume();
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(code, reason);
  }
}

export interface WsHandlerOptions {
  backend: StreamingBackend;
  log: Logger;
  serverSignal: AbortSignal;
}

export async function serveWsRemoteCommand(
  ws: WebSocket,
  protocol: string,
  pending: Extract<PendingRequest, { kind: "exec" | "attach" }>,
  opts: WsHandlerOptions,
): Promise<void> {
  const { req } = pending;
  const ch = new WsChannels(ws, isBase64Protocol(protocol));
  const jsonStatus = protocol.startsWith("v4.") || protocol.startsWith("v5.");
  const ac = abortOnClose(ws, opts.serverSignal);
  const stdin = req.stdin ? ch.readable(CHANNEL_STDIN) : undefined;
  const stdout = req.stdout ? ch.writable(CHANNEL_STDOUT) : undefined;
  const stderr = req.stderr && !req.tty ? ch.writable(CHANNEL_STDERR) : undefined;
  const resize = req.tty ? new SizeQueue() : undefined;
  ch.onMessage = (channel, data) => {
    if (channel === CHANNEL_RESIZE && resize) {
      const size = parseSize(data.toString("utf8"));
      if (size) resize.push(size);
    }
  };
  ws.once("close", () => resize?.end());
  // Tell the client the session is open: an empty message on the first channel it reads.
  ch.send(stdout ? CHANNEL_STDOUT : stderr ? CHANNEL_STDERR : CHANNEL_ERROR, Buffer.alloc(0));
  const status = await runRemoteCommand(
    pending,
    {
      ...(stdin ? { stdin } : {}),
      ...(stdout ? { stdout } : {}),
      ...(stderr ? { stderr } : {}),
      ...(resize ? { resize } : {}),
    },
    opts.backend,
    ac.signal,
    opts.log,
  );
  const body = encodeStatus(status, jsonStatus);
  if (body.length > 0) ch.send(CHANNEL_ERROR, body);
  ch.close();
}

export async function serveWsPortForward(
  ws: WebSocket,
  protocol: string,
  podSandboxId: string,
  ports: number[],
  opts: WsHandlerOptions,
): Promise<void> {
  const ch = new WsChannels(ws, isBase64Protocol(protocol));
  const ac = abortOnClose(ws, opts.serverSignal);
  const jobs = ports.map(async (port, i) => {
    const dataCh = i * 2;
    const errCh = i * 2 + 1;
    const portBytes = Buffer.alloc(2);
    portBytes.writeUInt16LE(port);
    const data = ch.duplex(dataCh);
    ch.send(dataCh, portBytes);
    ch.send(errCh, portBytes);
    try {
      await opts.backend.portForward(podSandboxId, port, data, ac.signal);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      opts.log.info({ port, podSandboxId, err: message }, "port forward failed");
      ch.send(errCh, Buffer.from(`error forwarding port ${port} to pod ${podSandboxId}: ${message}`));
    }
    await endAndFlush(data);
  });
  await Promise.allSettled(jobs);
  ch.close();
}
