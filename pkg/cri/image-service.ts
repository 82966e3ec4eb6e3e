import type { CriDeps } from "./deps.js";
import type { ImageImpls } from "./impls.js";
import { pullImage } from "./image-pull.js";
import { listImages } from "./image-list.js";
import { imageStatus } from "./image-status.js";
import { removeImage } from "./image-remove.js";
import { imageFsInfo } from "./image-fs-info.js";
import { streamImages } from "./image-list-stream.js";

/** The ImageService methods berth implements; the rest answer UNIMPLEMENTED. */
export function imageHandlers(deps: CriDeps): ImageImpls {
  return {
    pullImage: pullImage(deps.images),
    listImages: listImages(deps.images),
    imageStatus: imageStatus(deps.images),
    removeImage: removeImage(deps.images),
    imageFsInfo: imageFsInfo(deps.images),
    streamImages: streamImages(deps.images),
  };
}
