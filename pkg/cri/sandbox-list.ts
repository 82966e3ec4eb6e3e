import { PodSandboxState, type ListPodSandboxRequest, type ListPodSandboxResponse, type DeepPartial } from "../../api/gen/cri/v1/api.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";
import { criState, podSandboxOf } from "./sandbox-convert.js";

/** Filters: id (exact or prefix), state, label selector (all must match). */
export function listPodSandbox(deps: CriDeps): UnaryImpl<ListPodSandboxRequest, DeepPartial<ListPodSandboxResponse>> {
  return async (req) => {
    const f = req.filter;
    const items = deps.runtime.sandboxes
      .list()
      .filter((sb) => !f?.id || sb.id.startsWith(f.id))
      .filter((sb) => !f?.state || f.state.state === PodSandboxState.UNRECOGNIZED || criState(sb) === f.state.state)
      .filter((sb) => Object.entries(f?.labelSelector ?? {}).every(([k, v]) => sb.labels[k] === v))
      .map(podSandboxOf);
    return { items };
  };
}
