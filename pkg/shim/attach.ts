/**
 * Attach to a container's stdio through its conmon (started with
 * --full-attach, so the socket is <bundle>/attach).
 *
 * conmon's side of the protocol: a SOCK_SEQPACKET listener; every client gets
 * a copy of the container's output as messages whose first byte names the pipe
 * (2 stdout, 3 stderr; with a tty everything is stdout) followed by at most
 * 8192 bytes of data. What a client writes goes to the container's stdin as is.
 * When a client stops writing (EOF or hang-up) conmon closes the container's
 * stdin, unless it runs with --leave-stdin-open (containers without
 * stdin_once). When the container exits conmon closes every client socket.
 * Terminal resizes go through the control fifo, not the socket.
 */
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import type { Socket } from "node:net";
import { FailedPreconditionError } from "../errdefs/index.js";
import { logger } from "../log/index.js";
import { connectSeqpacket, SyscallError } from "../sys/index.js";
import { conmonResize } from "./conmon.js";

const PIPE_STDOUT = 2;
const PIPE_STDERR = 3;
/** conmon reads at most this much per message from a client (CONN_SOCK_BUF_SIZE - 1 is larger; stay well below). */
const STDIN_CHUNK = 8192;

export interface ConmonAttachIO {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  tty: boolean;
  resize?: AsyncIterable<{ width: number; height: number }>;
  /**
   * The container's stdin_once. Without it (and without a tty) the attach ends
   * when the client's stdin ends, as the container keeps its stdin open for
   * the next attach; with it, the container's stdin closes then and the attach
   * lasts until the container exits.
   */
  stdinOnce?: boolean;
}

/** conmon's listen backlog is small (10): a burst of attaches may find it full for a moment (EAGAIN). */
async function connectRetrying(path: string): Promise<Socket> {
  for (let attempt = 0; ; attempt++) {
    try {
      return connectSeqpacket(path);
    } catch (err) {
      if (!(err instanceof SyscallError) || err.code !== "EAGAIN" || attempt >= 50) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/**
 * Copies the container's output to io.stdout/io.stderr and io.stdin to the
 * container until the container exits (conmon closes the socket), the client's
 * stdin ends (see stdinOnce) or signal fires. Several attaches may run at once;
 * each gets all output written after it connected.
 */
export async function conmonAttach(containerId: string, bundle: string, io: ConmonAttachIO, signal: AbortSignal): Promise<void> {
  const log = logger();
  let sock: Socket;
  try {
    sock = await connectRetrying(join(bundle, "attach"));
  } catch (err) {
    const code = err instanceof SyscallError ? err.code : (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ECONNREFUSED") {
      throw new FailedPreconditionError(`cannot attach to container "${containerId}": its monitor (conmon) is not listening on ${join(bundle, "attach")} (${code})`, {
        cause: err,
      });
    }
    throw new FailedPreconditionError(`cannot attach to container "${containerId}": ${(err as Error).message}`, { cause: err });
  }
  sock.on("error", (err) => log.debug({ containerId, err }, "attach socket error"));

  if (io.tty && io.resize) {
    const sizes = io.resize;
    void (async () => {
      for await (const size of sizes) {
        if (sock.destroyed) break;
        try {
          conmonResize(bundle, size.height, size.width);
        } catch (err) {
          log.debug({ containerId, err }, "cannot resize the container's terminal");
        }
      }
    })().catch(() => undefined);
  }

  const output = new Promise<void>((resolve) => {
    sock.on("data", (msg: Buffer) => {
      if (msg.length < 1) return;
      const dst = msg[0] === PIPE_STDERR ? io.stderr : msg[0] === PIPE_STDOUT ? io.stdout : undefined;
      if (!dst || dst.destroyed || dst.writableEnded) return;
      // Waiting here holds conmon's write to this socket, as a slow client of CRI-O does.
      if (!dst.write(msg.subarray(1))) {
        sock.pause();
        const resume = () => {
          dst.off("drain", resume);
          dst.off("close", resume);
          sock.resume();
        };
        dst.on("drain", resume);
        dst.on("close", resume);
      }
    });
    sock.on("end", () => resolve());
    sock.on("close", () => resolve());
  });

  let stdinDone: Promise<void> | undefined;
  let stopStdin = (): void => undefined;
  if (io.stdin) {
    const stdin = io.stdin;
    stdinDone = new Promise<void>((resolve) => {
      const send = async (buf: Buffer): Promise<void> => {
        // One write at a time, each a message conmon reads whole.
        for (let off = 0; off < buf.length; off += STDIN_CHUNK) {
          if (sock.destroyed || sock.writableEnded) return;
          await new Promise<void>((res, rej) => sock.write(buf.subarray(off, off + STDIN_CHUNK), (err) => (err ? rej(err) : res())));
        }
      };
      const onData = (chunk: Buffer | string): void => {
        stdin.pause();
        send(typeof chunk === "string" ? Buffer.from(chunk) : chunk).then(
          () => {
            if (!sock.destroyed) stdin.resume();
          },
          (err: unknown) => {
            log.debug({ containerId, err }, "cannot write to the attach socket");
            finish();
          },
        );
      };
      const finish = (): void => {
        stopStdin();
        // The client closed its input: tell conmon (it closes the container's stdin under stdin_once).
        if (!sock.destroyed && !sock.writableEnded) sock.end();
        resolve();
      };
      stopStdin = () => {
        stdin.off("data", onData);
        stdin.off("end", finish);
        stdin.off("close", finish);
      };
      stdin.on("data", onData);
      stdin.on("end", finish);
      stdin.on("close", finish);
    });
  }

  const aborted = new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
  try {
    const waits: Promise<void>[] = [output, aborted];
    if (stdinDone && !io.stdinOnce && !io.tty) waits.push(stdinDone);
    await Promise.race(waits);
  } finally {
    stopStdin();
    sock.destroy();
  }
}
