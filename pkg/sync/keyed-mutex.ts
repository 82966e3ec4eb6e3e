import { Mutex, withTimeout, E_TIMEOUT } from "async-mutex";
import { DeadlineExceededError } from "../errdefs/index.js";

/** One mutex per key (pod id, container id), created on demand and dropped when idle. */
export class KeyedMutex {
  readonly #locks = new Map<string, { mutex: Mutex; users: number }>();
  constructor(private readonly timeoutMs = 120_000) {}

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let entry = this.#locks.get(key);
    if (!entry) {
      entry = { mutex: new Mutex(), users: 0 };
      this.#locks.set(key, entry);
    }
    entry.users++;
    try {
      const m = withTimeout(entry.mutex, this.timeoutMs);
      let release: () => void;
      try {
        release = await m.acquire();
      } catch (err) {
        if (err === E_TIMEOUT) {
          throw new DeadlineExceededError(`timed out after ${this.timeoutMs} ms waiting for the lock on "${key}"`);
        }
        throw err;
      }
      try {
        return await fn();
      } finally {
        release();
      }
    } finally {
      entry.users--;
      if (entry.users === 0) this.#locks.delete(key);
    }
  }

  get size(): number {
    return this.#locks.size;
  }
}
