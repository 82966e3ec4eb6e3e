import { type PodSandboxStatusRequest, type PodSandboxStatusResponse, type DeepPartial } from "../../api/gen/cri/v1/api.js";
import { InvalidArgumentError } from "../errdefs/index.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";
import { podSandboxStatusOf } from "./sandbox-convert.js";

export function podSandboxStatus(deps: CriDeps): UnaryImpl<PodSandboxStatusRequest, DeepPartial<PodSandboxStatusResponse>> {
  return async (req) => {
    if (!req.podSandboxId) throw new InvalidArgumentError("PodSandboxStatus: pod_sandbox_id is required");
    const sb = deps.runtime.sandboxes.lookup(req.podSandboxId);
    const info: Record<string, string> = {};
    if (req.verbose) {
      info["info"] = JSON.stringify({
        pid: sb.pidInit?.initPid ?? 0,
        netnsPath: sb.netnsPath ?? "",
        ipcNsPath: sb.ipcNsPath ?? "",
        utsNsPath: sb.utsNsPath ?? "",
        pidNsPath: sb.pidNsPath ?? "",
        runtimeHandler: sb.handler.name,
        runtimePath: sb.handler.path,
        cgroupParent: sb.cgroupParent,
        hostname: sb.hostname,
        hostsPath: sb.hostsPath,
        resolvConfPath: sb.resolvConfPath,
        hostnamePath: sb.hostnamePath,
        shmPath: sb.shmPath,
        sysctls: sb.sysctls,
        ips: sb.ips,
        config: sb.config,
      });
    }
    return { status: podSandboxStatusOf(sb), info, containersStatuses: [], timestamp: BigInt(Date.now()) * 1_000_000n };
  };
}
