import type { ExecSyncRequest, ExecSyncResponse } from "../../api/gen/cri/v1/api.js";
import { InvalidArgumentError } from "../errdefs/index.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";

export function execSync(deps: CriDeps): UnaryImpl<ExecSyncRequest, ExecSyncResponse> {
  return async (req) => {
    if (!req.containerId) throw new InvalidArgumentError("ExecSync: container_id is required");
    if (req.cmd.length === 0) throw new InvalidArgumentError("ExecSync: cmd is required");
    if (req.timeout < 0n) throw new InvalidArgumentError("ExecSync: timeout must not be negative");
    const r = await deps.runtime.containers.execSync(req.containerId, req.cmd, Number(req.timeout));
    return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
  };
}
