import type { Socket } from "node:net";
import { constants } from "node:os";
import { logger } from "../log/index.js";
import { fastSpawn } from "./fast-spawn.js";

export interface CaptureOptions {
  /** Bytes kept per stream; the rest is read and dropped so the process never blocks. */
  maxBytes: number;
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** After this many ms `onTimeout` runs (it should make the process end). */
  timeoutMs?: number;
  /** Gets the pid of the command (its process group's leader with `ownProcessGroup`). */
  onTimeout?: (pid: number | undefined) => void;
  /** Called with the command's pid once it is spawned. */
  onSpawn?: (pid: number | undefined) => void;
  /** Run the command as the leader of a new process group, so a timeout can kill all it started. */
  ownProcessGroup?: boolean;
  signal?: AbortSignal;
}

export interface CaptureResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
  timedOut: boolean;
  truncated: boolean;
}

class Capped {
  readonly #chunks: Buffer[] = [];
  #size = 0;
  truncated = false;
  constructor(private readonly max: number) {}
  push(b: Buffer): void {
    const room = this.max - this.#size;
    if (room <= 0) {
      this.truncated = true;
      return;
    }
    const take = b.length > room ? b.subarray(0, room) : b;
    if (take.length < b.length) this.truncated = true;
    this.#chunks.push(take);
    this.#size += take.length;
  }
  get buffer(): Buffer {
    return Buffer.concat(this.#chunks);
  }
}

/**
 * Runs a command and captures stdout/stderr up to maxBytes each while draining
 * the rest (for exec in containers, whose output size we do not control).
 * Exit by signal N reports 128+N, as a shell would.
 */
export async function runCapture(file: string, args: readonly string[], opts: CaptureOptions): Promise<CaptureResult> {
  const started = performance.now();
  const child = await fastSpawn(file, args, {
    env: opts.env ? { ...process.env, ...opts.env } : process.env,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    ...(opts.ownProcessGroup ? { setsid: true } : {}),
  });
  opts.onSpawn?.(child.pid);
  return new Promise((resolve) => {
    const [, stdout, stderr] = child.stdio;
    const out = new Capped(opts.maxBytes);
    const err = new Capped(opts.maxBytes);
    const drained = (sock: Socket | undefined, into: Capped): Promise<void> =>
      new Promise((done) => {
        if (!sock) return done();
        sock.on("data", (b: Buffer) => into.push(b));
        sock.once("error", () => sock.destroy());
        sock.once("close", () => done());
      });
    const streams = Promise.all([drained(stdout, out), drained(stderr, err)]);
    let timedOut = false;
    const timer =
      opts.timeoutMs !== undefined && opts.timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            opts.onTimeout?.(child.pid);
          }, opts.timeoutMs)
        : undefined;
    const onAbort = (): void => {
      child.kill("SIGKILL");
    };
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    void Promise.all([child.exited, streams]).then(([st]) => {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      const exitCode = st.code ?? (st.signal ? 128 + (signalNumber(st.signal) ?? 9) : 255);
      logger().debug({ argv: [file, ...args], exitCode, timedOut, durationMs: Math.round(performance.now() - started) }, "captured command ran");
      resolve({ exitCode, stdout: out.buffer, stderr: err.buffer, timedOut, truncated: out.truncated || err.truncated });
    });
  });
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  return (constants.signals as Record<string, number | undefined>)[sig];
}
