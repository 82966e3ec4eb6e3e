import { existsSync } from "node:fs";
import { lstat, mkdir, readdir, rm } from "node:fs/promises";
import { availableParallelism } from "node:os";
import {
  AlreadyExistsError,
  BerthError,
  CancelledError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
} from "../errdefs/index.js";
import { logger } from "../log/index.js";
import type { Migration, MetadataStore } from "../store/index.js";
import { Semaphore } from "../sync/index.js";
import { Trash } from "../sys/index.js";
import { chainIdOf, isSha256Digest } from "./chain-id.js";
import { layerCompression } from "./media-types.js";
import { applyDuration, applyTotal } from "./metrics.js";
import type { Mount } from "./mount.js";
import { ApplyWorkerPool } from "./run-worker.js";

export interface SnapshotInfo {
  /** Chain ID for committed snapshots, the caller's key for active ones. */
  key: string;
  kind: "committed" | "active";
  /** Key (chain ID) of the parent snapshot. */
  parent?: string;
  /** Numeric id: the directory name under the root. */
  id: number;
  createdAt: string;
  labels: Record<string, string>;
}

export interface ApplyLayerOptions {
  chainId: string;
  /** Chain ID of the committed snapshot below, undefined for the first layer. */
  parent: string | undefined;
  /** The layer blob as stored (compressed or not, per mediaType). */
  blobPath: string;
  mediaType: string;
  /** rootfs.diff_ids entry: sha256 of the uncompressed tar. */
  diffId: string;
  layerDigest?: string;
  signal?: AbortSignal;
  /**
   * Settles when the apply of the parent (by this or another call) is over. With it the
   * layer is extracted at once, beside its parent's apply, and committed only after the
   * parent is (implied directories then take the parent chain's attributes); without it
   * the parent must already be committed.
   */
  parentPending?: Promise<unknown>;
}

export interface SnapshotterOptions {
  /** Directory of the snapshots, e.g. <berth root>/snapshots. */
  root: string;
  store: MetadataStore;
  /** Layer applies running at once (default: CPU count, at most 4). */
  maxConcurrentApplies?: number;
  /** syncfs after each apply, before the commit (default true). */
  sync?: boolean;
  /** Nice value of the layer-apply worker threads (0 to 19, default 0). */
  workerNice?: number;
}

type Kind = "committed" | "active" | "extracting";

interface Row {
  id: number;
  key: string;
  kind: Kind;
  parent_id: number | null;
  created_at: string;
  labels: string;
  size: number | null;
  inodes: number | null;
}

const COMPONENT = "snapshots";

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "snapshots: committed layers by chain ID, active snapshots by key, applies in progress",
    up(db) {
      db.exec(`CREATE TABLE snapshots (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('committed', 'active', 'extracting')),
        parent_id INTEGER REFERENCES snapshots(id),
        created_at TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        size INTEGER,
        inodes INTEGER,
        diff_id TEXT,
        layer_digest TEXT
      );
      CREATE INDEX snapshots_parent ON snapshots(parent_id);`);
    },
  },
];

export const DIFF_ID_LABEL = "berth.snapshot/diff-id";
export const LAYER_DIGEST_LABEL = "berth.snapshot/layer-digest";

interface InFlight {
  promise: Promise<{ size: number }>;
  controller: AbortController;
  waiters: number;
}

function waitWithSignal<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason instanceof BerthError ? signal.reason : new CancelledError("layer apply was cancelled", { cause: signal.reason }));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      reject(signal.reason instanceof BerthError ? signal.reason : new CancelledError("layer apply was cancelled", { cause: signal.reason }));
    };
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

/** The directory under the root where removed snapshots' directories wait to be deleted (not a snapshot id: cleanup skips it). */
const TRASH_DIR = ".removed";

/**
 * The overlayfs snapshotter. Committed snapshots are image layers keyed by
 * chain ID, each one a diff directory `<root>/<id>/fs` that overlay stacks
 * as a lowerdir; active snapshots add an upperdir and a workdir on top of a
 * chain for a container. The metadata store is the source of truth: a
 * directory without a row is garbage, and an apply is a row in state
 * "extracting" until one transaction flips it to "committed".
 */
