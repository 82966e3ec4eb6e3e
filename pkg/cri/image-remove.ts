import { RemoveImageResponse, type RemoveImageRequest } from "../../api/gen/cri/v1/api.js";
import { InvalidArgumentError } from "../errdefs/index.js";
import type { ImageService } from "../image/index.js";
import type { UnaryImpl } from "./instrument.js";

/** Removes the image with all its tags; removing an unknown image succeeds (CRI). */
export function removeImage(images: ImageService): UnaryImpl<RemoveImageRequest, RemoveImageResponse> {
  return async (req) => {
    const ref = req.image?.image ?? "";
    if (!ref) throw new InvalidArgumentError("image.image is empty: name the image to remove");
    await images.remove(ref);
    return RemoveImageResponse.fromPartial({});
  };
}
