import { ImageStatusResponse, type ImageStatusRequest } from "../../api/gen/cri/v1/api.js";
import type { ImageService } from "../image/index.js";
import { toCriImage } from "./image-list.js";
import type { UnaryImpl } from "./instrument.js";

/** Any reference form; an unknown image is an empty response, not an error (CRI). */
export function imageStatus(images: ImageService): UnaryImpl<ImageStatusRequest, ImageStatusResponse> {
  return async (req) => {
    const ref = req.image?.image ?? "";
    const rec = ref ? images.find(ref) : undefined;
    if (!rec) return ImageStatusResponse.fromPartial({});
    const info: Record<string, string> = {};
    if (req.verbose) {
      info["info"] = JSON.stringify({
        id: rec.id,
        chainID: rec.chainId,
        manifestDigest: rec.manifestDigest,
        targetDigest: rec.targetDigest,
        layers: rec.layers,
        imageSpec: rec.config,
      });
    }
    return ImageStatusResponse.fromPartial({ image: toCriImage(rec), info });
  };
}
