/**
 * Single-use, expiring tokens that name a pending streaming request. A token is
 * removed when it is used (valid or not for the protocol that follows) or when
 * it expires; the number of pending tokens is bounded.
 */
import { randomBytes } from "node:crypto";
import { ResourceExhaustedError } from "../errdefs/index.js";
import type { AttachRequest, ExecRequest, PortForwardRequest } from "./types.js";

export type PendingRequest =
  | { kind: "exec"; req: ExecRequest }
  | { kind: "attach"; req: AttachRequest }
  | { kind: "portforward"; req: PortForwardRequest };

interface Entry {
  value: PendingRequest;
  expiresAt: number;
}

export class TokenCache {
  #entries = new Map<string, Entry>();
  #ttlMs: number;
  #maxPending: number;
  #now: () => number;

  constructor(options: { ttlMs: number; maxPending?: number; now?: () => number }) {
    this.#ttlMs = options.ttlMs;
    this.#maxPending = options.maxPending ?? 1000;
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#entries.size;
  }

  insert(value: PendingRequest): string {
    this.#sweep();
    if (this.#entries.size >= this.#maxPending) {
      throw new ResourceExhaustedError(
        `cannot create a streaming URL: ${this.#entries.size} URLs are already pending (limit ${this.#maxPending})`,
      );
    }
    const token = randomBytes(16).toString("base64url");
    this.#entries.set(token, { value, expiresAt: this.#now() + this.#ttlMs });
    return token;
  }

  /** Takes the request behind a token; undefined if unknown, used or expired. */
  consume(token: string): PendingRequest | undefined {
    const e = this.#entries.get(token);
    if (!e) return undefined;
    this.#entries.delete(token);
    if (e.expiresAt <= this.#now()) return undefined;
    return e.value;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [k, e] of this.#entries) if (e.expiresAt <= now) this.#entries.delete(k);
  }
}
