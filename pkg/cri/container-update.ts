import { ContainerConfig, type UpdateContainerResourcesRequest, type UpdateContainerResourcesResponse } from "../../api/gen/cri/v1/api.js";
import { InvalidArgumentError } from "../errdefs/index.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";
import { criConfigOf } from "./container-convert.js";

export function updateContainerResources(deps: CriDeps): UnaryImpl<UpdateContainerResourcesRequest, UpdateContainerResourcesResponse> {
  return async (req) => {
    if (!req.containerId) throw new InvalidArgumentError("UpdateContainerResources: container_id is required");
    if (!req.linux) return {};
    const rt = deps.runtime.containers;
    const cfg = criConfigOf(rt.get(req.containerId));
    const next: ContainerConfig = { ...cfg, linux: { resources: req.linux, securityContext: cfg.linux?.securityContext } };
    await rt.updateResources(req.containerId, req.linux, ContainerConfig.toJSON(next) as Record<string, unknown>);
    return {};
  };
}
