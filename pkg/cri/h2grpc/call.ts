// The call objects handlers see. They carry the part of grpc-js's ServerUnaryCall and
// ServerWritableStream that pkg/cri/instrument.ts uses, so the same handlers run on
// either server.

import { EventEmitter } from "node:events";

/** What a call needs from the stream it runs on (implemented in connection.ts). */
export interface CallStream {
  /** Sends one serialised message; false when the call already ended. */
  sendMessage(bytes: Buffer): boolean;
  /** Ends the call with a status (0 is OK). */
  finish(code: number, message: string): void;
  /** Octets written by the handler that the client has not taken yet. */
  readonly queuedBytes: number;
}

/** Queued octets above which a streaming handler is asked to wait for 'drain'. */
export const STREAM_HIGH_WATER = 64 * 1024;

/**
 * Events: 'cancelled' (the client reset the stream, the connection closed or the
 * deadline passed before the call ended), 'drain' (queued octets went back under the
 * high-water mark), 'close' (the call is over, whichever way).
 */
export class ServerCall<Req> extends EventEmitter {
  cancelled = false;
  ended = false;

  constructor(
    readonly request: Req,
    readonly deadline: number,
    protected readonly stream: CallStream,
  ) {
    super();
  }

  /** Date.now()-based deadline, Infinity when the client gave none (grpc-js's shape). */
  getDeadline(): number {
    return this.deadline;
  }

  /** Called by the connection when the call stops for a reason of the client's. */
  markCancelled(): void {
    if (this.cancelled || this.ended) return;
    this.cancelled = true;
    this.emit("cancelled", "cancelled");
  }

  markClosed(): void {
    this.emit("close");
  }
}

export class ServerStreamCall<Req, Res> extends ServerCall<Req> {
  #needDrain = false;

  constructor(
    request: Req,
    deadline: number,
    stream: CallStream,
    private readonly serialize: (value: Res) => Buffer,
  ) {
    super(request, deadline, stream);
  }

  /** false once the client is behind by STREAM_HIGH_WATER octets: wait for 'drain'. */
  write(msg: Res): boolean {
    if (this.ended || this.cancelled) return false;
    if (!this.stream.sendMessage(this.serialize(msg))) return false;
    if (this.stream.queuedBytes >= STREAM_HIGH_WATER) this.#needDrain = true;
    return !this.#needDrain;
  }

  get writableNeedDrain(): boolean {
    return this.#needDrain;
  }

  /** The connection reports that queued octets went out. */
  drained(): void {
    if (this.#needDrain && this.stream.queuedBytes < STREAM_HIGH_WATER) {
      this.#needDrain = false;
      this.emit("drain");
    }
  }

  end(): void {
    if (this.ended || this.cancelled) return;
    this.ended = true;
    this.stream.finish(0, "");
  }

  /** grpc-js ends a streaming call with a status by emitting 'error' with a ServiceError. */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === "error") {
      const err = (args[0] ?? {}) as { code?: number; details?: string; message?: string };
      if (!this.ended && !this.cancelled) {
        this.ended = true;
        this.stream.finish(typeof err.code === "number" ? err.code : 2, err.details ?? err.message ?? "");
      }
      return true;
    }
    return super.emit(event, ...args);
  }
}
