// Media types of the two manifest formats the builder writes.

import type { LayerCompression } from './tar-layer.js';

export type ManifestFormat = 'oci' | 'docker';

export const MediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
} as const;

export function manifestMediaType(format: ManifestFormat): string {
  return format === 'oci' ? MediaTypes.ociManifest : MediaTypes.dockerManifest;
}

export function indexMediaType(format: ManifestFormat): string {
  return format === 'oci' ? MediaTypes.ociIndex : MediaTypes.dockerManifestList;
}

export function configMediaType(format: ManifestFormat): string {
  return format === 'oci' ? MediaTypes.ociConfig : MediaTypes.dockerConfig;
}

export function layerMediaType(format: ManifestFormat, compression: LayerCompression): string {
  if (format === 'oci') return compression === 'gzip' ? MediaTypes.ociLayerGzip : MediaTypes.ociLayer;
  return compression === 'gzip' ? MediaTypes.dockerLayerGzip : MediaTypes.dockerLayer;
}

/** Accept header value that asks a registry for any manifest or index type. */
export const ALL_MANIFEST_TYPES = [
  MediaTypes.ociManifest,
  MediaTypes.ociIndex,
  MediaTypes.dockerManifest,
  MediaTypes.dockerManifestList,
].join(', ');

export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === MediaTypes.ociIndex || mediaType === MediaTypes.dockerManifestList;
}
