import { Image } from "../../../api/gen/cri/v1/api.js";
import { UsageError, type Command } from "../context.js";
import { inspectDocs, parseVerboseInfo } from "../format.js";

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
      const info = parseVerboseInfo(res.info);
      docs.push({ status: Image.toJSON(res.image), info });
    }
    if (docs.length > 0) ctx.out(inspectDocs(docs, ctx.output));
    return missing > 0 ? 1 : 0;
  },
};
