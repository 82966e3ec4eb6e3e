import { ImageFsInfoResponse, type ImageFsInfoRequest } from "../../api/gen/cri/v1/api.js";
import type { ImageService } from "../image/index.js";
import type { UnaryImpl } from "./instrument.js";

/** Bytes and inodes used by image data, on the snapshotter's mount point (containers' layers live there too). */
export function imageFsInfo(images: ImageService): UnaryImpl<ImageFsInfoRequest, ImageFsInfoResponse> {
  return async () => {
    const u = await images.fsUsage();
    const usage = {
      timestamp: BigInt(Date.now()) * 1_000_000n,
      fsId: { mountpoint: u.mountpoint },
      usedBytes: { value: u.bytes },
      inodesUsed: { value: u.inodes },
    };
    return ImageFsInfoResponse.fromPartial({ imageFilesystems: [usage], containerFilesystems: [usage] });
  };
}
