import { StatusResponse, type StatusRequest } from "../../api/gen/cri/v1/api.js";
import { findNetworkConfig, findPlugin, type NetworkConfigResult } from "../cni/index.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";
import type { PushedRuntimeConfig } from "./runtime-update-config.js";

/** The first network config, usable only when every plugin it names is installed in bin_dirs. */
function usableNetwork(deps: CriDeps): NetworkConfigResult {
  const net = findNetworkConfig(deps.config.cni.conf_dir);
  if (!net.ok) return net;
  for (const p of net.config.plugins) {
    try {
      findPlugin(p.type, deps.config.cni.bin_dirs);
    } catch (err) {
      return { ok: false, reason: `${net.config.file}: ${(err as Error).message}` };
    }
  }
  return net;
}

export function status(deps: CriDeps, pushed?: PushedRuntimeConfig): UnaryImpl<StatusRequest, StatusResponse> {
  return async (req) => {
    const net = usableNetwork(deps);
    const conditions = [
      { type: "RuntimeReady", status: true, reason: "", message: "" },
      net.ok
        ? { type: "NetworkReady", status: true, reason: "", message: "" }
        : { type: "NetworkReady", status: false, reason: "NetworkPluginNotReady", message: `Network plugin returns error: cni plugin not initialized: ${net.reason}` },
    ];
    const info: Record<string, string> = {};
    if (req.verbose) {
      info["config"] = JSON.stringify(deps.config);
      info["cgroups"] = JSON.stringify(deps.cgroups);
      if (pushed?.podCidrs.length) info["podCIDRs"] = JSON.stringify(pushed.podCidrs);
      info["cni"] = JSON.stringify(net.ok ? { file: net.config.file, name: net.config.name, cniVersion: net.config.cniVersion, plugins: net.config.plugins.map((p) => p.type) } : { error: net.reason });
    }
    return StatusResponse.fromPartial({
      status: { conditions },
      info,
      // The default handler is listed under the empty name (what a pod without runtime_handler gets), then each by name.
      runtimeHandlers: ["", ...Object.keys(deps.config.runtime.handlers).sort()].map((name) => ({
        name,
        features: { recursiveReadOnlyMounts: false, userNamespaces: false },
      })),
      features: { supplementalGroupsPolicy: false },
    });
  };
}
