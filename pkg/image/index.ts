export { ImageService, chainIdsOf, type LayerSnapshotter, type PullOptions, type PullProgress, type LayerProgress, type GcResult, type ImageServiceOptions } from "./service.js";
export type { ImageRecord, LayerRecord } from "./image-store.js";
export type { ImageConfig, Platform } from "./manifest.js";
export { parseReference, normalizeReference, formatReference, repoName, isDigest, type Reference } from "./reference.js";
export type { Credentials } from "./registry.js";
