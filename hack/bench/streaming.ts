/**
 * Streaming throughput and latency on loopback with host processes (no
 * container): exec stdout and stdin over SPDY and WebSocket, port forward over
 * SPDY, and sequential exec round trips. Prints figures; asserts nothing.
 *   node dist/hack/bench/streaming.js [MiB]
 */
import http from "node:http";
import type net from "node:net";
import { Duplex, Readable, Writable } from "node:stream";
import { setRootLogger } from "../../pkg/log/index.js";
import { SpdyPortForwardClient, StreamingServer, spdyRemoteCommand, wsRemoteCommand } from "../../pkg/streaming/index.js";
import { HostBackend } from "../../pkg/streaming/testing/host-backend.js";

setRootLogger({ level: "silent" });
const mib = Number(process.argv[2] ?? "256");
const bytes = mib * 1024 * 1024;

class Counter extends Writable {
  n = 0;
  override _write(c: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.n += c.length;
    cb();
  }
}

const server = new StreamingServer({ address: "127.0.0.1:0", tokenTtlSeconds: 60, idleTimeoutSeconds: 600, backend: new HostBackend() });
await server.start();
const req = (cmd: string[], stdin = false) => server.getExec({ containerId: "bench", cmd, tty: false, stdin, stdout: true, stderr: false });
const rate = (n: number, ms: number) => `${((n / 1024 / 1024) / (ms / 1000)).toFixed(0)} MiB/s`;

for (const transport of ["spdy", "websocket"] as const) {
  const run = transport === "spdy" ? spdyRemoteCommand : wsRemoteCommand;
  let out = new Counter();
  let t0 = Date.now();
  await run(req(["head", "-c", String(bytes), "/dev/zero"]).url, { stdout: out });
  console.log(`exec stdout ${transport}: ${mib} MiB in ${Date.now() - t0} ms = ${rate(out.n, Date.now() - t0)}`);
  out = new Counter();
  const chunk = Buffer.alloc(1024 * 1024);
  const input = Readable.from((function* () {
    for (let i = 0; i < mib; i++) yield chunk;
  })());
  t0 = Date.now();
  await run(req(["sh", "-c", "cat > /dev/null; echo done"], true).url, { stdin: input, stdout: out });
  console.log(`exec stdin  ${transport}: ${mib} MiB in ${Date.now() - t0} ms = ${rate(bytes, Date.now() - t0)}`);
}

const n = 100;
let t0 = Date.now();
for (let i = 0; i < n; i++) await spdyRemoteCommand(req(["true"]).url, { stdout: new Counter() });
console.log(`exec round trip (spdy, host 'true'): ${((Date.now() - t0) / n).toFixed(1)} ms each over ${n}`);

const payload = Buffer.alloc(bytes);
const target = http.createServer((_q, r) => r.end(payload));
target.listen(0, "127.0.0.1");
await new Promise((r) => target.once("listening", r));
const port = (target.address() as net.AddressInfo).port;
const pf = await SpdyPortForwardClient.connect(server.getPortForward({ podSandboxId: "bench", port: [] }).url);
let got = 0;
const local = new Duplex({
  read() {},
  write(c: Buffer, _e, cb) {
    got += c.length;
    cb();
  },
});
t0 = Date.now();
const p = pf.forward(port, local);
local.push("GET / HTTP/1.0\r\n\r\n");
await p;
console.log(`port forward down (spdy): ${mib} MiB in ${Date.now() - t0} ms = ${rate(got, Date.now() - t0)}`);
pf.close();
target.close();
await server.stop();
