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

/** Parsed configs by the runtime's config object (replaced, never edited, when the config changes). */
const parsedConfigs = new WeakMap<Container["config"], ContainerConfig>();

/**
 * The CRI config a container was created from (kept in proto JSON form by the runtime),
 * parsed once per config object: ContainerStatus, polled for every container, reads it.
 * Callers must not modify it.
 */
export function criConfigOf(c: Container): ContainerConfig {
  let cfg = parsedConfigs.get(c.config);
  if (!cfg) {
    cfg = ContainerConfig.fromJSON(c.config);
    parsedConfigs.set(c.config, cfg);
  }
  return cfg;
}

function imageSpecFrom(c: Container, cfg: ContainerConfig): DeepPartial<CriContainer["image"]> {
  return {
    image: c.image,
    annotations: { ...(cfg.image?.annotations ?? {}) },
    userSpecifiedImage: cfg.image?.userSpecifiedImage || c.image,
    runtimeHandler: cfg.image?.runtimeHandler ?? "",
  };
}

/**
 * ListContainers' image specs by the runtime's config object: a container's config is
 * replaced (never edited in place) when it changes, so its config is parsed once for the
 * list, not once per list call (and only this small part is kept, not the parsed config).
 */
const listImageSpecs = new WeakMap<Container["config"], DeepPartial<CriContainer["image"]>>();

function imageSpecOf(c: Container): DeepPartial<CriContainer["image"]> {
  let spec = listImageSpecs.get(c.config);
  if (!spec) {
    spec = imageSpecFrom(c, criConfigOf(c));
    listImageSpecs.set(c.config, spec);
  }
  return spec;
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
    // Shared, not copied: the server's fromPartial copies every response before encoding it.
    labels: c.labels,
    annotations: c.annotations,
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
    image: imageSpecFrom(c, cfg),
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
