import { ImageFsInfoResponse } from "../../../api/gen/cri/v1/api.js";
import type { Command } from "../context.js";
import { bytes, table, toJson, toYaml } from "../format.js";

export const imagefsinfoCommand: Command = {
  name: "imagefsinfo",
  summary: "show the image filesystem's usage (bytes and inodes)",
  usage: "berthctl imagefsinfo [-o table|json|yaml]",
  async run(ctx) {
    const res = await ctx.client().image.imageFsInfo({});
    if (ctx.output === "json") return ctx.out(toJson(ImageFsInfoResponse.toJSON(res)));
    if (ctx.output === "yaml") return ctx.out(toYaml(ImageFsInfoResponse.toJSON(res)));
    const rows = [
      ...res.imageFilesystems.map((f) => ["image", f.fsId?.mountpoint ?? "", bytes(f.usedBytes?.value ?? 0n), String(f.inodesUsed?.value ?? 0n)]),
      ...res.containerFilesystems.map((f) => ["container", f.fsId?.mountpoint ?? "", bytes(f.usedBytes?.value ?? 0n), String(f.inodesUsed?.value ?? 0n)]),
    ];
    ctx.out(table(["FILESYSTEM", "MOUNTPOINT", "USED", "INODES"], rows));
  },
};
