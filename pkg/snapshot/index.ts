// Public surface of the overlayfs snapshotter.
//
// Snapshotter.open({ root: <berth root>/snapshots, store }) — committed snapshots
// are image layers keyed by chain ID (applyLayer, has, gc), active snapshots are
// containers' writable layers (prepare, mounts, remove). mountAll/unmountAll
// mount what prepare/mounts return; chainIds computes the keys of an image's
// rootfs.diff_ids.
export { Snapshotter, type SnapshotInfo, type SnapshotterOptions, type ApplyLayerOptions, DIFF_ID_LABEL, LAYER_DIGEST_LABEL } from "./snapshotter.js";
export { mountAll, unmountAll, type Mount } from "./mount.js";
export { chainIds, chainIdOf } from "./chain-id.js";
export { SUPPORTED_LAYER_MEDIA_TYPES, layerCompression } from "./media-types.js";
