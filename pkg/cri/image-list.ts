import { ListImagesResponse, type Image, type ListImagesRequest } from "../../api/gen/cri/v1/api.js";
import type { ImageRecord, ImageService } from "../image/index.js";
import type { DeepPartial } from "../../api/gen/cri/v1/api.js";
import type { UnaryImpl } from "./instrument.js";

/** The CRI view of an image: uid or username from the config's User (user part only). */
export function toCriImage(rec: ImageRecord): DeepPartial<Image> {
  const user = (rec.config.config?.User ?? "").split(":")[0] ?? "";
  const out: DeepPartial<Image> = {
    id: rec.id,
    repoTags: rec.repoTags,
    repoDigests: rec.repoDigests,
    size: BigInt(rec.size),
    spec: { image: rec.id },
    pinned: rec.pinned,
  };
  if (/^\d+$/.test(user)) out.uid = { value: BigInt(user) };
  else if (user !== "") out.username = user;
  return out;
}

export function listImages(images: ImageService): UnaryImpl<ListImagesRequest, ListImagesResponse> {
  return async (req) => {
    const want = req.filter?.image?.image ?? "";
    let recs: ImageRecord[];
    if (want) {
      const one = images.find(want);
      recs = one ? [one] : [];
    } else recs = images.list();
    return ListImagesResponse.fromPartial({ images: recs.map(toCriImage) });
  };
}
