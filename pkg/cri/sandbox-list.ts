import { PodSandbox, PodSandboxState, type ListPodSandboxRequest, type DeepPartial } from "../../api/gen/cri/v1/api.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";
import { criState, podSandboxOf } from "./sandbox-convert.js";
import type { Sandbox } from "../runtime/index.js";
import { EncodedCache, EncodedMessage, encodeRepeated } from "./encoded.js";

/** A sandbox's ListPodSandbox entry changes with its state only. */
const entries = new EncodedCache<Sandbox>((sb) => PodSandbox.encode(PodSandbox.fromPartial(podSandboxOf(sb))).finish());

/** Filters: id (exact or prefix), state, label selector (all must match). */
function select(deps: CriDeps, req: ListPodSandboxRequest): Sandbox[] {
  const f = req.filter;
  return deps.runtime.sandboxes
    .list()
    .filter((sb) => !f?.id || sb.id.startsWith(f.id))
    .filter((sb) => !f?.state || f.state.state === PodSandboxState.UNRECOGNIZED || criState(sb) === f.state.state)
    .filter((sb) => Object.entries(f?.labelSelector ?? {}).every(([k, v]) => sb.labels[k] === v));
}

export function listPodSandbox(deps: CriDeps): UnaryImpl<ListPodSandboxRequest, EncodedMessage> {
  // ListPodSandboxResponse: repeated PodSandbox items = 1.
  return async (req) => new EncodedMessage(encodeRepeated(1, select(deps, req).map((sb) => entries.get(sb, [sb.state, sb.createdAt, sb.runtimeHandler]))));
}

/** The same selection as messages (the Stream* variant sends them in chunks). */
export function listPodSandboxItems(deps: CriDeps): UnaryImpl<ListPodSandboxRequest, { items: DeepPartial<PodSandbox>[] }> {
  return async (req) => ({ items: select(deps, req).map(podSandboxOf) });
}
