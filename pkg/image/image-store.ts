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

/** What reads answer from: every record (with its names) and every name's image, rebuilt after a write. */
interface Index {
  list: ImageRecord[];
  byId: Map<string, ImageRecord>;
  /** "repo:tag" and "repo@digest" → image id. */
  byName: Map<string, string>;
  /**
   * What find() answered for a string (an image id, or null for none), for as long as this
   * index lives: ImageStatus and CreateContainer name the same few images over and over, and
   * parsing the reference was most of an ImageStatus call. Bounded: cleared at FOUND_CACHE_MAX.
   */
  found: Map<string, string | null>;
}

const FOUND_CACHE_MAX = 1024;

/**
 * Image records and names in SQLite (the source of truth), read through an
 * in-memory index: lists and lookups (ListImages, ImageStatus, CreateContainer)
 * touch no SQL. Every write goes through put/delete, which drop the index; the
 * next read rebuilds it with two queries.
 */
export class ImageStore {
  #index: Index | undefined;

  constructor(private readonly meta: MetadataStore) {
    meta.migrate("image", migrations);
  }

  #load(): Index {
    if (this.#index) return this.#index;
    const db = this.meta.db;
    const rows = db.prepare("SELECT * FROM images ORDER BY created_at, id").all() as Row[];
    const names = db.prepare("SELECT name, image_id, kind FROM image_names ORDER BY name").all() as Array<{ name: string; image_id: string; kind: string }>;
    const byName = new Map<string, string>();
    const namesOf = new Map<string, { tags: string[]; digests: string[] }>();
    for (const n of names) {
      byName.set(n.name, n.image_id);
      let of = namesOf.get(n.image_id);
      if (!of) namesOf.set(n.image_id, (of = { tags: [], digests: [] }));
      (n.kind === "tag" ? of.tags : of.digests).push(n.name);
    }
    const list = rows.map((row): ImageRecord => {
      const chainIds = JSON.parse(row.chain_ids) as string[];
      const of = namesOf.get(row.id);
      return {
        id: row.id,
        repoTags: of?.tags ?? [],
        repoDigests: of?.digests ?? [],
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
    });
    this.#index = { list, byId: new Map(list.map((r) => [r.id, r])), byName, found: new Map() };
    return this.#index;
  }

  byId(id: string): ImageRecord | undefined {
    return this.#load().byId.get(id);
  }

  list(): ImageRecord[] {
    return [...this.#load().list];
  }

  /** Ids whose hex starts with the prefix. */
  byIdPrefix(hexPrefix: string): string[] {
    const want = `sha256:${hexPrefix}`;
    return this.#load().list.filter((r) => r.id.startsWith(want)).map((r) => r.id);
  }

  /**
   * Finds an image by any reference form: full id, bare 64-hex id, name, name:tag,
   * name@digest (tag or manifest/index digest), or a unique short id prefix.
   */
  find(refOrId: string): ImageRecord | undefined {
    const index = this.#load();
    const known = index.found.get(refOrId);
    if (known !== undefined) return known === null ? undefined : index.byId.get(known);
    const rec = this.#find(refOrId, index);
    if (index.found.size >= FOUND_CACHE_MAX) index.found.clear();
    index.found.set(refOrId, rec ? rec.id : null);
    return rec;
  }

  #find(refOrId: string, index: Index): ImageRecord | undefined {
    const s = refOrId.trim();
    if (s === "") return undefined;
    if (isDigest(s)) return this.byId(s);
    if (/^[a-f0-9]{64}$/.test(s)) return this.byId(`sha256:${s}`);
    let byName: ImageRecord | undefined;
    try {
      const ref = parseReference(s);
      const repo = repoName(ref);
      if (ref.digest !== undefined) {
        const hit = index.byName.get(`${repo}@${ref.digest}`);
        if (hit) byName = index.byId.get(hit);
        else {
          // A digest of the platform manifest, or a tag+digest form: match the repo and either digest.
          const digest = ref.digest;
          byName = index.list.find(
            (r) => (r.manifestDigest === digest || r.targetDigest === digest) && (r.repoTags.some((n) => n.startsWith(`${repo}:`)) || r.repoDigests.some((n) => n.startsWith(`${repo}@`))),
          );
        }
      } else {
        const hit = index.byName.get(`${repo}:${ref.tag ?? "latest"}`);
        if (hit) byName = index.byId.get(hit);
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
    this.#index = undefined;
    try {
      return this.#put(rec, names, pinned);
    } catch (err) {
      this.#index = undefined;
      throw err;
    }
  }

  #put(rec: Omit<ImageRecord, "repoTags" | "repoDigests" | "pinned" | "createdAt">, names: { tags: string[]; digests: string[] }, pinned: boolean): ImageRecord {
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
        }
      }
      this.#index = undefined;
      return this.byId(rec.id) as ImageRecord;
    });
  }

  /** Deletes an image and all its names; false when it was already gone. */
  delete(id: string): boolean {
    try {
      return this.meta.tx(() => this.meta.db.prepare("DELETE FROM images WHERE id = ?").run(id).changes > 0);
    } finally {
      this.#index = undefined;
    }
  }
}