export class Snapshotter {
  readonly #root: string;
  readonly #store: MetadataStore;
  readonly #sync: boolean;
  readonly #applies: Semaphore;
  readonly #inflight = new Map<string, InFlight>();
  readonly #indexOff: boolean;
  readonly #workers: ApplyWorkerPool;
  #closed = false;

  /** Where removed snapshots' directories wait to be deleted (see #removeDir). */
  readonly #trash: Trash;

  private constructor(opts: SnapshotterOptions) {
    if (!opts.root.startsWith("/")) throw new InvalidArgumentError(`snapshot root ${JSON.stringify(opts.root)} must be an absolute path`);
    // overlay mount options separate with "," and ":"
    if (/[,:=\\]/.test(opts.root)) throw new InvalidArgumentError(`snapshot root ${JSON.stringify(opts.root)} must not contain ",", ":", "=" or "\\"`);
    this.#root = opts.root.replace(/\/+$/, "") || "/";
    this.#trash = new Trash(`${this.#root}/${TRASH_DIR}`, "snapshot directory");
    this.#store = opts.store;
    this.#sync = opts.sync ?? true;
    this.#applies = new Semaphore(opts.maxConcurrentApplies ?? Math.max(1, Math.min(4, availableParallelism())));
    this.#indexOff = existsSync("/sys/module/overlay/parameters/index");
    this.#workers = new ApplyWorkerPool(undefined, opts.workerNice ?? 0);
  }

  /** Opens the snapshotter: migrates its tables and removes what a crash left behind. */
  static async open(opts: SnapshotterOptions): Promise<Snapshotter> {
    const s = new Snapshotter(opts);
    await mkdir(s.#root, { recursive: true, mode: 0o700 });
    opts.store.migrate(COMPONENT, MIGRATIONS);
    await s.#cleanup();
    return s;
  }

  get #db() {
    return this.#store.db;
  }

