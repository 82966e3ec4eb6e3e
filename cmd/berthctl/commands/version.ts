import { runtimeVersion } from "../../../pkg/version/index.js";
import type { Command } from "../context.js";
import { toJson, toYaml } from "../format.js";

export const versionCommand: Command = {
  name: "version",
  summary: "print the runtime's name and versions",
  usage: "berthctl version [-o json|yaml]",
  async run(ctx) {
    const v = await ctx.client().runtime.version({ version: "v1" });
    if (ctx.output === "json") return ctx.out(toJson({ ...v, clientVersion: runtimeVersion() }));
    if (ctx.output === "yaml") return ctx.out(toYaml(v));
    ctx.out(`Version:  ${v.version}\nRuntimeName:  ${v.runtimeName}\nRuntimeVersion:  ${v.runtimeVersion}\nRuntimeApiVersion:  ${v.runtimeApiVersion}`);
  },
};
