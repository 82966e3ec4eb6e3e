import type { MetadataStore, Migration } from "../store/index.js";
import type { ImageConfig } from "./manifest.js";
import { isDigest, parseReference, repoName } from "./reference.js";

export interface LayerRecord {
  digest: string;
  size: number;
  mediaType: string;
  diffId: string;
}

/** An image as berth knows it: identified by its config digest. */
export interface ImageRecord {
  /** The image id: the config digest "sha256:…". */
  id: string;
  repoTags: string[];
  repoDigests: string[];
  /** Parsed OCI image config. */
  config: ImageConfig;
  /** Chain id of the top layer: the snapshot a container rootfs is prepared on. */
  chainId: string;
  /** Chain ids of every layer, bottom to top. */
  chainIds: string[];
  /** Config plus compressed layers, bytes. */
  size: number;
  pinned: boolean;
  /** Digest of the platform's image manifest. */
  manifestDigest: string;
  /** Digest the reference resolved to (an index for multi-platform images). */
  targetDigest: string;
  layers: LayerRecord[];
  createdAt: string;
}

const migrations: Migration[] = [
  {
    version: 1,
    description: "images and their names",
    up: (db) => {
      db.exec(`CREATE TABLE images (
        id TEXT PRIMARY KEY,
        manifest_digest TEXT NOT NULL,
        target_digest TEXT NOT NULL,
        config TEXT NOT NULL,
        layers TEXT NOT NULL,
        chain_ids TEXT NOT NULL,
        size INTEGER NOT NULL,
        pinned INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
      );
      CREATE TABLE image_names (
        name TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('tag', 'digest'))
      );
      CREATE INDEX image_names_by_image ON image_names(image_id);`);
    },
  },
];

interface Row {
  id: string;
  manifest_digest: string;
  target_digest: string;
  config: string;
  layers: string;
  chain_ids: string;
  size: number;
  pinned: number;
  created_at: string;
}

/** Image records and names in SQLite, with a parsed-config cache. */
export class ImageStore {
  readonly #cache = new Map<string, ImageRecord>();

  constructor(private readonly meta: MetadataStore) {
    meta.migrate("image", migrations);
  }

