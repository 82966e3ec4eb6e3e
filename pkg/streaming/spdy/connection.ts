/**
 * A SPDY/3.1 session over any byte stream (a TCP/TLS socket after an HTTP
 * upgrade, or a WebSocket tunnel). Built for the Kubernetes streaming peers
 * (moby/spdystream), which:
 *  - send SYN_STREAM without :method/:path (we accept any headers);
 *  - ignore flow control (we never limit sending by windows; we still send
 *    WINDOW_UPDATE for what we consume so strict peers keep sending);
 *  - drop DATA that arrives before the SYN_REPLY (we reply at once);
 *  - send GOAWAY with last-good-stream 0 when closing (we do not abort streams
 *    on GOAWAY; the socket closing ends them).
 * Backpressure: a stream's write callback waits for the socket to drain when
 * its buffer is full; incoming DATA for a stream whose reader is behind pauses
 * the socket until that stream is read.
 */
import { EventEmitter } from "node:events";
import { Duplex } from "node:stream";
import {
  FLAG_FIN,
  FrameParser,
  HeaderCompressor,
  HeaderDecompressor,
  RstStatus,
  SpdyProtocolError,
  encodeData,
  encodeGoAway,
  encodePing,
  encodeRstStream,
  encodeSynReply,
  encodeSynStream,
  encodeWindowUpdate,
  type Frame,
  type Headers,
} from "./framer.js";

/** DATA frames we send carry at most this many bytes. */
const MAX_DATA_CHUNK = 64 * 1024;
/** Received bytes acknowledged with WINDOW_UPDATE in batches of this size. */
const WINDOW_ACK_BATCH = 32 * 1024;

export interface SpdyConnectionOptions {
  /** Server side: accepts odd stream ids from the peer and opens even ones. */
  isServer: boolean;
  /** Close the session after this long without any frame in or out (0: never). */
  idleTimeoutMs?: number;
}

export class SpdyStream extends Duplex {
  readonly id: number;
  readonly headers: Headers;
  #conn: SpdyConnection;
  /** We sent FIN or RST. */
  localClosed = false;
  /** Peer sent FIN or RST. */
  remoteClosed = false;
  /** The peer reset the stream. */
  wasReset = false;
  /** The peer ended the stream with FIN (not a reset or a lost connection). */
  finReceived = false;
  /** Blocked the session's reader because our buffer is full. */
  blocking = false;
  unacked = 0;

  constructor(conn: SpdyConnection, id: number, headers: Headers) {
    super({ allowHalfOpen: true, readableHighWaterMark: 256 * 1024, writableHighWaterMark: 256 * 1024 });
    this.#conn = conn;
    this.id = id;
    this.headers = headers;
    // A stream error must never crash the process; the owner sees it through close/destroy.
    this.on("error", () => undefined);
  }

  override _read(): void {
    this.#conn.streamWantsData(this);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.localClosed) {
      cb(new Error(`SPDY stream ${this.id} is closed`));
      return;
    }
    this.#conn.sendData(this, chunk, false, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.localClosed) {
      cb();
      return;
    }
    this.#conn.sendData(this, Buffer.alloc(0), true, cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#conn.streamDestroyed(this);
    cb(err);
  }

  /** Aborts the stream with RST_STREAM (CANCEL by default). */
  reset(status: RstStatus = RstStatus.Cancel): void {
    this.#conn.resetStream(this, status);
  }
}

interface PendingOpen {
  stream: SpdyStream;
  resolve: (s: SpdyStream) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Events: "stream" (SpdyStream, a stream the peer opened, already replied to),
 * "close" (err?), "goaway", "timeout" (idle).
 */
export class SpdyConnection extends EventEmitter {
  readonly socket: Duplex;
  readonly isServer: boolean;
  #parser = new FrameParser();
  #compressor = new HeaderCompressor();
  #decompressor = new HeaderDecompressor();
  #streams = new Map<number, SpdyStream>();
  #pending = new Map<number, PendingOpen>();
  #nextStreamId: number;
  #nextPingId: number;
  #pings = new Map<number, () => void>();
  #lastRemoteStreamId = 0;
  #processing = false;
  #readBlocked = false;
  #drainWaiters: (() => void)[] = [];
  #closed = false;
  #closeError: Error | undefined;
  #goAwaySent = false;
  goAwayReceived = false;
  #idleTimeoutMs: number;
  #lastActivity = Date.now();
  #idleTimer: NodeJS.Timeout | undefined;
  #unackedConn = 0;

