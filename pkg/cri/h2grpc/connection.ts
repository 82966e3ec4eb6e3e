// One client connection of the gRPC server: HTTP/2 framing, HPACK, flow control and
// the gRPC message framing, done on the socket's own reads. It serves what CRI needs
// (unary and server-streaming calls) and answers anything else the protocol allows
// with the protocol's own errors.

import type { Socket } from "node:net";
import { gunzipSync, inflateSync } from "node:zlib";
import { HpackDecoder } from "../h2-authority/hpack.js";
import { GrpcStatus } from "../grpc-status.js";
import { ServerCall, ServerStreamCall, type CallStream } from "./call.js";
import {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME,
  DEFAULT_WINDOW,
  FLAG,
  FRAME,
  H2_ERROR,
  MAX_WINDOW,
  OK_TRAILERS,
  RESPONSE_HEADERS,
  SETTING,
  frame,
  frameHeaderInto,
  goawayPayload,
  httpStatusBlock,
  parseTimeout,
  settingsPayload,
  statusBlock,
  u32,
} from "./wire.js";


export interface Route {
  path: string;
  serverStream: boolean;
  deserialize(bytes: Buffer): unknown;
  serialize(value: unknown): Buffer;
  /** grpc-js's handler shapes: (call, callback) for unary, (call) for server streaming. */
  handler: (...args: never[]) => void;
}

export interface ConnectionOptions {
  routes: ReadonlyMap<string, Route>;
  maxRecvMessage: number;
  maxSendMessage: number;
  /** Streams a client may have open at once (advertised; more are refused). */
  maxStreams: number;
  onClose(conn: H2GrpcConnection): void;
  onProtocolError?(conn: H2GrpcConnection, reason: string): void;
}

/** What we advertise. The windows are large: requests are read whole anyway, and bounded by maxRecvMessage. */
const OUR_STREAM_WINDOW = 1 << 20;
const OUR_CONN_WINDOW = 16 << 20;
/** Largest header block (HEADERS plus CONTINUATIONs) accepted. */
const MAX_HEADER_BLOCK = 1 << 20;
/** Frames above this many octets in one write are written one by one instead of concatenated. */
const CONCAT_LIMIT = 64 * 1024;
/** Messages up to this size are copied behind their 5-octet prefix (one DATA frame instead of two). */
const SMALL_MESSAGE = 16 * 1024;
/** setTimeout's longest delay: a longer one fires at once (Node clamps it to 1 ms). */
const MAX_TIMER_MS = 0x7fff_ffff;

class ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

class Stream implements CallStream {
  /** Request octets (gRPC framing included) as received. */
  chunks: Buffer[] = [];
  received = 0;
  recvWindow = OUR_STREAM_WINDOW;
  recvUnacked = 0;
  remoteClosed = false;
  /** We sent END_STREAM (or reset the stream). */
  localClosed = false;
  headersSent = false;
  /** DATA octets waiting for flow-control window, then the trailers. */
  queue: Buffer[] = [];
  queuedBytes = 0;
  trailers: Buffer | undefined;
  call: ServerCall<unknown> | undefined;

  constructor(
    readonly conn: H2GrpcConnection,
    readonly id: number,
    public sendWindow: number,
    readonly route: Route | undefined,
    readonly encoding: string,
    readonly deadline: number,
  ) {}

  sendMessage(bytes: Buffer): boolean {
    return this.conn.sendMessage(this, bytes);
  }

  finish(code: number, message: string): void {
    this.conn.finishStream(this, code, message);
  }
}

