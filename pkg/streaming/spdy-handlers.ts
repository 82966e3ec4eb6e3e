/**
 * The Kubernetes remote-command and port-forward protocols over a SPDY session
 * (server side).
 */
import type { Logger } from "../log/index.js";
import type { SpdyConnection, SpdyStream } from "./spdy/connection.js";
import { encodeStatus, type Status } from "./status.js";
import { SizeQueue, endAndFlush, pumpSizes, runRemoteCommand } from "./session.js";
import type { PendingRequest } from "./tokens.js";
import type { StreamingBackend } from "./types.js";
import { abortOnClose } from "./abort-on-close.js";

export const STREAM_TYPE_HEADER = "streamtype";
export const PORT_HEADER = "port";
export const REQUEST_ID_HEADER = "requestid";

/**
 * Remote-command subprotocols over SPDY, newest first. client-go (1.30+) offers v5 first on SPDY
 * too; there it behaves exactly like v4 (v5's CLOSE signal only exists on WebSocket, SPDY has
 * half-close).
 */
export const REMOTE_COMMAND_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"];
export const PORT_FORWARD_PROTOCOLS = ["portforward.k8s.io"];

export interface HandlerOptions {
  backend: StreamingBackend;
  log: Logger;
  /** Fires when the server stops. */
  serverSignal: AbortSignal;
  streamCreationTimeoutMs: number;
  /** How long to wait for the client to close the connection after the status was sent. */
  closeGraceMs: number;
}

type RemoteCommand = Extract<PendingRequest, { kind: "exec" | "attach" }>;

export async function serveSpdyRemoteCommand(
  conn: SpdyConnection,
  protocol: string,
  pending: RemoteCommand,
  opts: HandlerOptions,
): Promise<void> {
  const { req } = pending;
  const jsonStatus = protocol === "v5.channel.k8s.io" || protocol === "v4.channel.k8s.io";
  const v3plus = jsonStatus || protocol === "v3.channel.k8s.io";
  const expected = new Set<string>(["error"]);
  if (req.stdin) expected.add("stdin");
  if (req.stdout) expected.add("stdout");
  if (req.stderr && !req.tty) expected.add("stderr");
  if (req.tty && v3plus) expected.add("resize");

  const streams = new Map<string, SpdyStream>();
  const ac = abortOnClose(conn, opts.serverSignal);
  const ready = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), opts.streamCreationTimeoutMs);
    timer.unref();
    const done = (ok: boolean) => {
      clearTimeout(timer);
      resolve(ok);
    };
    conn.on("stream", (s: SpdyStream) => {
      const type = s.headers[STREAM_TYPE_HEADER] ?? "";
      if (!expected.has(type) || streams.has(type)) {
        // A stream this request did not ask for (an old client with tty+stderr): accept and ignore it.
        opts.log.debug({ streamType: type }, "ignoring unexpected stream");
        s.resume();
        s.end();
        return;
      }
      streams.set(type, s);
      if (streams.size === expected.size) done(true);
    });
    conn.once("close", () => done(false));
  });
  if (!(await ready)) {
    opts.log.warn({ got: [...streams.keys()], expected: [...expected] }, "streaming client did not create its streams in time");
    conn.destroy();
    return;
  }
  const errorStream = streams.get("error")!;
  errorStream.resume(); // the client sends nothing on it
  const resize = streams.has("resize") ? new SizeQueue() : undefined;
  if (resize) pumpSizes(streams.get("resize")!, resize, opts.log);
  const stdout = streams.get("stdout");
  const stderr = streams.get("stderr");
  const stdin = streams.get("stdin");
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
  await finishSpdy(conn, errorStream, status, jsonStatus, [...streams.values()], opts);
}

async function finishSpdy(
  conn: SpdyConnection,
  errorStream: SpdyStream,
  status: Status,
  jsonStatus: boolean,
  all: SpdyStream[],
  opts: HandlerOptions,
): Promise<void> {
  if (conn.closed) return;
  // Input nobody will read any more (stdin of a process that exited) must not keep the
  // session's reader paused: discard it so the client's close is seen.
  for (const s of all) s.resume();
  const body = encodeStatus(status, jsonStatus);
  if (body.length > 0) errorStream.write(body);
  await endAndFlush(errorStream);
  // Close our side of every stream (stdin, resize) so the client's readers finish.
  await Promise.all(all.map((s) => endAndFlush(s)));
  // The client closes the connection once it has the status; give it a moment.
  const grace = setTimeout(() => {
    conn.goAway();
    conn.end();
  }, opts.closeGraceMs);
  grace.unref();
  await conn.waitClosed();
  clearTimeout(grace);
}

interface Pair {
  error?: SpdyStream;
  data?: SpdyStream;
  timer: NodeJS.Timeout;
  started: boolean;
}

export function serveSpdyPortForward(
  conn: SpdyConnection,
  podSandboxId: string,
  opts: HandlerOptions,
): Promise<void> {
  const ac = abortOnClose(conn, opts.serverSignal);
  const pairs = new Map<string, Pair>();
  const active = new Set<Promise<void>>();

  const fail = (s: SpdyStream, message: string) => {
    opts.log.warn({ streamId: s.id, headers: s.headers }, message);
    s.reset();
  };

  conn.on("stream", (s: SpdyStream) => {
    const type = s.headers[STREAM_TYPE_HEADER];
    const portText = s.headers[PORT_HEADER];
    const port = Number(portText);
    if (type !== "error" && type !== "data") return fail(s, `port forward: unknown stream type "${type ?? ""}"`);
    if (!portText || !Number.isInteger(port) || port < 1 || port > 65535) {
      return fail(s, `port forward: invalid port "${portText ?? ""}"`);
    }
    // Old clients send no request id: the error stream precedes its data stream by one client id.
    const requestId = s.headers[REQUEST_ID_HEADER] ?? String(type === "error" ? s.id : s.id - 2);
    let pair = pairs.get(requestId);
    if (!pair) {
      const timer = setTimeout(() => {
        const p = pairs.get(requestId);
        pairs.delete(requestId);
        p?.error?.reset();
        p?.data?.reset();
        opts.log.warn({ requestId }, "port forward: stream pair not completed in time");
      }, opts.streamCreationTimeoutMs);
      timer.unref();
      pair = { timer, started: false };
      pairs.set(requestId, pair);
    }
    if (pair[type]) return fail(s, `port forward: duplicate ${type} stream for request ${requestId}`);
    pair[type] = s;
    if (pair.error && pair.data && !pair.started) {
      pair.started = true;
      clearTimeout(pair.timer);
      pairs.delete(requestId);
      const p = forwardPair(pair.error, pair.data, podSandboxId, port, ac.signal, opts).finally(() => active.delete(p));
      active.add(p);
    }
  });

  return conn.waitClosed().then(async () => {
    for (const p of pairs.values()) clearTimeout(p.timer);
    await Promise.allSettled([...active]);
  });
}

async function forwardPair(
  errorStream: SpdyStream,
  dataStream: SpdyStream,
  podSandboxId: string,
  port: number,
  signal: AbortSignal,
  opts: HandlerOptions,
): Promise<void> {
  errorStream.resume(); // the client closes its side at once
  try {
    await opts.backend.portForward(podSandboxId, port, dataStream, signal);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    opts.log.info({ port, podSandboxId, err: message }, "port forward failed");
    if (!errorStream.destroyed) errorStream.write(`error forwarding port ${port} to pod ${podSandboxId}: ${message}`);
  }
  // Let the data stream finish reading (the client's FIN) so it is freed.
  dataStream.resume();
  await endAndFlush(dataStream);
  await endAndFlush(errorStream);
}
