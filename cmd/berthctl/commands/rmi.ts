import { UsageError, type Command } from "../context.js";

export const rmiCommand: Command = {
  name: "rmi",
  summary: "remove images (with all their tags)",
  usage: "berthctl rmi [-a] IMAGE...",
  async run(ctx) {
    const all = ctx.args.includes("-a") || ctx.args.includes("--all");
    let refs = ctx.args.filter((a) => !a.startsWith("-"));
    const api = ctx.client().image;
    if (all) refs = (await api.listImages({})).images.map((i) => i.id);
    if (refs.length === 0) throw new UsageError("rmi needs an image (or -a for all)");
    let failed = 0;
    for (const ref of refs) {
      const st = await api.imageStatus({ image: { image: ref } });
      if (!st.image) {
        process.stderr.write(`berthctl rmi: image "${ref}" not found\n`);
        failed++;
        continue;
      }
      await api.removeImage({ image: { image: st.image.id } });
      for (const t of st.image.repoTags.length > 0 ? st.image.repoTags : [st.image.id]) ctx.out(`Deleted: ${t}`);
    }
    return failed > 0 ? 1 : 0;
  },
};
