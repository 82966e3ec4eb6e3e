import { Worker } from "node:worker_threads";
import {
  CancelledError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  ResourceExhaustedError,
  BerthError,
} from "../errdefs/index.js";
import type { ApplyRequest, ApplyResult, WorkerReply, WorkerRequest } from "./worker-protocol.js";

const WORKER_URL = new URL("./apply-worker.js", import.meta.url);
/** After asking a worker to stop, how long it may take before it is terminated. */
const STOP_GRACE_MS = 10_000;

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof BerthError) return reason;
  return new CancelledError("layer apply was cancelled", { cause: reason });
}

/** Applies one layer in a fresh worker thread; the signal stops it (the caller cleans the directory). */
export function runApplyWorker(req: ApplyRequest, signal?: AbortSignal): Promise<ApplyResult> {
  if (signal?.aborted) return Promise.reject(abortError(signal));
  const stop = new SharedArrayBuffer(4);
  const flag = new Int32Array(stop);
  const data: WorkerRequest = { ...req, stop };
  return new Promise<ApplyResult>((resolve, reject) => {
    const worker = new Worker(WORKER_URL, { workerData: data });
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      fn();
    };
    const onAbort = (): void => {
      Atomics.store(flag, 0, 1);
      killTimer = setTimeout(() => void worker.terminate(), STOP_GRACE_MS);
      killTimer.unref();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    worker.on("message", (reply: WorkerReply) => {
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
            return reject(new NotFoundError(`layer blob ${req.blobPath} not found: ${reply.message}`));
          case "io":
            return reject(new InternalError(reply.message));
        }
      });
    });
    worker.on("error", (err) => finish(() => reject(new InternalError(`layer apply worker failed: ${err.message}`, { cause: err }))));
    worker.on("exit", (code) => {
      if (killTimer) clearTimeout(killTimer);
      finish(() => {
        if (signal?.aborted) reject(abortError(signal));
        else reject(new InternalError(`layer apply worker exited (code ${code}) without a result`));
      });
    });
  });
}