  #names(id: string): { tags: string[]; digests: string[] } {
    const rows = this.meta.db.prepare("SELECT name, kind FROM image_names WHERE image_id = ? ORDER BY name").all(id) as Array<{ name: string; kind: string }>;
    return { tags: rows.filter((r) => r.kind === "tag").map((r) => r.name), digests: rows.filter((r) => r.kind === "digest").map((r) => r.name) };
  }

  #record(row: Row): ImageRecord {
    const names = this.#names(row.id);
    let cached = this.#cache.get(row.id);
    if (!cached) {
      const chainIds = JSON.parse(row.chain_ids) as string[];
      cached = {
        id: row.id,
        repoTags: [],
        repoDigests: [],
        config: JSON.parse(row.config) as ImageConfig,
        chainId: chainIds[chainIds.length - 1] ?? "",
        chainIds,
        size: row.size,
        pinned: row.pinned !== 0,
        manifestDigest: row.manifest_digest,
        targetDigest: row.target_digest,
        layers: JSON.parse(row.layers) as LayerRecord[],
        createdAt: row.created_at,
      };
      this.#cache.set(row.id, cached);
    }
    return { ...cached, repoTags: names.tags, repoDigests: names.digests };
  }

  byId(id: string): ImageRecord | undefined {
    const row = this.meta.db.prepare("SELECT * FROM images WHERE id = ?").get(id) as Row | undefined;
    return row && this.#record(row);
  }

  list(): ImageRecord[] {
    const rows = this.meta.db.prepare("SELECT * FROM images ORDER BY created_at, id").all() as Row[];
    return rows.map((r) => this.#record(r));
  }

  /** Ids whose hex starts with the prefix. */
  byIdPrefix(hexPrefix: string): string[] {
    const rows = this.meta.db.prepare("SELECT id FROM images WHERE id LIKE ?").all(`sha256:${hexPrefix}%`) as Array<{ id: string }>;
    return rows.map((r) => r.id);
  }

  /**
   * Finds an image by any reference form: full id, bare 64-hex id, name, name:tag,
   * name@digest (tag or manifest/index digest), or a unique short id prefix.
   */
  find(refOrId: string): ImageRecord | undefined {
    const s = refOrId.trim();
    if (s === "") return undefined;
    if (isDigest(s)) return this.byId(s);
    if (/^[a-f0-9]{64}$/.test(s)) return this.byId(`sha256:${s}`);
    let byName: ImageRecord | undefined;
    try {
      const ref = parseReference(s);
      const repo = repoName(ref);
      if (ref.digest !== undefined) {
        const hit = this.meta.db.prepare("SELECT image_id FROM image_names WHERE name = ?").get(`${repo}@${ref.digest}`) as { image_id: string } | undefined;
        if (hit) byName = this.byId(hit.image_id);
        else {
          // A digest of the platform manifest, or a tag+digest form: match the repo and either digest.
          const row = this.meta.db
            .prepare("SELECT i.id FROM images i JOIN image_names n ON n.image_id = i.id WHERE (i.manifest_digest = ? OR i.target_digest = ?) AND (n.name LIKE ? OR n.name LIKE ?) LIMIT 1")
            .get(ref.digest, ref.digest, `${repo}:%`, `${repo}@%`) as { id: string } | undefined;
          if (row) byName = this.byId(row.id);
        }
      } else {
        const hit = this.meta.db.prepare("SELECT image_id FROM image_names WHERE name = ?").get(`${repo}:${ref.tag ?? "latest"}`) as { image_id: string } | undefined;
        if (hit) byName = this.byId(hit.image_id);
      }
    } catch {
      // not a reference: maybe a short id
    }
    if (byName) return byName;
    const hex = s.startsWith("sha256:") ? s.slice(7) : s;
    if (/^[a-f0-9]{1,63}$/.test(hex)) {
      const ids = this.byIdPrefix(hex);
      if (ids.length === 1) return this.byId(ids[0] as string);
    }
    return undefined;
  }

  /**
   * Records an image (or refreshes it) and points the given names at it. Images left
   * without any name (a tag moved to a newer image) are dropped; GC reclaims their data.
   */
  put(rec: Omit<ImageRecord, "repoTags" | "repoDigests" | "pinned" | "createdAt">, names: { tags: string[]; digests: string[] }, pinned = false): ImageRecord {
    return this.meta.tx(() => {
      const db = this.meta.db;
      db.prepare(
        `INSERT INTO images (id, manifest_digest, target_digest, config, layers, chain_ids, size, pinned, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET manifest_digest = excluded.manifest_digest, target_digest = excluded.target_digest, pinned = MAX(images.pinned, excluded.pinned)`,
      ).run(rec.id, rec.manifestDigest, rec.targetDigest, JSON.stringify(rec.config), JSON.stringify(rec.layers), JSON.stringify(rec.chainIds), rec.size, pinned ? 1 : 0, new Date().toISOString());
      const prev = new Set<string>();
      const setName = db.prepare("INSERT INTO image_names (name, image_id, kind) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id, kind = excluded.kind");
      const owner = db.prepare("SELECT image_id FROM image_names WHERE name = ?");
      for (const [kind, list] of [["tag", names.tags], ["digest", names.digests]] as const) {
        for (const n of list) {
          const o = owner.get(n) as { image_id: string } | undefined;
          if (o && o.image_id !== rec.id) prev.add(o.image_id);
          setName.run(n, rec.id, kind);
        }
      }
      for (const old of prev) {
        const left = db.prepare("SELECT COUNT(*) AS n FROM image_names WHERE image_id = ?").get(old) as { n: number };
        if (left.n === 0) {
          db.prepare("DELETE FROM images WHERE id = ?").run(old);
          this.#cache.delete(old);
        }
      }
      return this.byId(rec.id) as ImageRecord;
    });
  }

  /** Deletes an image and all its names; false when it was already gone. */
  delete(id: string): boolean {
    this.#cache.delete(id);
    return this.meta.tx(() => this.meta.db.prepare("DELETE FROM images WHERE id = ?").run(id).changes > 0);
  }
}
