import type { Socket } from "node:net";
import { logger } from "../log/index.js";
import { fastSpawn } from "./fast-spawn.js";
import { forgetCommand, resolveCommand } from "./which.js";

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

/**
 * The one way berthd runs an external command: timeout, abort signal, and a
 * structured log line with argv, exit code, duration and stderr. The command is
 * started with posix_spawn (see fast-spawn.ts): a fork of the daemon would block
 * its event loop for milliseconds per command.
 */
export async function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  const argv = [file, ...args];
  const env = opts.extendEnv === false ? (opts.env ?? {}) : opts.env ? { ...process.env, ...opts.env } : process.env;
  const maxBuffer = opts.maxBuffer ?? 64 * 1024 * 1024;
  let child;
  try {
    // A bare name is resolved once ($PATH order) instead of by every child; argv[0] stays the name.
    const path = resolveCommand(file, env["PATH"]);
    child = await fastSpawn(path, args, {
      argv0: file,
      env,
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      ...(opts.killProcessGroup ? { setsid: true } : {}),
      stdio: [opts.input !== undefined ? "pipe" : "ignore", "pipe", "pipe"],
    });
  } catch (err) {
    forgetCommand(file);
    logger().debug({ argv, err: (err as Error).message }, "command could not start");
    throw new CommandError(argv, undefined, "", "", `${file} could not run: ${(err as Error).message}`, { cause: err });
  }
  const [stdin, stdoutSock, stderrSock] = child.stdio;
  let timedOut = false;
  let cancelled = false;
  let overflow = false;
  const collect = (sock: Socket | undefined): Promise<string> =>
    new Promise((resolve) => {
      if (!sock) return resolve("");
      const parts: Buffer[] = [];
      let size = 0;
      sock.on("data", (b: Buffer) => {
        if (size + b.length > maxBuffer) {
          overflow = true;
          child.kill("SIGKILL");
          sock.destroy();
          return;
        }
        size += b.length;
        parts.push(b);
      });
      sock.once("error", () => sock.destroy());
      sock.once("close", () => resolve(Buffer.concat(parts).toString("utf8")));
    });
  const out = collect(stdoutSock);
  const err = collect(stderrSock);
  if (stdin) {
    stdin.once("error", () => stdin.destroy());
    stdin.end(opts.input ?? "");
  }
  // SIGTERM on timeout or cancellation, SIGKILL 5 s later if it is still there (as execa did).
  let forceKill: NodeJS.Timeout | undefined;
  const terminate = (): void => {
    if (opts.killProcessGroup) {
      // The whole group at once: a hung wrapper and whatever it started.
      killGroup(child.pid);
      return;
    }
    child.kill("SIGTERM");
    forceKill ??= setTimeout(() => child.kill("SIGKILL"), 5000);
  };
  const timer = opts.timeoutMs !== undefined && opts.timeoutMs > 0 ? setTimeout(() => ((timedOut = true), terminate()), opts.timeoutMs) : undefined;
  const onAbort = (): void => {
    cancelled = true;
    terminate();
  };
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener("abort", onAbort, { once: true });
  const status = await child.exited;
  const [stdout, stderr] = await Promise.all([out, err]);
  if (timer) clearTimeout(timer);
  if (forceKill) clearTimeout(forceKill);
  opts.signal?.removeEventListener("abort", onAbort);
  const durationMs = Math.round(performance.now() - started);
  const exitCode = status.code ?? undefined;
  const failed = exitCode !== 0;
  const log = logger();
  if (failed) log.debug({ argv, exitCode, signal: status.signal, durationMs, stderr: stderr.slice(0, 2000) }, "command failed");
  else log.trace({ argv, durationMs }, "command ran");
  if (timedOut) throw new CommandError(argv, undefined, stderr, stdout, `${file} timed out after ${opts.timeoutMs} ms`);
  if (cancelled) throw new CommandError(argv, undefined, stderr, stdout, `${file} was cancelled`);
  if (overflow) throw new CommandError(argv, exitCode, stderr, stdout, `${file} wrote more than ${maxBuffer} bytes of output`);
  if (exitCode === undefined) {
    throw new CommandError(argv, undefined, stderr, stdout, `${file} was killed by ${status.signal ?? "a signal"}${stderr.trim() ? `: ${stderr.trim().slice(0, 2000)}` : ""}`);
  }
  if (failed && !opts.allowFailure) {
    const detail = stderr.trim() || stdout.trim() || `exit code ${exitCode}`;
    throw new CommandError(argv, exitCode, stderr, stdout, `${file} ${args[0] ?? ""} failed (exit ${exitCode}): ${detail.slice(0, 2000)}`);
  }
  return { exitCode, stdout, stderr, durationMs };
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
