/**
 * Checks of the CRI Exec/Attach/PortForward requests, as the CRI API comments
 * and the kubelet streaming server define them.
 */
import { InvalidArgumentError } from "../errdefs/index.js";
import type { AttachRequest, ExecRequest, PortForwardRequest } from "./types.js";

function checkStreams(what: string, id: string, r: { tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }): void {
  if (!r.stdin && !r.stdout && !r.stderr) {
    throw new InvalidArgumentError(`${what} in container "${id}": one of stdin, stdout and stderr must be set`);
  }
  if (r.tty && r.stderr) {
    throw new InvalidArgumentError(`${what} in container "${id}": tty and stderr cannot both be true (a terminal merges stderr into stdout)`);
  }
}

export function validateExec(r: ExecRequest): void {
  if (!r.containerId) throw new InvalidArgumentError("exec: container_id is required");
  if (r.cmd.length === 0 || r.cmd[0] === "") {
    throw new InvalidArgumentError(`exec in container "${r.containerId}": cmd must not be empty`);
  }
  checkStreams("exec", r.containerId, r);
}

export function validateAttach(r: AttachRequest): void {
  if (!r.containerId) throw new InvalidArgumentError("attach: container_id is required");
  checkStreams("attach", r.containerId, r);
}

export function validatePortForward(r: PortForwardRequest): void {
  if (!r.podSandboxId) throw new InvalidArgumentError("port forward: pod_sandbox_id is required");
  for (const p of r.port) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) {
      throw new InvalidArgumentError(`port forward to pod "${r.podSandboxId}": port ${p} is not in 1-65535`);
    }
  }
}
