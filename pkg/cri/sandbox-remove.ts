import type { RemovePodSandboxRequest, RemovePodSandboxResponse } from "../../api/gen/cri/v1/api.js";
import { InvalidArgumentError } from "../errdefs/index.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";

/** Idempotent; an unknown pod is not an error (CRI). */
export function removePodSandbox(deps: CriDeps): UnaryImpl<RemovePodSandboxRequest, RemovePodSandboxResponse> {
  return async (req, ctx) => {
    if (!req.podSandboxId) throw new InvalidArgumentError("RemovePodSandbox: pod_sandbox_id is required");
    await deps.runtime.sandboxes.remove(req.podSandboxId, ctx.signal);
    return {};
  };
}
