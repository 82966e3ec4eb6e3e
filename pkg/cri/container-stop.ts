import type { StopContainerRequest, StopContainerResponse } from "../../api/gen/cri/v1/api.js";
import { InvalidArgumentError } from "../errdefs/index.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";

/** Idempotent; an unknown container is not an error (CRI). */
export function stopContainer(deps: CriDeps): UnaryImpl<StopContainerRequest, StopContainerResponse> {
  return async (req, ctx) => {
    if (!req.containerId) throw new InvalidArgumentError("StopContainer: container_id is required");
    if (req.timeout < 0n) throw new InvalidArgumentError("StopContainer: timeout must not be negative");
    await deps.runtime.containers.stop(req.containerId, Number(req.timeout), ctx.signal);
    return {};
  };
}
