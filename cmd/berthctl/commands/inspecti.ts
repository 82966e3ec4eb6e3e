import { Image } from "../../../api/gen/cri/v1/api.js";
import { UsageError, type Command } from "../context.js";
import { toJson, toYaml } from "../format.js";

export const inspectiCommand: Command = {
  name: "inspecti",
  summary: "show an image's status and config (verbose ImageStatus)",
  usage: "berthctl inspecti [-o json|yaml] IMAGE...",
  async run(ctx) {
    const refs = ctx.args.filter((a) => !a.startsWith("-"));
    if (refs.length === 0) throw new UsageError("inspecti needs an image (name, name:tag, name@digest or id)");
    let missing = 0;
    const docs: unknown[] = [];
    for (const ref of refs) {
      const res = await ctx.client().image.imageStatus({ image: { image: ref }, verbose: true });
      if (!res.image) {
        process.stderr.write(`berthctl inspecti: image "${ref}" not found\n`);
        missing++;
        continue;
      }
      const info: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(res.info)) {
        try {
          info[k] = JSON.parse(v);
        } catch {
          info[k] = v;
        }
      }
      docs.push({ status: Image.toJSON(res.image), info });
    }
    const doc = docs.length === 1 ? docs[0] : docs;
    if (docs.length > 0) ctx.out(ctx.output === "yaml" ? toYaml(doc) : toJson(doc));
    return missing > 0 ? 1 : 0;
  },
};
