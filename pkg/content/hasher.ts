import { Worker } from "node:worker_threads";
import { mallocTrim } from "../sys/index.js";
import type { HashReply, HashRequest } from "./hash-worker.js";

const WORKER_URL = new URL("./hash-worker.js", import.meta.url);
/** How long the worker stays after its last hash is finished or dropped. */
const IDLE_MS = 5_000;

/**
 * One shared worker thread that hashes ingests, so sha256 never blocks the event loop.
 * It is started by the first hash and exits once no hash is open for IDLE_MS (a pull
 * leaves no thread behind).
 */
class HashPool {
  #worker: Worker | undefined;
  #nextId = 1;
  #nextSeq = 1;
  /** Hashes begun and not yet finished (digest) or dropped: the worker holds their state. */
  readonly #open = new Set<number>();
  #idleTimer: NodeJS.Timeout | undefined;
  readonly #waiting = new Map<number, { resolve: (d: string) => void; reject: (e: Error) => void }>();

  #w(): Worker {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (!this.#worker) {
      const w = new Worker(WORKER_URL);
      w.unref();
      w.on("message", (r: HashReply) => {
        const p = this.#waiting.get(r.seq);
        this.#waiting.delete(r.seq);
        if (!p) return;
        if ("digest" in r) p.resolve(r.digest);
        else p.reject(new Error(r.error));
      });
      const fail = (err: Error): void => {
        if (this.#worker !== w) return;
        this.#worker = undefined;
        for (const p of this.#waiting.values()) p.reject(err);
        this.#waiting.clear();
      };
      w.on("error", fail);
      w.on("exit", (code) => fail(new Error(`hash worker exited (code ${code})`)));
      this.#worker = w;
    }
    return this.#worker;
  }

  id(): number {
    return this.#nextId++;
  }

  post(m: HashRequest, transfer?: ArrayBuffer[]): void {
    if (m.op === "drop") {
      // nothing to drop when the worker (and its state) is gone
      this.#open.delete(m.id);
      if (this.#worker) this.#worker.postMessage(m);
      this.#idleCheck();
      return;
    }
    this.#open.add(m.id);
    this.#w().postMessage(m, transfer ?? []);
  }

  /** Lets the worker go once no hash is open and no digest is awaited. */
  #idleCheck(): void {
    if (this.#open.size > 0 || this.#waiting.size > 0 || !this.#worker || this.#idleTimer) return;
    const w = this.#worker;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#worker !== w || this.#open.size > 0 || this.#waiting.size > 0) return;
      this.#worker = undefined;
      // what the worker's reads used goes back to the system once it is gone
      void w.terminate().finally(() => setImmediate(() => void mallocTrim()));
    }, IDLE_MS);
    this.#idleTimer.unref();
  }

  digest(id: number): Promise<string> {
    const seq = this.#nextSeq++;
    const w = this.#w();
    w.ref();
    // the worker forgets the hash once it answers
    this.#open.delete(id);
    return new Promise<string>((resolve, reject) => {
      this.#waiting.set(seq, { resolve, reject });
      w.postMessage({ op: "digest", id, seq } satisfies HashRequest);
    }).finally(() => {
      if (this.#waiting.size === 0) this.#worker?.unref();
      this.#idleCheck();
    });
  }
}

const pool = new HashPool();

/** An incremental sha256 computed in the hash worker. */
export class OffThreadHash {
  readonly #id = pool.id();

  /** Hashes the chunk; the caller must not use `chunk` afterwards (its memory may be transferred). */
  update(chunk: Buffer): void {
    const ab = chunk.buffer;
    if (ab instanceof ArrayBuffer && chunk.byteOffset === 0 && chunk.byteLength === ab.byteLength && chunk.byteLength > 64 * 1024) {
      pool.post({ op: "update", id: this.#id, chunk: new Uint8Array(ab) }, [ab]);
    } else {
      pool.post({ op: "update", id: this.#id, chunk: new Uint8Array(chunk) });
    }
  }

  /** Hashes `length` bytes of a file from `offset` (bytes just written, or a partial download being resumed). */
  updateFromFile(path: string, offset: number, length: number): void {
    pool.post({ op: "file", id: this.#id, path, offset, length });
  }

  reset(): void {
    pool.post({ op: "reset", id: this.#id });
  }

  digest(): Promise<string> {
    return pool.digest(this.#id);
  }

  drop(): void {
    pool.post({ op: "drop", id: this.#id });
  }
}
