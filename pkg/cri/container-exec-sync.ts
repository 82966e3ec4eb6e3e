import type { ExecSyncRequest, ExecSyncResponse } from "../../api/gen/cri/v1/api.js";
import { InvalidArgumentError } from "../errdefs/index.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";

/** Room for the response's field tags, length prefixes and exit code. */
const RESPONSE_OVERHEAD = 64;

/**
 * Trims stdout and stderr so that the encoded ExecSyncResponse fits `maxMessage`
 * bytes (the daemon's send limit; the kubelet receives at most 16 MiB). Without
 * this a command that prints up to the capture cap on both streams gets
 * RESOURCE_EXHAUSTED instead of its exit code. Each stream keeps at least half
 * of the budget when both are long; a short one is kept whole.
 */
export function fitExecOutput(stdout: Buffer, stderr: Buffer, maxMessage: number): { stdout: Buffer; stderr: Buffer } {
  const budget = Math.max(0, maxMessage - RESPONSE_OVERHEAD);
  if (stdout.length + stderr.length <= budget) return { stdout, stderr };
  const half = Math.floor(budget / 2);
  let out: number;
  let err: number;
  if (stdout.length <= half) [out, err] = [stdout.length, budget - stdout.length];
  else if (stderr.length <= half) [out, err] = [budget - stderr.length, stderr.length];
  else [out, err] = [half, budget - half];
  return { stdout: stdout.subarray(0, out), stderr: stderr.subarray(0, err) };
}

export function execSync(deps: CriDeps): UnaryImpl<ExecSyncRequest, ExecSyncResponse> {
  return async (req) => {
    if (!req.containerId) throw new InvalidArgumentError("ExecSync: container_id is required");
    if (req.cmd.length === 0) throw new InvalidArgumentError("ExecSync: cmd is required");
    if (req.timeout < 0n) throw new InvalidArgumentError("ExecSync: timeout must not be negative");
    const r = await deps.runtime.containers.execSync(req.containerId, req.cmd, Number(req.timeout));
    return { ...fitExecOutput(r.stdout, r.stderr, deps.config.grpc.max_send_message_size), exitCode: r.exitCode };
  };
}
