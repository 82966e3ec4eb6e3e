import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import net from "node:net";
import { PassThrough, Readable, Writable } from "node:stream";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { setRootLogger } from "../log/index.js";
import { InvalidArgumentError } from "../errdefs/index.js";
import { SpdyPortForwardClient, spdyRemoteCommand, spdyUpgrade, StreamingHttpError } from "./client-spdy.js";
import { wsPortForward, wsRemoteCommand } from "./client-ws.js";
import { StreamingServer } from "./server.js";
import { SizeQueue } from "./session.js";
import { HostBackend } from "./testing/host-backend.js";

setRootLogger({ level: "silent" });

class Sink extends Writable {
  chunks: Buffer[] = [];
  override _write(c: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.chunks.push(c);
    cb();
  }
  get text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

const execReq = (cmd: string[], o: Partial<{ stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean }> = {}) => ({
  containerId: "c1",
  cmd,
  tty: o.tty ?? false,
  stdin: o.stdin ?? false,
  stdout: o.stdout ?? true,
  stderr: o.stderr ?? false,
});

describe("streaming server", () => {
  const backend = new HostBackend();
  let server: StreamingServer;
  let httpd: http.Server;
  let httpPort = 0;

  before(async () => {
    server = new StreamingServer({
      address: "127.0.0.1:0",
      tokenTtlSeconds: 60,
      idleTimeoutSeconds: 3600,
      streamCreationTimeoutSeconds: 2,
      backend,
    });
    await server.start();
    httpd = http.createServer((_req, res) => res.end("hello from the target\n"));
    httpd.listen(0, "127.0.0.1");
    await once(httpd, "listening");
    httpPort = (httpd.address() as net.AddressInfo).port;
  });

  after(async () => {
    await server.stop();
    httpd.close();
  });

  describe("request checks", () => {
    it("rejects bad exec, attach and port forward requests", () => {
      assert.throws(() => server.getExec(execReq([])), InvalidArgumentError);
      assert.throws(() => server.getExec(execReq(["ls"], { stdout: false })), /one of stdin, stdout and stderr/);
      assert.throws(() => server.getExec(execReq(["ls"], { tty: true, stderr: true })), /tty and stderr/);
      assert.throws(() => server.getExec({ ...execReq(["ls"]), containerId: "" }), /container_id/);
      assert.throws(
        () => server.getAttach({ containerId: "c", tty: true, stdin: false, stdout: true, stderr: true }),
        /tty and stderr/,
      );
      assert.throws(() => server.getPortForward({ podSandboxId: "", port: [] }), /pod_sandbox_id/);
      assert.throws(() => server.getPortForward({ podSandboxId: "p", port: [70000] }), /70000/);
      const { url } = server.getExec(execReq(["true"]));
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/exec\/[A-Za-z0-9_-]{22}$/);
    });
  });

  describe("SPDY remote command (as client-go speaks it)", () => {
    it("pipes stdin to the process and returns its output (v4)", async () => {
      const { url } = server.getExec(execReq(["cat"], { stdin: true }));
      const out = new Sink();
      const res = await spdyRemoteCommand(url, { stdin: Readable.from([Buffer.from("hello "), Buffer.from("world\n")]), stdout: out });
      assert.equal(res.exitCode, 0);
      assert.equal(out.text, "hello world\n");
    });

    it("separates stdout and stderr and propagates a non-zero exit code", async () => {
      const { url } = server.getExec(execReq(["sh", "-c", "echo out; echo err >&2; exit 3"], { stderr: true }));
      const out = new Sink();
      const err = new Sink();
      const res = await spdyRemoteCommand(url, { stdout: out, stderr: err });
      assert.equal(res.exitCode, 3);
      assert.equal(out.text, "out\n");
      assert.equal(err.text, "err\n");
    });

    it("reports the exit code of a killed process as 128+signal", async () => {
      const { url } = server.getExec(execReq(["sh", "-c", "kill -9 $$"]));
      const res = await spdyRemoteCommand(url, { stdout: new Sink() });
      assert.equal(res.exitCode, 137);
    });

    it("speaks the older v3 and v2 protocols (text error stream)", async () => {
      for (const p of ["v3.channel.k8s.io", "v2.channel.k8s.io"]) {
        const ok = server.getExec(execReq(["echo", p]));
        const out = new Sink();
        assert.equal((await spdyRemoteCommand(ok.url, { stdout: out, protocols: [p] })).exitCode, 0);
        assert.equal(out.text, `${p}\n`);
        const bad = server.getExec(execReq(["sh", "-c", "exit 2"]));
        await assert.rejects(spdyRemoteCommand(bad.url, { stdout: new Sink(), protocols: [p] }), /non-zero exit code/);
      }
    });

    it("moves 8 MiB byte-exact each way with a slow reader", async () => {
      const size = 8 * 1024 * 1024;
      const data = Buffer.alloc(size);
      for (let i = 0; i < size; i++) data[i] = (i * 7 + (i >> 13)) & 0xff;
      const { url } = server.getExec(execReq(["cat"], { stdin: true }));
      const chunks: Buffer[] = [];
      let n = 0;
      const slow = new Writable({
        highWaterMark: 16 * 1024,
        write(c: Buffer, _e, cb) {
          chunks.push(c);
          if (++n % 64 === 0) setTimeout(cb, 1);
          else cb();
        },
      });
      const res = await spdyRemoteCommand(url, { stdin: Readable.from([data]), stdout: slow });
      assert.equal(res.exitCode, 0);
      assert.ok(Buffer.concat(chunks).equals(data), "output differs from input");
    });

    it("delivers terminal sizes on the resize stream (tty)", async () => {
      const { url } = server.getExec({ ...execReq(["x"], { tty: true }), containerId: "sizes" });
      const sizes = new SizeQueue();
      sizes.push({ width: 80, height: 24 });
      sizes.push({ width: 132, height: 43 });
      const out = new Sink();
      const p = spdyRemoteCommand(url, { stdout: out, tty: true, resize: sizes });
      await waitFor(() => out.text.includes("132x43"));
      // The backend returns when the resize stream ends (the client closes it when its sizes end).
      sizes.end();
      assert.equal((await p).exitCode, 0);
      assert.match(out.text, /size 80x24\nsize 132x43\n/);
    });

    it("speaks v5.channel.k8s.io over SPDY as v4 (client-go offers it first): JSON exit status, resize stream", async () => {
      const a = server.getExec(execReq(["sh", "-c", "exit 7"]));
      const { conn, protocol } = await spdyUpgrade(a.url, ["v5.channel.k8s.io", "v4.channel.k8s.io"]);
      assert.equal(protocol, "v5.channel.k8s.io");
      conn.destroy();
      const b = server.getExec(execReq(["sh", "-c", "exit 7"]));
      assert.deepEqual(await spdyRemoteCommand(b.url, { stdout: new Sink(), protocols: ["v5.channel.k8s.io"] }), { exitCode: 7 });
      const { url } = server.getExec({ ...execReq(["x"], { tty: true }), containerId: "sizes" });
      const sizes = new SizeQueue();
      sizes.push({ width: 90, height: 30 });
      const out = new Sink();
      const p = spdyRemoteCommand(url, { stdout: out, tty: true, resize: sizes, protocols: ["v5.channel.k8s.io"] });
      await waitFor(() => out.text.includes("90x30"));
      sizes.end();
      assert.equal((await p).exitCode, 0);
    });

    it("kills the process when the client goes away", async () => {
      const { url } = server.getExec(execReq(["sleep", "1000"]));
      const { conn } = await spdyUpgrade(url, ["v4.channel.k8s.io"]);
      await conn.openStream({ streamtype: "error" });
      await conn.openStream({ streamtype: "stdout" });
      await waitFor(() => backend.children.some((c) => c.spawnargs.includes("1000")));
      const child = backend.children.find((c) => c.spawnargs.includes("1000"))!;
      assert.ok(pidAlive(child.pid!));
      conn.destroy();
      await waitFor(() => child.exitCode !== null || child.signalCode !== null);
      assert.equal(child.signalCode, "SIGKILL");
    });

    it("uses a token once and rejects unknown protocols", async () => {
      const { url } = server.getExec(execReq(["true"]));
      await spdyRemoteCommand(url, { stdout: new Sink() });
      await assert.rejects(spdyRemoteCommand(url, { stdout: new Sink() }), (e: unknown) => e instanceof StreamingHttpError && e.statusCode === 404);
      const u2 = server.getExec(execReq(["true"]));
      await assert.rejects(
        spdyUpgrade(u2.url, ["v9.channel.k8s.io"]),
        (e: unknown) => e instanceof StreamingHttpError && e.statusCode === 403 && /v4\.channel\.k8s\.io/.test(e.body),
      );
    });

    it("closes a session whose client never creates its streams", async () => {
      const { url } = server.getExec(execReq(["true"]));
      const { conn } = await spdyUpgrade(url, ["v4.channel.k8s.io"]);
      const t0 = Date.now();
      await conn.waitClosed();
      assert.ok(Date.now() - t0 >= 1500, "closed too early");
    });
  });

  describe("attach", () => {
    it("sees output after attaching and writes to stdin (SPDY and WebSocket)", async () => {
      const a = server.getAttach({ containerId: "c2", tty: false, stdin: true, stdout: true, stderr: false });
      const out = new Sink();
      const stdin = new PassThrough();
      const p = spdyRemoteCommand(a.url, { stdin, stdout: out });
      await waitFor(() => out.text === "attached\n");
      stdin.write("ping\n");
      await waitFor(() => out.text === "attached\nping\n");
      stdin.end();
      assert.equal((await p).exitCode, 0);

      const w = server.getAttach({ containerId: "c2", tty: false, stdin: true, stdout: true, stderr: false });
      const wout = new Sink();
      const wstdin = new PassThrough();
      const wp = wsRemoteCommand(w.url, { stdin: wstdin, stdout: wout });
      await waitFor(() => wout.text === "attached\n");
      wstdin.end("pong\n");
      const res = await wp;
      assert.equal(res.protocol, "v5.channel.k8s.io");
      assert.equal(wout.text, "attached\npong\n");
    });
  });

  describe("WebSocket remote command", () => {
    it("runs exec over v5 with stdin close, v4 and base64", async () => {
      const a = server.getExec(execReq(["cat"], { stdin: true }));
      const out = new Sink();
      const r5 = await wsRemoteCommand(a.url, { stdin: Readable.from([Buffer.from("v5 data\n")]), stdout: out });
      assert.deepEqual(r5, { exitCode: 0, protocol: "v5.channel.k8s.io" });
      assert.equal(out.text, "v5 data\n");

      const b = server.getExec(execReq(["sh", "-c", "echo e >&2; exit 4"], { stderr: true }));
      const err = new Sink();
      const r4 = await wsRemoteCommand(b.url, { stdout: new Sink(), stderr: err, protocols: ["v4.channel.k8s.io"] });
      assert.deepEqual(r4, { exitCode: 4, protocol: "v4.channel.k8s.io" });
      assert.equal(err.text, "e\n");

      const c = server.getExec(execReq(["printf", "\\001\\002\\377"]));
      const bout = new Sink();
      const rb = await wsRemoteCommand(c.url, { stdout: bout, protocols: ["v4.base64.channel.k8s.io"] });
      assert.equal(rb.protocol, "v4.base64.channel.k8s.io");
      assert.deepEqual([...bout.bytes], [1, 2, 255]);
    });

    it("takes stdin in large messages and closes promptly after the v5 stdin close", { timeout: 10_000 }, async () => {
      const { url } = server.getExec(execReq(["wc", "-c"], { stdin: true }));
      const chunk = Buffer.alloc(1024 * 1024, 0x41);
      const out = new Sink();
      const res = await wsRemoteCommand(url, { stdin: Readable.from(Array.from({ length: 8 }, () => chunk)), stdout: out });
      assert.equal(res.exitCode, 0);
      assert.equal(out.text.trim(), String(8 * 1024 * 1024));
    });

    it("delivers resize messages and kills the process when the client goes away", async () => {
      const s = server.getExec({ ...execReq(["x"], { tty: true }), containerId: "sizes" });
      const sizes = new SizeQueue();
      sizes.push({ width: 100, height: 30 });
      const out = new Sink();
      void wsRemoteCommand(s.url, { stdout: out, tty: true, resize: sizes }).catch(() => undefined);
      await waitFor(() => out.text.includes("size 100x30"));
      sizes.end();

      const { url } = server.getExec(execReq(["sleep", "999"]));
      const { WebSocket } = await import("ws");
      const ws = new WebSocket(url.replace("http:", "ws:"), ["v4.channel.k8s.io"]);
      await once(ws, "open");
      await waitFor(() => backend.children.some((c) => c.spawnargs.includes("999")));
      const child = backend.children.find((c) => c.spawnargs.includes("999"))!;
      ws.terminate();
      await waitFor(() => child.signalCode !== null);
      assert.equal(child.signalCode, "SIGKILL");
    });
  });

  describe("port forward", () => {
    it("forwards over SPDY (several connections on one session) and reports refused ports", async () => {
      const { url } = server.getPortForward({ podSandboxId: "pod1", port: [] });
      const client = await SpdyPortForwardClient.connect(url);
      for (let i = 0; i < 3; i++) {
        const local = new PassThrough();
        const out = new Sink();
        local.pipe(out);
        const duplex = new (await import("node:stream")).Duplex({
          read() {},
          write(c, _e, cb) {
            out.write(c);
            cb();
          },
          final(cb) {
            cb();
          },
        });
        const p = client.forward(httpPort, duplex);
        duplex.push(`GET / HTTP/1.0\r\nHost: x\r\n\r\n`);
        duplex.push(null);
        await p;
        assert.match(out.text, /^HTTP\/1\.1 200 OK/);
        assert.match(out.text, /hello from the target\n$/);
      }
      // A port nobody listens on: the error stream carries the reason.
      const closed = net.createServer();
      closed.listen(0, "127.0.0.1");
      await once(closed, "listening");
      const deadPort = (closed.address() as net.AddressInfo).port;
      closed.close();
      const d = new (await import("node:stream")).Duplex({ read() {}, write(_c, _e, cb) { cb(); } });
      await assert.rejects(client.forward(deadPort, d), /error forwarding port \d+ to pod pod1: cannot connect/);
      client.close();
    });

    it("forwards over WebSocket with the port in the request", async () => {
      const { url } = server.getPortForward({ podSandboxId: "pod1", port: [httpPort] });
      const { streams, done, ws } = await wsPortForward(url);
      const s = streams.get(httpPort);
      assert.ok(s, "no stream for the port");
      const parts: Buffer[] = [];
      s.on("data", (c: Buffer) => parts.push(c));
      s.write("GET / HTTP/1.0\r\n\r\n");
      await waitFor(() => Buffer.concat(parts).toString().includes("hello from the target"));
      ws.close();
      await done;
    });
  });

  describe("tokens", () => {
    it("expire after the TTL", async () => {
      const short = new StreamingServer({ address: "127.0.0.1:0", tokenTtlSeconds: 1, idleTimeoutSeconds: 60, backend });
      await short.start();
      try {
        const { url } = short.getExec(execReq(["true"]));
        await new Promise((r) => setTimeout(r, 1100));
        await assert.rejects(spdyRemoteCommand(url, { stdout: new Sink() }), /404/);
      } finally {
        await short.stop();
      }
    });

    it("close idle sessions and kill their process (idle_timeout_seconds)", async () => {
      const idle = new StreamingServer({ address: "127.0.0.1:0", tokenTtlSeconds: 60, idleTimeoutSeconds: 1, backend });
      await idle.start();
      try {
        const { url } = idle.getExec(execReq(["sleep", "4242"]));
        const t0 = Date.now();
        await assert.rejects(spdyRemoteCommand(url, { stdout: new Sink() }));
        const child = backend.children.find((c) => c.spawnargs.includes("4242"))!;
        await waitFor(() => child.signalCode !== null);
        assert.equal(child.signalCode, "SIGKILL");
        assert.ok(Date.now() - t0 >= 900, "closed before the idle timeout");
      } finally {
        await idle.stop();
      }
    });

    it("serve TLS when a certificate is configured (SPDY and WebSocket)", async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-stream-tls-"));
      try {
        const cert = path.join(dir, "cert.pem");
        const key = path.join(dir, "key.pem");
        execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" });
        const tls = new StreamingServer({ address: "127.0.0.1:0", tlsCertFile: cert, tlsKeyFile: key, tokenTtlSeconds: 60, idleTimeoutSeconds: 60, backend });
        await tls.start();
        try {
          const ca = fs.readFileSync(cert);
          const a = tls.getExec(execReq(["echo", "over tls"]));
          assert.match(a.url, /^https:\/\//);
          const out = new Sink();
          assert.equal((await spdyRemoteCommand(a.url, { stdout: out }, { tls: { ca } })).exitCode, 0);
          assert.equal(out.text, "over tls\n");
          const b = tls.getExec(execReq(["echo", "ws over tls"]));
          const wout = new Sink();
          assert.equal((await wsRemoteCommand(b.url, { stdout: wout, ws: { ca } })).exitCode, 0);
          assert.equal(wout.text, "ws over tls\n");
          // An untrusted certificate is refused by the client.
          const c = tls.getExec(execReq(["true"]));
          await assert.rejects(spdyRemoteCommand(c.url, { stdout: new Sink() }), /self[- ]signed|certificate/i);
        } finally {
          await tls.stop();
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it("answers 400 to a request without upgrade and 404 to unknown paths", async () => {
      const { url } = server.getExec(execReq(["true"]));
      const r1 = await fetch(url);
      assert.equal(r1.status, 400);
      const r2 = await fetch(new URL("/nothing", url));
      assert.equal(r2.status, 404);
    });
  });
});
