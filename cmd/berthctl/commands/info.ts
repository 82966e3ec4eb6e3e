import { CgroupDriver, RuntimeConfigResponse, StatusResponse } from "../../../api/gen/cri/v1/api.js";
import type { Command } from "../context.js";
import { parseVerboseInfo, toJson, toYaml } from "../format.js";


export const infoCommand: Command = {
  name: "info",
  summary: "show runtime status (conditions, handlers) and runtime config",
  usage: "berthctl info [-o json|yaml]",
  async run(ctx) {
    const api = ctx.client().runtime;
    const [status, config] = await Promise.all([api.status({ verbose: true }), api.runtimeConfig({})]);
    const doc = {
      status: StatusResponse.toJSON({ ...status, info: {} }),
      info: parseVerboseInfo(status.info),
      runtimeConfig: RuntimeConfigResponse.toJSON(config),
    };
    if (ctx.output === "json") return ctx.out(toJson(doc));
    if (ctx.output === "yaml") return ctx.out(toYaml(doc));
    const lines: string[] = ["Conditions:"];
    for (const c of status.status?.conditions ?? []) {
      lines.push(`  ${c.type.padEnd(14)} ${c.status ? "true " : "false"}${c.reason ? `  ${c.reason}` : ""}${c.message ? `: ${c.message}` : ""}`);
    }
    lines.push("Runtime handlers:");
    for (const h of status.runtimeHandlers) lines.push(`  ${h.name === "" ? "(default)" : h.name}`);
    const driver = config.linux?.cgroupDriver === CgroupDriver.SYSTEMD ? "systemd" : "cgroupfs";
    lines.push(`Cgroup driver:  ${driver}`);
    const cni = (doc.info["cni"] ?? {}) as { file?: string; name?: string; error?: string };
    lines.push(`CNI network:    ${cni.file ? `${cni.name} (${cni.file})` : (cni.error ?? "unknown")}`);
    const cfg = doc.info["config"] as { root?: string; state?: string } | undefined;
    if (cfg) lines.push(`Root:           ${cfg.root}\nState:          ${cfg.state}`);
    ctx.out(lines.join("\n"));
  },
};