export class H2GrpcConnection {
  readonly #socket: Socket;
  readonly #opts: ConnectionOptions;
  readonly #decoder = new HpackDecoder();
  readonly #streams = new Map<number, Stream>();
  /** Streams with DATA waiting for window. */
  readonly #blocked = new Set<Stream>();
  #prefaceSeen = false;
  #settingsSeen = false;
  #pending: Buffer | undefined;
  #lastStreamId = 0;
  #connSendWindow = DEFAULT_WINDOW;
  #connRecvWindow = OUR_CONN_WINDOW;
  #connRecvUnacked = 0;
  #peerInitialWindow = DEFAULT_WINDOW;
  #peerMaxFrame = DEFAULT_MAX_FRAME;
  /** A header block split over CONTINUATION frames. */
  #continuing: { id: number; flags: number; parts: Buffer[]; size: number } | undefined;
  #out: Buffer[] = [];
  #outBytes = 0;
  #flushScheduled = false;
  /**
   * One timer per connection for the calls' deadlines, set for the earliest one. It is not
   * cancelled when that call ends (most end in microseconds, and a timer per call was a
   * measurable share of a List call): when it fires it ends the overdue calls, if any, and
   * is set again for the earliest deadline left.
   */
  #deadlineTimer: NodeJS.Timeout | undefined;
  #deadlineAt = Infinity;
  #closed = false;
  /** GOAWAY sent: no new streams; the socket ends when the last one does. */
  #draining = false;

  constructor(socket: Socket, opts: ConnectionOptions, initial?: Buffer) {
    this.#socket = socket;
    this.#opts = opts;
    socket.setNoDelay?.(true);
    this.#write(
      frame(
        FRAME.SETTINGS,
        0,
        0,
        settingsPayload([
          [SETTING.MAX_CONCURRENT_STREAMS, opts.maxStreams],
          [SETTING.INITIAL_WINDOW_SIZE, OUR_STREAM_WINDOW],
          [SETTING.MAX_HEADER_LIST_SIZE, MAX_HEADER_BLOCK],
        ]),
      ),
    );
    this.#write(frame(FRAME.WINDOW_UPDATE, 0, 0, u32(OUR_CONN_WINDOW - DEFAULT_WINDOW)));
    this.#flush();
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("close", () => this.#onClose());
    socket.on("end", () => socket.end());
    if (initial && initial.length > 0) this.#onData(initial);
  }

  /** Open calls. */
  get streamCount(): number {
    return this.#streams.size;
  }

