import { closeSync, constants, lstatSync, openSync, readFileSync, rmSync } from "node:fs";
import { Socket } from "node:net";
import { basename, join } from "node:path";
import { runtimeStart, type OciRuntime } from "./oci-runtime.js";

/** How a created container was started. */
export type StartPath = "exec-fifo" | "runtime";

/** How long the fifo start waits for the init's byte and its exec before it gives up. */
const FIFO_START_TIMEOUT_MS = 60_000;
/** How often the init is checked for life while the fifo start waits. */
const LIVENESS_MS = 20;

interface RuncStateFile {
  init_process_pid?: number;
  init_process_start?: number | string;
}

/**
 * Starts a created container. For runc (1.0/1.1 state layout), it does what
 * `runc start` does without paying for a runc process: the container's init is
 * blocked opening `exec.fifo` in runc's state dir for writing; opening it for
 * reading lets the init write one byte and exec the user's process (its write
 * end closes at that exec); the fifo is then removed, which is what `runc state`
 * reads as running. The runtime's own `start` runs instead when runc is not the
 * runtime, the spec (BUNDLE/config.json; runc's state.json does not keep hooks)
 * has poststart hooks, NOTIFY_SOCKET is set, or the state dir is not laid out as
 * expected. The fifo start never waits on a dead init: the
 * init's pid and start time (from state.json) are checked while it waits.
 */
export async function startCreated(rt: OciRuntime, id: string, bundle: string): Promise<StartPath> {
  const plan = fifoPlan(rt, id, bundle);
  if (!plan) {
    await runtimeStart(rt, id);
    return "runtime";
  }
  if (!initAlive(plan.pid, plan.startTime)) throw new Error(`${rt.name} start ${id}: the container's init process (pid ${plan.pid}) is gone`);
  let fd: number;
  try {
    fd = openSync(plan.fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    // Started (or deleted) by someone else meanwhile: the runtime says which.
    await runtimeStart(rt, id);
    return "runtime";
  }
  await readExecFifo(fd, plan.pid, plan.startTime, id);
  rmSync(plan.fifo, { force: true });
  return "exec-fifo";
}

interface FifoPlan {
  fifo: string;
  pid: number;
  startTime: string;
}

function fifoPlan(rt: OciRuntime, id: string, bundle: string): FifoPlan | undefined {
  if (basename(rt.path) !== "runc" || process.env["NOTIFY_SOCKET"]) return undefined;
  const dir = join(rt.root, id);
  let state: RuncStateFile;
  let spec: { hooks?: { poststart?: unknown[] } };
  try {
    state = JSON.parse(readFileSync(join(dir, "state.json"), "utf8")) as RuncStateFile;
    spec = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8")) as typeof spec;
  } catch {
    return undefined;
  }
  const pid = state.init_process_pid;
  const start = state.init_process_start;
  if (typeof pid !== "number" || pid <= 0 || start === undefined) return undefined;
  if ((spec.hooks?.poststart?.length ?? 0) > 0) return undefined;
  const fifo = join(dir, "exec.fifo");
  try {
    if (!lstatSync(fifo).isFIFO()) return undefined;
  } catch {
    return undefined;
  }
  return { fifo, pid, startTime: String(start) };
}

/** The init runs (not a zombie) and is the process runc recorded (same start time). */
function initAlive(pid: number, startTime: string): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return false;
  }
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return fields[0] !== "Z" && fields[0] !== "X" && fields[19] === startTime;
}

/**
 * Reads the exec fifo until its writer closes it: one byte, then end of file
 * (the init's exec). End of file with no byte means the container was started
 * already. Fails when the init dies without writing, or after the time bound.
 */
function readExecFifo(fd: number, pid: number, startTime: string, id: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let sock: Socket;
    try {
      sock = new Socket({ fd, readable: true, writable: false });
    } catch (err) {
      closeSync(fd);
      reject(err as Error);
      return;
    }
    let got = 0;
    let deadSeen = false;
    const deadline = Date.now() + FIFO_START_TIMEOUT_MS;
    const finish = (err?: Error): void => {
      clearInterval(timer);
      sock.removeAllListeners();
      sock.on("error", () => undefined);
      sock.destroy();
      if (err) reject(err);
      else resolve();
    };
    const timer = setInterval(() => {
      if (Date.now() > deadline) {
        finish(new Error(`start of container ${id}: its init (pid ${pid}) did not take the start signal within ${FIFO_START_TIMEOUT_MS} ms`));
        return;
      }
      if (initAlive(pid, startTime)) return;
      // Dead: let one more turn of the event loop deliver a byte it may have written before dying.
      if (!deadSeen) {
        deadSeen = true;
        return;
      }
      if (got > 0) finish();
      else finish(new Error(`start of container ${id}: its init process (pid ${pid}) died before it was started`));
    }, LIVENESS_MS);
    sock.on("data", (chunk: Buffer) => {
      got += chunk.length;
    });
    sock.on("end", () => {
      if (got > 0) finish();
      else finish(new Error(`start of container ${id}: it was started already (its exec fifo closed without data)`));
    });
    sock.on("error", (err) => finish(new Error(`start of container ${id}: reading its exec fifo failed: ${err.message}`, { cause: err })));
  });
}
