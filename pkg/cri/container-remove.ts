import type { RemoveContainerRequest, RemoveContainerResponse } from "../../api/gen/cri/v1/api.js";
import { InvalidArgumentError } from "../errdefs/index.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";

/** Idempotent; an unknown container is not an error (CRI). */
export function removeContainer(deps: CriDeps): UnaryImpl<RemoveContainerRequest, RemoveContainerResponse> {
  return async (req, ctx) => {
    if (!req.containerId) throw new InvalidArgumentError("RemoveContainer: container_id is required");
    await deps.runtime.containers.remove(req.containerId, ctx.signal);
    return {};
  };
}
