/**
 * The runtime's side of the streaming server: exec with the container's OCI
 * runtime (runc exec in the foreground), port forward into the pod's network
 * namespace. Attach needs the container's conmon attach socket and is not
 * wired yet (UNIMPLEMENTED).
 */
import type { Duplex } from "node:stream";
import { FailedPreconditionError, UnimplementedError } from "../errdefs/index.js";
import { forwardToPort, runcExec, type AttachIO, type StreamIO, type StreamingBackend } from "../streaming/index.js";
import type { ContainerManager } from "./container-manager.js";
import type { SandboxManager } from "./sandbox-manager.js";

export class RuntimeStreamingBackend implements StreamingBackend {
  constructor(
    private readonly core: { containers: ContainerManager; sandboxes: SandboxManager },
    private readonly opts: { tmpDir?: string } = {},
  ) {}

  exec(containerId: string, cmd: string[], io: StreamIO, signal: AbortSignal): Promise<{ exitCode: number }> {
    const c = this.core.containers.get(containerId);
    if (c.state !== "running") throw new FailedPreconditionError(`cannot exec in container "${c.id}": it is ${c.state}, not running`);
    const spec = this.core.containers.spec(c);
    return runcExec(
      {
        runtimePath: c.handler.path,
        ...(spec?.process ? { process: spec.process as unknown as Record<string, unknown> } : {}),
        ...(c.handler.root ? { runtimeRoot: c.handler.root } : {}),
        ...(this.opts.tmpDir ? { tmpDir: this.opts.tmpDir } : {}),
      },
      c.id,
      cmd,
      io,
      signal,
    );
  }

  attach(containerId: string, _io: AttachIO, _signal: AbortSignal): Promise<void> {
    return Promise.reject(new UnimplementedError(`attach to container "${containerId}": attaching through conmon's attach socket is not implemented yet`));
  }

  async portForward(podSandboxId: string, port: number, stream: Duplex, signal: AbortSignal): Promise<void> {
    const sb = this.core.sandboxes.get(podSandboxId);
    if (sb.state !== "ready") throw new FailedPreconditionError(`cannot forward port ${port}: sandbox "${sb.id}" is not ready`);
    const netnsPath = sb.hostNetwork ? undefined : sb.netnsPath;
    if (!sb.hostNetwork && !netnsPath) throw new FailedPreconditionError(`cannot forward port ${port}: sandbox "${sb.id}" has no network namespace`);
    await forwardToPort({ port, stream, signal, ...(netnsPath ? { netnsPath } : {}) });
  }
}
