import { Container as CriContainer, type ListContainersRequest, type DeepPartial } from "../../api/gen/cri/v1/api.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";
import { criContainerOf, rtStateOf } from "./container-convert.js";
import type { Container, ContainerFilterSpec } from "../runtime/index.js";
import { EncodedCache, EncodedMessage, encodeRepeated } from "./encoded.js";

/** A container's ListContainers entry changes with its state only (its config object is replaced on update). */
const entries = new EncodedCache<Container>((c) => CriContainer.encode(CriContainer.fromPartial(criContainerOf(c))).finish());

/** The containers a ListContainers request selects. */
function select(deps: CriDeps, req: ListContainersRequest): Container[] {
  const f = req.filter;
  const spec: ContainerFilterSpec = {};
  if (f?.id) spec.id = f.id;
  if (f?.podSandboxId) spec.podSandboxId = f.podSandboxId;
  if (f?.state) {
    const s = rtStateOf(f.state.state);
    if (!s) return [];
    spec.state = s;
  }
  if (f && Object.keys(f.labelSelector).length > 0) spec.labels = { ...f.labelSelector };
  return deps.runtime.containers.list(spec);
}

export function listContainers(deps: CriDeps): UnaryImpl<ListContainersRequest, EncodedMessage> {
  // ListContainersResponse: repeated Container containers = 1.
  return async (req) => new EncodedMessage(encodeRepeated(1, select(deps, req).map((c) => entries.get(c, [c.state, c.config, c.image, c.imageId, c.createdAt]))));
}

/** The same selection as messages (the Stream* variant sends them in chunks). */
export function listContainerItems(deps: CriDeps): UnaryImpl<ListContainersRequest, { containers: DeepPartial<CriContainer>[] }> {
  return async (req) => ({ containers: select(deps, req).map(criContainerOf) });
}