  constructor(socket: Duplex, options: SpdyConnectionOptions) {
    super();
    this.socket = socket;
    this.isServer = options.isServer;
    this.#nextStreamId = options.isServer ? 2 : 1;
    this.#nextPingId = options.isServer ? 2 : 1;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 0;
    socket.on("data", (chunk: Buffer) => {
      this.#lastActivity = Date.now();
      this.#parser.push(chunk);
      this.#process();
    });
    socket.on("error", (err: Error) => this.#terminate(err));
    socket.on("close", () => this.#terminate());
    // The peer half-closed: nothing more will arrive; what we queued is still flushed.
    socket.on("end", () => this.#terminate());
    socket.on("drain", () => this.#flushDrainWaiters());
    if (this.#idleTimeoutMs > 0) {
      const tick = Math.max(50, Math.min(1000, Math.floor(this.#idleTimeoutMs / 4)));
      this.#idleTimer = setInterval(() => {
        if (Date.now() - this.#lastActivity >= this.#idleTimeoutMs) {
          this.emit("timeout");
          this.destroy(new Error(`SPDY connection idle for ${this.#idleTimeoutMs} ms`));
        }
      }, tick);
      this.#idleTimer.unref();
    }
  }

  /** Feeds bytes that arrived together with the upgrade (the `head` of an HTTP upgrade). */
  feed(head: Buffer): void {
    if (head.length === 0) return;
    this.#parser.push(head);
    this.#process();
  }

  get closed(): boolean {
    return this.#closed;
  }

  get streamCount(): number {
    return this.#streams.size;
  }

  /** Opens a stream (client side) and waits for the peer's SYN_REPLY. */
  openStream(headers: Headers, options: { fin?: boolean; timeoutMs?: number } = {}): Promise<SpdyStream> {
    if (this.#closed) return Promise.reject(new Error("SPDY connection is closed"));
    const id = this.#nextStreamId;
    this.#nextStreamId += 2;
    const stream = new SpdyStream(this, id, headers);
    this.#streams.set(id, stream);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        this.resetStream(stream, RstStatus.Cancel);
        reject(new Error(`timed out waiting for the reply to SPDY stream ${id}`));
      }, options.timeoutMs ?? 30_000);
      timer.unref();
      this.#pending.set(id, { stream, resolve, reject, timer });
      this.#write([encodeSynStream(id, this.#compressor.compress(headers), options.fin ? FLAG_FIN : 0)]);
      if (options.fin) {
        stream.localClosed = true;
        stream.end();
      }
    });
  }

  /** Sends a PING and resolves with the round trip in ms. */
  ping(timeoutMs = 10_000): Promise<number> {
    const id = this.#nextPingId;
    this.#nextPingId = (this.#nextPingId + 2) >>> 0;
    const start = Date.now();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pings.delete(id);
        reject(new Error("SPDY ping timed out"));
      }, timeoutMs);
      timer.unref();
      this.#pings.set(id, () => {
        clearTimeout(timer);
        resolve(Date.now() - start);
      });
      this.#write([encodePing(id)]);
    });
  }

  /** Sends GOAWAY (after every queued write, since it is written in order). */
  goAway(): void {
    if (this.#goAwaySent || this.#closed) return;
    this.#goAwaySent = true;
    this.#write([encodeGoAway(this.#lastRemoteStreamId)]);
  }

  /** Ends the socket after everything queued has been written. */
  end(): void {
    if (this.#closed) return;
    this.socket.end();
  }

  /** Closes at once; open streams are destroyed. */
  destroy(err?: Error): void {
    this.socket.destroy();
    this.#terminate(err);
  }

  /** Resolves when the session is closed (socket gone). */
  waitClosed(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.once("close", () => resolve()));
  }

  // --- used by SpdyStream ---

  sendData(stream: SpdyStream, chunk: Buffer, fin: boolean, cb: (err?: Error | null) => void): void {
    if (this.#closed) {
      cb(new Error("SPDY connection is closed"));
      return;
    }
    const frames: Buffer[] = [];
    if (chunk.length === 0) {
      frames.push(...encodeData(stream.id, chunk, fin));
    } else {
      for (let off = 0; off < chunk.length; off += MAX_DATA_CHUNK) {
        const end = Math.min(chunk.length, off + MAX_DATA_CHUNK);
        frames.push(...encodeData(stream.id, chunk.subarray(off, end), fin && end === chunk.length));
      }
    }
    if (fin) {
      stream.localClosed = true;
      this.#maybeForget(stream);
    }
    const ok = this.#write(frames);
    if (ok) cb();
    else this.#drainWaiters.push(() => cb(this.#closed ? new Error("SPDY connection is closed") : null));
  }

  streamWantsData(stream: SpdyStream): void {
    if (stream.blocking) {
      stream.blocking = false;
      this.#ackWindow(stream, true);
      if (this.#readBlocked && ![...this.#streams.values()].some((s) => s.blocking)) {
        this.#readBlocked = false;
        this.socket.resume();
        this.#process();
      }
    }
  }

  streamDestroyed(stream: SpdyStream): void {
    if (!stream.localClosed && !this.#closed) {
      stream.localClosed = true;
      this.#write([encodeRstStream(stream.id, RstStatus.Cancel)]);
    }
    stream.remoteClosed = true;
    if (stream.blocking) {
      stream.blocking = false;
      this.streamWantsData(stream);
    }
    this.#maybeForget(stream);
    if (this.#readBlocked && ![...this.#streams.values()].some((s) => s.blocking)) {
      this.#readBlocked = false;
      this.socket.resume();
      this.#process();
    }
  }

  resetStream(stream: SpdyStream, status: RstStatus): void {
    if (!stream.localClosed && !this.#closed) {
      stream.localClosed = true;
      this.#write([encodeRstStream(stream.id, status)]);
    }
    stream.destroy();
  }

  // --- internals ---

  #write(frames: Buffer[]): boolean {
    if (this.#closed || this.socket.destroyed || this.socket.writableEnded) return true;
    this.#lastActivity = Date.now();
    let ok = true;
    if (frames.length === 1) ok = this.socket.write(frames[0]);
    else {
      this.socket.cork();
      for (const f of frames) ok = this.socket.write(f);
      process.nextTick(() => this.socket.uncork());
    }
    return ok;
  }

  #flushDrainWaiters(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }

  #ackWindow(stream: SpdyStream, force: boolean): void {
    if (this.#closed) return;
    const frames: Buffer[] = [];
    if (stream.unacked > 0 && (force || stream.unacked >= WINDOW_ACK_BATCH) && !stream.remoteClosed) {
      frames.push(encodeWindowUpdate(stream.id, stream.unacked));
      stream.unacked = 0;
    }
    if (this.#unackedConn >= WINDOW_ACK_BATCH || (force && this.#unackedConn > 0)) {
      frames.push(encodeWindowUpdate(0, this.#unackedConn));
      this.#unackedConn = 0;
    }
    if (frames.length > 0) this.#write(frames);
  }

  #process(): void {
    if (this.#processing || this.#closed) return;
    this.#processing = true;
    void this.#loop().finally(() => {
      this.#processing = false;
    });
  }

  async #loop(): Promise<void> {
    try {
      while (!this.#closed && !this.#readBlocked) {
        const frame = this.#parser.next();
        if (!frame) break;
        await this.#handle(frame);
      }
    } catch (err) {
      this.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  }

  async #handle(frame: Frame): Promise<void> {
    switch (frame.kind) {
      case "data": {
        const stream = this.#streams.get(frame.streamId);
        // Data for a stream we already closed or reset: drop it.
        if (!stream || stream.remoteClosed) return;
        if (frame.data.length > 0) {
          stream.unacked += frame.data.length;
          this.#unackedConn += frame.data.length;
          const more = stream.push(frame.data);
          if (!more) {
            stream.blocking = true;
            this.#readBlocked = true;
            this.socket.pause();
          } else {
            this.#ackWindow(stream, false);
          }
        }
        if (frame.flags & FLAG_FIN) {
          stream.finReceived = true;
          stream.remoteClosed = true;
          stream.push(null);
          this.#maybeForget(stream);
        }
        return;
      }
      case "syn-stream": {
        const headers = await this.#decompressor.decompress(frame.headerBlock);
        const id = frame.streamId;
        const fromPeerParity = this.isServer ? 1 : 0;
        if (id === 0 || id % 2 !== fromPeerParity || id <= this.#lastRemoteStreamId) {
          this.#write([encodeRstStream(id, RstStatus.ProtocolError)]);
          return;
        }
        this.#lastRemoteStreamId = id;
        if (this.#goAwaySent) {
          this.#write([encodeRstStream(id, RstStatus.RefusedStream)]);
          return;
        }
        const stream = new SpdyStream(this, id, headers);
        this.#streams.set(id, stream);
        // Reply at once: the peer waits for it before it sends or accepts data. spdystream
        // ignores reply headers; strict SPDY peers want :status and :version.
        this.#write([encodeSynReply(id, this.#compressor.compress({ ":status": "200", ":version": "HTTP/1.1" }), 0)]);
        if (frame.flags & FLAG_FIN) {
          stream.finReceived = true;
          stream.remoteClosed = true;
          stream.push(null);
        }
        this.emit("stream", stream);
        return;
      }
      case "syn-reply": {
        await this.#decompressor.decompress(frame.headerBlock);
        const pending = this.#pending.get(frame.streamId);
        if (!pending) return;
        this.#pending.delete(frame.streamId);
        clearTimeout(pending.timer);
        if (frame.flags & FLAG_FIN) {
          pending.stream.finReceived = true;
          pending.stream.remoteClosed = true;
          pending.stream.push(null);
        }
        pending.resolve(pending.stream);
        return;
      }
      case "headers": {
        await this.#decompressor.decompress(frame.headerBlock);
        const stream = this.#streams.get(frame.streamId);
        if (stream && frame.flags & FLAG_FIN && !stream.remoteClosed) {
          stream.finReceived = true;
          stream.remoteClosed = true;
          stream.push(null);
          this.#maybeForget(stream);
        }
        return;
      }
      case "rst-stream": {
        const stream = this.#streams.get(frame.streamId);
        if (!stream) return;
        const pending = this.#pending.get(frame.streamId);
        if (pending) {
          this.#pending.delete(frame.streamId);
          clearTimeout(pending.timer);
          pending.reject(new Error(`SPDY stream ${frame.streamId} was refused (status ${frame.status})`));
        }
        stream.wasReset = true;
        stream.remoteClosed = true;
        stream.localClosed = true;
        stream.emit("reset", frame.status);
        stream.destroy();
        this.#streams.delete(stream.id);
        return;
      }
      case "ping": {
        const fromPeer = (frame.id & 1) !== (this.#nextPingId & 1);
        if (fromPeer) this.#write([encodePing(frame.id)]);
        else {
          const done = this.#pings.get(frame.id);
          this.#pings.delete(frame.id);
          done?.();
        }
        return;
      }
      case "goaway":
        this.goAwayReceived = true;
        this.emit("goaway");
        return;
      case "settings":
      case "window-update":
      case "unknown":
        return;
    }
  }

  #maybeForget(stream: SpdyStream): void {
    if (stream.localClosed && stream.remoteClosed) this.#streams.delete(stream.id);
  }

  #terminate(err?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeError = err;
    if (this.#idleTimer) clearInterval(this.#idleTimer);
    this.#decompressor.close();
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(err ?? new Error("SPDY connection closed"));
    }
    this.#pending.clear();
    for (const s of this.#streams.values()) {
      s.localClosed = true;
      if (!s.remoteClosed) {
        s.remoteClosed = true;
        s.push(null);
      }
      s.destroy();
    }
    this.#streams.clear();
    this.#flushDrainWaiters();
    if (err && !this.socket.destroyed) this.socket.destroy();
    else if (!this.socket.writableEnded) this.socket.end();
    this.emit("close", this.#closeError);
  }
}

export { SpdyProtocolError };
