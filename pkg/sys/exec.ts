import { execa, type Options as ExecaOptions } from "execa";
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
  ) {
    super(message);
    this.name = "CommandError";
  }
}

/**
 * The one way berthd runs an external command: timeout, abort signal, and a
 * structured log line with argv, exit code, duration and stderr.
 */
export async function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  const options: ExecaOptions = {
    reject: false,
    stripFinalNewline: false,
    encoding: "utf8",
    extendEnv: opts.extendEnv ?? true,
    maxBuffer: opts.maxBuffer ?? 64 * 1024 * 1024,
    ...(opts.timeoutMs !== undefined && !opts.killProcessGroup ? { timeout: opts.timeoutMs } : {}),
    ...(opts.killProcessGroup ? { detached: true } : {}),
    ...(opts.signal ? { cancelSignal: opts.signal } : {}),
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: "ignore" }),
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  };
  const sub = execa(file, args, options);
  let groupTimedOut = false;
  const groupTimer =
    opts.killProcessGroup && opts.timeoutMs !== undefined && opts.timeoutMs > 0
      ? setTimeout(() => {
          groupTimedOut = true;
          killGroup(sub.pid);
        }, opts.timeoutMs)
      : undefined;
  let res;
  try {
    res = await sub;
  } finally {
    if (groupTimer) clearTimeout(groupTimer);
  }
  const durationMs = Math.round(performance.now() - started);
  const stdout = typeof res.stdout === "string" ? res.stdout : "";
  const stderr = typeof res.stderr === "string" ? res.stderr : "";
  const argv = [file, ...args];
  const failed = res.failed || res.exitCode !== 0;
  const log = logger();
  if (failed) log.debug({ argv, exitCode: res.exitCode, durationMs, stderr: stderr.slice(0, 2000) }, "command failed");
  else log.trace({ argv, durationMs }, "command ran");
  if (res.timedOut || groupTimedOut) throw new CommandError(argv, res.exitCode, stderr, stdout, `${file} timed out after ${opts.timeoutMs} ms`);
  if (res.isCanceled) throw new CommandError(argv, res.exitCode, stderr, stdout, `${file} was cancelled`);
  if (res.exitCode === undefined) {
    throw new CommandError(argv, undefined, stderr, stdout, `${file} could not run: ${res.originalMessage ?? res.shortMessage}`);
  }
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
