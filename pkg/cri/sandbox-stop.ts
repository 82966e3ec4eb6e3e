import type { StopPodSandboxRequest, StopPodSandboxResponse } from "../../api/gen/cri/v1/api.js";
import { InvalidArgumentError } from "../errdefs/index.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";

/** Idempotent; an unknown pod is not an error (CRI). */
export function stopPodSandbox(deps: CriDeps): UnaryImpl<StopPodSandboxRequest, StopPodSandboxResponse> {
  return async (req, ctx) => {
    if (!req.podSandboxId) throw new InvalidArgumentError("StopPodSandbox: pod_sandbox_id is required");
    await deps.runtime.sandboxes.stop(req.podSandboxId, ctx.signal);
    return {};
  };
}
