import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import type { UpdateRuntimeConfigRequest, UpdateRuntimeConfigResponse } from "../../api/gen/cri/v1/api.js";
import { findNetworkConfig, renderCniTemplate } from "../cni/index.js";
import { FailedPreconditionError, InvalidArgumentError } from "../errdefs/index.js";
import { logger } from "../log/index.js";
import { writeFileAtomic } from "../sys/index.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";

/** What the kubelet last pushed (UpdateRuntimeConfig), shown by Status verbose. */
export interface PushedRuntimeConfig {
  podCidrs: string[];
}

/** The file the template is rendered to (sorts before most plugin-installed configs, as containerd's 10-containerd-net). */
export const TEMPLATE_CONF_NAME = "10-berth-net.conflist";

function checkCidr(cidr: string, raw: string): 4 | 6 {
  const [addr = "", prefix = "", ...rest] = cidr.split("/");
  const family = isIP(addr);
  const bits = Number(prefix);
  if (rest.length > 0 || family === 0 || prefix === "" || !Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128)) {
    throw new InvalidArgumentError(`UpdateRuntimeConfig: runtime_config.network_config.pod_cidr "${raw}": "${cidr}" is not a CIDR`);
  }
  return family as 4 | 6;
}

/**
 * UpdateRuntimeConfig: the kubelet pushes the node's pod CIDR(s). As containerd
 * does, berth records them and, when cni.conf_template is set and conf_dir has
 * no network config yet, renders the template with the CIDRs into
 * conf_dir/10-berth-net.conflist (Status then reports the network ready).
 * Without a template the CNI config is left to another component.
 */
export function updateRuntimeConfig(deps: CriDeps, pushed: PushedRuntimeConfig): UnaryImpl<UpdateRuntimeConfigRequest, UpdateRuntimeConfigResponse> {
  return async (req) => {
    const raw = req.runtimeConfig?.networkConfig?.podCidr ?? "";
    if (raw.trim() === "") return {};
    const cidrs = raw.split(",").map((s) => s.trim());
    const families = new Set(cidrs.map((c) => checkCidr(c, raw)));
    const routes = [...(families.has(4) ? ["0.0.0.0/0"] : []), ...(families.has(6) ? ["::/0"] : [])];
    pushed.podCidrs = cidrs;
    const log = logger();
    const { conf_dir: confDir, conf_template: template } = deps.config.cni;
    if (!template) {
      log.info({ podCidrs: cidrs }, "pod CIDR recorded; no cni.conf_template, the CNI config is left to another component");
      return {};
    }
    const net = findNetworkConfig(confDir);
    if (net.ok) {
      log.info({ podCidrs: cidrs, cniConfig: net.config.file }, "pod CIDR recorded; a CNI network config exists, the template is not rendered");
      return {};
    }
    let src: string;
    try {
      src = readFileSync(template, "utf8");
    } catch (err) {
      throw new FailedPreconditionError(`UpdateRuntimeConfig: cannot read cni.conf_template ${template}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    }
    let text: string;
    try {
      text = renderCniTemplate(src, { PodCIDR: cidrs[0]!, PodCIDRRanges: cidrs, Routes: routes }, template);
      JSON.parse(text);
    } catch (err) {
      throw new FailedPreconditionError(`UpdateRuntimeConfig: cni.conf_template ${template} does not render to a JSON CNI config: ${(err as Error).message}`, { cause: err });
    }
    const file = join(confDir, TEMPLATE_CONF_NAME);
    writeFileAtomic(file, text);
    log.info({ podCidrs: cidrs, file, template }, "CNI network config written from the template with the pod CIDR");
    return {};
  };
}