  /** Sends GOAWAY and ends the connection once its calls are done. */
  drain(): void {
    if (this.#closed || this.#draining) return;
    this.#draining = true;
    this.#write(frame(FRAME.GOAWAY, 0, 0, goawayPayload(this.#lastStreamId, H2_ERROR.NO_ERROR)));
    this.#flush();
    if (this.#streams.size === 0) this.#socket.end();
  }

  destroy(): void {
    this.#socket.destroy();
  }

  // ---- reading ----

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    let buf = chunk;
    if (this.#pending) {
      buf = Buffer.concat([this.#pending, chunk]);
      this.#pending = undefined;
    }
    let off = 0;
    try {
      if (!this.#prefaceSeen) {
        const n = Math.min(buf.length, CLIENT_PREFACE.length);
        if (buf.compare(CLIENT_PREFACE, 0, n, 0, n) !== 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "not an HTTP/2 client preface");
        if (buf.length < CLIENT_PREFACE.length) {
          this.#pending = buf;
          return;
        }
        this.#prefaceSeen = true;
        off = CLIENT_PREFACE.length;
      }
      while (buf.length - off >= 9) {
        const len = ((buf[off] as number) << 16) | ((buf[off + 1] as number) << 8) | (buf[off + 2] as number);
        if (len > DEFAULT_MAX_FRAME) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, `frame of ${len} octets is larger than SETTINGS_MAX_FRAME_SIZE`);
        if (buf.length - off < 9 + len) break;
        const type = buf[off + 3] as number;
        const flags = buf[off + 4] as number;
        const id = buf.readUInt32BE(off + 5) & 0x7fff_ffff;
        const payload = buf.subarray(off + 9, off + 9 + len);
        off += 9 + len;
        this.#frame(type, flags, id, payload);
        if (this.#closed) return;
      }
      if (off < buf.length) this.#pending = buf.subarray(off);
    } catch (err) {
      if (err instanceof ConnectionError) this.#connectionError(err.code, err.message);
      else this.#connectionError(H2_ERROR.INTERNAL_ERROR, (err as Error).message);
      return;
    }
    this.#flush();
  }

  #frame(type: number, flags: number, id: number, payload: Buffer): void {
    if (this.#continuing && (type !== FRAME.CONTINUATION || id !== this.#continuing.id)) {
      throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "a header block was interrupted by another frame");
    }
    if (!this.#settingsSeen && type !== FRAME.SETTINGS) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "the client preface must start with SETTINGS");
    switch (type) {
      case FRAME.DATA:
        return this.#onDataFrame(flags, id, payload);
      case FRAME.HEADERS:
        return this.#onHeaders(flags, id, payload);
      case FRAME.CONTINUATION:
        return this.#onContinuation(flags, id, payload);
      case FRAME.PRIORITY:
        if (id === 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "PRIORITY on stream 0");
        if (payload.length !== 5) this.#resetStream(id, H2_ERROR.FRAME_SIZE_ERROR);
        return;
      case FRAME.RST_STREAM:
        return this.#onReset(id, payload);
      case FRAME.SETTINGS:
        return this.#onSettings(flags, id, payload);
      case FRAME.PUSH_PROMISE:
        throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "a client cannot push");
      case FRAME.PING:
        if (id !== 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "PING on a stream");
        if (payload.length !== 8) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, "PING payload is not 8 octets");
        if (!(flags & FLAG.ACK)) this.#write(frame(FRAME.PING, FLAG.ACK, 0, payload));
        return;
      case FRAME.GOAWAY:
        if (id !== 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "GOAWAY on a stream");
        if (payload.length < 8) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, "GOAWAY shorter than 8 octets");
        // NO_ERROR: the client opens nothing more and its open calls finish normally. An error
        // code: the client gave up on the connection; its calls are cancelled.
        if (payload.readUInt32BE(4) !== H2_ERROR.NO_ERROR) {
          this.#socket.destroy();
          this.#onClose();
        }
        return;
      case FRAME.WINDOW_UPDATE:
        return this.#onWindowUpdate(id, payload);
      default:
        return; // unknown frame types are ignored (RFC 9113 §5.5)
    }
  }

  #onSettings(flags: number, id: number, p: Buffer): void {
    if (id !== 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "SETTINGS on a stream");
    if (flags & FLAG.ACK) {
      if (p.length !== 0) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
      return;
    }
    if (p.length % 6 !== 0) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, "SETTINGS payload is not a multiple of 6");
    this.#settingsSeen = true;
    for (let i = 0; i < p.length; i += 6) {
      const key = p.readUInt16BE(i);
      const value = p.readUInt32BE(i + 2);
      if (key === SETTING.ENABLE_PUSH && value > 1) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH must be 0 or 1");
      if (key === SETTING.INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW) throw new ConnectionError(H2_ERROR.FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1");
        const delta = value - this.#peerInitialWindow;
        this.#peerInitialWindow = value;
        for (const s of this.#streams.values()) {
          s.sendWindow += delta;
          if (s.sendWindow > MAX_WINDOW) throw new ConnectionError(H2_ERROR.FLOW_CONTROL_ERROR, "a stream window went above 2^31-1");
        }
      } else if (key === SETTING.MAX_FRAME_SIZE) {
        if (value < DEFAULT_MAX_FRAME || value > 0xff_ffff) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE out of range");
        this.#peerMaxFrame = value;
      }
      // HEADER_TABLE_SIZE: our encoder never uses the dynamic table. The rest are advisory here.
    }
    this.#write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
    for (const s of [...this.#blocked]) this.#pump(s);
  }

  #onWindowUpdate(id: number, p: Buffer): void {
    if (p.length !== 4) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, "WINDOW_UPDATE payload is not 4 octets");
    const inc = p.readUInt32BE(0) & 0x7fff_ffff;
    if (id === 0) {
      if (inc === 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "WINDOW_UPDATE of 0 on the connection");
      this.#connSendWindow += inc;
      if (this.#connSendWindow > MAX_WINDOW) throw new ConnectionError(H2_ERROR.FLOW_CONTROL_ERROR, "the connection window went above 2^31-1");
      for (const s of [...this.#blocked]) this.#pump(s);
      return;
    }
    const s = this.#streams.get(id);
    if (!s) {
      if (id > this.#lastStreamId) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream");
      return;
    }
    if (inc === 0) return this.#streamError(s, H2_ERROR.PROTOCOL_ERROR);
    s.sendWindow += inc;
    if (s.sendWindow > MAX_WINDOW) return this.#streamError(s, H2_ERROR.FLOW_CONTROL_ERROR);
    this.#pump(s);
  }

  #onReset(id: number, p: Buffer): void {
    if (id === 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "RST_STREAM on stream 0");
    if (p.length !== 4) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, "RST_STREAM payload is not 4 octets");
    const s = this.#streams.get(id);
    if (!s) {
      if (id > this.#lastStreamId) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "RST_STREAM on an idle stream");
      return;
    }
    s.localClosed = true; // nothing more may be sent on it
    this.#closeStream(s, true);
  }

  /** Strips padding (and the priority block of HEADERS). */
  #unpad(flags: number, p: Buffer, priority: boolean): Buffer {
    let start = 0;
    let end = p.length;
    if (flags & FLAG.PADDED) {
      if (p.length < 1) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, "padded frame without a pad length");
      const pad = p[0] as number;
      start = 1;
      end -= pad;
      if (end < start) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "padding longer than the frame");
    }
    if (priority && flags & FLAG.PRIORITY) {
      start += 5;
      if (end < start) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, "HEADERS too short for its priority block");
    }
    return start === 0 && end === p.length ? p : p.subarray(start, end);
  }

  #onHeaders(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "HEADERS on stream 0");
    const block = this.#unpad(flags, payload, true);
    if (!(flags & FLAG.END_HEADERS)) {
      this.#continuing = { id, flags, parts: [block], size: block.length };
      return;
    }
    this.#headerBlock(id, flags, block);
  }

  #onContinuation(flags: number, id: number, payload: Buffer): void {
    const c = this.#continuing;
    if (!c || c.id !== id) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "CONTINUATION without a header block to continue");
    c.parts.push(payload);
    c.size += payload.length;
    if (c.size > MAX_HEADER_BLOCK) throw new ConnectionError(H2_ERROR.ENHANCE_YOUR_CALM, "header block too large");
    if (flags & FLAG.END_HEADERS) {
      this.#continuing = undefined;
      this.#headerBlock(id, c.flags, Buffer.concat(c.parts, c.size));
    }
  }

  #headerBlock(id: number, flags: number, block: Buffer): void {
    let fields;
    try {
      fields = this.#decoder.decode(block);
    } catch (err) {
      throw new ConnectionError(H2_ERROR.COMPRESSION_ERROR, `header block: ${(err as Error).message}`);
    }
    const endStream = (flags & FLAG.END_STREAM) !== 0;
    const existing = this.#streams.get(id);
    if (existing) {
      // Trailers from the client: they end its side; gRPC clients send none.
      if (existing.remoteClosed || !endStream) return this.#streamError(existing, existing.remoteClosed ? H2_ERROR.STREAM_CLOSED : H2_ERROR.PROTOCOL_ERROR);
      existing.remoteClosed = true;
      this.#requestComplete(existing);
      return;
    }
    if (id % 2 === 0 || id <= this.#lastStreamId) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, `stream ${id} cannot be opened by the client`);
    this.#lastStreamId = id;
    if (this.#draining || this.#streams.size >= this.#opts.maxStreams) {
      this.#resetStream(id, H2_ERROR.REFUSED_STREAM);
      return;
    }
    let method = "";
    let path = "";
    let contentType = "";
    let timeout: string | undefined;
    let encoding = "identity";
    for (const f of fields) {
      switch (f.name) {
        case ":method":
          method = f.value;
          break;
        case ":path":
          path = f.value;
          break;
        case "content-type":
          contentType = f.value;
          break;
        case "grpc-timeout":
          timeout = f.value;
          break;
        case "grpc-encoding":
          encoding = f.value;
          break;
      }
    }
    const route = this.#opts.routes.get(path);
    const ms = parseTimeout(timeout);
    const deadline = ms === undefined ? Infinity : Date.now() + ms;
    const s = new Stream(this, id, this.#peerInitialWindow, route, encoding, deadline);
    this.#streams.set(id, s);
    if (endStream) s.remoteClosed = true;
    if (method !== "POST") return this.#httpError(s, 405);
    if (!contentType.startsWith("application/grpc")) return this.#httpError(s, 415);
    if (!route) return this.finishStream(s, GrpcStatus.UNIMPLEMENTED, `The server does not implement the method ${path}`);
    if (ms !== undefined) this.#armDeadline(s);
    if (s.remoteClosed) this.#requestComplete(s);
  }

  #onDataFrame(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "DATA on stream 0");
    const len = payload.length;
    this.#connRecvWindow -= len;
    if (this.#connRecvWindow < 0) throw new ConnectionError(H2_ERROR.FLOW_CONTROL_ERROR, "DATA beyond the connection window");
    // Everything received is taken at once (bounded by maxRecvMessage per call), so the window comes back at once.
    this.#connRecvUnacked += len;
    if (this.#connRecvUnacked >= OUR_CONN_WINDOW / 4) {
      this.#write(frame(FRAME.WINDOW_UPDATE, 0, 0, u32(this.#connRecvUnacked)));
      this.#connRecvWindow += this.#connRecvUnacked;
      this.#connRecvUnacked = 0;
    }
    const s = this.#streams.get(id);
    if (!s) {
      if (id > this.#lastStreamId) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "DATA on an idle stream");
      return; // a stream we already closed
    }
    if (s.remoteClosed) return this.#streamError(s, H2_ERROR.STREAM_CLOSED);
    s.recvWindow -= len;
    if (s.recvWindow < 0) return this.#streamError(s, H2_ERROR.FLOW_CONTROL_ERROR);
    const data = this.#unpad(flags, payload, false);
    const end = (flags & FLAG.END_STREAM) !== 0;
    if (!s.localClosed && s.call === undefined) {
      s.chunks.push(data);
      s.received += data.length;
      if (s.received > this.#opts.maxRecvMessage + 5) {
        return this.finishStream(s, GrpcStatus.RESOURCE_EXHAUSTED, `Received message larger than max (${s.received - 5} vs. ${this.#opts.maxRecvMessage})`);
      }
    }
    if (end) {
      s.remoteClosed = true;
      this.#requestComplete(s);
    } else {
      s.recvUnacked += len;
      if (s.recvUnacked >= OUR_STREAM_WINDOW / 4) {
        this.#write(frame(FRAME.WINDOW_UPDATE, 0, id, u32(s.recvUnacked)));
        s.recvWindow += s.recvUnacked;
        s.recvUnacked = 0;
      }
    }
  }

  /** The client half-closed: decode its one message and start the call. */
  #requestComplete(s: Stream): void {
    if (s.localClosed || s.call || !s.route) return;
    const route = s.route;
    const body = s.chunks.length === 1 ? (s.chunks[0] as Buffer) : Buffer.concat(s.chunks, s.received);
    s.chunks = [];
    if (body.length < 5) return this.finishStream(s, body.length === 0 ? GrpcStatus.UNIMPLEMENTED : GrpcStatus.INTERNAL, body.length === 0 ? "No message received for a unary or server-streaming call" : "truncated gRPC message");
    const compressed = body[0] as number;
    const len = body.readUInt32BE(1);
    if (len > this.#opts.maxRecvMessage) return this.finishStream(s, GrpcStatus.RESOURCE_EXHAUSTED, `Received message larger than max (${len} vs. ${this.#opts.maxRecvMessage})`);
    if (body.length !== 5 + len) return this.finishStream(s, GrpcStatus.INTERNAL, body.length < 5 + len ? "truncated gRPC message" : "more than one request message for a unary or server-streaming call");
    let msg = body.subarray(5);
    if (compressed === 1) {
      try {
        if (s.encoding === "gzip") msg = gunzipSync(msg, { maxOutputLength: this.#opts.maxRecvMessage });
        else if (s.encoding === "deflate") msg = inflateSync(msg, { maxOutputLength: this.#opts.maxRecvMessage });
        else return this.finishStream(s, s.encoding === "identity" ? GrpcStatus.INTERNAL : GrpcStatus.UNIMPLEMENTED, `compressed message with grpc-encoding "${s.encoding}"`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
          return this.finishStream(s, GrpcStatus.RESOURCE_EXHAUSTED, `Received message larger than max (decompressed above ${this.#opts.maxRecvMessage})`);
        }
        return this.finishStream(s, GrpcStatus.INTERNAL, `cannot decompress the request (${s.encoding}): ${(err as Error).message}`);
      }
    } else if (compressed !== 0) {
      return this.finishStream(s, GrpcStatus.INTERNAL, `invalid compressed flag ${compressed}`);
    }
    let request: unknown;
    try {
      request = route.deserialize(msg);
    } catch (err) {
      return this.finishStream(s, GrpcStatus.INTERNAL, `Error deserializing request: ${(err as Error).message}`);
    }
    if (route.serverStream) {
      const call = new ServerStreamCall(request, s.deadline, s, route.serialize);
      s.call = call;
      (route.handler as (c: unknown) => void)(call);
    } else {
      const call = new ServerCall(request, s.deadline, s);
      s.call = call;
      (route.handler as (c: unknown, cb: (err: unknown, value?: unknown) => void) => void)(call, (err, value) => this.#unaryDone(s, err, value));
    }
  }

  /**
   * A unary call's answer, written at once (not on the next microtask): the whole response
   * is queued, and the bookkeeping that follows the call (metrics, logs) then runs after the
   * client already has it.
   */
  #unaryDone(s: Stream, err: unknown, value: unknown): void {
    if (s.localClosed) return;
    this.#unaryAnswer(s, err, value);
    this.#flush();
  }

  #unaryAnswer(s: Stream, err: unknown, value: unknown): void {
    if (err) {
      const e = err as { code?: number; details?: string; message?: string };
      return this.finishStream(s, typeof e.code === "number" ? e.code : GrpcStatus.UNKNOWN, e.details ?? e.message ?? "");
    }
    let bytes: Buffer;
    try {
      bytes = (s.route as Route).serialize(value);
    } catch (e) {
      return this.finishStream(s, GrpcStatus.INTERNAL, `Error serializing response: ${(e as Error).message}`);
    }
    if (this.sendMessage(s, bytes)) this.finishStream(s, 0, "");
  }

  /** Makes sure the connection's deadline timer fires by this stream's deadline. */
  #armDeadline(s: Stream): void {
    if (s.deadline < this.#deadlineAt) this.#setDeadlineTimer(s.deadline);
  }

  /** Deadlines beyond MAX_TIMER_MS (grpc-js sends 30 days as "2592000S") are waited for in steps. */
  #setDeadlineTimer(at: number): void {
    if (this.#deadlineTimer) clearTimeout(this.#deadlineTimer);
    this.#deadlineAt = at;
    this.#deadlineTimer = setTimeout(() => this.#deadlinesDue(), Math.max(0, Math.min(at - Date.now(), MAX_TIMER_MS)));
    this.#deadlineTimer.unref();
  }

  #deadlinesDue(): void {
    this.#deadlineTimer = undefined;
    this.#deadlineAt = Infinity;
    if (this.#closed) return;
    const now = Date.now();
    let next = Infinity;
    for (const s of [...this.#streams.values()]) {
      if (s.localClosed || s.deadline === Infinity) continue;
      if (s.deadline <= now) this.#deadlinePassed(s);
      else if (s.deadline < next) next = s.deadline;
    }
    if (next < Infinity && !this.#closed) this.#setDeadlineTimer(next);
  }

  #deadlinePassed(s: Stream): void {
    if (s.localClosed) return;
    s.call?.markCancelled();
    this.finishStream(s, GrpcStatus.DEADLINE_EXCEEDED, "Deadline exceeded");
  }

  // ---- writing ----

  /** Queues one message of a call (length-prefixed); false when the call is over. */
  sendMessage(s: Stream, bytes: Buffer): boolean {
    if (s.localClosed || s.trailers || this.#closed) return false;
    if (bytes.length > this.#opts.maxSendMessage) {
      this.finishStream(s, GrpcStatus.RESOURCE_EXHAUSTED, `Sent message larger than max (${bytes.length} vs. ${this.#opts.maxSendMessage})`);
      return false;
    }
    if (!s.headersSent) {
      s.headersSent = true;
      this.#write(frame(FRAME.HEADERS, FLAG.END_HEADERS, s.id, RESPONSE_HEADERS));
    }
    if (bytes.length <= SMALL_MESSAGE) {
      // Prefix and message in one buffer, so that they go out as one DATA frame.
      const msg = Buffer.allocUnsafe(5 + bytes.length);
      msg[0] = 0;
      msg.writeUInt32BE(bytes.length, 1);
      bytes.copy(msg, 5);
      s.queue.push(msg);
    } else {
      const prefix = Buffer.allocUnsafe(5);
      prefix[0] = 0;
      prefix.writeUInt32BE(bytes.length, 1);
      s.queue.push(prefix, bytes);
    }
    s.queuedBytes += 5 + bytes.length;
    this.#pump(s);
    this.#scheduleFlush();
    return true;
  }

  /** Ends a call with its status: trailers after the queued DATA (or Trailers-Only). */
  finishStream(s: Stream, code: number, message: string): void {
    if (s.localClosed || s.trailers || this.#closed) return;
    if (s.call) s.call.ended = true;
    if (!s.headersSent) {
      s.headersSent = true;
      s.trailers = this.#headersFrames(s.id, FLAG.END_STREAM, statusBlock(code, message, true));
    } else {
      s.trailers = this.#headersFrames(s.id, FLAG.END_STREAM, code === 0 && !message ? OK_TRAILERS : statusBlock(code, message, false));
    }
    this.#pump(s);
    this.#scheduleFlush();
  }

  #httpError(s: Stream, status: number): void {
    s.headersSent = true;
    s.trailers = this.#headersFrames(s.id, FLAG.END_STREAM, httpStatusBlock(status));
    this.#pump(s);
  }

  /**
   * A header block as HEADERS plus, when it is larger than the peer's SETTINGS_MAX_FRAME_SIZE
   * (a long grpc-message), CONTINUATION frames (RFC 9113 §4.2, §6.10); one buffer, so that
   * nothing can be written between them.
   */
  #headersFrames(id: number, flags: number, block: Buffer): Buffer {
    const max = this.#peerMaxFrame;
    if (block.length <= max) return frame(FRAME.HEADERS, flags | FLAG.END_HEADERS, id, block);
    const frames = [frame(FRAME.HEADERS, flags & ~FLAG.END_HEADERS, id, block.subarray(0, max))];
    for (let at = max; at < block.length; at += max) {
      frames.push(frame(FRAME.CONTINUATION, at + max >= block.length ? FLAG.END_HEADERS : 0, id, block.subarray(at, at + max)));
    }
    return Buffer.concat(frames);
  }

  /** Writes what flow control allows of a stream's queue, then its trailers once the queue is empty. */
  #pump(s: Stream): void {
    if (this.#closed || s.localClosed) return;
    while (s.queue.length > 0) {
      const head = s.queue[0] as Buffer;
      const n = Math.min(head.length, s.sendWindow, this.#connSendWindow, this.#peerMaxFrame);
      if (n <= 0) {
        this.#blocked.add(s);
        return;
      }
      const hdr = Buffer.allocUnsafe(9);
      frameHeaderInto(hdr, 0, n, FRAME.DATA, 0, s.id);
      this.#write(hdr);
      if (n === head.length) {
        this.#write(head);
        s.queue.shift();
      } else {
        this.#write(head.subarray(0, n));
        s.queue[0] = head.subarray(n);
      }
      s.sendWindow -= n;
      this.#connSendWindow -= n;
      s.queuedBytes -= n;
    }
    this.#blocked.delete(s);
    if (s.call instanceof ServerStreamCall) {
      s.call.drained();
      // A 'drain' listener may have written and ended re-entrantly: that pump() already sent
      // what the windows allowed, and the trailers must wait behind what it queued.
      if (this.#closed || s.localClosed || s.queue.length > 0) return;
    }
    if (s.trailers) {
      this.#write(s.trailers);
      s.trailers = undefined;
      s.localClosed = true;
      // The call is answered; a client still sending is told to stop (RFC 9113 §8.1).
      if (!s.remoteClosed) this.#write(frame(FRAME.RST_STREAM, 0, s.id, u32(H2_ERROR.NO_ERROR)));
      this.#closeStream(s, false);
    }
  }

  #closeStream(s: Stream, cancelled: boolean): void {
    if (this.#streams.get(s.id) !== s) return;
    this.#streams.delete(s.id);
    this.#blocked.delete(s);
    s.queue = [];
    s.queuedBytes = 0;
    s.chunks = [];
    if (cancelled) s.call?.markCancelled();
    s.call?.markClosed();
    if (this.#draining && this.#streams.size === 0) {
      this.#flush();
      this.#socket.end();
    }
  }

  #resetStream(id: number, code: number): void {
    this.#write(frame(FRAME.RST_STREAM, 0, id, u32(code)));
  }

  #streamError(s: Stream, code: number): void {
    s.localClosed = true;
    this.#resetStream(s.id, code);
    this.#closeStream(s, true);
  }

  #connectionError(code: number, reason: string): void {
    if (this.#closed) return;
    this.#opts.onProtocolError?.(this, reason);
    this.#write(frame(FRAME.GOAWAY, 0, 0, goawayPayload(this.#lastStreamId, code, reason)));
    this.#flush();
    this.#socket.end();
    // A peer that never closes its side is cut after a moment.
    setTimeout(() => this.#socket.destroy(), 1000).unref();
    this.#onClose();
  }

  #write(b: Buffer): void {
    this.#out.push(b);
    this.#outBytes += b.length;
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    const out = this.#out;
    if (out.length === 0 || this.#socket.destroyed) {
      this.#out = [];
      this.#outBytes = 0;
      return;
    }
    this.#out = [];
    const bytes = this.#outBytes;
    this.#outBytes = 0;
    if (out.length === 1) this.#socket.write(out[0] as Buffer);
    else if (bytes <= CONCAT_LIMIT) this.#socket.write(Buffer.concat(out, bytes));
    else {
      this.#socket.cork();
      for (const b of out) this.#socket.write(b);
      this.#socket.uncork();
    }
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#deadlineTimer) clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
    for (const s of [...this.#streams.values()]) {
      s.localClosed = true;
      this.#closeStream(s, true);
    }
    this.#pending = undefined;
    this.#opts.onClose(this);
  }
}
