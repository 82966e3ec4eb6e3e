import { LinuxContainerResources, PodSandboxConfig, type UpdatePodSandboxResourcesRequest, type UpdatePodSandboxResourcesResponse } from "../../api/gen/cri/v1/api.js";
import { InvalidArgumentError } from "../errdefs/index.js";
import { logger } from "../log/index.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";

/**
 * UpdatePodSandboxResources: the kubelet has already reconfigured the pod-level
 * cgroup (linux.cgroup_parent, which it owns; berth only places the pod's
 * monitors under it) and tells the runtime the pod's new overhead and resources.
 * berth records them in the pod's config (shown by PodSandboxStatus verbose);
 * an absent field keeps the recorded value.
 */
export function updatePodSandboxResources(deps: CriDeps): UnaryImpl<UpdatePodSandboxResourcesRequest, UpdatePodSandboxResourcesResponse> {
  return async (req) => {
    if (!req.podSandboxId) throw new InvalidArgumentError("UpdatePodSandboxResources: pod_sandbox_id is required");
    const sb = await deps.runtime.sandboxes.updateConfig(req.podSandboxId, (json) => {
      const cfg = PodSandboxConfig.fromJSON(json);
      const linux = cfg.linux ?? PodSandboxConfig.fromPartial({ linux: {} }).linux!;
      if (req.overhead) linux.overhead = req.overhead;
      if (req.resources) linux.resources = req.resources;
      return PodSandboxConfig.toJSON({ ...cfg, linux }) as Record<string, unknown>;
    });
    logger().info(
      {
        podSandboxId: sb.id,
        overhead: req.overhead ? LinuxContainerResources.toJSON(req.overhead) : undefined,
        resources: req.resources ? LinuxContainerResources.toJSON(req.resources) : undefined,
      },
      "pod sandbox resources updated",
    );
    return {};
  };
}
