import type { MetadataStore, Migration } from "../store/index.js";
import { parseWithBigint, stringifyWithBigint } from "./json.js";
import type { Container } from "./container.js";

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: "containers table",
    up(db) {
      db.exec(`CREATE TABLE runtime_containers (
        id TEXT PRIMARY KEY,
        sandbox_id TEXT NOT NULL,
        reserved_name TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL,
        created_at TEXT NOT NULL,
        record TEXT NOT NULL
      )`);
      db.exec("CREATE INDEX runtime_containers_sandbox ON runtime_containers (sandbox_id)");
    },
  },
];

/** Containers in the metadata store: one row each, the full record as JSON. */
export class ContainerStore {
  constructor(private readonly store: MetadataStore) {
    store.migrate("runtime-containers", MIGRATIONS);
  }

  insert(c: Container): void {
    this.store.db
      .prepare("INSERT INTO runtime_containers (id, sandbox_id, reserved_name, state, created_at, record) VALUES (?, ?, ?, ?, ?, ?)")
      .run(c.id, c.podSandboxId, c.reservedName, c.state, c.createdAt.toString(), stringifyWithBigint(c));
  }

  update(c: Container): void {
    this.store.db.prepare("UPDATE runtime_containers SET state = ?, record = ? WHERE id = ?").run(c.state, stringifyWithBigint(c), c.id);
  }

  delete(id: string): void {
    this.store.db.prepare("DELETE FROM runtime_containers WHERE id = ?").run(id);
  }

  all(): Container[] {
    const rows = this.store.db.prepare("SELECT record FROM runtime_containers ORDER BY created_at").all() as Array<{ record: string }>;
    return rows.map((r) => parseWithBigint<Container>(r.record));
  }
}
