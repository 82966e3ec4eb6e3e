import type { MetadataStore, Migration } from "../store/index.js";
import { parseWithBigint, stringifyWithBigint } from "./json.js";
import type { Sandbox } from "./sandbox.js";

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: "sandboxes table",
    up(db) {
      db.exec(`CREATE TABLE runtime_sandboxes (
        id TEXT PRIMARY KEY,
        reserved_name TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL,
        created_at TEXT NOT NULL,
        record TEXT NOT NULL
      )`);
    },
  },
];

/** Sandboxes in the metadata store: one row each, the full record as JSON. */
export class SandboxStore {
  constructor(private readonly store: MetadataStore) {
    store.migrate("runtime-sandboxes", MIGRATIONS);
  }

  insert(sb: Sandbox): void {
    this.store.db
      .prepare("INSERT INTO runtime_sandboxes (id, reserved_name, state, created_at, record) VALUES (?, ?, ?, ?, ?)")
      .run(sb.id, sb.reservedName, sb.state, sb.createdAt.toString(), stringifyWithBigint(sb));
  }

  update(sb: Sandbox): void {
    this.store.db.prepare("UPDATE runtime_sandboxes SET state = ?, record = ? WHERE id = ?").run(sb.state, stringifyWithBigint(sb), sb.id);
  }

  delete(id: string): void {
    this.store.db.prepare("DELETE FROM runtime_sandboxes WHERE id = ?").run(id);
  }

  all(): Sandbox[] {
    const rows = this.store.db.prepare("SELECT record FROM runtime_sandboxes ORDER BY created_at").all() as Array<{ record: string }>;
    return rows.map((r) => parseWithBigint<Sandbox>(r.record));
  }
}
