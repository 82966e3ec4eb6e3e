import { PodSandboxStatus, type PodSandboxStatusRequest, type PodSandboxStatusResponse, type DeepPartial } from "../../api/gen/cri/v1/api.js";
import type { Sandbox } from "../runtime/index.js";
import { EncodedCache, EncodedMessage, encodeInt64, encodeRepeated } from "./encoded.js";
import { InvalidArgumentError } from "../errdefs/index.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";
import { podSandboxStatusOf } from "./sandbox-convert.js";

/** A pod's status, encoded once per value of what can change about it. */
const statuses = new EncodedCache<Sandbox>((sb) => PodSandboxStatus.encode(PodSandboxStatus.fromPartial(podSandboxStatusOf(sb))).finish());

export function podSandboxStatus(deps: CriDeps): UnaryImpl<PodSandboxStatusRequest, DeepPartial<PodSandboxStatusResponse> | EncodedMessage> {
  return async (req) => {
    if (!req.podSandboxId) throw new InvalidArgumentError("PodSandboxStatus: pod_sandbox_id is required");
    const sb = deps.runtime.sandboxes.lookup(req.podSandboxId);
    const timestamp = BigInt(Date.now()) * 1_000_000n;
    if (!req.verbose) {
      // PodSandboxStatusResponse: PodSandboxStatus status = 1, int64 timestamp = 4 (no info, no container statuses).
      const key = [sb.state, sb.ips.join(","), sb.createdAt, sb.hostNetwork, sb.hostPid, sb.hostIpc, sb.pidNsPath];
      return new EncodedMessage(Buffer.concat([encodeRepeated(1, [statuses.get(sb, key)]), encodeInt64(4, timestamp)]));
    }
    const info = {
      info: JSON.stringify({
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
      }),
    };
    return { status: podSandboxStatusOf(sb), info, containersStatuses: [], timestamp };
  };
}
