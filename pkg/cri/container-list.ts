import type { ListContainersRequest, ListContainersResponse, DeepPartial } from "../../api/gen/cri/v1/api.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";
import { criContainerOf, rtStateOf } from "./container-convert.js";
import type { ContainerFilterSpec } from "../runtime/index.js";

export function listContainers(deps: CriDeps): UnaryImpl<ListContainersRequest, DeepPartial<ListContainersResponse>> {
  return async (req) => {
    const f = req.filter;
    const spec: ContainerFilterSpec = {};
    if (f?.id) spec.id = f.id;
    if (f?.podSandboxId) spec.podSandboxId = f.podSandboxId;
    if (f?.state) {
      const s = rtStateOf(f.state.state);
      if (!s) return { containers: [] };
      spec.state = s;
    }
    if (f && Object.keys(f.labelSelector).length > 0) spec.labels = { ...f.labelSelector };
    return { containers: deps.runtime.containers.list(spec).map(criContainerOf) };
  };
}
