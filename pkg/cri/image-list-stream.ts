import { Image, type StreamImagesRequest, type StreamImagesResponse } from "../../api/gen/cri/v1/api.js";
import type { ImageService } from "../image/index.js";
import type { StreamImpl } from "./instrument.js";
import { listImages } from "./image-list.js";
import { streamOf } from "./list-stream.js";

/** StreamImages: ListImages (same filter) sent in bounded chunks. */
export function streamImages(images: ImageService): StreamImpl<StreamImagesRequest, StreamImagesResponse> {
  return streamOf(
    listImages(images),
    (req: StreamImagesRequest) => ({ filter: req.filter }),
    (res) => res.images,
    (chunk) => ({ images: chunk }),
    (it) => Image.encode(it).finish().length,
  );
}
