// Entry point of the worker threads that apply layers, one at a time: read the blob,
// decompress, hash the uncompressed stream, extract into the diff directory,
// check the digest against the diff ID, flush the filesystem, measure the
// result. Everything here may block: it blocks this worker, never berthd's
// event loop. The main thread asks it to stop through a shared flag.

import { createHash } from "node:crypto";
import { closeSync, createReadStream, lstatSync, openSync, readdirSync } from "node:fs";
import { pipeline } from "node:stream/promises";
import { parentPort, workerData } from "node:worker_threads";
import { createGunzip } from "node:zlib";
import { Decompress as ZstdDecompress } from "fzstd";
import { lowerThreadPriority, syncfs } from "../sys/index.js";
import { copyImpliedDirs, LayerApplier, LayerContentError, LayerIoError } from "./layer-applier.js";
import { TarFormatError, TarReader } from "./tar-reader.js";
import type { ApplyRequest, FixupRequest, WorkerReply, WorkerRequest } from "./worker-protocol.js";

class Aborted extends Error {
  override readonly name = "Aborted";
}

const READ_CHUNK = 1 << 20;

class DecompressError extends Error {
  override readonly name = "DecompressError";
}

function isOurs(err: unknown): boolean {
  return err instanceof Aborted || err instanceof LayerContentError || err instanceof TarFormatError || err instanceof LayerIoError || (err as NodeJS.ErrnoException).syscall !== undefined;
}

/** Reads the blob and hands its uncompressed bytes to onChunk; `where` names the place in the layer a decompression error is found. */
async function forEachChunk(req: ApplyRequest, onChunk: (c: Uint8Array) => void, where: () => string): Promise<void> {
  const file = createReadStream(req.blobPath, { highWaterMark: READ_CHUNK });
  switch (req.compression) {
    case "none":
      for await (const c of file) onChunk(c as Buffer);
      return;
    case "gzip":
      // pipeline reports an AbortError when the consumer throws: keep the consumer's own error
      let consumerError: unknown;
      try {
        await pipeline(file, createGunzip({ chunkSize: 256 * 1024 }), async (source: AsyncIterable<Buffer>) => {
          try {
            for await (const c of source) onChunk(c);
          } catch (err) {
            consumerError = err;
            throw err;
          }
        });
      } catch (err) {
        // A zlib error can reach the consumer's loop first (it reads from gunzip) or only the
        // pipeline, depending on timing: classify it the same way wherever it surfaced.
        const e = consumerError ?? err;
        const code = (e as NodeJS.ErrnoException).code;
        if (typeof code === "string" && code.startsWith("Z_")) {
          throw new DecompressError(`${where()}: gzip stream is corrupt or truncated: ${(e as Error).message}`, { cause: e });
        }
        throw e;
      }
      return;
    case "zstd": {
      const d = new ZstdDecompress((c) => onChunk(c));
      const push = (c: Uint8Array, final: boolean): void => {
        try {
          d.push(c, final);
        } catch (err) {
          if (isOurs(err)) throw err;
          throw new DecompressError(`${where()}: zstd stream is corrupt or truncated: ${(err as Error).message}`, { cause: err });
        }
      };
      for await (const c of file) push(c as Buffer, false);
      push(new Uint8Array(0), true);
      return;
    }
  }
}

function usage(dir: string): { bytes: number; inodes: number } {
  const seen = new Set<string>();
  let bytes = 0;
  let inodes = 0;
  const walk = (p: string): void => {
    const st = lstatSync(p);
    if (st.nlink > 1 && !st.isDirectory()) {
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) return;
      seen.add(key);
    }
    inodes++;
    bytes += st.blocks * 512;
    if (st.isDirectory()) for (const name of readdirSync(p)) walk(`${p}/${name}`);
  };
  walk(dir);
  return { bytes, inodes };
}

