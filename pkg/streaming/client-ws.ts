/**
 * WebSocket clients for the streaming protocols (the channel.k8s.io family),
 * as client-go's WebSocket executor speaks them. Used by berthctl and tests.
 */
import { Duplex, type Readable, type Writable } from "node:stream";
import { WebSocket, type ClientOptions } from "ws";
import { decodeStatus } from "./status.js";
import type { TerminalSize } from "./types.js";

export const DEFAULT_WS_REMOTE_COMMAND_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

function toWsUrl(url: string): string {
  return url.replace(/^http(s?):/, "ws$1:");
}

/** Opens the socket; setup runs before any message can arrive (they may come with the handshake). */
function open(url: string, protocols: string[], options: ClientOptions, setup: (ws: WebSocket) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(toWsUrl(url), protocols, { perMessageDeflate: false, ...options });
    setup(ws);
    ws.once("open", () => resolve(ws));
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => reject(new Error(`streaming server answered ${res.statusCode ?? 0}: ${body.trim()}`)));
    });
    ws.once("error", reject);
  });
}

function frame(base64: boolean, channel: number, data: Uint8Array): Buffer | string {
  if (base64) return String.fromCharCode(0x30 + channel) + Buffer.from(data).toString("base64");
  const msg = Buffer.allocUnsafe(data.length + 1);
  msg[0] = channel;
  msg.set(data, 1);
  return msg;
}

function unframe(base64: boolean, raw: Buffer, isBinary: boolean): { channel: number; data: Buffer } | undefined {
  if (raw.length === 0) return undefined;
  if (base64 && !isBinary) return { channel: raw[0]! - 0x30, data: Buffer.from(raw.subarray(1).toString("latin1"), "base64") };
  return { channel: raw[0]!, data: raw.subarray(1) };
}

export interface WsRemoteCommandOptions {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  tty?: boolean;
  resize?: AsyncIterable<TerminalSize>;
  protocols?: string[];
  ws?: ClientOptions;
}

/** Runs an exec or attach session over WebSocket; resolves with the exit code. */
export async function wsRemoteCommand(url: string, options: WsRemoteCommandOptions): Promise<{ exitCode: number; protocol: string }> {
  const errorParts: Buffer[] = [];
  let closed: Promise<void> = Promise.resolve();
  let closeCode = 0;
  const ws = await open(url, options.protocols ?? DEFAULT_WS_REMOTE_COMMAND_PROTOCOLS, options.ws ?? {}, (ws) => {
    closed = new Promise<void>((resolve) =>
      ws.once("close", (code: number) => {
        closeCode = code;
        resolve();
      }),
    );
    ws.on("error", () => undefined);
    ws.on("message", (raw: Buffer, isBinary: boolean) => {
      const m = unframe(ws.protocol.includes("base64"), raw, isBinary);
      if (!m) return;
      if (m.channel === 1) options.stdout?.write(m.data);
      else if (m.channel === 2) options.stderr?.write(m.data);
      else if (m.channel === 3) errorParts.push(m.data);
    });
  });
  const protocol = ws.protocol;
  const base64 = protocol.includes("base64");
  const v5 = protocol.startsWith("v5.");
  const jsonStatus = protocol.startsWith("v4.") || v5;
  const send = (channel: number, data: Uint8Array) => {
    if (ws.readyState === ws.OPEN) ws.send(frame(base64, channel, data));
  };
  if (options.tty && options.resize) {
    void (async () => {
      for await (const size of options.resize!) {
        if (ws.readyState !== ws.OPEN) break;
        send(4, Buffer.from(JSON.stringify({ Width: size.width, Height: size.height })));
      }
    })().catch(() => undefined);
  }
  if (options.stdin) {
    const src = options.stdin;
    src.on("data", (c: Buffer) => send(0, c));
    src.on("end", () => {
      if (v5) send(255, Buffer.from([0]));
    });
  }
  await closed;
  if (closeCode !== 1000 && errorParts.length === 0) {
    throw new Error(`the streaming connection closed (code ${closeCode}) before the exit status arrived`);
  }
  const result = decodeStatus(Buffer.concat(errorParts).toString("utf8"), jsonStatus);
  if ("error" in result) throw new Error(result.error);
  return { exitCode: result.exitCode, protocol };
}

/**
 * Port forward over WebSocket: one connection carries one stream per port in
 * the URL's request. Returns a Duplex per port, in order.
 */
export async function wsPortForward(
  url: string,
  options: { protocols?: string[]; ws?: ClientOptions } = {},
): Promise<{ streams: Map<number, Duplex>; errors: Map<number, string>; ws: WebSocket; done: Promise<void> }> {
  const streams = new Map<number, Duplex>();
  const byChannel = new Map<number, Duplex>();
  const errors = new Map<number, string>();
  const seenPort = new Set<number>();
  const errorPort = new Map<number, number>();
  let ready: () => void = () => undefined;
  const first = new Promise<void>((r) => (ready = r));
  let done: Promise<void> = Promise.resolve();
  const setup = (ws: WebSocket) => {
  const base64 = () => ws.protocol.includes("base64");
  ws.on("error", () => undefined);
  done = new Promise<void>((resolve) =>
    ws.once("close", () => {
      for (const d of streams.values()) d.push(null);
      resolve();
    }),
  );
  ws.on("message", (raw: Buffer, isBinary: boolean) => {
    const m = unframe(base64(), raw, isBinary);
    if (!m) return;
    const isData = m.channel % 2 === 0;
    if (!seenPort.has(m.channel)) {
      seenPort.add(m.channel);
      const port = m.data.readUInt16LE(0);
      if (isData) {
        const ch = m.channel;
        const d = new Duplex({
          read: () => undefined,
          write: (chunk: Buffer, _e, cb) => {
            ws.send(frame(base64(), ch, chunk), (err) => cb(err ?? null));
          },
        });
        d.on("error", () => undefined);
        streams.set(port, d);
        byChannel.set(ch, d);
      } else errorPort.set(m.channel, port);
      ready();
      return;
    }
    if (isData) byChannel.get(m.channel)?.push(m.data);
    else {
      const port = errorPort.get(m.channel) ?? 0;
      errors.set(port, (errors.get(port) ?? "") + m.data.toString("utf8"));
    }
  });
  };
  const ws = await open(url, options.protocols ?? ["v4.channel.k8s.io"], options.ws ?? {}, setup);
  await Promise.race([first, done]);
  // All ports announce themselves together; let the rest of the first batch arrive.
  await new Promise((r) => setImmediate(r));
  return { streams, errors, ws, done };
}
