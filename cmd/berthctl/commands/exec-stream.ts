/**
 * The client side of `berthctl exec -it`, `attach` and `port-forward`: given
 * the URL the runtime returned for Exec/Attach/PortForward, connect this
 * terminal (or local TCP port) to it. The exec command calls streamRemoteCommand
 * after its Exec RPC.
 */
import net from "node:net";
import type { Readable, Writable } from "node:stream";
import { SizeQueue, SpdyPortForwardClient, spdyRemoteCommand, wsRemoteCommand } from "../../../pkg/streaming/index.js";

export interface StreamTerminal {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  stdout: Writable & { isTTY?: boolean; columns?: number; rows?: number };
  stderr: Writable;
}

export interface StreamCommandOptions {
  /** Send our stdin (exec -i / attach -i). */
  stdin: boolean;
  /** The session is a terminal (exec -t / attach -t): raw mode and resizes. */
  tty: boolean;
  /** Protocol to use (default spdy, what kubelet and crictl speak). */
  transport?: "spdy" | "websocket";
  /** Where to read and write (default this process's stdio). */
  terminal?: StreamTerminal;
}

/** Runs an exec or attach session on this terminal; resolves with the remote exit code. */
export async function streamRemoteCommand(url: string, options: StreamCommandOptions): Promise<number> {
  const term: StreamTerminal = options.terminal ?? { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
  const sizes = options.tty ? new SizeQueue() : undefined;
  const pushSize = () => {
    if (sizes && term.stdout.columns && term.stdout.rows) sizes.push({ width: term.stdout.columns, height: term.stdout.rows });
  };
  const raw = options.tty && options.stdin && term.stdin.isTTY === true && typeof term.stdin.setRawMode === "function";
  if (raw) term.stdin.setRawMode!(true);
  pushSize();
  term.stdout.on("resize", pushSize);
  try {
    const common = {
      ...(options.stdin ? { stdin: term.stdin } : {}),
      stdout: term.stdout,
      ...(options.tty ? {} : { stderr: term.stderr }),
      tty: options.tty,
      ...(sizes ? { resize: sizes } : {}),
    };
    const res = options.transport === "websocket" ? await wsRemoteCommand(url, common) : await spdyRemoteCommand(url, common);
    return res.exitCode;
  } finally {
    term.stdout.off("resize", pushSize);
    sizes?.end();
    if (raw) term.stdin.setRawMode!(false);
    if (options.stdin) term.stdin.pause();
  }
}

export interface PortMapping {
  local: number;
  remote: number;
}

/** Parses "8080", "8080:80" or ":80" (a free local port). */
export function parsePortMapping(spec: string): PortMapping {
  const m = /^(\d*)(?::(\d+))?$/.exec(spec);
  const local = m?.[1] === "" ? 0 : Number(m?.[1]);
  const remote = Number(m?.[2] ?? m?.[1]);
  if (!m || !Number.isInteger(remote) || remote < 1 || remote > 65535 || local > 65535) {
    throw new Error(`invalid port mapping "${spec}" (want LOCAL:REMOTE, PORT or :REMOTE)`);
  }
  return { local, remote };
}

/**
 * Listens on 127.0.0.1 for each mapping and forwards every connection over one
 * SPDY session. Returns the bound local ports and a close function.
 */
export async function startPortForward(
  url: string,
  mappings: PortMapping[],
  onError: (message: string) => void,
): Promise<{ ports: PortMapping[]; close(): void; closed: Promise<void> }> {
  const client = await SpdyPortForwardClient.connect(url);
  const servers: net.Server[] = [];
  const bound: PortMapping[] = [];
  for (const m of mappings) {
    const server = net.createServer((sock) => {
      sock.on("error", () => undefined);
      client.forward(m.remote, sock).catch((err: Error) => {
        onError(`port ${m.remote}: ${err.message}`);
        sock.destroy();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(m.local, "127.0.0.1", () => resolve());
    });
    servers.push(server);
    bound.push({ local: (server.address() as net.AddressInfo).port, remote: m.remote });
  }
  const closed = client.conn.waitClosed();
  const close = () => {
    for (const s of servers) s.close();
    client.close();
  };
  void closed.then(() => {
    for (const s of servers) s.close();
  });
  return { ports: bound, close, closed };
}
