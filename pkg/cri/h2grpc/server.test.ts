import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, createServer, type Socket } from "node:net";
import http2 from "node:http2";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EventEmitter, once } from "node:events";
import { credentials, makeGenericClientConstructor, Metadata, type CallOptions, type ClientReadableStream, type ClientUnaryCall, type ServiceDefinition, type ServiceError } from "@grpc/grpc-js";
import { encodeHeaderBlock, HpackDecoder } from "../h2-authority/hpack.js";
import type { ServerCall, ServerStreamCall } from "./call.js";
import { H2GrpcServer } from "./server.js";
import { CLIENT_PREFACE, grpcFrame, rawFrame } from "../h2-authority/test-frames.js";

// ---- service definitions and handlers ----

const id = (b: Buffer): Buffer => b;
const toJson = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const fromJson = (b: Buffer): unknown => JSON.parse(b.toString());

/** A method with Buffer identity serializers; `json` makes the request (and, with "both", the response) JSON. */
function method(path: string, responseStream: boolean, json: "none" | "request" | "both" = "none") {
  return {
    path,
    requestStream: false,
    responseStream,
    requestSerialize: json === "none" ? id : toJson,
    requestDeserialize: json === "none" ? id : fromJson,
    responseSerialize: json === "both" ? toJson : id,
    responseDeserialize: json === "both" ? fromJson : id,
  };
}

const SERVICE = {
  Echo: method("/t.T/Echo", false),
  Sum: method("/t.T/Sum", false, "both"),
  Fail: method("/t.T/Fail", false, "request"),
  Big: method("/t.T/Big", false, "request"),
  Slow: method("/t.T/Slow", false),
  Stream: method("/t.T/Stream", true, "request"),
  StreamFail: method("/t.T/StreamFail", true),
  Hang: method("/t.T/Hang", true),
  DrainEnd: method("/t.T/DrainEnd", true),
} satisfies ServiceDefinition;

type Unary<Req, Res = Buffer> = (call: ServerCall<Req>, cb: (err: unknown, value?: Res) => void) => void;
type Streaming<Req, Res = Buffer> = (call: ServerStreamCall<Req, Res>) => void;

interface Handlers {
  Echo: Unary<Buffer>;
  Sum: Unary<{ a: number; b: number }, { sum: number }>;
  Fail: Unary<{ code: number; message: string }>;
  Big: Unary<{ size: number }>;
  Slow: Unary<Buffer>;
  Stream: Streaming<{ count: number; size: number }>;
  StreamFail: Streaming<Buffer>;
  Hang: Streaming<Buffer>;
  DrainEnd: Streaming<Buffer>;
}

const MB = 1024 * 1024;
const MAX_RECV = 6 * MB;
const MAX_SEND = 6 * MB;

interface Fixture {
  dir: string;
  path: string;
  server: H2GrpcServer;
  /** Handlers report here: "slow-start", "slow-cancelled", "write-false", ... */
  events: EventEmitter;
  stats: { writeFalse: number; drains: number };
  done(): void;
}

