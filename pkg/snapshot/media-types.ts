import { InvalidArgumentError } from "../errdefs/index.js";
import type { Compression } from "./worker-protocol.js";

const LAYER_TYPES: ReadonlyMap<string, Compression> = new Map([
  ["application/vnd.oci.image.layer.v1.tar", "none"],
  ["application/vnd.oci.image.layer.v1.tar+gzip", "gzip"],
  ["application/vnd.oci.image.layer.v1.tar+zstd", "zstd"],
  ["application/vnd.oci.image.layer.nondistributable.v1.tar", "none"],
  ["application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "gzip"],
  ["application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", "zstd"],
  ["application/vnd.docker.image.rootfs.diff.tar", "none"],
  ["application/vnd.docker.image.rootfs.diff.tar.gzip", "gzip"],
  ["application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "gzip"],
  ["application/vnd.docker.image.rootfs.diff.tar.zstd", "zstd"],
]);

/** Layer media types the snapshotter can apply. */
export const SUPPORTED_LAYER_MEDIA_TYPES: readonly string[] = [...LAYER_TYPES.keys()];

/** The compression of a layer media type; an unknown type is an InvalidArgumentError naming it. */
export function layerCompression(mediaType: string): Compression {
  const c = LAYER_TYPES.get(mediaType);
  if (c === undefined) {
    throw new InvalidArgumentError(`unsupported layer media type ${JSON.stringify(mediaType)} (supported: tar, tar+gzip, tar+zstd in OCI and Docker forms)`);
  }
  return c;
}
