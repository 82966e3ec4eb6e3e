import { randomBytes } from "node:crypto";
import { mkdir, readdir, rename, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { logger } from "../log/index.js";

/**
 * Directories deleted off the caller's path: `discard()` moves one into the trash directory
 * with a single rename (its old path is free at once, for a new object of the same name)
 * and deletes it in the background. A crash leaves entries in the trash; `emptyAll()` at
 * start-up deletes them. The trash directory must be on the file system of what is
 * discarded; where the rename fails (another file system), the path is deleted in place.
 */
export class Trash {
  readonly #pending = new Set<Promise<void>>();

  /** `what` names the entries in log lines ("snapshot directory", "container bundle"). */
  constructor(
    readonly dir: string,
    private readonly what: string,
  ) {}

  /** Moves `path` into the trash and deletes it in the background; resolves once `path` is gone. */
  async discard(path: string): Promise<void> {
    const to = join(this.dir, `${basename(path)}-${randomBytes(4).toString("hex")}`);
    try {
      await rename(path, to);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") {
        // Either nothing to discard, or no trash directory yet.
        try {
          await mkdir(this.dir, { recursive: true, mode: 0o700 });
          await rename(path, to);
        } catch (err2) {
          if ((err2 as NodeJS.ErrnoException).code === "ENOENT") return;
          await rm(path, { recursive: true, force: true });
          return;
        }
      } else {
        await rm(path, { recursive: true, force: true });
        return;
      }
    }
    this.#delete(to);
  }

  /** Deletes, in the background, whatever the trash holds (entries a crash left). */
  async emptyAll(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return;
    }
    for (const name of names) this.#delete(join(this.dir, name));
  }

  /** Resolves once every deletion started so far has finished (tests, shutdown). */
  async emptied(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  #delete(path: string): void {
    const done = rm(path, { recursive: true, force: true })
      .catch((err: unknown) => logger().warn({ err, path }, `cannot delete a removed ${this.what}; the next start-up will`))
      .finally(() => this.#pending.delete(done));
    this.#pending.add(done);
  }
}
