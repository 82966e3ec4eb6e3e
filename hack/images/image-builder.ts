// Builds image manifests, configs and indexes from an in-memory description.
// JSON is written with a fixed key order and fixed timestamps, so a rebuild
// gives the same digests.

import {
  configMediaType,
  indexMediaType,
  layerMediaType,
  manifestMediaType,
  type ManifestFormat,
} from './media-types.js';
import type { BlobSink, Descriptor, Platform } from './oci-layout.js';
import { buildLayer, layerFromTar, type BuiltLayer, type BuildLayerOptions, type LayerCompression, type LayerEntry, type TarEnd } from './tar-layer.js';

/** Fixed creation time of every image unless a spec says otherwise. */
export const DEFAULT_CREATED = '2020-01-01T00:00:00Z';

/** The `config` object of an image config (field names as in the OCI spec). */
export interface ImageRuntimeConfig {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  Volumes?: Record<string, Record<string, never>>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
}

/** One layer: entries to tar, a ready tar, or an already built layer. */
export type LayerSpec = (
  | { entries: readonly LayerEntry[]; compression?: LayerCompression; gzipLevel?: number; end?: TarEnd }
  | { tar: Uint8Array; compression?: LayerCompression; gzipLevel?: number }
  | { built: BuiltLayer }
  /** Built when the image is built, so big layers need not all be in memory at once. */
  | { build: () => Promise<BuiltLayer> }
) & {
  /** history[].created_by for this layer. */
  createdBy?: string;
  /** Overrides the layer descriptor's media type (e.g. to test unknown types). */
  mediaType?: string;
};

export interface ImageSpec {
  layers: readonly LayerSpec[];
  config?: ImageRuntimeConfig;
  /** Default linux/amd64. */
  platform?: Platform;
  /** Default "oci". */
  format?: ManifestFormat;
  /** RFC 3339; default DEFAULT_CREATED. */
  created?: string;
  author?: string;
  /** Extra history entries with empty_layer: true, appended after the layers' entries. */
  emptyLayerHistory?: readonly string[];
  /** Annotations on the manifest (OCI format only). */
  annotations?: Record<string, string>;
}

export interface IndexSpec {
  manifests: readonly ImageSpec[];
  /** Default "oci"; also used for every child without a format of its own. */
  format?: ManifestFormat;
  annotations?: Record<string, string>;
}

export interface BuiltLayerDescriptor extends Descriptor {
  diffId: string;
}

export interface BuiltImage {
  kind: 'image';
  /** Manifest descriptor; its digest is what a registry returns as Docker-Content-Digest. */
  manifest: Descriptor;
  manifestBytes: Buffer;
  /** Config descriptor; its digest is the image ID. */
  config: Descriptor;
  configBytes: Buffer;
  layers: BuiltLayerDescriptor[];
}

export interface BuiltIndex {
  kind: 'index';
  index: Descriptor;
  indexBytes: Buffer;
  manifests: BuiltImage[];
}

export type Built = BuiltImage | BuiltIndex;

export const DEFAULT_PLATFORM: Platform = { architecture: 'amd64', os: 'linux' };

function toJsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

async function materialise(spec: LayerSpec): Promise<BuiltLayer> {
  if ('built' in spec) return spec.built;
  if ('build' in spec) return spec.build();
  const opts: BuildLayerOptions = {};
  if (spec.compression !== undefined) opts.compression = spec.compression;
  if (spec.gzipLevel !== undefined) opts.gzipLevel = spec.gzipLevel;
  if ('tar' in spec) return layerFromTar(spec.tar, opts);
  if (spec.end !== undefined) opts.end = spec.end;
  return buildLayer(spec.entries, opts);
}

/** Builds one image, writing its layers, config and manifest into `sink`. */
export async function buildImage(sink: BlobSink, spec: ImageSpec): Promise<BuiltImage> {
  const format = spec.format ?? 'oci';
  const platform = spec.platform ?? DEFAULT_PLATFORM;
  const created = spec.created ?? DEFAULT_CREATED;

  const layers: BuiltLayerDescriptor[] = [];
  const history: Record<string, unknown>[] = [];
  for (const [i, ls] of spec.layers.entries()) {
    const built = await materialise(ls);
    await sink.putBlob(built.blob);
    layers.push({
      mediaType: ls.mediaType ?? layerMediaType(format, built.compression),
      digest: built.digest,
      size: built.blob.byteLength,
      diffId: built.diffId,
    });
    history.push({ created, created_by: ls.createdBy ?? `berth-image-builder layer ${i}` });
  }
  for (const createdBy of spec.emptyLayerHistory ?? []) {
    history.push({ created, created_by: createdBy, empty_layer: true });
  }

  const imageConfig: Record<string, unknown> = { created };
  if (spec.author !== undefined) imageConfig['author'] = spec.author;
  imageConfig['architecture'] = platform.architecture;
  if (platform.variant !== undefined) imageConfig['variant'] = platform.variant;
  imageConfig['os'] = platform.os;
  imageConfig['config'] = spec.config ?? {};
  imageConfig['rootfs'] = { type: 'layers', diff_ids: layers.map((l) => l.diffId) };
  imageConfig['history'] = history;

  const configBytes = toJsonBytes(imageConfig);
  const configRef = await sink.putBlob(configBytes);
  const config: Descriptor = { mediaType: configMediaType(format), ...configRef };

  const manifestMt = manifestMediaType(format);
  const manifestObj: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: manifestMt,
    config,
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  if (format === 'oci' && spec.annotations !== undefined) manifestObj['annotations'] = spec.annotations;
  const manifestBytes = toJsonBytes(manifestObj);
  const manifestRef = await sink.putBlob(manifestBytes);
  const manifest: Descriptor = { mediaType: manifestMt, ...manifestRef, platform };

  return { kind: 'image', manifest, manifestBytes, config, configBytes, layers };
}

/** Builds every image of an index (each with its own platform), then the index. */
export async function buildIndex(sink: BlobSink, spec: IndexSpec): Promise<BuiltIndex> {
  const format = spec.format ?? 'oci';
  const manifests: BuiltImage[] = [];
  for (const m of spec.manifests) {
    manifests.push(await buildImage(sink, { ...m, format: m.format ?? format }));
  }
  const mt = indexMediaType(format);
  const indexObj: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: mt,
    manifests: manifests.map((m) => ({
      mediaType: m.manifest.mediaType,
      digest: m.manifest.digest,
      size: m.manifest.size,
      platform: m.manifest.platform,
    })),
  };
  if (format === 'oci' && spec.annotations !== undefined) indexObj['annotations'] = spec.annotations;
  const indexBytes = toJsonBytes(indexObj);
  const ref = await sink.putBlob(indexBytes);
  return { kind: 'index', index: { mediaType: mt, ...ref }, indexBytes, manifests };
}

/** The descriptor a layout's index.json (or a registry tag) points at. */
export function topDescriptor(b: Built): Descriptor {
  return b.kind === 'index' ? b.index : b.manifest;
}
