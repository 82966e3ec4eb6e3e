// Exec and PortForward through berthd: the CRI call returns a URL, the SPDY
// and WebSocket clients drive it against busybox containers run by the daemon.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { status as Grpc } from "@grpc/grpc-js";
import { Duplex, Readable, Writable } from "node:stream";
import { startRegistry, type Registry } from "./harness/registry.js";
import { ensureTestImages } from "./harness/images.js";
import { code, ctrConfig, runCtr, runPod, startEnv, stopEnv, type Env } from "./containers-helpers.js";
import { SizeQueue, SpdyPortForwardClient, spdyRemoteCommand, wsRemoteCommand } from "../pkg/streaming/index.js";

let reg: Registry;
let env: Env;
let bb: string;

class Sink extends Writable {
  chunks: Buffer[] = [];
  override _write(c: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.chunks.push(c);
    cb();
  }
  get text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

before(async () => {
  reg = await startRegistry();
  const images = await ensureTestImages(reg);
  env = await startEnv(reg, images);
  bb = images["busybox:latest"].ref;
});

after(async () => {
  if (env) await stopEnv(env);
  await reg?.stop();
});

test("Exec: validation, stdin piped, exit codes, tty with the client's size (SPDY and WebSocket)", async () => {
  const pod = await runPod(env, "exec");
  const id = await runCtr(env, pod, ctrConfig("sleeper", bb, { command: ["sleep", "3600"] }));
  const rt = env.d.client.runtime;

  await assert.rejects(rt.exec({ containerId: id, cmd: ["ls"], tty: true, stdout: true, stderr: true }), (e) => code(e) === Grpc.INVALID_ARGUMENT);
  await assert.rejects(rt.exec({ containerId: id, cmd: ["ls"] }), (e) => code(e) === Grpc.INVALID_ARGUMENT);
  await assert.rejects(rt.exec({ containerId: "nope", cmd: ["ls"], stdout: true }), (e) => code(e) === Grpc.NOT_FOUND);

  const a = await rt.exec({ containerId: id, cmd: ["/bin/sh", "-c", "cat; hostname; exit 5"], stdin: true, stdout: true, stderr: true });
  assert.match(a.url, /^http:\/\/127\.0\.0\.1:\d+\/exec\//);
  const out = new Sink();
  const res = await spdyRemoteCommand(a.url, { stdin: Readable.from([Buffer.from("from stdin\n")]), stdout: out, stderr: new Sink() });
  assert.equal(res.exitCode, 5);
  assert.equal(out.text, "from stdin\nexec\n");

  const b = await rt.exec({ containerId: id, cmd: ["/bin/sh", "-c", "echo ws; exit 2"], stdout: true });
  const wout = new Sink();
  assert.deepEqual(await wsRemoteCommand(b.url, { stdout: wout }), { exitCode: 2, protocol: "v5.channel.k8s.io" });
  assert.equal(wout.text, "ws\n");

  const t = await rt.exec({ containerId: id, cmd: ["/bin/sh", "-c", "tty; stty size"], tty: true, stdout: true });
  const sizes = new SizeQueue();
  sizes.push({ width: 101, height: 37 });
  const tout = new Sink();
  assert.equal((await spdyRemoteCommand(t.url, { stdout: tout, tty: true, resize: sizes })).exitCode, 0);
  sizes.end();
  assert.match(tout.text, /^\/dev\/pts\/\d+\r\n37 101\r\n$/);

  // A token works once.
  await assert.rejects(spdyRemoteCommand(t.url, { stdout: new Sink() }), /404/);
});

test("PortForward: busybox httpd in a pod network namespace, and a host-network pod", async () => {
  const pod = await runPod(env, "pf");
  await runCtr(env, pod, ctrConfig("httpd", bb, { command: ["/bin/sh", "-c", "mkdir -p /www && echo pod-content > /www/index.html && exec httpd -f -p 8080 -h /www"] }));
  const rt = env.d.client.runtime;
  await assert.rejects(rt.portForward({ podSandboxId: "nope", port: [80] }), (e) => code(e) === Grpc.NOT_FOUND);

  const get = async (podId: string, port: number): Promise<string> => {
    const { url } = await rt.portForward({ podSandboxId: podId, port: [port] });
    const client = await SpdyPortForwardClient.connect(url);
    try {
      for (let attempt = 0; ; attempt++) {
        const sink = new Sink();
        const local = new Duplex({
          read() {},
          write(c: Buffer, _e, cb) {
            sink.write(c);
            cb();
          },
        });
        const p = client.forward(port, local);
        local.push("GET /index.html HTTP/1.0\r\n\r\n");
        try {
          await p;
          return sink.text;
        } catch (err) {
          // httpd may still be starting.
          if (attempt > 40) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    } finally {
      client.close();
    }
  };
  assert.match(await get(pod.id, 8080), /200 OK[\s\S]*pod-content\n$/);

  const hostPod = await runPod(env, "pf-host", { linux: { securityContext: { namespaceOptions: { network: 2 } } } });
  const port = 20000 + (process.pid % 20000);
  await runCtr(env, hostPod, ctrConfig("httpd", bb, { command: ["/bin/sh", "-c", `mkdir -p /www && echo host-content > /www/index.html && exec httpd -f -p 127.0.0.1:${port} -h /www`] }));
  assert.match(await get(hostPod.id, port), /host-content\n$/);
});

test("Attach answers with a URL whose session reports that attach is not implemented yet", async () => {
  const pod = await runPod(env, "attach");
  const id = await runCtr(env, pod, ctrConfig("sleeper", bb, { command: ["sleep", "3600"] }));
  const rt = env.d.client.runtime;
  await assert.rejects(rt.attach({ containerId: id, tty: true, stdout: true }), (e) => code(e) === Grpc.INVALID_ARGUMENT);
  const { url } = await rt.attach({ containerId: id, stdout: true, stderr: true });
  await assert.rejects(spdyRemoteCommand(url, { stdout: new Sink(), stderr: new Sink() }), /not implemented/);
});
