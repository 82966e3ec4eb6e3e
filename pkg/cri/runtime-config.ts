import { CgroupDriver, RuntimeConfigResponse, type RuntimeConfigRequest } from "../../api/gen/cri/v1/api.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";

/** The cgroup driver berth uses, as configured or detected (systemd when it runs the host). */
export function cgroupDriverOf(deps: Pick<CriDeps, "config" | "cgroups">): "systemd" | "cgroupfs" {
  const configured = deps.config.runtime.cgroup_driver;
  if (configured !== "auto") return configured;
  return deps.cgroups.systemd ? "systemd" : "cgroupfs";
}

export function runtimeConfig(deps: CriDeps): UnaryImpl<RuntimeConfigRequest, RuntimeConfigResponse> {
  return async () =>
    RuntimeConfigResponse.fromPartial({
      linux: { cgroupDriver: cgroupDriverOf(deps) === "systemd" ? CgroupDriver.SYSTEMD : CgroupDriver.CGROUPFS },
    });
}
