import { EventBus } from "./bus.js";

/** The container lifecycle transitions kubelet's evented PLEG listens to. */
export type ContainerEventKind = "created" | "started" | "stopped" | "deleted";

/**
 * One lifecycle event. The publisher (the runtime core) passes the pod's and the pod's containers'
 * statuses as of the event, in its own status types; the CRI layer translates them.
 */
export interface ContainerEvent<PodStatus = unknown, ContainerStatus = unknown> {
  containerId: string;
  kind: ContainerEventKind;
  /** ns since the epoch. */
  createdAtNs: bigint;
  podSandboxStatus: PodStatus | undefined;
  containersStatuses: ContainerStatus[];
}

/** The daemon's container event bus (GetContainerEvents). */
export function containerEventBus<P = unknown, C = unknown>(bufferSize: number): EventBus<ContainerEvent<P, C>> {
  return new EventBus<ContainerEvent<P, C>>({ bufferSize, name: "container_events" });
}

/** The current time in ns since the epoch, for createdAtNs (µs resolution). */
export function eventTimeNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}
