/**
 * Port forwarding into a pod: connect to 127.0.0.1:PORT inside the pod's
 * network namespace and copy bytes both ways.
 *  - Host-network pods (no namespace path): a plain loopback connection.
 *  - Otherwise `nsenter --net=PATH busybox nc 127.0.0.1 PORT` relays the
 *    connection, so the pod image needs no tools at all (the relay runs from
 *    the host's filesystem, only its network namespace is the pod's).
 */
import { spawn } from "node:child_process";
import net from "node:net";
import type { Duplex } from "node:stream";
import { whenSpawned } from "../../sys/index.js";

export interface ForwardOptions {
  port: number;
  stream: Duplex;
  signal: AbortSignal;
  /** The pod's network namespace file (e.g. /run/netns/X); undefined for host network. */
  netnsPath?: string;
  nsenterPath?: string;
  /** A static busybox on the host (its nc applet is the relay). */
  busyboxPath?: string;
}

export function forwardToPort(opts: ForwardOptions): Promise<void> {
  return opts.netnsPath ? forwardInNetns(opts, opts.netnsPath) : forwardDirect(opts);
}

function connect(port: number, host: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host });
    s.once("connect", () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}

async function forwardDirect(opts: ForwardOptions): Promise<void> {
  const { port, stream, signal } = opts;
  let sock: net.Socket;
  try {
    sock = await connect(port, "127.0.0.1");
  } catch (err) {
    // A server bound to ::1 only.
    try {
      sock = await connect(port, "::1");
    } catch {
      throw new Error(`cannot connect to port ${port}: ${(err as Error).message}`);
    }
  }
  sock.setNoDelay(true);
  return pump(sock, sock, stream, signal, () => sock.destroy());
}

async function forwardInNetns(opts: ForwardOptions, netnsPath: string): Promise<void> {
  const { port, stream, signal } = opts;
  const child = spawn(
    opts.nsenterPath ?? "nsenter",
    [`--net=${netnsPath}`, "--", opts.busyboxPath ?? "/bin/busybox", "nc", "127.0.0.1", String(port)],
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  await whenSpawned(child);
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (c: string) => {
    if (stderr.length < 4096) stderr += c;
  });
  child.stdin.on("error", () => undefined);
  let received = 0;
  child.stdout.on("data", (c: Buffer) => (received += c.length));
  const exited = new Promise<number>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve(code ?? 1));
  });
  const copy = pump(child.stdout, child.stdin, stream, signal, () => child.kill("SIGKILL"));
  const code = await exited;
  await copy;
  if (code !== 0 && received === 0) {
    const why = stderr.trim().replace(/^nc: /, "") || `relay exited with code ${code}`;
    throw new Error(`cannot connect to port ${port} in network namespace ${netnsPath}: ${why}`);
  }
}

/**
 * Copies target → stream and stream → target. Resolves when the target side
 * has ended and its bytes were handed to stream; the stream's own end is sent
 * to the target as a half-close.
 */
function pump(from: NodeJS.ReadableStream & { pause(): unknown; resume(): unknown }, to: NodeJS.WritableStream & { end(): unknown }, stream: Duplex, signal: AbortSignal, kill: () => void): Promise<void> {
  return new Promise<void>((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      signal.removeEventListener("abort", onAbort);
      resolve();
    };
    const onAbort = () => {
      kill();
      finish();
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    (to as NodeJS.EventEmitter).on("error", () => undefined);
    (from as NodeJS.EventEmitter).on("error", () => finish());
    stream.on("data", (c: Buffer) => {
      if (!to.write(c)) {
        stream.pause();
        (to as NodeJS.EventEmitter).once("drain", () => stream.resume());
      }
    });
    stream.on("end", () => to.end());
    stream.on("close", () => {
      if (!stream.readableEnded) kill();
    });
    from.on("data", (c: Buffer) => {
      if (!stream.write(c)) {
        from.pause();
        stream.once("drain", () => from.resume());
      }
    });
    from.on("end", finish);
    (from as NodeJS.EventEmitter).on("close", finish);
  });
}
