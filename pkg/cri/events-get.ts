import { ContainerEventType, type ContainerEventResponse, type ContainerStatus, type DeepPartial, type GetEventsRequest, type PodSandboxStatus } from "../../api/gen/cri/v1/api.js";
import type { ContainerEvent, ContainerEventKind, EventBus } from "../events/index.js";
import type { StreamImpl } from "./instrument.js";

const TYPES: Record<ContainerEventKind, ContainerEventType> = {
  created: ContainerEventType.CONTAINER_CREATED_EVENT,
  started: ContainerEventType.CONTAINER_STARTED_EVENT,
  stopped: ContainerEventType.CONTAINER_STOPPED_EVENT,
  deleted: ContainerEventType.CONTAINER_DELETED_EVENT,
};

/** Translators from the runtime's status objects to CRI messages (identity when it publishes CRI shapes). */
export interface EventStatusConverters<P, C> {
  podStatus(p: P): DeepPartial<PodSandboxStatus>;
  containerStatus(c: C): DeepPartial<ContainerStatus>;
}

export function toContainerEventResponse<P, C>(ev: ContainerEvent<P, C>, conv?: EventStatusConverters<P, C>): DeepPartial<ContainerEventResponse> {
  return {
    containerId: ev.containerId,
    containerEventType: TYPES[ev.kind],
    createdAt: ev.createdAtNs,
    podSandboxStatus: ev.podSandboxStatus === undefined ? undefined : conv ? conv.podStatus(ev.podSandboxStatus) : (ev.podSandboxStatus as DeepPartial<PodSandboxStatus>),
    containersStatuses: ev.containersStatuses.map((c) => (conv ? conv.containerStatus(c) : (c as DeepPartial<ContainerStatus>))),
  };
}

/**
 * GetContainerEvents: streams lifecycle events from the moment of the call until the client cancels
 * or the daemon shuts down (`lifetime`). The subscription's bounded buffer absorbs bursts; when the
 * client stops reading, the handler waits for the call to drain, the buffer fills and further events
 * for this client are dropped (counted) — publishers never wait.
 */
export function getContainerEvents<P, C>(
  bus: EventBus<ContainerEvent<P, C>>,
  opts: { converters?: EventStatusConverters<P, C>; lifetime?: AbortSignal } = {},
): StreamImpl<GetEventsRequest, DeepPartial<ContainerEventResponse>> {
  return async (_req, write, ctx, drained) => {
    const signal = opts.lifetime ? AbortSignal.any([ctx.signal, opts.lifetime]) : ctx.signal;
    const sub = bus.subscribe({ signal });
    try {
      for await (const ev of sub) {
        if (!write(toContainerEventResponse(ev, opts.converters))) await drained();
        if (signal.aborted) break;
      }
    } finally {
      sub.close();
    }
  };
}
