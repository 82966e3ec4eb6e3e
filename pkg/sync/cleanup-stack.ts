import { logger } from "../log/index.js";

type Undo = { what: string; fn: (signal: AbortSignal) => Promise<void> | void };

/**
 * A LIFO stack of undo steps. Register each undo the moment the resource exists;
 * on failure `unwind()` runs them newest first, each under a fresh timeout (never
 * the cancelled request's signal), logging and carrying on past failures.
 */
export class CleanupStack {
  #undos: Undo[] = [];

  push(what: string, fn: (signal: AbortSignal) => Promise<void> | void): void {
    this.#undos.push({ what, fn });
  }

  /** Forget every undo: the operation succeeded. */
  commit(): void {
    this.#undos = [];
  }

  async unwind(timeoutMs = 30_000): Promise<void> {
    const undos = this.#undos.reverse();
    this.#undos = [];
    for (const undo of undos) {
      try {
        await undo.fn(AbortSignal.timeout(timeoutMs));
      } catch (err) {
        logger().warn({ err, step: undo.what }, "rollback step failed");
      }
    }
  }
}
