import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { open, readFile, rm, stat, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from "../errdefs/index.js";
import { logger } from "../log/index.js";
import type { MetadataStore, Migration } from "../store/index.js";
import { OffThreadHash } from "./hasher.js";

const DIGEST = /^sha256:([a-f0-9]{64})$/;

export interface BlobInfo {
  digest: string;
  size: number;
  mediaType: string;
  createdAt: string;
}

/** What an ingest must end as: the blob is committed only when both match. */
export interface Expected {
  digest: string;
  size: number;
  mediaType?: string;
}

const migrations: Migration[] = [
  {
    version: 1,
    description: "content blobs and leases",
    up: (db) => {
      db.exec(`CREATE TABLE content_blobs (
        digest TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        media_type TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE TABLE content_leases (
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL
      );
      CREATE TABLE content_lease_resources (
        lease_id TEXT NOT NULL REFERENCES content_leases(id) ON DELETE CASCADE,
        digest TEXT NOT NULL,
        PRIMARY KEY (lease_id, digest)
      );`);
    },
  },
];

function hexOf(digest: string): string {
  const m = DIGEST.exec(digest);
  if (!m) throw new InvalidArgumentError(`"${digest}" is not a sha256 digest`);
  return m[1] as string;
}

/** A digest mismatch or size mismatch: the bytes received are not the blob asked for. */
export class ContentVerificationError extends FailedPreconditionError {}

/**
 * An in-progress write of one blob. Bytes are appended (and hashed) as they arrive; commit()
 * checks size and digest and only then makes the blob visible. The partial file stays on
 * disk between attempts so a broken download can resume where it stopped.
 */
export class Ingest {
  readonly #hash = new OffThreadHash();
  /** False once another thread wrote the file: #hash then no longer covers its bytes. */
  #hashFollows = true;
  /** sha256 of the whole file, from the thread that wrote it last (see externalWrite). */
  #fileDigest: string | undefined;
  #offset = 0;
  #fh: FileHandle | undefined;
  #done = false;

  private constructor(
    private readonly store: ContentStore,
    readonly expected: Expected,
    readonly path: string,
  ) {}

  /** @internal */
  static async open(store: ContentStore, expected: Expected, path: string): Promise<Ingest> {
    const ing = new Ingest(store, expected, path);
    await ing.#load();
    return ing;
  }

  async #load(): Promise<void> {
    const st = await stat(this.path).catch(() => undefined);
    if (st && st.size > 0 && st.size <= this.expected.size) {
      // Resumed: what is there is hashed by the download that appends to it, or at commit.
      this.#hashFollows = false;
      this.#offset = st.size;
    } else if (st) {
      await rm(this.path, { force: true });
    }
    this.#fh = await open(this.path, this.#offset > 0 ? "a" : "w", 0o600);
  }

  /** Bytes already written (where a resumed download starts). */
  get offset(): number {
    return this.#offset;
  }

  /** Restarts the ingest from zero (the server ignored our Range request). */
  async truncate(): Promise<void> {
    await this.#fh?.truncate(0);
    await this.#fh?.close();
    this.#fh = await open(this.path, "w", 0o600);
    this.#hash.reset();
    this.#hashFollows = true;
    this.#fileDigest = undefined;
    this.#offset = 0;
  }

  /**
   * Appends bytes. The hash worker reads them back from the page cache, so the event loop
   * neither copies nor hashes them; unless `wholeDigest`, the caller's sha256 of bytes that
   * are the whole blob (written at offset 0), saves that.
   */
  async write(data: Buffer | Buffer[], wholeDigest?: string): Promise<void> {
    if (!this.#fh) throw new Error("ingest is closed");
    const chunks = Array.isArray(data) ? data : [data];
    const total = chunks.reduce((a, c) => a + c.length, 0);
    if (this.#offset + total > this.expected.size) {
      throw new ContentVerificationError(`blob ${this.expected.digest} is larger than its descriptor says (${this.expected.size} bytes)`);
    }
    let rest = chunks;
    let left = total;
    while (left > 0) {
      const r = await this.#fh.writev(rest);
      left -= r.bytesWritten;
      if (left > 0) rest = [Buffer.concat(rest).subarray(r.bytesWritten)];
    }
    if (wholeDigest !== undefined && this.#offset === 0) {
      // the caller hashed these bytes, and they are the whole file
      this.#hashFollows = false;
      this.#fileDigest = wholeDigest;
    } else {
      if (this.#hashFollows) this.#hash.updateFromFile(this.path, this.#offset, total);
      this.#fileDigest = undefined;
    }
    this.#offset += total;
  }

  /**
   * Accounts for bytes another thread wrote to `path` (a download worker): `restarted` when
   * it rewrote the file from zero, `written` bytes appended. `digest`: that thread's sha256 of
   * the whole file as it now stands (it hashed the bytes as it wrote them); without it (an
   * attempt that failed midway) the file is hashed here when the ingest commits.
   */
  externalWrite(restarted: boolean, written: number, digest?: string): void {
    if (restarted) this.#offset = 0;
    this.#offset += written;
    // the hash worker's state no longer follows the file: commit uses the writer's digest or rehashes
    this.#hashFollows = false;
    this.#fileDigest = digest;
  }

  /** Verifies size and digest, then atomically makes the blob visible. A mismatch discards the partial data. */
  async commit(): Promise<BlobInfo> {
    if (!this.#fh) throw new Error("ingest is closed");
    const { digest, size } = this.expected;
    if (this.#offset !== size) {
      throw new ContentVerificationError(`blob ${digest} is incomplete: ${this.#offset} of ${size} bytes`);
    }
    let got = this.#fileDigest;
    if (got === undefined && !this.#hashFollows) {
      // bytes another thread wrote without a digest for the whole file: hash the file once
      this.#hash.reset();
      this.#hash.updateFromFile(this.path, 0, this.#offset);
      this.#hashFollows = true;
    }
    got ??= await this.#hash.digest();
    if (got !== digest) {
      await this.abort();
      throw new ContentVerificationError(`digest mismatch for blob ${digest}: the registry sent ${size} bytes hashing to ${got}`);
    }
    await this.#fh.sync();
    await this.#fh.close();
    this.#fh = undefined;
    this.#done = true;
    const info = this.store.commitFile(this.path, this.expected);
    await this.store.syncBlobsDir();
    return info;
  }

  /** Closes the ingest keeping its partial data (for a later resume). */
  async close(): Promise<void> {
    // also after a commit that did not ask the hash worker (it may hold a resumed prefix's state)
    this.#hash.drop();
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close().catch(() => undefined);
    this.store.releaseIngest(this.expected.digest);
  }

  /** Closes and deletes the partial data. */
  async abort(): Promise<void> {
    await this.close();
    if (!this.#done) await rm(this.path, { force: true });
  }
}

/** Content-addressed blob store: `<root>/blobs/sha256/<hex>`, ingests in `<root>/ingest`, records in SQLite. */
export class ContentStore {
  readonly blobsDir: string;
  readonly ingestDir: string;
  readonly #trashDir: string;
  /** Leases released while their record could not be deleted (a full disk). */
  readonly #stuckLeases = new Set<string>();
  readonly #activeIngests = new Set<string>();

  private constructor(
    readonly root: string,
    private readonly meta: MetadataStore,
  ) {
    this.blobsDir = join(root, "blobs", "sha256");
    this.ingestDir = join(root, "ingest");
    this.#trashDir = join(root, "trash");
  }

  static open(opts: { root: string; store: MetadataStore }): ContentStore {
    opts.store.migrate("content", migrations);
    const cs = new ContentStore(opts.root, opts.store);
    for (const d of [cs.blobsDir, cs.ingestDir, cs.#trashDir]) mkdirSync(d, { recursive: true, mode: 0o700 });
    // Leases belong to pulls of a previous process: none survives a restart.
    opts.store.db.exec("DELETE FROM content_leases");
    rmSync(cs.#trashDir, { recursive: true, force: true });
    mkdirSync(cs.#trashDir, { recursive: true, mode: 0o700 });
    return cs;
  }

  has(digest: string): boolean {
    return this.info(digest) !== undefined;
  }

  info(digest: string): BlobInfo | undefined {
    const row = this.meta.db.prepare("SELECT digest, size, media_type, created_at FROM content_blobs WHERE digest = ?").get(digest) as
      | { digest: string; size: number; media_type: string; created_at: string }
      | undefined;
    return row && { digest: row.digest, size: row.size, mediaType: row.media_type, createdAt: row.created_at };
  }

  list(): BlobInfo[] {
    const rows = this.meta.db.prepare("SELECT digest, size, media_type, created_at FROM content_blobs ORDER BY digest").all() as Array<{
      digest: string;
      size: number;
      media_type: string;
      created_at: string;
    }>;
    return rows.map((r) => ({ digest: r.digest, size: r.size, mediaType: r.media_type, createdAt: r.created_at }));
  }

  /** The file of a committed blob. */
  path(digest: string): string {
    return join(this.blobsDir, hexOf(digest));
  }

  async read(digest: string, maxBytes = Number.MAX_SAFE_INTEGER): Promise<Buffer> {
    const info = this.info(digest);
    if (!info) throw new NotFoundError(`content ${digest} not found`);
    if (info.size > maxBytes) throw new FailedPreconditionError(`content ${digest} is ${info.size} bytes, more than the limit of ${maxBytes}`);
    return readFile(this.path(digest));
  }

  /** Opens (or resumes) the ingest of a blob. One writer per digest at a time. */
  async ingest(expected: Expected): Promise<Ingest> {
    const hex = hexOf(expected.digest);
    if (this.#activeIngests.has(hex)) throw new FailedPreconditionError(`blob ${expected.digest} is already being written`);
    this.#activeIngests.add(hex);
    try {
      return await Ingest.open(this, expected, join(this.ingestDir, `${hex}.partial`));
    } catch (err) {
      this.#activeIngests.delete(hex);
      throw err;
    }
  }

  /** @internal */
  releaseIngest(digest: string): void {
    this.#activeIngests.delete(hexOf(digest));
  }

  /** Writes a small blob already in memory (manifests, configs), verifying it. */
  async writeBlob(data: Buffer, expected: Expected): Promise<BlobInfo> {
    const existing = this.info(expected.digest);
    if (existing) return existing;
    const got = `sha256:${createHash("sha256").update(data).digest("hex")}`;
    if (got !== expected.digest || data.length !== expected.size) {
      throw new ContentVerificationError(`digest mismatch for blob ${expected.digest}: got ${got} (${data.length} bytes, expected ${expected.size})`);
    }
    const ing = await this.ingest(expected);
    try {
      if (ing.offset > 0) await ing.truncate();
      await ing.write(Buffer.from(data), got);
      return await ing.commit();
    } finally {
      await ing.close();
    }
  }

  /** @internal Moves a verified ingest file into place and records it (synchronously: no window for GC). */
  commitFile(path: string, expected: Expected): BlobInfo {
    const target = this.path(expected.digest);
    renameSync(path, target);
    const info: BlobInfo = { digest: expected.digest, size: expected.size, mediaType: expected.mediaType ?? "application/octet-stream", createdAt: new Date().toISOString() };
    this.meta.db
      .prepare("INSERT INTO content_blobs (digest, size, media_type, created_at) VALUES (?, ?, ?, ?) ON CONFLICT(digest) DO NOTHING")
      .run(info.digest, info.size, info.mediaType, info.createdAt);
    return this.info(expected.digest) ?? info;
  }

  /** Makes committed renames durable (off the event loop). */
  async syncBlobsDir(): Promise<void> {
    const fh = await open(this.blobsDir, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  // ---- leases ----

  /** A lease protects the content it names from GC until it is released. */
  createLease(): Lease {
    const id = `lease-${Date.now()}-${randomBytes(6).toString("hex")}`;
    this.meta.db.prepare("INSERT INTO content_leases (id, created_at) VALUES (?, ?)").run(id, new Date().toISOString());
    return new Lease(this.meta, id, (stuck) => this.#stuckLeases.add(stuck));
  }

  leasedDigests(): Set<string> {
    const rows = this.meta.db.prepare("SELECT DISTINCT digest FROM content_lease_resources").all() as Array<{ digest: string }>;
    return new Set(rows.map((r) => r.digest));
  }

  // ---- garbage collection ----

  /**
   * Removes every blob not in `keep` and not leased, partial ingests nobody writes, and
   * stray files. The decision and the unlinking of the records happen synchronously, so a
   * concurrent pull sees either the blob or its absence, never a half-deleted one.
   */
  async gc(keep: ReadonlySet<string>): Promise<{ removed: string[]; bytes: number }> {
    for (const id of this.#stuckLeases) {
      this.meta.db.prepare("DELETE FROM content_leases WHERE id = ?").run(id);
      this.#stuckLeases.delete(id);
    }
    const removed: string[] = [];
    let bytes = 0;
    const moved: string[] = [];
    this.meta.tx(() => {
      const leased = this.leasedDigests();
      const del = this.meta.db.prepare("DELETE FROM content_blobs WHERE digest = ?");
      for (const b of this.list()) {
        if (keep.has(b.digest) || leased.has(b.digest)) continue;
        del.run(b.digest);
        removed.push(b.digest);
        bytes += b.size;
        const trash = join(this.#trashDir, `${hexOf(b.digest)}-${randomBytes(4).toString("hex")}`);
        try {
          renameSync(this.path(b.digest), trash);
          moved.push(trash);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
        }
      }
      // Files without a record: a crash between rename and insert.
      const known = new Set(this.list().map((b) => hexOf(b.digest)));
      for (const f of readdirSync(this.blobsDir)) {
        if (known.has(f)) continue;
        const trash = join(this.#trashDir, `${f}-${randomBytes(4).toString("hex")}`);
        renameSync(join(this.blobsDir, f), trash);
        moved.push(trash);
      }
      for (const f of readdirSync(this.ingestDir)) {
        const hex = f.replace(/\.partial$/, "");
        if (this.#activeIngests.has(hex)) continue;
        const trash = join(this.#trashDir, `ingest-${f}-${randomBytes(4).toString("hex")}`);
        renameSync(join(this.ingestDir, f), trash);
        moved.push(trash);
      }
    });
    for (const t of moved) await rm(t, { recursive: true, force: true });
    if (removed.length > 0) logger().info({ removed: removed.length, bytes }, "content garbage collected");
    return { removed, bytes };
  }

  /** Bytes and files held: committed blobs (from the records) plus partial ingests (stat'ed). */
  usage(): { bytes: number; inodes: number } {
    const row = this.meta.db.prepare("SELECT COALESCE(SUM(size), 0) AS bytes, COUNT(*) AS n FROM content_blobs").get() as { bytes: number; n: number };
    let bytes = row.bytes;
    let inodes = row.n;
    for (const f of existsSync(this.ingestDir) ? readdirSync(this.ingestDir) : []) {
      try {
        bytes += statSync(join(this.ingestDir, f)).size;
        inodes++;
      } catch {
        // committed or removed meanwhile
      }
    }
    return { bytes, inodes };
  }
}

export class Lease {
  #released = false;
  constructor(
    private readonly meta: MetadataStore,
    readonly id: string,
    /** Called with the lease id when its record could not be deleted (a full disk): GC retries it. */
    private readonly onStuck: (id: string) => void = () => undefined,
  ) {}

  /** Protects a digest (call before the blob becomes visible). */
  add(digest: string): void {
    if (this.#released) return;
    this.meta.db.prepare("INSERT INTO content_lease_resources (lease_id, digest) VALUES (?, ?) ON CONFLICT DO NOTHING").run(this.id, digest);
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    try {
      this.meta.db.prepare("DELETE FROM content_leases WHERE id = ?").run(this.id);
    } catch (err) {
      // A lease that stays would keep its blobs from GC until a restart; the next GC deletes it.
      logger().warn({ err, lease: this.id }, "cannot release a content lease now; the next GC will");
      this.onStuck(this.id);
    }
  }
}
