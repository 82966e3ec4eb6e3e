import type { RunPodSandboxRequest, RunPodSandboxResponse, DeepPartial } from "../../api/gen/cri/v1/api.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";
import { sandboxSpecOf } from "./sandbox-convert.js";

export function runPodSandbox(deps: CriDeps): UnaryImpl<RunPodSandboxRequest, DeepPartial<RunPodSandboxResponse>> {
  return async (req) => {
    const sb = await deps.runtime.sandboxes.run(sandboxSpecOf(req.config, req.runtimeHandler));
    return { podSandboxId: sb.id };
  };
}
