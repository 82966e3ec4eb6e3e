import { DeadlineExceededError, errorKind, ResourceExhaustedError, UnavailableError } from "../errdefs/index.js";
import { CommandError, run, type RunResult } from "../sys/index.js";

/** An OCI runtime binary with a runc-compatible CLI and its state root. */
export interface OciRuntime {
  name: string;
  path: string;
  root: string;
  /** How long one runtime command (start, kill, state, delete, update) may take; default 60 s. */
  callTimeoutMs?: number;
}

/** What `runc state` reports. */
export interface RuntimeState {
  id: string;
  pid: number;
  status: "creating" | "created" | "running" | "paused" | "stopped" | string;
  bundle: string;
  created?: string;
}

/** The default of `[runtime] call_timeout_seconds`. */
export const DEFAULT_CALL_TIMEOUT_MS = 60_000;

/**
 * One runtime command, in its own process group: past the timeout the whole group is
 * SIGKILLed (a hung runtime and anything it forked) and the call fails with
 * DeadlineExceeded naming the runtime and the step; a runtime that cannot run at all
 * is Unavailable (ResourceExhausted when berthd has no fd left to start it).
 */
async function call(rt: OciRuntime, args: string[], opts: { allowFailure?: boolean; input?: string } = {}): Promise<RunResult> {
  const timeoutMs = rt.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  const step = args.filter((a) => !a.startsWith("-")).join(" ");
  try {
    return await run(rt.path, [`--root=${rt.root}`, ...args], {
      timeoutMs,
      killProcessGroup: true,
      allowFailure: opts.allowFailure ?? false,
      ...(opts.input !== undefined ? { input: opts.input } : {}),
    });
  } catch (err) {
    if (err instanceof CommandError && err.exitCode === undefined && /timed out/.test(err.message)) {
      throw new DeadlineExceededError(`${rt.name} ${step}: the runtime did not answer within ${timeoutMs / 1000} s and was killed`, { cause: err });
    }
    if (err instanceof CommandError && err.exitCode === undefined && errorKind(err) === "resource-exhausted") {
      throw new ResourceExhaustedError(`${rt.name} ${step}: ${err.message}`, { cause: err });
    }
    if (err instanceof CommandError && err.exitCode === undefined) {
      throw new UnavailableError(`${rt.name} ${step}: ${err.message}`, { cause: err });
    }
    if (err instanceof CommandError) throw new UnavailableError(`${rt.name} ${step} failed: ${err.stderr.trim().slice(0, 2000) || `exit ${err.exitCode}`}`, { cause: err });
    throw err;
  }
}

/** `runc start`: runs the user process of a created container. */
export async function runtimeStart(rt: OciRuntime, id: string): Promise<void> {
  await call(rt, ["start", id]);
}

/** `runc kill`; a container that is already gone is not an error. */
export async function runtimeKill(rt: OciRuntime, id: string, signal: string | number, all = false): Promise<void> {
  const res = await call(rt, ["kill", ...(all ? ["--all"] : []), id, String(signal)], { allowFailure: true });
  if (res.exitCode !== 0 && !/not running|does not exist|container not found|process already finished/i.test(res.stderr)) {
    throw new UnavailableError(`${rt.name} kill ${id} ${signal} failed: ${res.stderr.trim() || `exit ${res.exitCode}`}`);
  }
}

/** `runc state`, or undefined when the runtime does not know the container. */
export async function runtimeState(rt: OciRuntime, id: string): Promise<RuntimeState | undefined> {
  const res = await call(rt, ["state", id], { allowFailure: true });
  if (res.exitCode !== 0) return undefined;
  try {
    return JSON.parse(res.stdout) as RuntimeState;
  } catch {
    return undefined;
  }
}

/** `runc delete --force`; unknown containers are fine. */
export async function runtimeDelete(rt: OciRuntime, id: string): Promise<void> {
  const res = await call(rt, ["delete", "--force", id], { allowFailure: true });
  if (res.exitCode !== 0 && !/does not exist|not found/i.test(res.stderr)) {
    throw new UnavailableError(`${rt.name} delete ${id} failed: ${res.stderr.trim() || `exit ${res.exitCode}`}`);
  }
}

/** `runc update --resources -`: new cgroup limits for a running container. */
export async function runtimeUpdate(rt: OciRuntime, id: string, resources: Record<string, unknown>): Promise<void> {
  await call(rt, ["update", "--resources", "-", id], { input: JSON.stringify(resources) });
}
