import { ContainerStatus, type ContainerStatusRequest, type ContainerStatusResponse, type DeepPartial } from "../../api/gen/cri/v1/api.js";
import type { Container } from "../runtime/index.js";
import { EncodedCache, EncodedMessage, encodeRepeated } from "./encoded.js";
import { InvalidArgumentError } from "../errdefs/index.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";
import { containerStatusOf } from "./container-convert.js";

/** A container's status, encoded once per value of what can change about it (its config object is replaced on update). */
const statuses = new EncodedCache<Container>((c) => ContainerStatus.encode(ContainerStatus.fromPartial(containerStatusOf(c))).finish());

export function containerStatus(deps: CriDeps): UnaryImpl<ContainerStatusRequest, DeepPartial<ContainerStatusResponse> | EncodedMessage> {
  return async (req) => {
    if (!req.containerId) throw new InvalidArgumentError("ContainerStatus: container_id is required");
    const rt = deps.runtime.containers;
    const c = rt.lookup(req.containerId);
    if (!req.verbose) {
      // ContainerStatusResponse: ContainerStatus status = 1 (and no info).
      const key = [c.state, c.startedAt, c.finishedAt, c.exitCode, c.reason, c.message, c.config, c.logPath, c.image, c.imageId];
      return new EncodedMessage(encodeRepeated(1, [statuses.get(c, key)]));
    }
    const info = {
      info: JSON.stringify({
        sandboxID: c.podSandboxId,
        pid: c.state === "running" || c.state === "created" ? c.pid : 0,
        conmonPid: c.conmonPid,
        monitorPssBytes: rt.monitorPss(c) ?? 0,
        runtimeHandler: c.handler.name,
        runtimeType: c.handler.path,
        snapshotKey: c.snapshotKey,
        bundle: c.bundle,
        privileged: c.privileged,
        config: c.config,
        runtimeSpec: rt.spec(c) ?? null,
      }),
    };
    return { status: containerStatusOf(c), info };
  };
}
