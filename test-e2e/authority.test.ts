// The CRI socket serves any HTTP/2 :authority: the socket path (kubelet and
// crictl 1.26, grpc-go with a custom dialer, grpc-java), its %-encoded form (gRPC
// core since 1.57) and "localhost" (grpc-js). The harness client already sends the
// socket path, so every e2e test covers that case; this file adds the others and a
// raw node:http2 client, whose requests are exactly what the bytes say.

import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import { connect } from "node:net";
import type { ClientReadableStream } from "@grpc/grpc-js";
import { GetEventsRequest, StreamContainersRequest, StreamContainersResponse, VersionRequest, VersionResponse } from "../api/gen/cri/v1/api.js";
import { CriClient } from "../pkg/cri/index.js";
import { removeDirs, startDaemon, type Daemon } from "./harness/daemon.js";

let d: Daemon;

before(async () => {
  d = await startDaemon();
});

after(async () => {
  if (d) {
    await d.stop();
    removeDirs(d.dirs);
  }
});

function collect<T>(stream: ClientReadableStream<T>): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const out: T[] = [];
    stream.on("data", (m: T) => out.push(m));
    stream.on("error", reject);
    stream.on("end", () => resolve(out));
  });
}

for (const [label, authority] of [
  ["the %-encoded socket path", (s: string) => encodeURIComponent(s)],
  ["localhost", () => "localhost"],
] as const) {
  test(`grpc-js client with ${label} as :authority: unary and server-streaming calls`, async () => {
    const c = new CriClient(d.dirs.socket, { defaultTimeoutMs: 10_000, authority: authority(d.dirs.socket) });
    try {
      assert.equal((await c.runtime.version({})).runtimeName, "berth");
      assert.deepEqual((await c.runtime.listContainers({})).containers, []);
      const msgs = await collect(c.runtime.streamContainers({}));
      assert.deepEqual(msgs.flatMap((m) => m.containers), []);
      assert.deepEqual((await c.image.listImages({})).images, []);
    } finally {
      c.close();
    }
  });
}

function grpcFrame(msg: Uint8Array): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(msg.length, 1);
  return Buffer.concat([prefix, msg]);
}

interface RawResult {
  status: string | undefined;
  rst: number;
  headers: http2.IncomingHttpHeaders;
  messages: Buffer[];
}

/** One call over node:http2 with the given :authority; for a stream that never ends, `stopAfterHeaders` cancels once the response headers arrived. */
async function rawCall(session: http2.ClientHttp2Session, path: string, authority: string, body: Uint8Array, stopAfterHeaders = false): Promise<RawResult> {
  const req = session.request({ ":method": "POST", ":path": path, ":authority": authority, ":scheme": "http", "content-type": "application/grpc", te: "trailers", "grpc-timeout": "10S" });
  req.end(grpcFrame(body));
  const result: RawResult = { status: undefined, rst: 0, headers: {}, messages: [] };
  let data = Buffer.alloc(0);
  req.on("response", (h) => {
    result.headers = h;
    result.status ??= h["grpc-status"] as string | undefined;
    if (stopAfterHeaders) req.close(http2.constants.NGHTTP2_CANCEL);
  });
  req.on("data", (b: Buffer) => (data = Buffer.concat([data, b])));
  req.on("trailers", (t) => (result.status = t["grpc-status"] as string | undefined));
  req.on("error", () => undefined);
  await new Promise((resolve) => req.once("close", resolve));
  result.rst = req.rstCode ?? 0;
  for (let p = 0; p + 5 <= data.length; p += 5 + data.readUInt32BE(p + 1)) result.messages.push(data.subarray(p + 5, p + 5 + data.readUInt32BE(p + 1)));
  return result;
}

test("raw node:http2 client with the socket path as :authority: Version, StreamContainers, GetContainerEvents", async () => {
  const session = http2.connect("http://localhost", { createConnection: () => connect(d.dirs.socket) });
  session.on("error", () => undefined);
  try {
    const path = d.dirs.socket;
    const v = await rawCall(session, "/runtime.v1.RuntimeService/Version", path, VersionRequest.encode({ version: "v1" }).finish());
    assert.equal(v.rst, 0, "not reset");
    assert.equal(v.status, "0");
    assert.equal(v.messages.length, 1);
    assert.equal(VersionResponse.decode(v.messages[0]!).runtimeName, "berth");

    const s = await rawCall(session, "/runtime.v1.RuntimeService/StreamContainers", path, StreamContainersRequest.encode(StreamContainersRequest.fromPartial({})).finish());
    assert.equal(s.rst, 0);
    assert.equal(s.status, "0");
    assert.deepEqual(s.messages.flatMap((m) => StreamContainersResponse.decode(m).containers), []);

    const e = await rawCall(session, "/runtime.v1.RuntimeService/GetContainerEvents", path, GetEventsRequest.encode(GetEventsRequest.fromPartial({})).finish(), true);
    assert.equal(e.headers[":status"], 200, "the event stream was accepted");
    assert.match(String(e.headers["content-type"]), /^application\/grpc/);

    // Many calls on one connection, the client's HPACK dynamic table in use, authorities mixed.
    for (let i = 0; i < 30; i++) {
      const authority = [path, "localhost", encodeURIComponent(path)][i % 3]!;
      const r = await rawCall(session, "/runtime.v1.RuntimeService/Version", authority, VersionRequest.encode({ version: `v${i}` }).finish());
      assert.equal(r.status, "0", `call ${i} with ${authority}`);
    }
    // An unknown method still gets UNIMPLEMENTED from grpc-js, not a reset.
    assert.equal((await rawCall(session, "/runtime.v1.RuntimeService/NoSuchCall", path, new Uint8Array())).status, "12");
  } finally {
    session.close();
  }
});
