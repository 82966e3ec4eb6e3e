import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import http2 from "node:http2";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { credentials, makeGenericClientConstructor, Server, ServerCredentials, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData, type ServiceDefinition } from "@grpc/grpc-js";
import { AnyAuthorityListener } from "./listener.js";
import { grpcFrame } from "./test-frames.js";

const id = (b: Buffer): Buffer => b;
const method = (path: string, responseStream: boolean) => ({ path, requestStream: false, responseStream, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id });
const SERVICE: ServiceDefinition = { Echo: method("/t.T/Echo", false), Count: method("/t.T/Count", true), Hang: method("/t.T/Hang", true) };

interface Fixture {
  path: string;
  server: Server;
  listener: AnyAuthorityListener;
  done(): void;
}

async function start(): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), "berth-authority-"));
  const path = join(dir, "berth.sock");
  const server = new Server({ "grpc.max_receive_message_length": 1024 });
  server.addService(SERVICE, {
    Echo: (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => cb(null, Buffer.concat([Buffer.from("echo:"), call.request])),
    Count: (call: ServerWritableStream<Buffer, Buffer>) => {
      for (let i = 0; i < 3; i++) call.write(Buffer.from(String(i)));
      call.end();
    },
    Hang: (call: ServerWritableStream<Buffer, Buffer>) => call.write(Buffer.from("started")),
  });
  const listener = await AnyAuthorityListener.listen(path, server.createConnectionInjector(ServerCredentials.createInsecure()));
  return { path, server, listener, done: () => (server.forceShutdown(), listener.stopAccepting(), rmSync(dir, { recursive: true, force: true })) };
}


/** Resolves on 'close' (events.once would reject on a preceding 'error'). */
const closed = (e: NodeJS.EventEmitter): Promise<void> => new Promise((resolve) => e.once("close", () => resolve()));

/** One call with node:http2 and an explicit :authority; resolves with the messages and grpc-status (or the reset code). */
async function rawCall(session: http2.ClientHttp2Session, path: string, authority: string, body: Buffer): Promise<{ messages: string[]; status: string | undefined; rst: number }> {
  const req = session.request({ ":method": "POST", ":path": path, ":authority": authority, ":scheme": "http", "content-type": "application/grpc", te: "trailers" });
  req.end(grpcFrame(body));
  let data = Buffer.alloc(0);
  let status: string | undefined;
  req.on("data", (d: Buffer) => (data = Buffer.concat([data, d])));
  // A trailers-only response carries grpc-status in its headers.
  req.on("response", (h) => (status ??= h["grpc-status"] as string | undefined));
  req.on("trailers", (t) => (status = t["grpc-status"] as string | undefined));
  req.on("error", () => undefined);
  await once(req, "close");
  const messages: string[] = [];
  for (let p = 0; p + 5 <= data.length; ) {
    const n = data.readUInt32BE(p + 1);
    messages.push(data.subarray(p + 5, p + 5 + n).toString());
    p += 5 + n;
  }
  return { messages, status, rst: req.rstCode ?? 0 };
}

const h2 = (path: string): http2.ClientHttp2Session => {
  const s = http2.connect("http://localhost", { createConnection: () => connect(path) });
  s.on("error", () => undefined);
  return s;
};

test("listener: unary and server-streaming calls with the socket path, a %-encoded path and localhost as :authority", async () => {
  const f = await start();
  try {
    const s = h2(f.path);
    for (const authority of [f.path, encodeURIComponent(f.path), "localhost"]) {
      assert.deepEqual(await rawCall(s, "/t.T/Echo", authority, Buffer.from("hi")), { messages: ["echo:hi"], status: "0", rst: 0 }, authority);
      assert.deepEqual(await rawCall(s, "/t.T/Count", authority, Buffer.alloc(0)), { messages: ["0", "1", "2"], status: "0", rst: 0 }, authority);
    }
    // grpc-js server options still apply to injected connections (max receive size 1024 → RESOURCE_EXHAUSTED = 8).
    assert.equal((await rawCall(s, "/t.T/Echo", f.path, Buffer.alloc(2000))).status, "8");
    s.close();
    // A grpc-js client told to send the socket path.
    const Client = makeGenericClientConstructor(SERVICE, "T");
    const c = new Client(`unix://${f.path}`, credentials.createInsecure(), { "grpc.default_authority": f.path });
    const res = await new Promise<Buffer>((resolve, reject) => (c as unknown as { Echo: (r: Buffer, cb: (e: Error | null, r: Buffer) => void) => void }).Echo(Buffer.from("js"), (e, r) => (e ? reject(e) : resolve(r))));
    assert.equal(res.toString(), "echo:js");
    c.close();
  } finally {
    f.done();
  }
});