async function apply(req: ApplyRequest, stop: Int32Array): Promise<WorkerReply> {
  const started = performance.now();
  const hash = createHash("sha256");
  const applier = new LayerApplier({ root: req.dir, lowers: req.lowers ?? undefined, layer: req.layerName });
  const reader = new TarReader(applier, { layer: req.layerName });
  let tarBytes = 0;
  try {
    await forEachChunk(
      req,
      (c) => {
        if (Atomics.load(stop, 0) !== 0) throw new Aborted("apply aborted");
        hash.update(c);
        tarBytes += c.byteLength;
        reader.push(c);
      },
      () => reader.where(),
    );
    // an empty stream is an empty layer; one that stops at an entry boundary is complete
    reader.finish();
    applier.finish();
  } finally {
    applier.abort();
  }
  const digest = `sha256:${hash.digest("hex")}`;
  if (digest !== req.diffId) {
    throw new LayerContentError(`layer ${req.layerName}: uncompressed digest ${digest} does not match diff_id ${req.diffId}`);
  }
  const extractMs = performance.now() - started;
  const syncStarted = performance.now();
  if (req.sync) {
    const fd = openSync(req.dir, "r");
    try {
      syncfs(fd);
    } finally {
      closeSync(fd);
    }
  }
  const syncMs = performance.now() - syncStarted;
  const du = usage(req.dir);
  return {
    ok: true,
    result: {
      tarBytes,
      diskBytes: du.bytes,
      inodes: du.inodes,
      entries: applier.stats.entries,
      whiteouts: applier.stats.whiteouts,
      opaques: applier.stats.opaques,
      skippedXattrs: applier.stats.skippedXattrs,
      extractMs: Math.round(extractMs),
      syncMs: Math.round(syncMs),
      totalMs: Math.round(performance.now() - started),
      implied: applier.implied(),
    },
  };
}

function fixup(req: FixupRequest): WorkerReply {
  return { ok: true, result: { updated: copyImpliedDirs(req.dir, req.lowers, req.implied, req.layerName) } };
}

function classify(err: unknown, req: { layerName: string; blobPath?: string }): WorkerReply {
  const e = err as NodeJS.ErrnoException;
  const raw = e instanceof Error ? e.message : String(err);
  // every message names the layer; the reader and the applier add the entry where there is one
  const message = raw.startsWith(`layer ${req.layerName}`) ? raw : `layer ${req.layerName}: ${raw}`;
  if (err instanceof Aborted) return { ok: false, kind: "aborted", message };
  if (err instanceof LayerContentError || err instanceof TarFormatError || err instanceof DecompressError) {
    return { ok: false, kind: "invalid", message };
  }
  if (e.code === "ENOSPC" || e.code === "EDQUOT") return { ok: false, kind: "no-space", message };
  // errors an entry's own name or type causes: the layer is at fault, not the host
  if (err instanceof LayerIoError && ["ENAMETOOLONG", "ENOTDIR", "EISDIR", "ELOOP", "EEXIST", "EMLINK", "ERR_INVALID_ARG_VALUE"].includes(e.code ?? "")) {
    return { ok: false, kind: "invalid", message };
  }
  if (e.code === "ENOENT" && req.blobPath !== undefined && e.path === req.blobPath) return { ok: false, kind: "blob-missing", message: `layer ${req.layerName}: blob ${req.blobPath} not found` };
  return { ok: false, kind: "io", message };
}

// The nice value the pool asks for (image.pull_nice). Layer applies used to be niced (10)
// in the root scheduling group, where a niced thread competes with every other process at a
// fraction of their weight (3x containerd's pull time on a loaded machine). berthd's threads
// share one scheduling group (its cgroup's cpu controller, or its session's autogroup): a nice
// value here only divides that group's share, so the event loop goes first and the pull still
// gets what berthd as a whole gets.
lowerThreadPriority((workerData as { nice?: number } | undefined)?.nice ?? 0);

// One job at a time: the pool never sends a second request before the reply.
parentPort?.on("message", (msg: WorkerRequest) => {
  const stop = new Int32Array(msg.stop);
  const job = msg.op === "apply" ? apply(msg, stop) : Promise.resolve().then(() => fixup(msg));
  job.then(
    (reply) => parentPort?.postMessage(reply),
    (err: unknown) => parentPort?.postMessage(classify(err, msg)),
  );
});
