/** Concurrent calls with the same key share one running operation and its result. */
export class SingleFlight<T> {
  readonly #inflight = new Map<string, Promise<T>>();

  do(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.#inflight.get(key);
    if (running) return running;
    const p = (async () => {
      try {
        return await fn();
      } finally {
        this.#inflight.delete(key);
      }
    })();
    this.#inflight.set(key, p);
    return p;
  }

  has(key: string): boolean {
    return this.#inflight.has(key);
  }
}
