import { Worker } from "node:worker_threads";
import {
  CancelledError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  ResourceExhaustedError,
  BerthError,
} from "../errdefs/index.js";
import { mallocTrim } from "../sys/index.js";
import type { ApplyRequest, ApplyResult, FixupRequest, FixupResult, WorkerReply, WorkerRequest } from "./worker-protocol.js";

const WORKER_URL = new URL("./apply-worker.js", import.meta.url);
/** After asking a worker to stop, how long it may take before it is terminated. */
const STOP_GRACE_MS = 10_000;

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof BerthError) return reason;
  return new CancelledError("layer apply was cancelled", { cause: reason });
}

interface PooledWorker {
  worker: Worker;
  idleTimer: NodeJS.Timeout | undefined;
}

/**
 * Worker threads that apply layers, one job each at a time. Starting a worker
 * costs a module load (a few hundred ms on a busy machine), so idle workers are
 * kept for `idleMs` and reused; idle workers do not keep the process alive.
 * The caller bounds how many jobs run at once.
 */
export class ApplyWorkerPool {
  readonly #idle: PooledWorker[] = [];
  readonly #all = new Set<PooledWorker>();
  #closed = false;

  /** `nice`: the workers' nice value (0 to 19; see apply-worker.ts). */
  constructor(
    readonly idleMs = 10_000,
    readonly nice = 0,
  ) {}

  /** Extracts a layer into req.dir. */
  run(req: ApplyRequest, signal?: AbortSignal): Promise<ApplyResult> {
    return this.#run({ op: "apply", ...req }, signal) as Promise<ApplyResult>;
  }

  /** Gives the implied directories of an apply made without lowers their attributes from the lowers. */
  fixup(req: FixupRequest, signal?: AbortSignal): Promise<FixupResult> {
    return this.#run({ op: "fixup", ...req }, signal) as Promise<FixupResult>;
  }

  #run(req: Omit<WorkerRequest, "stop">, signal?: AbortSignal): Promise<ApplyResult | FixupResult> {
    if (this.#closed) return Promise.reject(new CancelledError("layer apply workers are shut down"));
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const pw = this.#take();
    const stop = new SharedArrayBuffer(4);
    const flag = new Int32Array(stop);
    const data = { ...req, stop } as WorkerRequest;
    const { worker } = pw;
    return new Promise<ApplyResult | FixupResult>((resolve, reject) => {
      let settled = false;
      let killTimer: NodeJS.Timeout | undefined;
      const cleanup = (): void => {
        signal?.removeEventListener("abort", onAbort);
        worker.off("message", onMessage);
        worker.off("error", onError);
        worker.off("exit", onExit);
        if (killTimer) clearTimeout(killTimer);
      };
      const finish = (fn: () => void, reusable: boolean): void => {
        if (settled) return;
        settled = true;
        cleanup();
        if (reusable) this.#release(pw);
        else this.#discard(pw);
        fn();
      };
      const onAbort = (): void => {
        Atomics.store(flag, 0, 1);
        killTimer = setTimeout(() => {
          finish(() => reject(signal ? abortError(signal) : new CancelledError("layer apply was cancelled")), false);
        }, STOP_GRACE_MS);
        killTimer.unref();
      };
      const onMessage = (reply: WorkerReply): void => {
        finish(() => {
          if (reply.ok) return resolve(reply.result);
          switch (reply.kind) {
            case "invalid":
              return reject(new InvalidArgumentError(reply.message));
            case "aborted":
              return reject(signal ? abortError(signal) : new CancelledError(reply.message));
            case "no-space":
              return reject(new ResourceExhaustedError(reply.message));
            case "blob-missing":
              return reject(new NotFoundError(reply.message));
            case "io":
              return reject(new InternalError(reply.message));
          }
        }, true);
      };
      const onError = (err: Error): void => {
        finish(() => reject(new InternalError(`layer ${req.layerName}: apply worker failed: ${err.message}`, { cause: err })), false);
      };
      const onExit = (code: number): void => {
        finish(() => reject(new InternalError(`layer ${req.layerName}: apply worker exited (code ${code}) without a result`)), false);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      worker.on("message", onMessage);
      worker.on("error", onError);
      worker.on("exit", onExit);
      worker.postMessage(data);
    });
  }

  #take(): PooledWorker {
    const pw = this.#idle.pop();
    if (pw) {
      if (pw.idleTimer) clearTimeout(pw.idleTimer);
      pw.idleTimer = undefined;
      pw.worker.ref();
      return pw;
    }
    const worker = new Worker(WORKER_URL, { workerData: { nice: this.nice } });
    const fresh: PooledWorker = { worker, idleTimer: undefined };
    this.#all.add(fresh);
    worker.once("exit", () => this.#forget(fresh));
    return fresh;
  }

  #release(pw: PooledWorker): void {
    if (this.#closed || this.idleMs <= 0) return this.#discard(pw);
    pw.worker.unref();
    pw.idleTimer = setTimeout(() => this.#discard(pw), this.idleMs);
    pw.idleTimer.unref();
    this.#idle.push(pw);
  }

  #forget(pw: PooledWorker): void {
    if (pw.idleTimer) clearTimeout(pw.idleTimer);
    const had = this.#all.delete(pw);
    const i = this.#idle.indexOf(pw);
    if (i >= 0) this.#idle.splice(i, 1);
    // the last worker gone: what its native buffers used goes back to the system
    if (had && this.#all.size === 0) void pw.worker.terminate().finally(() => setImmediate(() => void mallocTrim()));
  }

  #discard(pw: PooledWorker): void {
    this.#forget(pw);
    void pw.worker.terminate();
  }

  /** Number of live workers (busy and idle). */
  get size(): number {
    return this.#all.size;
  }

  /** Terminates idle workers now and busy ones as they finish. */
  close(): void {
    this.#closed = true;
    for (const pw of [...this.#idle]) this.#discard(pw);
  }
}
