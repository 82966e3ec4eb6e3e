// Messages between the snapshotter and its apply worker.

export type Compression = "none" | "gzip" | "zstd";

export interface ApplyRequest {
  /** The empty diff directory to fill. */
  dir: string;
  /**
   * Diff directories of the parent chain, topmost first; null while the parents are still
   * being applied (implied directories are then returned in `implied`, see FixupRequest).
   */
  lowers: string[] | null;
  blobPath: string;
  compression: Compression;
  diffId: string;
  /** How errors name the layer. */
  layerName: string;
  /** syncfs the filesystem before reporting success. */
  sync: boolean;
}

/** Gives the implied directories of an apply made without lowers the attributes they have in the lowers. */
export interface FixupRequest {
  dir: string;
  lowers: string[];
  implied: string[];
  layerName: string;
}

export type WorkerRequest = (({ op: "apply" } & ApplyRequest) | ({ op: "fixup" } & FixupRequest)) & {
  /** Int32Array(1) over this buffer: the main thread stores 1 to stop the apply. */
  stop: SharedArrayBuffer;
};

export interface FixupResult {
  updated: number;
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
  /** The syncfs at the end (0 without sync). */
  syncMs: number;
  totalMs: number;
  /** Implied directories left for a FixupRequest (relative to dir); empty when lowers were given. */
  implied: string[];
}

export type WorkerReply =
  | { ok: true; result: ApplyResult | FixupResult }
  | { ok: false; kind: "invalid" | "aborted" | "no-space" | "blob-missing" | "io"; message: string };
