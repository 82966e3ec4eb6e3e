// Messages between the snapshotter and its apply worker.

export type Compression = "none" | "gzip" | "zstd";

export interface ApplyRequest {
  /** The empty diff directory to fill. */
  dir: string;
  /** Diff directories of the parent chain, topmost first. */
  lowers: string[];
  blobPath: string;
  compression: Compression;
  diffId: string;
  /** How errors name the layer. */
  layerName: string;
  /** syncfs the filesystem before reporting success. */
  sync: boolean;
}

export interface WorkerRequest extends ApplyRequest {
  /** Int32Array(1) over this buffer: the main thread stores 1 to stop the apply. */
  stop: SharedArrayBuffer;
}

export interface ApplyResult {
  /** Bytes of the uncompressed tar stream. */
  tarBytes: number;
  /** Disk usage of the diff directory (allocated blocks), hard links counted once. */
  diskBytes: number;
  inodes: number;
  entries: number;
  whiteouts: number;
  opaques: number;
  skippedXattrs: number;
  extractMs: number;
  totalMs: number;
}

export type WorkerReply =
  | { ok: true; result: ApplyResult }
  | { ok: false; kind: "invalid" | "aborted" | "no-space" | "blob-missing" | "io"; message: string };