test("listener: a client with a malformed header block is disconnected; others are served", async () => {
  const f = await start();
  try {
    const good = h2(f.path);
    assert.equal((await rawCall(good, "/t.T/Echo", f.path, Buffer.from("a"))).status, "0");
    const bad: Socket = connect(f.path);
    bad.on("error", () => undefined);
    await once(bad, "connect");
    bad.write(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Buffer.from("000000040000000000", "hex"), Buffer.from("000001010500000001be", "hex")]));
    bad.resume();
    await closed(bad);
    assert.equal((await rawCall(good, "/t.T/Echo", f.path, Buffer.from("b"))).status, "0");
    good.close();
  } finally {
    f.done();
  }
});

test("listener: tryShutdown closes idle injected connections; forceShutdown cuts a call in progress", async () => {
  const f = await start();
  try {
    const idle = h2(f.path);
    assert.equal((await rawCall(idle, "/t.T/Echo", f.path, Buffer.from("x"))).status, "0");
    assert.equal(f.listener.connections, 1);
    const busy = h2(f.path);
    const req = busy.request({ ":method": "POST", ":path": "/t.T/Hang", ":authority": f.path, ":scheme": "http", "content-type": "application/grpc", te: "trailers" });
    req.on("error", () => undefined);
    req.end(grpcFrame(Buffer.alloc(0)));
    await once(req, "data");
    assert.equal(f.listener.connections, 2);

    const idleClosed = closed(idle);
    const busyClosed = closed(busy);
    f.listener.stopAccepting();
    let drained = false;
    f.server.tryShutdown(() => (drained = true));
    await idleClosed;
    assert.equal(drained, false, "the hanging call holds the graceful shutdown");
    assert.equal(f.listener.connections, 1, "the idle connection is closed on the socket too");
    f.server.forceShutdown();
    await busyClosed;
    while (f.listener.connections > 0) await new Promise((r) => setTimeout(r, 10));
    await assert.rejects(new Promise((resolve, reject) => connect(f.path).on("connect", resolve).on("error", reject)), "no new connections after stopAccepting");
  } finally {
    f.done();
  }
});

test("listener: a client with an acceptable :authority is given the raw socket, one with the socket path the filter", async () => {
  const f = await start();
  try {
    const Client = makeGenericClientConstructor(SERVICE, "T");
    type Echo = { Echo: (r: Buffer, cb: (e: Error | null, r: Buffer) => void) => void };
    const call = (c: unknown, msg: string): Promise<string> => new Promise((resolve, reject) => (c as Echo).Echo(Buffer.from(msg), (e, r) => (e ? reject(e) : resolve(r.toString()))));
    // grpc-js waits for the server's SETTINGS before its first call: the listener's empty one lets it start.
    const plain = new Client(`unix://${f.path}`, credentials.createInsecure());
    for (let i = 0; i < 3; i++) assert.equal(await call(plain, `p${i}`), `echo:p${i}`);
    assert.deepEqual([f.listener.rawConnections, f.listener.filteredConnections], [1, 0]);
    const pathy = new Client(`unix://${f.path}`, credentials.createInsecure(), { "grpc.default_authority": f.path });
    for (let i = 0; i < 3; i++) assert.equal(await call(pathy, `s${i}`), `echo:s${i}`);
    assert.deepEqual([f.listener.rawConnections, f.listener.filteredConnections], [1, 1]);
    plain.close();
    pathy.close();
  } finally {
    f.done();
  }
});

test("listener: a connection without a call within the sniff timeout is served through the filter", async () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-authority-"));
  const path = join(dir, "berth.sock");
  const server = new Server();
  server.addService(SERVICE, { Echo: (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => cb(null, call.request) });
  const listener = await AnyAuthorityListener.listen(path, server.createConnectionInjector(ServerCredentials.createInsecure()), { sniffTimeoutMs: 50 });
  try {
    const s = h2(path);
    await once(s, "remoteSettings");
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual([listener.rawConnections, listener.filteredConnections], [0, 1]);
    for (const authority of ["localhost", path]) assert.deepEqual(await rawCall(s, "/t.T/Echo", authority, Buffer.from("late")), { messages: ["late"], status: "0", rst: 0 });
    s.close();
  } finally {
    server.forceShutdown();
    listener.stopAccepting();
    rmSync(dir, { recursive: true, force: true });
  }
});
