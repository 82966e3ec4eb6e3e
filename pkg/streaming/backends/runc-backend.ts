/**
 * A StreamingBackend for containers run directly by an OCI runtime: exec with
 * `runc exec`, port forward through the pod's network namespace. Attach needs
 * the container's shim (conmon's attach socket) and is left to the runtime,
 * which can wrap this class and add it.
 */
import type { Duplex } from "node:stream";
import { UnimplementedError } from "../../errdefs/index.js";
import type { AttachIO, StreamIO, StreamingBackend } from "../types.js";
import { forwardToPort } from "./port-forward.js";
import { runcExec, type RuncExecOptions } from "./runc-exec.js";

export interface RuncBackendOptions extends RuncExecOptions {
  /**
   * The network namespace file of a pod, undefined for a host-network pod.
   * Throws (NotFoundError) for an unknown pod.
   */
  podNetns(podSandboxId: string): string | undefined | Promise<string | undefined>;
  nsenterPath?: string;
  busyboxPath?: string;
  /** The container's OCI process (its config.json "process"), so exec runs with it (see RuncExecOptions.process). */
  processOf?(containerId: string): Record<string, unknown> | undefined | Promise<Record<string, unknown> | undefined>;
}

export class RuncStreamingBackend implements StreamingBackend {
  #opts: RuncBackendOptions;

  constructor(opts: RuncBackendOptions) {
    this.#opts = opts;
  }

  async exec(containerId: string, cmd: string[], io: StreamIO, signal: AbortSignal): Promise<{ exitCode: number }> {
    const process = await this.#opts.processOf?.(containerId);
    return runcExec({ ...this.#opts, ...(process ? { process } : {}) }, containerId, cmd, io, signal);
  }

  attach(containerId: string, _io: AttachIO, _signal: AbortSignal): Promise<void> {
    return Promise.reject(new UnimplementedError(`attach to container "${containerId}" needs its shim; this backend only runs exec`));
  }

  async portForward(podSandboxId: string, port: number, stream: Duplex, signal: AbortSignal): Promise<void> {
    const netnsPath = await this.#opts.podNetns(podSandboxId);
    await forwardToPort({
      port,
      stream,
      signal,
      ...(netnsPath ? { netnsPath } : {}),
      ...(this.#opts.nsenterPath ? { nsenterPath: this.#opts.nsenterPath } : {}),
      ...(this.#opts.busyboxPath ? { busyboxPath: this.#opts.busyboxPath } : {}),
    });
  }
}
