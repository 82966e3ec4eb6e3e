import { createHash } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Config } from "../config/index.js";
import type { ContentStore} from "../content/index.js";
import { ContentVerificationError, type Lease } from "../content/index.js";
import { InvalidArgumentError, NotFoundError } from "../errdefs/index.js";
import { logger } from "../log/index.js";
import { Counter, Gauge, recordPullFailure, recordPullLayer, recordPullSuccess, recordUnpackFailure, registry } from "../metrics/index.js";
import type { MetadataStore } from "../store/index.js";
import { Semaphore, SingleFlight } from "../sync/index.js";
import { Agents } from "./http.js";
import { ImageStore, type ImageRecord, type LayerRecord } from "./image-store.js";
import { nodePlatform, parseConfig, parseManifest, selectPlatform, type ImageConfig, type ImageManifest, type Platform } from "./manifest.js";
import { formatReference, parseReference, repoName, type Reference } from "./reference.js";
import { endpointsFor, RepositoryClient, type Credentials, type Descriptor } from "./registry.js";

/** What the image service needs from the snapshotter (pkg/snapshot's Snapshotter satisfies it). */
export interface LayerSnapshotter {
  has(chainId: string): boolean;
  applyLayer(opts: {
    chainId: string;
    parent: string | undefined;
    blobPath: string;
    mediaType: string;
    diffId: string;
    layerDigest?: string;
    signal?: AbortSignal;
    /** Settles when the parent's apply is over: the layer is extracted meanwhile and committed after it. */
    parentPending?: Promise<unknown>;
  }): Promise<{ size: number }>;
  usage(): Promise<{ bytes: bigint; inodes: bigint }>;
  mountPoint(): string;
  gc(keepChainIds: Set<string>): Promise<{ removed: string[] }>;
}

/** Chain ids (OCI image spec): chain[0] = diff[0], chain[i] = sha256(chain[i-1] + " " + diff[i]). */
export function chainIdsOf(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : `sha256:${createHash("sha256").update(`${prev} ${d}`).digest("hex")}`);
  }
  return out;
}

export interface LayerProgress {
  digest: string;
  size: number;
  /** Bytes downloaded so far. */
  done: number;
  state: "waiting" | "downloading" | "downloaded" | "exists" | "extracting" | "complete";
}

export interface PullProgress {
  ref: string;
  layers: LayerProgress[];
}

export interface PullOptions {
  creds?: Credentials;
  signal?: AbortSignal;
  onProgress?: (p: PullProgress) => void;
}


const pullBytes = new Counter({ name: "berth_image_pull_bytes_total", help: "Bytes downloaded from registries", registers: [registry] });
const pullCacheHits = new Counter({ name: "berth_image_pull_cache_hits_total", help: "Pulls answered from local content without downloading layers", registers: [registry] });
/** Exported so the gauge counts as used; it reads the live service on each scrape. */
export const contentStoreBytes = new Gauge({
  name: "berth_content_store_bytes",
  help: "Bytes held by the content store (committed blobs and partial downloads)",
  registers: [registry],
  collect() {
    if (contentUsage) this.set(contentUsage());
  },
});
let contentUsage: (() => number) | undefined;
const layersUnpacked = new Counter({ name: "berth_image_layers_unpacked_total", help: "Layers applied into snapshots", registers: [registry] });

export interface ImageServiceOptions {
  config: Config;
  store: MetadataStore;
  content: ContentStore;
  snapshotter: LayerSnapshotter;
  /** Work that outlives a request (a shared pull) runs under this signal. */
  lifetime: AbortSignal;
  /** Where pull progress is published as <digest hex>.json while a pull runs (read by `berthctl pull`). */
  progressDir?: string;
}