  #dir(id: number): string {
    return `${this.#root}/${id}`;
  }

  #fsDir(id: number): string {
    return `${this.#root}/${id}/fs`;
  }

  #workDir(id: number): string {
    return `${this.#root}/${id}/work`;
  }

  async #cleanup(): Promise<void> {
    const log = logger();
    const stale = this.#db.prepare("SELECT id, key FROM snapshots WHERE kind = 'extracting'").all() as Array<{ id: number; key: string }>;
    if (stale.length > 0) {
      // extracting rows have no children: nothing can be stacked on an unfinished layer
      this.#store.tx(() => {
        for (const r of stale) this.#db.prepare("DELETE FROM snapshots WHERE id = ?").run(r.id);
      });
      log.info({ snapshots: stale.map((r) => r.key) }, "removed layer applies interrupted by a crash");
    }
    const rows = this.#db.prepare("SELECT id, kind FROM snapshots").all() as Array<{ id: number; kind: Kind }>;
    const known = new Set(rows.map((r) => String(r.id)));
    for (const r of rows) {
      if (r.kind === "active") {
        await mkdir(this.#fsDir(r.id), { recursive: true, mode: 0o755 });
        await mkdir(this.#workDir(r.id), { recursive: true, mode: 0o700 });
      }
    }
    const removed: string[] = [];
    await this.#trash.emptyAll();
    for (const name of await readdir(this.#root)) {
      if (!/^[0-9]+$/.test(name) || known.has(name)) continue;
      await rm(`${this.#root}/${name}`, { recursive: true, force: true });
      removed.push(name);
    }
    if (removed.length > 0) log.info({ dirs: removed }, "removed snapshot directories without metadata");
  }

  #assertOpen(): void {
    if (this.#closed) throw new FailedPreconditionError("snapshotter is closed");
  }

  #rowByKey(key: string): Row | undefined {
    return this.#db.prepare("SELECT * FROM snapshots WHERE key = ?").get(key) as Row | undefined;
  }

  #committed(chainId: string): Row | undefined {
    const r = this.#rowByKey(chainId);
    return r?.kind === "committed" ? r : undefined;
  }

  /** Ids of the chain ending at `id`, topmost first. */
  #chain(id: number): number[] {
    const out: number[] = [];
    const stmt = this.#db.prepare("SELECT parent_id FROM snapshots WHERE id = ?");
    let cur: number | null = id;
    while (cur !== null) {
      out.push(cur);
      const r = stmt.get(cur) as { parent_id: number | null } | undefined;
      cur = r?.parent_id ?? null;
    }
    return out;
  }

  /** True when the committed snapshot of this chain ID exists. */
  has(chainId: string): boolean {
    return this.#committed(chainId) !== undefined;
  }

  /**
   * Applies one layer on top of the committed snapshot `parent` and commits it
   * under `chainId`. Idempotent; concurrent calls for the same chain ID share
   * one apply (it is stopped only when every caller has given up).
   */
  async applyLayer(opts: ApplyLayerOptions): Promise<{ size: number }> {
    this.#assertOpen();
    const { chainId, parent, diffId } = opts;
    if (!isSha256Digest(chainId)) throw new InvalidArgumentError(`chain ID ${JSON.stringify(chainId)} is not a sha256 digest`);
    if (!isSha256Digest(diffId)) throw new InvalidArgumentError(`diff ID ${JSON.stringify(diffId)} is not a sha256 digest`);
    if (parent !== undefined && !isSha256Digest(parent)) throw new InvalidArgumentError(`parent chain ID ${JSON.stringify(parent)} is not a sha256 digest`);
    layerCompression(opts.mediaType);
    const expected = chainIdOf(parent, diffId);
    if (expected !== chainId) {
      throw new InvalidArgumentError(`chain ID ${chainId} does not follow from parent ${parent ?? "(none)"} and diff ID ${diffId} (expected ${expected})`);
    }
    const done = this.#committed(chainId);
    if (done) return { size: done.size ?? 0 };

    let op = this.#inflight.get(chainId);
    if (op === undefined || op.controller.signal.aborted) {
      const previous = op?.promise;
      const controller = new AbortController();
      const promise = (async () => {
        if (previous) await previous.catch(() => undefined);
        return this.#applyOnce(opts, controller.signal);
      })();
      const created: InFlight = { promise, controller, waiters: 0 };
      promise.then(
        () => undefined,
        () => undefined,
      ).finally(() => {
        if (this.#inflight.get(chainId) === created) this.#inflight.delete(chainId);
      });
      this.#inflight.set(chainId, created);
      op = created;
    }
    const shared = op;
    shared.waiters++;
    try {
      return await waitWithSignal(shared.promise, opts.signal);
    } finally {
      shared.waiters--;
      if (shared.waiters === 0 && opts.signal?.aborted) shared.controller.abort(opts.signal.reason);
    }
  }

  async #applyOnce(opts: ApplyLayerOptions, signal: AbortSignal): Promise<{ size: number }> {
    let id: number | undefined;
    let log = logger().child({ snapshot: opts.chainId, layer: opts.layerDigest ?? opts.diffId });
    const started = performance.now();
    const layerName = opts.layerDigest ?? opts.diffId;
    try {
      // Extraction holds an apply slot; waiting for the parent does not (it may need a slot itself).
      const extracted = await this.#applies.run(async () => {
        this.#assertOpen();
        const done = this.#committed(opts.chainId);
        if (done) return { done: done.size ?? 0 };
        let existing = this.#rowByKey(opts.chainId);
        if (existing?.kind === "extracting") {
          // Applies of one key are shared, so no other is running: this is a failed apply whose cleanup failed.
          await rm(this.#dir(existing.id), { recursive: true, force: true });
          this.#db.prepare("DELETE FROM snapshots WHERE id = ? AND kind = 'extracting'").run(existing.id);
          logger().info({ snapshot: opts.chainId }, "removed the leftovers of a failed apply");
          existing = undefined;
        }
        if (existing) throw new AlreadyExistsError(`snapshot key ${opts.chainId} is taken by an ${existing.kind} snapshot`);
        let parentRow: Row | undefined;
        if (opts.parent !== undefined) {
          parentRow = this.#committed(opts.parent);
          if (!parentRow && opts.parentPending === undefined) throw new NotFoundError(`parent snapshot ${opts.parent} of layer ${opts.chainId} not found`);
        }
        const lowers = parentRow ? this.#chain(parentRow.id).map((i) => this.#fsDir(i)) : opts.parent === undefined ? [] : null;
        const labels: Record<string, string> = { [DIFF_ID_LABEL]: opts.diffId };
        if (opts.layerDigest !== undefined) labels[LAYER_DIGEST_LABEL] = opts.layerDigest;
        // the parent is linked at commit: an extracting row has no parent and no children
        id = Number(
          this.#db
            .prepare("INSERT INTO snapshots (key, kind, parent_id, created_at, labels, diff_id, layer_digest) VALUES (?, 'extracting', NULL, ?, ?, ?, ?)")
            .run(opts.chainId, new Date().toISOString(), JSON.stringify(labels), opts.diffId, opts.layerDigest ?? null).lastInsertRowid,
        );
        log = log.child({ snapshotId: id });
        await mkdir(this.#fsDir(id), { recursive: true, mode: 0o755 });
        const result = await this.#workers.run(
          { dir: this.#fsDir(id), lowers, blobPath: opts.blobPath, compression: layerCompression(opts.mediaType), diffId: opts.diffId, layerName, sync: this.#sync },
          signal,
        );
        return { result, lowersKnown: lowers !== null };
      }, signal);
      if ("done" in extracted) return { size: extracted.done };
      const { result } = extracted;
      const snapId = id as number;
      let parentRow: Row | undefined;
      if (opts.parent !== undefined) {
        if (!this.#committed(opts.parent)) await waitWithSignal(opts.parentPending?.catch(() => undefined) ?? Promise.resolve(), signal);
        this.#assertOpen();
        parentRow = this.#committed(opts.parent);
        if (!parentRow) throw new FailedPreconditionError(`layer ${layerName}: parent snapshot ${opts.parent} was not committed (its apply failed or was cancelled)`);
      }
      const lowers = parentRow ? this.#chain(parentRow.id).map((i) => this.#fsDir(i)) : [];
      if (!extracted.lowersKnown && result.implied.length > 0) {
        await this.#workers.fixup({ dir: this.#fsDir(snapId), lowers, implied: result.implied, layerName }, signal);
      }
      this.#store.tx(() => {
        this.#db.prepare("UPDATE snapshots SET kind = 'committed', parent_id = ?, size = ?, inodes = ? WHERE id = ? AND kind = 'extracting'").run(parentRow?.id ?? null, result.diskBytes, result.inodes, snapId);
      });
      applyTotal.inc({ result: "ok" });
      applyDuration.observe((performance.now() - started) / 1000);
      const { implied, ...figures } = result;
      log.info({ ...figures, implied: implied.length, lowers: lowers.length, waitedMs: Math.round(performance.now() - started - result.totalMs) }, "layer applied");
      return { size: result.diskBytes };
    } catch (err) {
      if (id !== undefined) {
        applyTotal.inc({ result: err instanceof CancelledError ? "cancelled" : "error" });
        // Files first: on a full disk they free the room the record's delete needs. A cleanup
        // that fails anyway is logged and left to the next apply of this key (or start-up); the
        // caller gets the apply's own error.
        await rm(this.#dir(id), { recursive: true, force: true }).catch((e: unknown) => log.warn({ err: e }, "cannot remove failed apply; startup cleanup will"));
        try {
          this.#db.prepare("DELETE FROM snapshots WHERE id = ? AND kind = 'extracting'").run(id);
        } catch (e) {
          log.warn({ err: e }, "cannot delete the record of a failed apply; the next apply of this layer will");
        }
        log.warn({ err }, "layer apply failed");
      }
      throw err;
    }
  }

  /** Creates an active snapshot (upper and work dirs) on top of a committed chain, and returns its mounts. */
  async prepare(key: string, parentChainId: string | undefined, opts: { labels?: Record<string, string> } = {}): Promise<Mount[]> {
    this.#assertOpen();
    if (key === "" || key.includes("\0")) throw new InvalidArgumentError(`snapshot key ${JSON.stringify(key)} is invalid`);
    let parentRow: Row | undefined;
    if (parentChainId !== undefined) {
      parentRow = this.#committed(parentChainId);
      if (!parentRow) throw new NotFoundError(`parent snapshot ${parentChainId} of ${JSON.stringify(key)} not found`);
    }
    let id: number;
    try {
      id = Number(
        this.#db
          .prepare("INSERT INTO snapshots (key, kind, parent_id, created_at, labels) VALUES (?, 'active', ?, ?, ?)")
          .run(key, parentRow?.id ?? null, new Date().toISOString(), JSON.stringify(opts.labels ?? {})).lastInsertRowid,
      );
    } catch (err) {
      if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_UNIQUE") throw new AlreadyExistsError(`snapshot ${JSON.stringify(key)} already exists`, { cause: err });
      throw err;
    }
    try {
      await mkdir(this.#fsDir(id), { recursive: true, mode: 0o755 });
      await mkdir(this.#workDir(id), { recursive: true, mode: 0o700 });
    } catch (err) {
      this.#db.prepare("DELETE FROM snapshots WHERE id = ?").run(id);
      await rm(this.#dir(id), { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
    return this.mounts(key);
  }

  /** The mounts of an active snapshot: an overlay of its chain with its upper and work dirs (a bind mount without a parent). */
  mounts(key: string): Mount[] {
    const row = this.#rowByKey(key);
    if (!row || row.kind !== "active") throw new NotFoundError(`active snapshot ${JSON.stringify(key)} not found`);
    if (row.parent_id === null) return [{ type: "bind", source: this.#fsDir(row.id), options: ["rw", "rbind"] }];
    const lowers = this.#chain(row.parent_id).map((id) => this.#fsDir(id));
    const options = [
      ...(this.#indexOff ? ["index=off"] : []),
      `workdir=${this.#workDir(row.id)}`,
      `upperdir=${this.#fsDir(row.id)}`,
      `lowerdir=${lowers.join(":")}`,
    ];
    return [{ type: "overlay", source: "overlay", options }];
  }

  /**
   * Removes an active snapshot, or a committed one that nothing is stacked on
   * (FailedPreconditionError otherwise). Unknown key: NotFoundError.
   */
  async remove(key: string): Promise<void> {
    this.#assertOpen();
    const row = this.#rowByKey(key);
    if (!row) throw new NotFoundError(`snapshot ${JSON.stringify(key)} not found`);
    if (row.kind === "extracting") throw new FailedPreconditionError(`snapshot ${key} is being applied`);
    const children = this.#db.prepare("SELECT key FROM snapshots WHERE parent_id = ? LIMIT 3").all(row.id) as Array<{ key: string }>;
    if (children.length > 0) {
      throw new FailedPreconditionError(`snapshot ${key} is the parent of ${children.map((c) => JSON.stringify(c.key)).join(", ")}`);
    }
    this.#db.prepare("DELETE FROM snapshots WHERE id = ?").run(row.id);
    await this.#removeDir(row.id);
  }

  /**
   * A removed snapshot's directory goes to the trash (renamed at once, deleted in the
   * background): deleting a container's upper dir took 1.6-2.5 ms of each RemoveContainer,
   * and an image layer's tree far longer. The rename also keeps the id's path free for a
   * new snapshot that gets the same id.
   */
  async #removeDir(id: number): Promise<void> {
    try {
      await this.#trash.discard(this.#dir(id));
    } catch (err) {
      logger().warn({ err, snapshotId: id }, "cannot remove snapshot directory; startup cleanup will");
    }
  }

  /** Resolves once the directories of removed snapshots are deleted (tests, shutdown). */
  trashEmptied(): Promise<void> {
    return this.#trash.emptied();
  }

  list(): SnapshotInfo[] {
    const rows = this.#db.prepare("SELECT * FROM snapshots WHERE kind != 'extracting' ORDER BY id").all() as Row[];
    const keyOf = new Map(rows.map((r) => [r.id, r.key]));
    return rows.map((r) => {
      const info: SnapshotInfo = {
        key: r.key,
        kind: r.kind as "committed" | "active",
        id: r.id,
        createdAt: r.created_at,
        labels: JSON.parse(r.labels) as Record<string, string>,
      };
      const parent = r.parent_id === null ? undefined : keyOf.get(r.parent_id);
      if (parent !== undefined) info.parent = parent;
      return info;
    });
  }

  /**
   * Disk use of every snapshot: committed sizes as measured at commit, active ones walked now.
   * Layers being extracted count once committed: walking them would lstat every file a pull
   * writes, on the event loop's promise chain and the libuv pool that decompresses layers,
   * at each metrics scrape and ImageFsInfo call during the pull.
   */
  async usage(): Promise<{ bytes: bigint; inodes: bigint }> {
    const rows = this.#db.prepare("SELECT id, kind, size, inodes FROM snapshots WHERE kind != 'extracting'").all() as Array<Pick<Row, "id" | "kind" | "size" | "inodes">>;
    let bytes = 0n;
    let inodes = 0n;
    for (const r of rows) {
      if (r.kind === "committed") {
        bytes += BigInt(r.size ?? 0);
        inodes += BigInt(r.inodes ?? 0);
      } else {
        const u = await walkUsage(this.#dir(r.id));
        bytes += u.bytes;
        inodes += u.inodes;
      }
    }
    return { bytes, inodes };
  }

  /** The snapshots root directory (ImageFsInfo's mountpoint). */
  mountPoint(): string {
    return this.#root;
  }

  /**
   * Removes committed snapshots that are not in `keepChainIds`, not an
   * ancestor of a kept one, and not below an active snapshot or an apply in
   * progress. Callers pass the chain IDs of every image they keep, and of pulls
   * still running.
   */
  async gc(keepChainIds: Set<string>): Promise<{ removed: string[] }> {
    this.#assertOpen();
    const rows = this.#db.prepare("SELECT id, key, kind, parent_id FROM snapshots").all() as Array<Pick<Row, "id" | "key" | "kind" | "parent_id">>;
    const byId = new Map(rows.map((r) => [r.id, r]));
    const keep = new Set<number>();
    const mark = (id: number | null): void => {
      while (id !== null && !keep.has(id)) {
        keep.add(id);
        id = byId.get(id)?.parent_id ?? null;
      }
    };
    for (const r of rows) {
      if (r.kind !== "committed" || keepChainIds.has(r.key) || this.#inflight.has(r.key)) mark(r.id);
    }
    const doomed = rows.filter((r) => !keep.has(r.id));
    if (doomed.length === 0) return { removed: [] };
    const depth = (r: { parent_id: number | null }): number => {
      let d = 0;
      let p = r.parent_id;
      while (p !== null) {
        d++;
        p = byId.get(p)?.parent_id ?? null;
      }
      return d;
    };
    doomed.sort((a, b) => depth(b) - depth(a));
    this.#store.tx(() => {
      const del = this.#db.prepare("DELETE FROM snapshots WHERE id = ? AND kind = 'committed'");
      for (const r of doomed) del.run(r.id);
    });
    for (const r of doomed) await this.#removeDir(r.id);
    logger().info({ removed: doomed.map((r) => r.key) }, "snapshot gc");
    return { removed: doomed.map((r) => r.key) };
  }

  /** Stops applies in progress; the store stays open (it is shared). */
  close(): void {
    this.#closed = true;
    for (const op of this.#inflight.values()) op.controller.abort(new CancelledError("snapshotter is closing"));
    this.#workers.close();
  }
}

async function walkUsage(dir: string): Promise<{ bytes: bigint; inodes: bigint }> {
  let bytes = 0n;
  let inodes = 0n;
  const seen = new Set<string>();
  const walk = async (p: string): Promise<void> => {
    let st;
    try {
      st = await lstat(p, { bigint: true });
    } catch {
      return;
    }
    if (st.nlink > 1n && !st.isDirectory()) {
      const k = `${st.dev}:${st.ino}`;
      if (seen.has(k)) return;
      seen.add(k);
    }
    inodes++;
    bytes += st.blocks * 512n;
    if (st.isDirectory()) {
      let names: string[] = [];
      try {
        names = await readdir(p);
      } catch {
        return;
      }
      for (const n of names) await walk(`${p}/${n}`);
    }
  };
  await walk(dir);
  return { bytes, inodes };
}