async function start(overrides: Partial<Handlers> = {}, listen = true): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), "berth-h2grpc-"));
  const path = join(dir, "berth.sock");
  const events = new EventEmitter();
  const stats = { writeFalse: 0, drains: 0 };
  const handlers: Handlers = {
    Echo: (call, cb) => cb(null, call.request),
    Sum: (call, cb) => cb(null, { sum: call.request.a + call.request.b }),
    Fail: (call, cb) => cb({ code: call.request.code, details: call.request.message }),
    Big: (call, cb) => cb(null, Buffer.alloc(call.request.size, 0x61)),
    Slow: (call) => {
      call.on("cancelled", () => events.emit("slow-cancelled", call));
      events.emit("slow-start", call);
    },
    // Writes count numbered messages of size octets, honouring write() === false and 'drain'.
    Stream: (call) => {
      const { count, size } = call.request;
      let i = 0;
      const pump = (): void => {
        while (i < count) {
          const m = Buffer.alloc(size, i & 0xff);
          m.writeUInt32BE(i, 0);
          i++;
          if (!call.write(m)) {
            assert.equal(call.writableNeedDrain, true);
            stats.writeFalse++;
            events.emit("write-false");
            call.once("drain", () => {
              stats.drains++;
              pump();
            });
            return;
          }
        }
        call.end();
      };
      pump();
    },
    StreamFail: (call) => {
      for (let i = 0; i < 3; i++) call.write(Buffer.from(`m${i}`));
      call.emit("error", { code: 9, details: "stream failed: ünïcödé 100%" });
    },
    Hang: (call) => {
      call.on("cancelled", () => events.emit("hang-cancelled", call));
      call.write(Buffer.from("started"));
      events.emit("hang-start", call);
    },
    // One message of 70000 octets (above the 64 KiB high-water mark), then on 'drain' a small one and end().
    DrainEnd: (call) => {
      if (call.write(Buffer.alloc(70_000, 1))) throw new Error("expected write() to ask for 'drain'");
      call.once("drain", () => {
        call.write(Buffer.alloc(1000, 2));
        call.end();
      });
    },
    ...overrides,
  };
  const server = new H2GrpcServer({ maxRecvMessage: MAX_RECV, maxSendMessage: MAX_SEND });
  server.addService(SERVICE, handlers as unknown as Record<string, unknown>);
  if (listen) await server.listen(path);
  return {
    dir,
    path,
    server,
    events,
    stats,
    done: () => {
      server.forceShutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- grpc-js client helpers ----

const Client = makeGenericClientConstructor(SERVICE, "T");
type GrpcClient = InstanceType<typeof Client>;
type UnaryFn = (req: unknown, md: Metadata, opts: CallOptions, cb: (e: ServiceError | null, r?: unknown) => void) => ClientUnaryCall;
type StreamFn = (req: unknown, md: Metadata, opts: CallOptions) => ClientReadableStream<Buffer>;

const CLIENT_OPTS = { "grpc.max_receive_message_length": 16 * MB, "grpc.max_send_message_length": 16 * MB };

function client(f: Fixture, options: Record<string, unknown> = {}): GrpcClient {
  return new Client(`unix://${f.path}`, credentials.createInsecure(), { ...CLIENT_OPTS, ...options });
}

/** Starts a unary call; `result` settles with the response or the ServiceError. */
function startUnary<T = Buffer>(c: GrpcClient, name: keyof typeof SERVICE, req: unknown, opts: CallOptions = {}): { call: ClientUnaryCall; result: Promise<T> } {
  let call!: ClientUnaryCall;
  const result = new Promise<T>((resolve, reject) => {
    call = (c as unknown as Record<string, UnaryFn>)[name]!.call(c, req, new Metadata(), opts, (e, r) => (e ? reject(e) : resolve(r as T)));
  });
  return { call, result };
}

const unary = <T = Buffer>(c: GrpcClient, name: keyof typeof SERVICE, req: unknown, opts: CallOptions = {}): Promise<T> => startUnary<T>(c, name, req, opts).result;

function serverStream(c: GrpcClient, name: keyof typeof SERVICE, req: unknown): ClientReadableStream<Buffer> {
  return (c as unknown as Record<string, StreamFn>)[name]!.call(c, req, new Metadata(), {});
}

/** Collects a server stream's messages, then its end or error. */
function collect(s: ClientReadableStream<Buffer>): Promise<{ messages: Buffer[]; error: ServiceError | undefined }> {
  const messages: Buffer[] = [];
  return new Promise((resolve) => {
    s.on("data", (m: Buffer) => messages.push(m));
    s.on("end", () => resolve({ messages, error: undefined }));
    s.on("error", (error: ServiceError) => resolve({ messages, error }));
  });
}

/** Asserts a rejection carrying a gRPC status. */
async function rejectsWith(p: Promise<unknown>, code: number, details?: string | RegExp): Promise<void> {
  await assert.rejects(p, (e: ServiceError) => {
    assert.equal(e.code, code, `status code (details: ${String(e.details).slice(0, 200)})`);
    if (typeof details === "string") assert.equal(e.details, details);
    else if (details) assert.match(e.details, details);
    return true;
  });
}

/** Every test has a generous timeout so that a hang fails instead of stalling the run. */
const it = (name: string, fn: () => Promise<void>): void => void test(name, { timeout: 15_000 }, fn);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- node:http2 client helpers ----

function h2(path: string, settings?: http2.Settings): http2.ClientHttp2Session {
  const s = http2.connect("http://localhost", { createConnection: () => connect(path), ...(settings ? { settings } : {}) });
  s.on("error", () => undefined);
  return s;
}


interface H2Result {
  headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader;
  trailers: http2.IncomingHttpHeaders | undefined;
  body: Buffer;
  rst: number;
}

function h2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<H2Result> {
  const req = session.request(headers, { endStream: body === undefined });
  if (body !== undefined) req.end(body);
  const chunks: Buffer[] = [];
  let trailers: http2.IncomingHttpHeaders | undefined;
  let response: H2Result["headers"] | undefined;
  req.on("response", (h) => (response = h));
  req.on("trailers", (t) => (trailers = t));
  req.on("data", (d: Buffer) => chunks.push(d));
  req.on("error", () => undefined);
  return new Promise((resolve, reject) =>
    req.on("close", () => (response ? resolve({ headers: response, trailers, body: Buffer.concat(chunks), rst: req.rstCode ?? 0 }) : reject(new Error(`no response (rst ${req.rstCode})`)))),
  );
}

const grpcHeaders = (path: string, authority = "localhost"): http2.OutgoingHttpHeaders => ({
  ":method": "POST",
  ":path": path,
  ":authority": authority,
  ":scheme": "http",
  "content-type": "application/grpc",
  te: "trailers",
});

/** The messages of a gRPC response body. */
function messagesOf(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let p = 0; p + 5 <= body.length; ) {
    const n = body.readUInt32BE(p + 1);
    out.push(body.subarray(p + 5, p + 5 + n));
    p += 5 + n;
  }
  return out;
}

// ---- raw HTTP/2 client ----

const T = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;


const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
};

