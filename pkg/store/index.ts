import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { logger } from "../log/index.js";

export type Db = Database.Database;

/** One schema step of one component; `up` runs inside a transaction. */
export interface Migration {
  version: number;
  description: string;
  up: (db: Db) => void;
}

/**
 * The metadata store: one SQLite database in WAL mode under the root dir.
 * Each component (content, images, snapshots, runtime …) owns its tables and
 * brings its own ordered migrations; the store records each component's
 * schema version and applies what is missing, each step in a transaction.
 */
export class MetadataStore {
  readonly db: Db;

  private constructor(db: Db) {
    this.db = db;
  }

  static open(file: string): MetadataStore {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const db = new Database(file);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("foreign_keys = ON");
    db.pragma("busy_timeout = 5000");
    db.exec(`CREATE TABLE IF NOT EXISTS schema_versions (
      component TEXT PRIMARY KEY,
      version INTEGER NOT NULL,
      updated_at TEXT NOT NULL
    )`);
    return new MetadataStore(db);
  }

  /** The schema version of a component, 0 when it has none yet. */
  version(component: string): number {
    const row = this.db.prepare("SELECT version FROM schema_versions WHERE component = ?").get(component) as { version: number } | undefined;
    return row?.version ?? 0;
  }

  /** Applies the component's missing migrations in order. A database newer than the code is refused. */
  migrate(component: string, migrations: readonly Migration[]): void {
    const sorted = [...migrations].sort((a, b) => a.version - b.version);
    sorted.forEach((m, i) => {
      if (m.version !== i + 1) throw new Error(`migrations of ${component} must be numbered 1..n without gaps (found ${m.version} at ${i + 1})`);
    });
    const current = this.version(component);
    const latest = sorted.length;
    if (current > latest) {
      throw new Error(`metadata schema of "${component}" is version ${current}, newer than this berthd understands (${latest}); refusing to open`);
    }
    for (const m of sorted.slice(current)) {
      this.db.transaction(() => {
        m.up(this.db);
        this.db
          .prepare(
            "INSERT INTO schema_versions (component, version, updated_at) VALUES (?, ?, ?) ON CONFLICT(component) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
          )
          .run(component, m.version, new Date().toISOString());
      })();
      logger().info({ component, version: m.version, description: m.description }, "metadata schema migrated");
    }
  }

  /** Runs fn in one transaction (all or nothing). */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
