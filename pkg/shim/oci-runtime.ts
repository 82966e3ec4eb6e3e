import { run, type RunResult } from "../sys/index.js";

/** An OCI runtime binary with a runc-compatible CLI and its state root. */
export interface OciRuntime {
  name: string;
  path: string;
  root: string;
}

/** What `runc state` reports. */
export interface RuntimeState {
  id: string;
  pid: number;
  status: "creating" | "created" | "running" | "paused" | "stopped" | string;
  bundle: string;
  created?: string;
}

const CALL_TIMEOUT_MS = 60_000;

function call(rt: OciRuntime, args: string[], allowFailure = false): Promise<RunResult> {
  return run(rt.path, [`--root=${rt.root}`, ...args], { timeoutMs: CALL_TIMEOUT_MS, allowFailure });
}

/** `runc start`: runs the user process of a created container. */
export async function runtimeStart(rt: OciRuntime, id: string): Promise<void> {
  await call(rt, ["start", id]);
}

/** `runc kill`; a container that is already gone is not an error. */
export async function runtimeKill(rt: OciRuntime, id: string, signal: string | number, all = false): Promise<void> {
  const res = await call(rt, ["kill", ...(all ? ["--all"] : []), id, String(signal)], true);
  if (res.exitCode !== 0 && !/not running|does not exist|container not found|process already finished/i.test(res.stderr)) {
    throw new Error(`${rt.name} kill ${id} ${signal} failed: ${res.stderr.trim() || `exit ${res.exitCode}`}`);
  }
}

/** `runc state`, or undefined when the runtime does not know the container. */
export async function runtimeState(rt: OciRuntime, id: string): Promise<RuntimeState | undefined> {
  const res = await call(rt, ["state", id], true);
  if (res.exitCode !== 0) return undefined;
  try {
    return JSON.parse(res.stdout) as RuntimeState;
  } catch {
    return undefined;
  }
}

/** `runc delete --force`; unknown containers are fine. */
export async function runtimeDelete(rt: OciRuntime, id: string): Promise<void> {
  const res = await call(rt, ["delete", "--force", id], true);
  if (res.exitCode !== 0 && !/does not exist|not found/i.test(res.stderr)) {
    throw new Error(`${rt.name} delete ${id} failed: ${res.stderr.trim() || `exit ${res.exitCode}`}`);
  }
}

/** `runc update --resources -`: new cgroup limits for a running container. */
export async function runtimeUpdate(rt: OciRuntime, id: string, resources: Record<string, unknown>): Promise<void> {
  await run(rt.path, [`--root=${rt.root}`, "update", "--resources", "-", id], { timeoutMs: CALL_TIMEOUT_MS, input: JSON.stringify(resources) });
}
