import type { ReopenContainerLogRequest, ReopenContainerLogResponse } from "../../api/gen/cri/v1/api.js";
import { InvalidArgumentError } from "../errdefs/index.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";

export function reopenContainerLog(deps: CriDeps): UnaryImpl<ReopenContainerLogRequest, ReopenContainerLogResponse> {
  return async (req) => {
    if (!req.containerId) throw new InvalidArgumentError("ReopenContainerLog: container_id is required");
    await deps.runtime.containers.reopenLog(req.containerId);
    return {};
  };
}
