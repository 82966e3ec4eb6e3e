import type { PortForwardRequest, PortForwardResponse } from "../../api/gen/cri/v1/api.js";
import { UnavailableError } from "../errdefs/index.js";
import { validatePortForward } from "../streaming/index.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";

/** PortForward: the pod must be ready; returns a single-use streaming URL. */
export function portForward(deps: CriDeps): UnaryImpl<PortForwardRequest, PortForwardResponse> {
  return async (req) => {
    const r = { podSandboxId: req.podSandboxId, port: req.port };
    validatePortForward(r);
    const sb = deps.runtime.sandboxes.getReady(req.podSandboxId, "forward ports");
    if (!deps.streaming) throw new UnavailableError("PortForward: the streaming server is disabled (streaming.address is empty)");
    return deps.streaming.getPortForward({ ...r, podSandboxId: sb.id });
  };
}
