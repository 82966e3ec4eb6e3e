import type { StartContainerRequest, StartContainerResponse } from "../../api/gen/cri/v1/api.js";
import { InvalidArgumentError } from "../errdefs/index.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";

export function startContainer(deps: CriDeps): UnaryImpl<StartContainerRequest, StartContainerResponse> {
  return async (req) => {
    if (!req.containerId) throw new InvalidArgumentError("StartContainer: container_id is required");
    await deps.runtime.containers.start(req.containerId);
    return {};
  };
}
