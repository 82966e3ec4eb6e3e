import { spawn, type ChildProcess } from "node:child_process";
import { logger } from "../log/index.js";

export interface RunOptions {
  /** Kill the command after this many ms. */
  timeoutMs?: number;
  signal?: AbortSignal;
  input?: string | Buffer;
  env?: Record<string, string | undefined>;
  /** Replace the environment instead of extending process.env. */
  extendEnv?: boolean;
  cwd?: string;
  /** Do not throw on a non-zero exit; the caller inspects `exitCode`. */
  allowFailure?: boolean;
  /** Largest stdout/stderr kept, bytes. */
  maxBuffer?: number;
  /**
   * Run the command in its own process group and, on timeout, SIGKILL the whole group
   * (a hung wrapper script and whatever it started, not just the first process).
   */
  killProcessGroup?: boolean;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | undefined,
    readonly stderr: string,
    readonly stdout: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "CommandError";
  }
}

/** Keeps up to `max` bytes of a stream and drains the rest, so the process never blocks on a full pipe. */
class Collected {
  readonly #chunks: Buffer[] = [];
  #size = 0;
  constructor(private readonly max: number) {}
  push(b: Buffer): void {
    const room = this.max - this.#size;
    if (room <= 0) return;
    const take = b.length > room ? b.subarray(0, room) : b;
    this.#chunks.push(take);
    this.#size += take.length;
  }
  text(): string {
    return Buffer.concat(this.#chunks).toString("utf8");
  }
}

interface Finished {
  exitCode: number | undefined;
  signal: NodeJS.Signals | null;
  spawnError: (Error & { code?: string }) | undefined;
  timedOut: boolean;
  cancelled: boolean;
  stdout: string;
  stderr: string;
}

/**
 * Spawns and waits, never throwing: a spawn failure (ENOENT, EMFILE with no fd left for the
 * pipes) arrives as `spawnError`. The 'error' listener is attached before anything else can
 * throw, so such a failure never becomes an unhandled 'error' event that would end berthd.
 */
function spawnAndWait(file: string, args: readonly string[], opts: RunOptions): Promise<Finished> {
  return new Promise((resolve) => {
    const env = opts.extendEnv === false ? (opts.env ?? {}) : opts.env ? { ...process.env, ...opts.env } : process.env;
    const out = new Collected(opts.maxBuffer ?? 64 * 1024 * 1024);
    const err = new Collected(opts.maxBuffer ?? 64 * 1024 * 1024);
    let timedOut = false;
    let cancelled = false;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    let forceTimer: NodeJS.Timeout | undefined;
    let child: ChildProcess;
    const finish = (exitCode: number | undefined, signal: NodeJS.Signals | null, spawnError: Finished["spawnError"]): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      if (forceTimer) clearTimeout(forceTimer);
      opts.signal?.removeEventListener("abort", onAbort);
      resolve({ exitCode, signal, spawnError, timedOut, cancelled, stdout: out.text(), stderr: err.text() });
    };
    const stop = (): void => {
      if (opts.killProcessGroup) {
        killGroup(child.pid);
        return;
      }
      child.kill("SIGTERM");
      forceTimer = setTimeout(() => child.kill("SIGKILL"), 5000);
    };
    const onAbort = (): void => {
      cancelled = true;
      stop();
    };
    try {
      child = spawn(file, args, {
        env,
        ...(opts.cwd ? { cwd: opts.cwd } : {}),
        ...(opts.killProcessGroup ? { detached: true } : {}),
        stdio: [opts.input !== undefined ? "pipe" : "ignore", "pipe", "pipe"],
      });
    } catch (e) {
      finish(undefined, null, e as Finished["spawnError"]);
      return;
    }
    child.once("error", (e: Error & { code?: string }) => finish(undefined, null, e));
    // With no fd left for the pipes Node gives up before creating them (and reports it on 'error').
    if (!child.stdout || !child.stderr) return;
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.once("close", (code, signal) => finish(code ?? undefined, signal, undefined));
    if (opts.input !== undefined && child.stdin) {
      child.stdin.on("error", () => undefined);
      child.stdin.end(opts.input);
    }
    if (opts.timeoutMs !== undefined && opts.timeoutMs > 0) {
      timer = setTimeout(() => {
        timedOut = true;
        stop();
      }, opts.timeoutMs);
    }
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The one way berthd runs an external command: timeout, abort signal, and a
 * structured log line with argv, exit code, duration and stderr.
 */
export async function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  const res = await spawnAndWait(file, args, opts);
  const durationMs = Math.round(performance.now() - started);
  const { stdout, stderr } = res;
  const argv = [file, ...args];
  const failed = res.exitCode !== 0;
  const log = logger();
  if (failed) log.debug({ argv, exitCode: res.exitCode, signal: res.signal, durationMs, stderr: stderr.slice(0, 2000) }, "command failed");
  else log.trace({ argv, durationMs }, "command ran");
  if (res.timedOut) throw new CommandError(argv, undefined, stderr, stdout, `${file} timed out after ${opts.timeoutMs} ms`);
  if (res.cancelled) throw new CommandError(argv, undefined, stderr, stdout, `${file} was cancelled`);
  if (res.spawnError) {
    throw new CommandError(argv, undefined, stderr, stdout, `${file} could not run: ${res.spawnError.message}`, { cause: res.spawnError });
  }
  if (res.exitCode === undefined) throw new CommandError(argv, undefined, stderr, stdout, `${file} was killed by ${res.signal ?? "a signal"}`);
  if (failed && !opts.allowFailure) {
    const detail = stderr.trim() || stdout.trim() || `exit code ${res.exitCode}`;
    throw new CommandError(argv, res.exitCode, stderr, stdout, `${file} ${args[0] ?? ""} failed (exit ${res.exitCode}): ${detail.slice(0, 2000)}`);
  }
  return { exitCode: res.exitCode, stdout, stderr, durationMs };
}

/** SIGKILL to a process group (the leader's pid); a group already gone is fine. */
export function killGroup(pid: number | undefined): void {
  if (pid === undefined || pid <= 0) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // gone
  }
}
