// Public surface of the overlayfs snapshotter.
export { Snapshotter, type SnapshotInfo, type SnapshotterOptions, type ApplyLayerOptions, DIFF_ID_LABEL, LAYER_DIGEST_LABEL } from "./snapshotter.js";
export { mountAll, unmountAll, type Mount } from "./mount.js";
export { chainIds, chainIdOf } from "./chain-id.js";
export { SUPPORTED_LAYER_MEDIA_TYPES, layerCompression } from "./media-types.js";