/** The image core: pull, list, status, remove, fs info, garbage collection. */
export class ImageService {
  readonly images: ImageStore;
  readonly content: ContentStore;
  readonly snapshotter: LayerSnapshotter;
  readonly #config: Config;
  readonly #agents = new Agents();
  readonly #platform: Platform;
  readonly #pullFlight = new SingleFlight<ImageRecord>();
  readonly #blobFlight = new SingleFlight<void>();
  readonly #applyFlight = new SingleFlight<void>();
  /** Chain ids of pulls in progress: kept by GC. */
  readonly #inflightChains = new Map<string, number>();
  #gcChain: Promise<unknown> = Promise.resolve();
  /** Set while a GC runs: pulls wait for it before registering their chains. */
  #gcBusy: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #gcRoots: Array<() => { chainIds?: Iterable<string>; digests?: Iterable<string> }> = [];
  readonly #lifetime: AbortSignal;
  readonly #progress = new Map<string, PullProgress>();
  /** Image ids whose last pull downloaded nothing (the pull latency's cache label). */
  readonly #cacheHits = new Set<string>();
  readonly #progressDir: string | undefined;

  constructor(opts: ImageServiceOptions) {
    this.#config = opts.config;
    this.images = new ImageStore(opts.store);
    this.content = opts.content;
    this.snapshotter = opts.snapshotter;
    this.#lifetime = opts.lifetime;
    this.#platform = nodePlatform(opts.config.image.platform);
    this.#progressDir = opts.progressDir;
    contentUsage = () => this.content.usage().bytes;
    if (this.#progressDir) {
      rmSync(this.#progressDir, { recursive: true, force: true });
      mkdirSync(this.#progressDir, { recursive: true, mode: 0o755 });
    }
  }

  #publishing = new Set<string>();

  /** Publishes pull progress for berthctl (async, at most one write per pull in flight). */
  #publish(key: string, p: PullProgress | undefined): void {
    const dir = this.#progressDir;
    if (!dir) return;
    const file = join(dir, `${key.replace(/^sha256:/, "")}.json`);
    if (!p) {
      void rm(file, { force: true }).catch(() => undefined);
      return;
    }
    if (this.#publishing.has(key)) return;
    this.#publishing.add(key);
    const tmp = `${file}.tmp`;
    void writeFile(tmp, JSON.stringify(p))
      .then(() => (this.#progress.has(key) ? rename(tmp, file) : rm(tmp, { force: true })))
      .catch((err: unknown) => logger().debug({ err }, "cannot publish pull progress"))
      .finally(() => {
        this.#publishing.delete(key);
        if (!this.#progress.has(key)) void rm(file, { force: true }).catch(() => undefined);
      });
  }

  // ---- lookups ----

  /** The image a reference or id (full or short) names; NotFoundError when none. */
  get(refOrId: string): ImageRecord {
    const rec = this.images.find(refOrId);
    if (!rec) throw new NotFoundError(`image "${refOrId}" not found`);
    return rec;
  }

  find(refOrId: string): ImageRecord | undefined {
    return this.images.find(refOrId);
  }

  list(): ImageRecord[] {
    return this.images.list();
  }

  /** Progress of pulls in progress (for berthctl). */
  pulls(): PullProgress[] {
    return [...this.#progress.values()];
  }

  // ---- pull ----

  async pull(refStr: string, opts: PullOptions = {}): Promise<ImageRecord> {
    const ref = parseReference(refStr);
    const started = performance.now();
    const log = logger().child({ image: formatReference(ref) });
    const signal = opts.signal ?? this.#lifetime;
    try {
      const endpoints = endpointsFor(ref.domain, this.#config.image, opts.creds);
      // The manifest is resolved per caller (each caller proves access with its own credentials) …
      const resolver = new RepositoryClient(ref, endpoints, { config: this.#config.image, agents: this.#agents }, signal);
      const top = await resolver.resolve(ref.digest ?? (ref.tag as string), this.#config.image.max_manifest_bytes);
      if (ref.digest !== undefined && top.desc.digest !== ref.digest) {
        throw new ContentVerificationError(`manifest of ${formatReference(ref)} hashes to ${top.desc.digest}, not the digest asked for`);
      }
      // … and the download is shared by every pull of the same manifest; it runs under the daemon's lifetime.
      const names = { tags: ref.tag !== undefined ? [`${repoName(ref)}:${ref.tag}`] : [], digests: [`${repoName(ref)}@${top.desc.digest}`] };
      const work = this.#pullFlight.do(top.desc.digest, () => {
        const shared = new RepositoryClient(ref, endpoints, { config: this.#config.image, agents: this.#agents }, this.#lifetime);
        return this.#pullResolved(ref, shared, top, names, opts.onProgress);
      });
      const rec = await abortable(work, signal);
      const out = this.images.put(rec, names);
      const seconds = (performance.now() - started) / 1000;
      recordPullSuccess(ref.domain, seconds, this.#cacheHits.has(rec.id));
      log.info({ imageId: out.id, durationMs: Math.round(seconds * 1000) }, "image pulled");
      return out;
    } catch (err) {
      recordPullFailure(ref.domain, err, { image: formatReference(ref) });
      throw err;
    }
  }

  async #pullResolved(ref: Reference, client: RepositoryClient, top: { desc: Descriptor; body: Buffer }, names: { tags: string[]; digests: string[] }, onProgress?: (p: PullProgress) => void): Promise<ImageRecord> {
    const what = formatReference(ref);
    const cfg = this.#config.image;
    const lease = this.content.createLease();
    const chains: string[] = [];
    try {
      let parsed = parseManifest(top.body, top.desc.mediaType, what);
      let manifestDesc = top.desc;
      let manifestBody = top.body;
      lease.add(top.desc.digest);
      await this.content.writeBlob(top.body, { ...top.desc, mediaType: parsed.mediaType });
      if (parsed.kind === "index") {
        const pick = selectPlatform(parsed, this.#platform, what);
        const child = await client.resolve(pick.digest, cfg.max_manifest_bytes);
        if (child.desc.digest !== pick.digest) throw new ContentVerificationError(`${what}: manifest ${pick.digest} from the index hashes to ${child.desc.digest}`);
        parsed = parseManifest(child.body, pick.mediaType || child.desc.mediaType, what);
        if (parsed.kind !== "manifest") throw new ContentVerificationError(`${what}: index entry ${pick.digest} is not an image manifest`);
        manifestDesc = child.desc;
        manifestBody = child.body;
        lease.add(child.desc.digest);
        await this.content.writeBlob(child.body, { ...child.desc, mediaType: parsed.mediaType });
      }
      const manifest = parsed as ImageManifest;
      void manifestBody;

      // Config: the image id.
      const configDesc = manifest.config;
      if (configDesc.size > cfg.max_config_bytes) throw new ContentVerificationError(`${what}: image config is ${configDesc.size} bytes, more than image.max_config_bytes (${cfg.max_config_bytes})`);
      lease.add(configDesc.digest);
      let configBody: Buffer;
      if (this.content.has(configDesc.digest)) configBody = await this.content.read(configDesc.digest, cfg.max_config_bytes);
      else {
        configBody = await client.fetchSmall(configDesc, cfg.max_config_bytes);
        await this.content.writeBlob(configBody, { ...configDesc, mediaType: configDesc.mediaType || "application/vnd.oci.image.config.v1+json" });
      }
      const config: ImageConfig = parseConfig(configBody, manifest.layers.length, what);
      const diffIds = config.rootfs?.diff_ids ?? [];
      chains.push(...chainIdsOf(diffIds));

      // Register our chains before looking at what exists, so a GC running now keeps them.
      while (this.#gcBusy) await this.#gcBusy;
      for (const c of chains) this.#inflightChains.set(c, (this.#inflightChains.get(c) ?? 0) + 1);

      const progress: PullProgress = { ref: what, layers: manifest.layers.map((l) => ({ digest: l.digest, size: l.size, done: 0, state: "waiting" })) };
      this.#progress.set(top.desc.digest, progress);
      let lastReport = 0;
      const report = (force = false): void => {
        const now = Date.now();
        if (!force && now - lastReport < 200) return;
        lastReport = now;
        onProgress?.(progress);
        this.#publish(top.desc.digest, progress);
      };

      report(true);
      const sem = new Semaphore(cfg.max_concurrent_downloads);
      let downloaded = 0;
      const downloads = manifest.layers.map((layer, i) => {
        const lp = progress.layers[i] as LayerProgress;
        const chain = chains[i] as string;
        lease.add(layer.digest);
        const present = this.content.has(layer.digest) || manifest.layers.slice(0, i + 1).every((_, j) => this.snapshotter.has(chains[j] as string));
        recordPullLayer(ref.domain, present, layer.size);
        if (this.content.has(layer.digest)) {
          lp.state = "exists";
          lp.done = layer.size;
          return Promise.resolve();
        }
        if (this.snapshotter.has(chain) && manifest.layers.slice(0, i + 1).every((_, j) => this.snapshotter.has(chains[j] as string))) {
          // Unpacked already (from another image); no need to download the blob.
          lp.state = "exists";
          lp.done = layer.size;
          return Promise.resolve();
        }
        return sem.run(async () => {
          lp.state = "downloading";
          await this.#blobFlight.do(layer.digest, async () => {
            if (this.content.has(layer.digest)) return;
            const ingest = await this.content.ingest({ digest: layer.digest, size: layer.size, mediaType: layer.mediaType });
            try {
              lp.done = ingest.offset;
              await client.fetchInto(layer, ingest, (n) => {
                lp.done += n;
                downloaded += n;
                pullBytes.inc(Math.max(0, n));
                report();
              });
              await ingest.commit();
            } finally {
              await ingest.close();
            }
          });
          lp.state = "downloaded";
          lp.done = layer.size;
          report(true);
        }, this.#lifetime);
      });
      // Each layer is extracted as soon as its blob is verified, beside the others (bounded by the
      // snapshotter); it is committed after its parent. A failure stops the pull (the rest finish
      // or fail on their own: a layer whose parent failed commits nothing).
      const layers: LayerRecord[] = manifest.layers.map((layer, i) => ({ digest: layer.digest, size: layer.size, mediaType: layer.mediaType, diffId: diffIds[i] as string }));
      const applied: Array<Promise<void>> = [];
      for (let i = 0; i < manifest.layers.length; i++) {
        const layer = manifest.layers[i] as ManifestLayer;
        const chain = chains[i] as string;
        const lp = progress.layers[i] as LayerProgress;
        const parentPending = i === 0 ? undefined : applied[i - 1];
        const p = (async () => {
          await downloads[i];
          if (this.snapshotter.has(chain)) {
            lp.state = "complete";
            return;
          }
          lp.state = "extracting";
          report(true);
          await this.#applyFlight.do(chain, async () => {
            if (this.snapshotter.has(chain)) return;
            if (!this.content.has(layer.digest)) throw new NotFoundError(`${what}: layer ${layer.digest} is neither downloaded nor unpacked`);
            await this.snapshotter.applyLayer({
              chainId: chain,
              parent: i === 0 ? undefined : chains[i - 1],
              blobPath: this.content.path(layer.digest),
              mediaType: layer.mediaType,
              diffId: diffIds[i] as string,
              layerDigest: layer.digest,
              signal: this.#lifetime,
              ...(parentPending ? { parentPending } : {}),
            }).catch((err: unknown) => {
              recordUnpackFailure(err, { image: what, layer: layer.digest });
              throw err;
            });
            layersUnpacked.inc();
          });
          lp.state = "complete";
          report(true);
        })();
        p.catch(() => undefined);
        applied.push(p);
      }
      const failFast = Promise.all([...downloads, ...applied]);
      failFast.catch(() => undefined);
      await failFast;
      if (downloaded === 0) {
        pullCacheHits.inc();
        this.#cacheHits.add(configDesc.digest);
      } else this.#cacheHits.delete(configDesc.digest);
      const size = configDesc.size + manifest.layers.reduce((a, l) => a + l.size, 0);
      const rec: ImageRecord = {
        id: configDesc.digest,
        repoTags: [],
        repoDigests: [],
        config,
        chainId: chains[chains.length - 1] ?? "",
        chainIds: chains,
        size,
        pinned: false,
        manifestDigest: manifestDesc.digest,
        targetDigest: top.desc.digest,
        layers,
        createdAt: new Date().toISOString(),
      };
      // Record it with the first caller's names (kept even if that caller gave up) before the lease goes.
      return this.images.put(rec, names);
    } finally {
      this.#progress.delete(top.desc.digest);
      this.#publish(top.desc.digest, undefined);
      for (const c of chains) {
        const n = (this.#inflightChains.get(c) ?? 1) - 1;
        if (n <= 0) this.#inflightChains.delete(c);
        else this.#inflightChains.set(c, n);
      }
      releaseLater(lease);
    }
  }

  // ---- remove and GC ----

  /** Removes the image a reference names, with all its tags; idempotent. Collects its data. */
  async remove(refOrId: string): Promise<void> {
    if (refOrId.trim() === "") throw new InvalidArgumentError("image reference is empty");
    const rec = this.images.find(refOrId);
    if (rec) {
      this.images.delete(rec.id);
      logger().info({ imageId: rec.id, repoTags: rec.repoTags }, "image removed");
    }
    await this.gc();
  }

  /** Runs one GC, after any running one. */
  gc(): Promise<GcResult> {
    const run = this.#gcChain.then(() => this.#gcOnce());
    this.#gcChain = run.catch(() => undefined);
    return run;
  }

  async #gcOnce(): Promise<GcResult> {
    let done!: () => void;
    this.#gcBusy = new Promise<void>((r) => (done = r));
    try {
      return await this.#collect();
    } finally {
      this.#gcBusy = undefined;
      done();
    }
  }

  async #collect(): Promise<GcResult> {
    const images = this.images.list();
    const keepChains = new Set<string>(this.#inflightChains.keys());
    const keepContent = new Set<string>();
    for (const img of images) {
      for (const c of img.chainIds) keepChains.add(c);
      keepContent.add(img.id);
      keepContent.add(img.manifestDigest);
      keepContent.add(img.targetDigest);
      for (const l of img.layers) keepContent.add(l.digest);
    }
    for (const root of this.#gcRoots) {
      const r = root();
      for (const c of r.chainIds ?? []) keepChains.add(c);
      for (const dg of r.digests ?? []) keepContent.add(dg);
    }
    const content = await this.content.gc(keepContent);
    const snaps = await this.snapshotter.gc(keepChains);
    return { contentRemoved: content.removed.length, contentBytes: content.bytes, snapshotsRemoved: snaps.removed.length };
  }

  /**
   * Lets another component (the runtime) keep data alive through GC: chain ids of committed
   * snapshots and content digests it still needs. Active snapshots (container rootfs) and
   * their ancestors are kept by the snapshotter itself.
   */
  addGcRoots(fn: () => { chainIds?: Iterable<string>; digests?: Iterable<string> }): void {
    this.#gcRoots.push(fn);
  }

  /** Starts the periodic GC (image.gc_interval_seconds; 0 disables it). */
  start(): void {
    const every = this.#config.image.gc_interval_seconds;
    if (every <= 0 || this.#timer) return;
    this.#timer = setInterval(() => {
      this.gc().catch((err: unknown) => logger().warn({ err }, "image garbage collection failed"));
    }, every * 1000);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#gcChain;
    this.#agents.destroy();
  }

  // ---- fs info ----

  /** Bytes and inodes used by image data (snapshots plus content) under the snapshotter's mount point. */
  async fsUsage(): Promise<{ mountpoint: string; bytes: bigint; inodes: bigint }> {
    const snaps = await this.snapshotter.usage();
    const content = this.content.usage();
    return { mountpoint: this.snapshotter.mountPoint(), bytes: snaps.bytes + BigInt(content.bytes), inodes: snaps.inodes + BigInt(content.inodes) };
  }
}

type ManifestLayer = ImageManifest["layers"][number];

export interface GcResult {
  contentRemoved: number;
  contentBytes: number;
  snapshotsRemoved: number;
}

function releaseLater(lease: Lease): void {
  lease.release();
}

/** Waits for p, or rejects when the signal aborts (p keeps running). */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

export { repoName, type Reference };
