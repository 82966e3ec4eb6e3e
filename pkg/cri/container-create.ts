import type { CreateContainerRequest, CreateContainerResponse } from "../../api/gen/cri/v1/api.js";
import { InvalidArgumentError } from "../errdefs/index.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";

export function createContainer(deps: CriDeps): UnaryImpl<CreateContainerRequest, CreateContainerResponse> {
  return async (req) => {
    if (!req.podSandboxId) throw new InvalidArgumentError("CreateContainer: pod_sandbox_id is required");
    if (!req.config) throw new InvalidArgumentError("CreateContainer: config is required");
    const c = await deps.runtime.containers.create(req.podSandboxId, req.config);
    return { containerId: c.id };
  };
}
