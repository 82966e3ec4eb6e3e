import { ListImagesResponse, type Image } from "../../../api/gen/cri/v1/api.js";
import { UsageError, type Command } from "../context.js";
import { bytes, table, toJson, toYaml } from "../format.js";

/** Splits "host/repo:tag" into repo and tag (the tag is after the last colon past the last slash). */
export function splitTag(name: string): [string, string] {
  const slash = name.lastIndexOf("/");
  const colon = name.lastIndexOf(":");
  return colon > slash ? [name.slice(0, colon), name.slice(colon + 1)] : [name, ""];
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, "").slice(0, 13);
}

function rows(images: Image[], digests: boolean): string[][] {
  const out: string[][] = [];
  for (const img of images) {
    const size = bytes(img.size);
    const digest = (img.repoDigests[0] ?? "").split("@")[1] ?? "";
    const tags = img.repoTags.length > 0 ? img.repoTags : img.repoDigests.map((d) => `${d.split("@")[0]}:<none>`);
    for (const t of tags.length > 0 ? tags : ["<none>:<none>"]) {
      const [repo, tag] = splitTag(t);
      out.push(digests ? [repo, tag, digest.slice(0, 19), shortId(img.id), size] : [repo, tag, shortId(img.id), size]);
    }
  }
  return out;
}

export const imagesCommand: Command = {
  name: "images",
  summary: "list images",
  usage: "berthctl images [-q] [--digests] [IMAGE]",
  async run(ctx) {
    let quiet = false;
    let digests = false;
    let filter = "";
    for (const a of ctx.args) {
      if (a === "-q" || a === "--quiet") quiet = true;
      else if (a === "--digests") digests = true;
      else if (a.startsWith("-")) throw new UsageError(`images: unknown flag ${a}`);
      else filter = a;
    }
    const res = await ctx.client().image.listImages(filter ? { filter: { image: { image: filter } } } : {});
    if (ctx.output === "json") return ctx.out(toJson(ListImagesResponse.toJSON(res)));
    if (ctx.output === "yaml") return ctx.out(toYaml(ListImagesResponse.toJSON(res)));
    if (quiet) return ctx.out(res.images.map((i) => i.id).join("\n"));
    const header = digests ? ["IMAGE", "TAG", "DIGEST", "IMAGE ID", "SIZE"] : ["IMAGE", "TAG", "IMAGE ID", "SIZE"];
    ctx.out(table(header, rows(res.images, digests)));
  },
};
