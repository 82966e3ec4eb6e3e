import { type ContainerStatusRequest, type ContainerStatusResponse, type DeepPartial } from "../../api/gen/cri/v1/api.js";
import { InvalidArgumentError } from "../errdefs/index.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";
import { containerStatusOf } from "./container-convert.js";

export function containerStatus(deps: CriDeps): UnaryImpl<ContainerStatusRequest, DeepPartial<ContainerStatusResponse>> {
  return async (req) => {
    if (!req.containerId) throw new InvalidArgumentError("ContainerStatus: container_id is required");
    const rt = deps.runtime.containers;
    const c = rt.lookup(req.containerId);
    const info: Record<string, string> = {};
    if (req.verbose) {
      info["info"] = JSON.stringify({
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
      });
    }
    return { status: containerStatusOf(c), info };
  };
}
