import { Counter, registry } from "../metrics/index.js";

export const eventsDropped = new Counter({
  name: "berth_events_dropped_total",
  help: "Events not delivered to a subscriber whose buffer was full (a slow or gone event stream client)",
  labelNames: ["stream"] as const,
  registers: [registry],
});

export interface EventBusOptions {
  /** Events buffered per subscriber; more are dropped for that subscriber (config events.buffer_size). */
  bufferSize: number;
  /** Label of the drop counter. */
  name?: string;
}

export interface SubscribeOptions {
  /** Closes the subscription when aborted (the call's cancel signal). */
  signal?: AbortSignal;
}

/** One subscriber's view of a bus: an async iterator over events in publish order, with its own bounded buffer. */
export interface Subscription<T> extends AsyncIterableIterator<T> {
  /** Ends the iteration (pending next() resolves done) and detaches from the bus. Idempotent. */
  close(): void;
  readonly closed: boolean;
  /** Events dropped for this subscriber because its buffer was full. */
  readonly dropped: number;
  /** Events waiting in the buffer. */
  readonly pending: number;
}

/**
 * A fan-out event bus. publish() is synchronous and O(subscribers): it appends to each subscriber's
 * bounded buffer and never waits for anyone. A subscriber that reads slowly or not at all loses the
 * events that do not fit (counted in berth_events_dropped_total); others are not affected.
 */
export class EventBus<T> {
  readonly #size: number;
  readonly #name: string;
  readonly #subs = new Set<Sub<T>>();

  constructor(opts: EventBusOptions) {
    if (!Number.isInteger(opts.bufferSize) || opts.bufferSize < 1) throw new RangeError(`event bus buffer size must be a positive integer, got ${opts.bufferSize}`);
    this.#size = opts.bufferSize;
    this.#name = opts.name ?? "events";
  }

  get subscriberCount(): number {
    return this.#subs.size;
  }

  publish(event: T): void {
    for (const s of this.#subs) {
      if (!s.push(event)) eventsDropped.inc({ stream: this.#name });
    }
  }

  subscribe(opts: SubscribeOptions = {}): Subscription<T> {
    const sub = new Sub<T>(this.#size, () => this.#subs.delete(sub));
    if (opts.signal) {
      if (opts.signal.aborted) {
        sub.close();
        return sub;
      }
      const signal = opts.signal;
      const onAbort = (): void => sub.close();
      signal.addEventListener("abort", onAbort, { once: true });
      sub.onClose(() => signal.removeEventListener("abort", onAbort));
    }
    this.#subs.add(sub);
    return sub;
  }

  /** Closes every subscription (daemon shutdown). */
  closeAll(): void {
    for (const s of [...this.#subs]) s.close();
  }
}

class Sub<T> implements Subscription<T> {
  readonly #cap: number;
  #buf: T[] = [];
  #head = 0;
  #dropped = 0;
  #closed = false;
  #waiter: ((r: IteratorResult<T>) => void) | undefined;
  readonly #closeHooks: Array<() => void>;

  constructor(cap: number, detach: () => void) {
    this.#cap = cap;
    this.#closeHooks = [detach];
  }

  get closed(): boolean {
    return this.#closed;
  }

  get dropped(): number {
    return this.#dropped;
  }

  get pending(): number {
    return this.#buf.length - this.#head;
  }

  onClose(fn: () => void): void {
    this.#closeHooks.push(fn);
  }

  /** Returns false when the event was dropped. */
  push(ev: T): boolean {
    if (this.#closed) return true;
    const w = this.#waiter;
    if (w) {
      this.#waiter = undefined;
      w({ value: ev, done: false });
      return true;
    }
    if (this.pending >= this.#cap) {
      this.#dropped++;
      return false;
    }
    this.#buf.push(ev);
    return true;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#head < this.#buf.length) {
      const value = this.#buf[this.#head] as T;
      this.#buf[this.#head] = undefined as T; // release the reference
      this.#head++;
      if (this.#head === this.#buf.length) {
        this.#buf = [];
        this.#head = 0;
      } else if (this.#head >= 1024 && this.#head * 2 >= this.#buf.length) {
        this.#buf = this.#buf.slice(this.#head);
        this.#head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    if (this.#waiter) return Promise.reject(new Error("event subscription: next() called while a previous next() is pending"));
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#buf = [];
    this.#head = 0;
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.({ value: undefined, done: true });
    for (const h of this.#closeHooks) h();
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
