import { ContainerConfig, ContainerState, type Container as CriContainer, type ContainerStatus, type DeepPartial } from "../../api/gen/cri/v1/api.js";
import type { Container, ContainerState as RtState } from "../runtime/index.js";

const STATES: Record<RtState, ContainerState> = {
  creating: ContainerState.CONTAINER_UNKNOWN,
  created: ContainerState.CONTAINER_CREATED,
  running: ContainerState.CONTAINER_RUNNING,
  exited: ContainerState.CONTAINER_EXITED,
};

export function criStateOf(s: RtState): ContainerState {
  return STATES[s];
}

export function rtStateOf(s: ContainerState): RtState | undefined {
  switch (s) {
    case ContainerState.CONTAINER_CREATED:
      return "created";
    case ContainerState.CONTAINER_RUNNING:
      return "running";
    case ContainerState.CONTAINER_EXITED:
      return "exited";
    default:
      return undefined;
  }
}

/**
 * Parsed configs by the runtime's config object: a container's config is replaced (never
 * edited in place) when it changes, so the parse happens once per config, not once per read.
 */
const parsed = new WeakMap<Container["config"], ContainerConfig>();

/** The CRI config a container was created from (kept in proto JSON form by the runtime). Treat it as read-only. */
export function criConfigOf(c: Container): ContainerConfig {
  let cfg = parsed.get(c.config);
  if (!cfg) {
    cfg = ContainerConfig.fromJSON(c.config);
    parsed.set(c.config, cfg);
  }
  return cfg;
}

function imageSpecOf(c: Container, cfg: ContainerConfig = criConfigOf(c)): DeepPartial<CriContainer["image"]> {
  return {
    image: c.image,
    annotations: { ...(cfg.image?.annotations ?? {}) },
    userSpecifiedImage: cfg.image?.userSpecifiedImage || c.image,
    runtimeHandler: cfg.image?.runtimeHandler ?? "",
  };
}

/** The ListContainers entry of a container. */
export function criContainerOf(c: Container): DeepPartial<CriContainer> {
  return {
    id: c.id,
    podSandboxId: c.podSandboxId,
    metadata: { name: c.name, attempt: c.attempt },
    image: imageSpecOf(c),
    imageRef: c.imageId,
    imageId: c.imageId,
    state: criStateOf(c.state),
    createdAt: c.createdAt,
    labels: { ...c.labels },
    annotations: { ...c.annotations },
  };
}

/** The ContainerStatus of a container. */
export function containerStatusOf(c: Container): DeepPartial<ContainerStatus> {
  const cfg = criConfigOf(c);
  return {
    id: c.id,
    metadata: { name: c.name, attempt: c.attempt },
    state: criStateOf(c.state),
    createdAt: c.createdAt,
    startedAt: c.startedAt,
    finishedAt: c.finishedAt,
    exitCode: c.exitCode,
    image: imageSpecOf(c, cfg),
    imageRef: c.imageId,
    imageId: c.imageId,
    reason: c.reason,
    message: c.message,
    labels: { ...c.labels },
    annotations: { ...c.annotations },
    mounts: cfg.mounts,
    logPath: c.logPath,
    resources: cfg.linux?.resources ? { linux: cfg.linux.resources } : undefined,
    user: { linux: { uid: BigInt(c.user.uid), gid: BigInt(c.user.gid), supplementalGroups: c.user.additionalGids.map(BigInt) } },
    stopSignal: cfg.stopSignal,
  };
}