function settings(values: Array<[number, number]> = []): Buffer {
  const b = Buffer.alloc(values.length * 6);
  values.forEach(([k, v], i) => {
    b.writeUInt16BE(k, i * 6);
    b.writeUInt32BE(v, i * 6 + 2);
  });
  return rawFrame(T.SETTINGS, 0, 0, b);
}

const requestBlock = (path: string): Buffer =>
  encodeHeaderBlock(
    [
      [":method", "POST"],
      [":scheme", "http"],
      [":path", path],
      [":authority", "localhost"],
      ["content-type", "application/grpc"],
      ["te", "trailers"],
    ].map(([name, value]) => ({ name: name as string, value: value as string, neverIndex: false })),
  );

interface RawFrame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

/** A hand-driven HTTP/2 client: writes what it is told, parses what the server sends. */
class RawClient {
  readonly frames: RawFrame[] = [];
  readonly closed: Promise<void>;
  #buf = Buffer.alloc(0);
  #cursor = 0;
  #ended = false;
  #wake: Array<() => void> = [];

  private constructor(readonly socket: Socket) {
    socket.on("error", () => undefined);
    socket.on("data", (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      while (this.#buf.length >= 9) {
        const len = this.#buf.readUIntBE(0, 3);
        if (this.#buf.length < 9 + len) break;
        this.frames.push({ type: this.#buf[3] as number, flags: this.#buf[4] as number, stream: this.#buf.readUInt32BE(5) & 0x7fffffff, payload: Buffer.from(this.#buf.subarray(9, 9 + len)) });
        this.#buf = this.#buf.subarray(9 + len);
      }
      this.#notify();
    });
    this.closed = new Promise((resolve) =>
      socket.once("close", () => {
        this.#ended = true;
        this.#notify();
        resolve();
      }),
    );
  }

  static async open(path: string, first?: Buffer): Promise<RawClient> {
    const socket = connect(path);
    await once(socket, "connect");
    const c = new RawClient(socket);
    if (first) socket.write(first);
    return c;
  }

  write(...bufs: Buffer[]): void {
    this.socket.write(Buffer.concat(bufs));
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = [];
    for (const f of w) f();
  }

  /** The next frame (in arrival order, after the last one returned) that matches; frames skipped over are passed. */
  async next(pred: (f: RawFrame) => boolean, what = "frame"): Promise<RawFrame> {
    for (;;) {
      while (this.#cursor < this.frames.length) {
        const f = this.frames[this.#cursor++] as RawFrame;
        if (pred(f)) return f;
      }
      if (this.#ended) throw new Error(`connection closed while waiting for ${what}; got ${JSON.stringify(this.frames.map((f) => [f.type, f.flags, f.stream, f.payload.length]))}`);
      await new Promise<void>((r) => this.#wake.push(r));
    }
  }

  /** Waits for GOAWAY, returns its error code, and expects the server to close the connection. */
  async goaway(): Promise<number> {
    const g = await this.next((f) => f.type === T.GOAWAY, "GOAWAY");
    await this.closed;
    return g.payload.readUInt32BE(4);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Opens a raw connection that has sent the preface and an empty SETTINGS. */
const rawReady = (path: string, extra: Buffer[] = []): Promise<RawClient> => RawClient.open(path, Buffer.concat([CLIENT_PREFACE, settings(), ...extra]));

const H2 = { PROTOCOL_ERROR: 1, FRAME_SIZE_ERROR: 6, COMPRESSION_ERROR: 9 } as const;

// =====================================================================================
// grpc-js client
// =====================================================================================

it("grpc-js: unary calls with Buffer and JSON serializers", async () => {
  const f = await start();
  const c = client(f);
  try {
    assert.equal((await unary(c, "Echo", Buffer.from("hello"))).toString(), "hello");
    assert.equal((await unary(c, "Echo", Buffer.alloc(0))).length, 0, "an empty message both ways");
    assert.deepEqual(await unary(c, "Sum", { a: 2, b: 40 }), { sum: 42 });
    assert.equal(f.server.connections, 1);
  } finally {
    c.close();
    f.done();
  }
});

it("grpc-js: an error status keeps its code and a message with non-ASCII and '%'", async () => {
  const f = await start();
  const c = client(f);
  try {
    const message = "échec: 100% — 日本語 %41%25 #?;/ \t tab, emoji 🚀, %";
    await rejectsWith(unary(c, "Fail", { code: 9, message }), 9, message);
    await rejectsWith(unary(c, "Fail", { code: 5, message: "plain ascii" }), 5, "plain ascii");
    // A status without a message.
    await rejectsWith(unary(c, "Fail", { code: 7, message: "" }), 7);
  } finally {
    c.close();
    f.done();
  }
});

it("grpc-js: an error message longer than one frame arrives whole and the connection survives", async () => {
  const f = await start();
  const c = client(f);
  try {
    assert.equal((await unary(c, "Echo", Buffer.from("before"))).toString(), "before");
    // 40000 octets of grpc-message: the trailers block is larger than the client's 16384-octet SETTINGS_MAX_FRAME_SIZE.
    const message = "x".repeat(40_000);
    // (A deadline, because a client that rejects the frame may simply never answer.)
    await rejectsWith(unary(c, "Fail", { code: 3, message }, { deadline: Date.now() + 5000 }), 3, message);
    assert.equal((await unary(c, "Echo", Buffer.from("after"))).toString(), "after");
    assert.equal(f.server.protocolErrors, 0);
  } finally {
    c.close();
    f.done();
  }
});

it("grpc-js: an unknown method is UNIMPLEMENTED", async () => {
  const f = await start();
  const c = new (makeGenericClientConstructor({ Nope: method("/t.T/Nope", false), Echo: SERVICE.Echo }, "T"))(`unix://${f.path}`, credentials.createInsecure());
  try {
    const nope = new Promise((resolve, reject) => (c as unknown as Record<string, UnaryFn>)["Nope"]!.call(c, Buffer.from("x"), new Metadata(), {}, (e, r) => (e ? reject(e) : resolve(r))));
    await rejectsWith(nope, 12, /\/t\.T\/Nope/);
    const echo = await new Promise<Buffer>((resolve, reject) => (c as unknown as Record<string, UnaryFn>)["Echo"]!.call(c, Buffer.from("y"), new Metadata(), {}, (e, r) => (e ? reject(e) : resolve(r as Buffer))));
    assert.equal(echo.toString(), "y");
  } finally {
    c.close();
    f.done();
  }
});

it("grpc-js: a 5 MB request and a 5 MB response (flow control both ways)", async () => {
  const f = await start();
  const c = client(f);
  try {
    const big = Buffer.alloc(5 * MB);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32BE(i, i);
    const res = await unary(c, "Echo", big);
    assert.equal(res.length, big.length);
    assert.ok(res.equals(big), "the echoed 5 MB arrive unchanged");
    // Twice, so windows consumed by the first call have to come back.
    assert.ok((await unary(c, "Echo", big)).equals(big));
    const out = await unary(c, "Big", { size: 5 * MB });
    assert.equal(out.length, 5 * MB);
  } finally {
    c.close();
    f.done();
  }
});

it("grpc-js: a request above maxRecvMessage is RESOURCE_EXHAUSTED and the connection stays usable", async () => {
  const f = await start();
  const c = client(f);
  try {
    await rejectsWith(unary(c, "Echo", Buffer.alloc(MAX_RECV + 1)), 8);
    await rejectsWith(unary(c, "Echo", Buffer.alloc(MAX_RECV + 2 * MB)), 8);
    // Exactly the limit is fine.
    assert.equal((await unary(c, "Echo", Buffer.alloc(MAX_RECV))).length, MAX_RECV);
    assert.equal((await unary(c, "Echo", Buffer.from("ok"))).toString(), "ok");
    assert.equal(f.server.connections, 1);
  } finally {
    c.close();
    f.done();
  }
});

it("grpc-js: a response above maxSendMessage is RESOURCE_EXHAUSTED", async () => {
  const f = await start();
  const c = client(f);
  try {
    await rejectsWith(unary(c, "Big", { size: MAX_SEND + 1 }), 8);
    assert.equal((await unary(c, "Big", { size: MAX_SEND })).length, MAX_SEND);
  } finally {
    c.close();
    f.done();
  }
});

it("grpc-js: a deadline shorter than a slow handler is DEADLINE_EXCEEDED and the handler sees 'cancelled'", async () => {
  const f = await start();
  const c = client(f);
  try {
    const cancelled = once(f.events, "slow-cancelled");
    const started = once(f.events, "slow-start");
    const deadline = Date.now() + 300;
    const { result } = startUnary(c, "Slow", Buffer.from("z"), { deadline });
    const [call] = (await started) as [ServerCall<Buffer>];
    const d = call.getDeadline();
    assert.ok(Number.isFinite(d) && Math.abs(d - deadline) < 5000, `getDeadline() ${d} near ${deadline}`);
    await rejectsWith(result, 4);
    await cancelled;
    assert.equal(call.cancelled, true);
  } finally {
    c.close();
    f.done();
  }
});

it("grpc-js: deadlines of calls on one connection each fire on time, in whatever order they were set", async () => {
  const f = await start();
  const c = client(f);
  try {
    // A call with a long deadline that answers at once, then slow calls whose deadlines come
    // before it, after it, and before each other (the connection keeps one timer for them all).
    assert.equal((await unary(c, "Echo", Buffer.from("a"), { deadline: Date.now() + 60_000 })).toString(), "a");
    const t0 = Date.now();
    const late = startUnary(c, "Slow", Buffer.from("x"), { deadline: t0 + 900 });
    const early = startUnary(c, "Slow", Buffer.from("y"), { deadline: t0 + 300 });
    const ended = (p: Promise<unknown>): Promise<number> =>
      p.then(
        () => -1,
        (err: { code?: number }) => {
          assert.equal(err.code, 4);
          return Date.now() - t0;
        },
      );
    const [lateMs, earlyMs] = await Promise.all([ended(late.result), ended(early.result)]);
    assert.ok(earlyMs >= 250 && earlyMs < 800, `the 300 ms deadline ended its call after ${earlyMs} ms`);
    assert.ok(lateMs >= 850 && lateMs < 1600, `the 900 ms deadline ended its call after ${lateMs} ms`);
    // The connection still serves calls, with and without deadlines.
    assert.equal((await unary(c, "Echo", Buffer.from("b"), { deadline: Date.now() + 5000 })).toString(), "b");
  } finally {
    c.close();
    f.done();
  }
});

it("grpc-js: a call without a deadline has getDeadline() Infinity; one of 30 days does not expire at once", async () => {
  let seen: number[] = [];
  const f = await start({
    Echo: (call, cb) => {
      seen.push(call.getDeadline());
      setTimeout(() => cb(null, call.request), 100);
    },
  });
  const c = client(f);
  try {
    assert.equal((await unary(c, "Echo", Buffer.from("a"))).toString(), "a");
    assert.deepEqual(seen, [Infinity]);
    seen = [];
    // grpc-js sends such a deadline as "2592000S": 2.6e9 ms, more than a timer can hold (2^31-1 ms).
    const deadline = Date.now() + 30 * 24 * 3600 * 1000;
    assert.equal((await unary(c, "Echo", Buffer.from("b"), { deadline })).toString(), "b");
    assert.ok(Math.abs((seen[0] as number) - deadline) < 5000);
  } finally {
    c.close();
    f.done();
  }
});

it("grpc-js: a client cancel reaches the handler as 'cancelled'", async () => {
  const f = await start();
  const c = client(f);
  try {
    const cancelled = once(f.events, "slow-cancelled");
    const started = once(f.events, "slow-start");
    const { call, result } = startUnary(c, "Slow", Buffer.from("z"));
    await started;
    call.cancel();
    await rejectsWith(result, 1);
    const [sc] = (await cancelled) as [ServerCall<Buffer>];
    assert.equal(sc.cancelled, true);
    // The connection is still fine.
    assert.equal((await unary(c, "Echo", Buffer.from("next"))).toString(), "next");
  } finally {
    c.close();
    f.done();
  }
});

it("grpc-js: 200 concurrent calls on one connection", async () => {
  const f = await start({ Echo: (call, cb) => setImmediate(() => cb(null, Buffer.concat([Buffer.from("re:"), call.request]))) });
  const c = client(f);
  try {
    await unary(c, "Echo", Buffer.from("warm-up"));
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => unary(c, "Echo", Buffer.from(`call-${i}-${"p".repeat(i * 50)}`))));
    results.forEach((r, i) => assert.equal(r.toString(), `re:call-${i}-${"p".repeat(i * 50)}`));
    assert.equal(f.server.connections, 1);
  } finally {
    c.close();
    f.done();
  }
});

it("grpc-js: gzip- and deflate-compressed requests", async () => {
  // Served through serve() to count the octets the client really sent.
  const f = await start({}, false);
  let received = 0;
  const net = createServer((socket) => {
    socket.on("data", (d: Buffer) => (received += d.length));
    f.server.serve(socket);
  });
  await new Promise<void>((resolve) => net.listen(f.path, resolve));
  const clients: GrpcClient[] = [];
  try {
    const payload = Buffer.alloc(1 * MB, "compressible ");
    for (const algorithm of [2, 1]) {
      const c = client(f, { "grpc.default_compression_algorithm": algorithm });
      clients.push(c);
      received = 0;
      const res = await unary(c, "Echo", payload);
      assert.ok(res.equals(payload), `algorithm ${algorithm}: the request was decompressed`);
      assert.ok(received < payload.length / 10, `algorithm ${algorithm}: the client sent ${received} octets for ${payload.length}`);
      assert.equal((await unary(c, "Echo", Buffer.from("small"))).toString(), "small");
    }
  } finally {
    for (const c of clients) c.close();
    f.done();
    net.close();
  }
});

it("grpc-js: server streaming to a slow reader waits for 'drain' and delivers every message in order", async () => {
  const f = await start();
  const c = client(f);
  try {
    const count = 300;
    const size = 16 * 1024;
    const s = serverStream(c, "Stream", { count, size });
    // Nobody reads: the client's windows fill, then the server's queue.
    await once(f.events, "write-false");
    const { messages, error } = await collect(s);
    assert.equal(error, undefined);
    assert.equal(messages.length, count);
    messages.forEach((m, i) => {
      assert.equal(m.length, size);
      assert.equal(m.readUInt32BE(0), i);
    });
    assert.ok(f.stats.writeFalse >= 1);
    assert.equal(f.stats.drains, f.stats.writeFalse, "every write() === false was followed by 'drain'");
    // A second, smaller stream with mixed sizes on the same connection.
    const again = await collect(serverStream(c, "Stream", { count: 50, size: 3000 }));
    assert.equal(again.error, undefined);
    assert.equal(again.messages.length, 50);
  } finally {
    c.close();
    f.done();
  }
});

it("grpc-js: a server stream ending with an error status", async () => {
  const f = await start();
  const c = client(f);
  try {
    const { messages, error } = await collect(serverStream(c, "StreamFail", Buffer.from("go")));
    assert.deepEqual(
      messages.map((m) => m.toString()),
      ["m0", "m1", "m2"],
    );
    assert.ok(error);
    assert.equal(error.code, 9);
    assert.equal(error.details, "stream failed: ünïcödé 100%");
  } finally {
    c.close();
    f.done();
  }
});

// =====================================================================================
// node:http2 client
// =====================================================================================

it("node:http2: GET is 405, a non-gRPC content-type is 415", async () => {
  const f = await start();
  const s = h2(f.path);
  try {
    const get = await h2Request(s, { ":method": "GET", ":path": "/t.T/Echo" });
    assert.equal(get.headers[":status"], 405);
    const text = await h2Request(s, { ":method": "POST", ":path": "/t.T/Echo", "content-type": "text/plain" }, Buffer.from("hello"));
    assert.equal(text.headers[":status"], 415);
    // The session is still good for gRPC.
    const ok = await h2Request(s, grpcHeaders("/t.T/Echo"), grpcFrame(Buffer.from("still")));
    assert.equal(ok.trailers?.["grpc-status"], "0");
    assert.deepEqual(messagesOf(ok.body).map(String), ["still"]);
  } finally {
    s.close();
    f.done();
  }
});

it("node:http2: a client with initialWindowSize 100 still gets a large response whole", async () => {
  const f = await start();
  const s = h2(f.path, { initialWindowSize: 100 });
  try {
    const body = Buffer.alloc(300_000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
    const res = await h2Request(s, grpcHeaders("/t.T/Echo"), grpcFrame(body));
    assert.equal(res.headers[":status"], 200);
    assert.equal(res.trailers?.["grpc-status"], "0");
    const [msg] = messagesOf(res.body);
    assert.ok(msg?.equals(body), "the response arrives whole");
    // A server stream through the same tiny window.
    const st = await h2Request(s, grpcHeaders("/t.T/Stream"), grpcFrame(toJson({ count: 40, size: 5000 })));
    assert.equal(st.trailers?.["grpc-status"], "0");
    assert.equal(messagesOf(st.body).length, 40);
  } finally {
    s.close();
    f.done();
  }
});

it("node:http2: :authority set to the socket path is accepted", async () => {
  const f = await start();
  const s = h2(f.path);
  try {
    for (const authority of [f.path, encodeURIComponent(f.path), "localhost"]) {
      const res = await h2Request(s, grpcHeaders("/t.T/Echo", authority), grpcFrame(Buffer.from(authority)));
      assert.equal(res.trailers?.["grpc-status"], "0", authority);
      assert.deepEqual(messagesOf(res.body).map(String), [authority]);
    }
  } finally {
    s.close();
    f.done();
  }
});

// =====================================================================================
// raw HTTP/2 clients
// =====================================================================================

it("raw: a bad preface gets GOAWAY and the connection is closed", async () => {
  const f = await start();
  try {
    const c = await RawClient.open(f.path, Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert.equal(await c.goaway(), H2.PROTOCOL_ERROR);
    // A preface that goes wrong only after a correct start, split across writes.
    const d = await RawClient.open(f.path, CLIENT_PREFACE.subarray(0, 10));
    await sleep(20);
    d.write(Buffer.from("XXXXXXXXXXXXXXXXXXXXXXXXXXXXX"));
    assert.equal(await d.goaway(), H2.PROTOCOL_ERROR);
    assert.ok(f.server.protocolErrors >= 2);
  } finally {
    f.done();
  }
});

it("raw: a frame larger than 16384 octets is FRAME_SIZE_ERROR", async () => {
  const f = await start();
  try {
    const c = await rawReady(f.path, [rawFrame(0xfa, 0, 0, Buffer.alloc(16_385))]);
    assert.equal(await c.goaway(), H2.FRAME_SIZE_ERROR);
    // 16384 octets exactly is allowed (an unknown frame type is ignored), and PING still answers.
    const ok = await rawReady(f.path, [rawFrame(0xfa, 0, 0, Buffer.alloc(16_384)), rawFrame(T.PING, 0, 0, Buffer.from("12345678"))]);
    await ok.next((fr) => fr.type === T.PING && (fr.flags & ACK) !== 0, "PING ACK");
    ok.destroy();
  } finally {
    f.done();
  }
});

it("raw: PING is answered with PING ACK and the same payload; SETTINGS is acknowledged", async () => {
  const f = await start();
  try {
    const payload = Buffer.from("berth!\x00\xff", "latin1");
    const c = await rawReady(f.path, [rawFrame(T.PING, 0, 0, payload)]);
    const serverSettings = await c.next((fr) => fr.type === T.SETTINGS && (fr.flags & ACK) === 0, "server SETTINGS");
    assert.equal(serverSettings.stream, 0);
    await c.next((fr) => fr.type === T.SETTINGS && (fr.flags & ACK) !== 0, "SETTINGS ACK");
    const pong = await c.next((fr) => fr.type === T.PING, "PING ACK");
    assert.equal(pong.flags & ACK, ACK);
    assert.equal(pong.stream, 0);
    assert.ok(pong.payload.equals(payload));
    // A PING ACK from the client is not answered; a second PING is.
    c.write(rawFrame(T.PING, ACK, 0, Buffer.from("ignoreme")), rawFrame(T.PING, 0, 0, Buffer.from("second!!")));
    const pong2 = await c.next((fr) => fr.type === T.PING, "second PING ACK");
    assert.equal(pong2.payload.toString(), "second!!");
    c.destroy();
  } finally {
    f.done();
  }
});

it("raw: a header block interrupted by another frame is PROTOCOL_ERROR", async () => {
  const f = await start();
  try {
    const block = requestBlock("/t.T/Echo");
    const c = await rawReady(f.path, [rawFrame(T.HEADERS, 0, 1, block.subarray(0, 5)), rawFrame(T.PING, 0, 0, Buffer.alloc(8))]);
    assert.equal(await c.goaway(), H2.PROTOCOL_ERROR);
    // A CONTINUATION on another stream interrupts it too.
    const d = await rawReady(f.path, [rawFrame(T.HEADERS, 0, 1, block.subarray(0, 5)), rawFrame(T.CONTINUATION, END_HEADERS, 3, block.subarray(5))]);
    assert.equal(await d.goaway(), H2.PROTOCOL_ERROR);
  } finally {
    f.done();
  }
});

it("raw: a header block split over CONTINUATION frames is served", async () => {
  const f = await start();
  try {
    const block = requestBlock("/t.T/Echo");
    const c = await rawReady(f.path, [
      rawFrame(T.HEADERS, 0, 1, block.subarray(0, 4)),
      rawFrame(T.CONTINUATION, 0, 1, block.subarray(4, 9)),
      rawFrame(T.CONTINUATION, END_HEADERS, 1, block.subarray(9)),
      rawFrame(T.DATA, END_STREAM, 1, grpcFrame(Buffer.from("cont"))),
    ]);
    const dec = new HpackDecoder();
    const h = await c.next((fr) => fr.type === T.HEADERS && fr.stream === 1, "response HEADERS");
    assert.deepEqual(dec.decode(h.payload).find((x) => x.name === ":status")?.value, "200");
    // DATA frames up to the trailers (a message may span several frames).
    const data: Buffer[] = [];
    let tr: RawFrame;
    while ((tr = await c.next((fr) => fr.stream === 1 && (fr.type === T.DATA || fr.type === T.HEADERS), "DATA or trailers")).type === T.DATA) data.push(tr.payload);
    assert.deepEqual(messagesOf(Buffer.concat(data)).map(String), ["cont"]);
    assert.equal(tr.flags & END_STREAM, END_STREAM);
    assert.equal(dec.decode(tr.payload).find((x) => x.name === "grpc-status")?.value, "0");
    c.destroy();
  } finally {
    f.done();
  }
});

it("raw: a garbage HPACK block is COMPRESSION_ERROR", async () => {
  const f = await start();
  try {
    // Indexed field 63: past the static table with an empty dynamic table.
    const c = await rawReady(f.path, [rawFrame(T.HEADERS, END_HEADERS | END_STREAM, 1, Buffer.from([0xbf, 0x00]))]);
    assert.equal(await c.goaway(), H2.COMPRESSION_ERROR);
    // An integer that never ends.
    const d = await rawReady(f.path, [rawFrame(T.HEADERS, END_HEADERS, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))]);
    assert.equal(await d.goaway(), H2.COMPRESSION_ERROR);
  } finally {
    f.done();
  }
});

it("raw: a frame before the client's SETTINGS is PROTOCOL_ERROR", async () => {
  const f = await start();
  try {
    const c = await RawClient.open(f.path, Buffer.concat([CLIENT_PREFACE, rawFrame(T.PING, 0, 0, Buffer.alloc(8))]));
    assert.equal(await c.goaway(), H2.PROTOCOL_ERROR);
    const d = await RawClient.open(f.path, Buffer.concat([CLIENT_PREFACE, rawFrame(T.HEADERS, END_HEADERS | END_STREAM, 1, requestBlock("/t.T/Echo"))]));
    assert.equal(await d.goaway(), H2.PROTOCOL_ERROR);
  } finally {
    f.done();
  }
});

it("raw: end() after 'drain' while the stream window is closed sends the trailers after the last DATA", async () => {
  const f = await start();
  try {
    // Stream windows start at 0; the connection window is large.
    const c = await RawClient.open(
      f.path,
      Buffer.concat([
        CLIENT_PREFACE,
        settings([[4, 0]]),
        rawFrame(T.WINDOW_UPDATE, 0, 0, u32(4 * MB)),
        rawFrame(T.HEADERS, END_HEADERS, 1, requestBlock("/t.T/DrainEnd")),
        rawFrame(T.DATA, END_STREAM, 1, grpcFrame(Buffer.alloc(0))),
      ]),
    );
    const dec = new HpackDecoder();
    const headers = await c.next((fr) => fr.type === T.HEADERS && fr.stream === 1, "response HEADERS");
    assert.equal(dec.decode(headers.payload).find((x) => x.name === ":status")?.value, "200");
    // Room for the first message: the handler then gets 'drain', writes 1005 more octets and ends.
    c.write(rawFrame(T.WINDOW_UPDATE, 0, 1, u32(70_005)));
    let received = 0;
    let opened = false;
    for (;;) {
      const fr = await c.next((x) => x.stream === 1 && (x.type === T.DATA || x.type === T.HEADERS || x.type === T.RST_STREAM), "DATA or trailers");
      if (fr.type === T.RST_STREAM) assert.fail(`RST_STREAM ${fr.payload.readUInt32BE(0)}`);
      if (fr.type === T.DATA) {
        received += fr.payload.length;
        if (received === 70_005 && !opened) {
          opened = true;
          c.write(rawFrame(T.WINDOW_UPDATE, 0, 1, u32(1005)));
        }
        continue;
      }
      assert.equal(fr.flags & END_STREAM, END_STREAM);
      assert.equal(dec.decode(fr.payload).find((x) => x.name === "grpc-status")?.value, "0");
      break;
    }
    assert.equal(received, 70_005 + 1005, "both messages came before the trailers");
    c.destroy();
  } finally {
    f.done();
  }
});

// =====================================================================================
// shutdown
// =====================================================================================

it("tryShutdown waits for an in-flight call to finish, then calls back", async () => {
  let release: (() => void) | undefined;
  const f = await start({
    Slow: (call, cb) => {
      release = () => cb(null, Buffer.concat([Buffer.from("done:"), call.request]));
      f.events.emit("slow-start", call);
    },
  });
  const c = client(f);
  try {
    const started = once(f.events, "slow-start");
    const { result } = startUnary(c, "Slow", Buffer.from("x"));
    await started;
    let calledBack = false;
    const shut = new Promise<void>((resolve) =>
      f.server.tryShutdown(() => {
        calledBack = true;
        resolve();
      }),
    );
    await sleep(100);
    assert.equal(calledBack, false, "the in-flight call holds the shutdown");
    release?.();
    assert.equal((await result).toString(), "done:x");
    await shut;
    assert.equal(f.server.connections, 0);
    await assert.rejects(new Promise((resolve, reject) => connect(f.path).on("connect", resolve).on("error", reject)), "no new connections after tryShutdown");
  } finally {
    c.close();
    f.done();
  }
});

it("tryShutdown without connections calls back at once", async () => {
  const f = await start();
  try {
    await new Promise<void>((resolve) => f.server.tryShutdown(resolve));
  } finally {
    f.done();
  }
});

it("forceShutdown cancels in-flight calls", async () => {
  const f = await start();
  const c = client(f);
  try {
    const slowCancelled = once(f.events, "slow-cancelled");
    const hangCancelled = once(f.events, "hang-cancelled");
    const slowStarted = once(f.events, "slow-start");
    const hangStarted = once(f.events, "hang-start");
    const { result } = startUnary(c, "Slow", Buffer.from("x"));
    result.catch(() => undefined);
    const stream = collect(serverStream(c, "Hang", Buffer.from("y")));
    await Promise.all([slowStarted, hangStarted]);
    f.server.forceShutdown();
    await Promise.all([slowCancelled, hangCancelled]);
    await assert.rejects(result, (e: ServiceError) => e.code !== 0);
    const { messages, error } = await stream;
    assert.deepEqual(messages.map(String), ["started"]);
    assert.ok(error && error.code !== 0);
  } finally {
    c.close();
    f.done();
  }
});
