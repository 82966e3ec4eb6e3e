// Attach through berthd: the CRI call returns a URL, the SPDY (and WebSocket)
// clients connect to busybox containers' stdio through conmon's attach socket.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { status as Grpc } from "@grpc/grpc-js";
import { readdirSync, readlinkSync } from "node:fs";
import { PassThrough, Writable } from "node:stream";
import { WebSocket } from "ws";
import { ContainerState } from "../api/gen/cri/v1/api.js";
import { startRegistry, type Registry } from "./harness/registry.js";
import { ensureTestImages } from "./harness/images.js";
import { code, ctrConfig, runCtr, runPod, startEnv, stopEnv, waitExited, type Env } from "./containers-helpers.js";
import { SizeQueue, spdyRemoteCommand, wsRemoteCommand } from "../pkg/streaming/index.js";

let reg: Registry;
let env: Env;
let bb: string;

/** Collects output; waitFor resolves once the text matches. */
class Sink extends Writable {
  chunks: Buffer[] = [];
  #waiters: { re: RegExp; resolve: () => void }[] = [];
  override _write(c: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.chunks.push(c);
    const text = this.text;
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.re.test(text)) return true;
      w.resolve();
      return false;
    });
    cb();
  }
  get text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
  waitFor(re: RegExp, ms = 10_000): Promise<void> {
    if (re.test(this.text)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${re} in ${JSON.stringify(this.text)}`)), ms);
      this.#waiters.push({
        re,
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
      });
    });
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

const ECHO_BOTH = 'while read l; do echo "out:$l"; echo "err:$l" >&2; done';

test("Attach: validation; output written after attaching, stdin, stderr; several attachers; the container keeps its stdin", async () => {
  const pod = await runPod(env, "attach");
  const rt = env.d.client.runtime;
  const noStdin = await runCtr(env, pod, ctrConfig("sleeper", bb, { command: ["sleep", "3600"] }));
  await assert.rejects(rt.attach({ containerId: noStdin, tty: true, stdout: true }), (e) => code(e) === Grpc.INVALID_ARGUMENT);
  await assert.rejects(rt.attach({ containerId: noStdin, stdin: true, stdout: true }), (e) => code(e) === Grpc.INVALID_ARGUMENT);
  await assert.rejects(rt.attach({ containerId: "nope", stdout: true }), (e) => code(e) === Grpc.NOT_FOUND);

  const id = await runCtr(env, pod, ctrConfig("echo", bb, { command: ["/bin/sh", "-c", ECHO_BOTH], stdin: true }));

  // First attacher: stdin, stdout and stderr over SPDY.
  const in1 = new PassThrough();
  const out1 = new Sink();
  const err1 = new Sink();
  const a1 = spdyRemoteCommand((await rt.attach({ containerId: id, stdin: true, stdout: true, stderr: true })).url, { stdin: in1, stdout: out1, stderr: err1 });
  in1.write("one\n");
  await out1.waitFor(/out:one\n/);
  await err1.waitFor(/err:one\n/);

  // Second attacher: output only, over WebSocket; sees what is written from now on.
  const out2 = new Sink();
  const err2 = new Sink();
  const a2 = wsRemoteCommand((await rt.attach({ containerId: id, stdout: true, stderr: true })).url, { stdout: out2, stderr: err2 });
  // Both must be connected before the next line: repeat until the second one sees output.
  for (let i = 0; !/out:two/.test(out2.text); i++) {
    if (i > 100) assert.fail(`second attacher saw nothing: ${JSON.stringify(out2.text)}`);
    in1.write("two\n");
    await Promise.race([out2.waitFor(/out:two\n/, 100).catch(() => undefined)]);
  }
  in1.write("three\n");
  await out1.waitFor(/out:three\n/);
  await out2.waitFor(/out:three\n/);
  await err2.waitFor(/err:three\n/);
  assert.doesNotMatch(out2.text, /one/, "the second attacher sees only output written after it attached");

  // The first client closes its input: without stdin_once its attach ends, the container keeps running with stdin open.
  in1.end();
  assert.deepEqual(await a1, { exitCode: 0 });
  let st = await rt.containerStatus({ containerId: id });
  assert.equal(st.status?.state, ContainerState.CONTAINER_RUNNING);

  // A third attacher writes; the second still sees it.
  const in3 = new PassThrough();
  const out3 = new Sink();
  const a3 = spdyRemoteCommand((await rt.attach({ containerId: id, stdin: true, stdout: true })).url, { stdin: in3, stdout: out3 });
  in3.write("four\n");
  await out3.waitFor(/out:four\n/);
  await out2.waitFor(/out:four\n/);
  assert.doesNotMatch(out3.text, /err:/, "stderr is not sent to an attacher that did not ask for it");
  in3.end();
  assert.deepEqual(await a3, { exitCode: 0 });

  // The container exits: the remaining attach ends with success.
  await rt.stopContainer({ containerId: id, timeout: 2 });
  assert.equal((await a2).exitCode, 0);
  st = await rt.containerStatus({ containerId: id });
  assert.equal(st.status?.state, ContainerState.CONTAINER_EXITED);
});

test("Attach with stdin_once: the container's stdin closes when the first attach's input ends", async () => {
  const pod = await runPod(env, "attach-once");
  const rt = env.d.client.runtime;
  const id = await runCtr(env, pod, ctrConfig("once", bb, { command: ["/bin/sh", "-c", "cat; echo stdin-closed"], stdin: true, stdinOnce: true }));
  const input = new PassThrough();
  const out = new Sink();
  const a = spdyRemoteCommand((await rt.attach({ containerId: id, stdin: true, stdout: true, stderr: true })).url, { stdin: input, stdout: out, stderr: new Sink() });
  input.write("line\n");
  await out.waitFor(/line\n/);
  input.end();
  // cat sees EOF, the shell prints and exits; the attach lasts until the container exits.
  assert.deepEqual(await a, { exitCode: 0 });
  assert.equal(out.text, "line\nstdin-closed\n");
  const status = await waitExited(env, id);
  assert.equal(status.exitCode, 0);
});

test("Attach to a tty container: resize through conmon, interactive shell", async () => {
  const pod = await runPod(env, "attach-tty");
  const rt = env.d.client.runtime;
  const id = await runCtr(env, pod, ctrConfig("tty", bb, { command: ["/bin/sh"], stdin: true, tty: true }));
  await assert.rejects(rt.attach({ containerId: id, stdout: true, stderr: true }), (e) => code(e) === Grpc.INVALID_ARGUMENT);
  const input = new PassThrough();
  const out = new Sink();
  const sizes = new SizeQueue();
  sizes.push({ width: 91, height: 33 });
  const a = spdyRemoteCommand((await rt.attach({ containerId: id, tty: true, stdin: true, stdout: true })).url, { stdin: input, stdout: out, tty: true, resize: sizes });
  // The size goes to conmon's control fifo; wait until the shell's terminal has it.
  for (let i = 0; !/33 91/.test(out.text); i++) {
    if (i > 50) assert.fail(`terminal size never reached the container: ${JSON.stringify(out.text)}`);
    input.write("stty size\n");
    await out.waitFor(/33 91/, 200).catch(() => undefined);
  }
  input.write("echo $((6*7))\n");
  await out.waitFor(/\r\n42\r\n/);
  sizes.push({ width: 120, height: 40 });
  for (let i = 0; !/40 120/.test(out.text); i++) {
    if (i > 50) assert.fail(`second size never reached the container: ${JSON.stringify(out.text)}`);
    input.write("stty size\n");
    await out.waitFor(/40 120/, 200).catch(() => undefined);
  }
  input.write("exit 3\n");
  assert.deepEqual(await a, { exitCode: 0 });
  sizes.end();
  const status = await waitExited(env, id);
  assert.equal(status.exitCode, 3);
});

test("Attach sessions leave no sockets behind in berthd, and a client that goes away detaches", async () => {
  const pod = await runPod(env, "attach-fds");
  const rt = env.d.client.runtime;
  const id = await runCtr(env, pod, ctrConfig("echo", bb, { command: ["/bin/sh", "-c", ECHO_BOTH], stdin: true }));
  const pid = env.d.process.pid!;
  const sockets = () => readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:");
    } catch {
      return false;
    }
  }).length;
  const session = async (i: number) => {
    const input = new PassThrough();
    const out = new Sink();
    const a = spdyRemoteCommand((await rt.attach({ containerId: id, stdin: true, stdout: true })).url, { stdin: input, stdout: out });
    input.write(`s${i}\n`);
    await out.waitFor(new RegExp(`out:s${i}\\n`));
    input.end();
    assert.deepEqual(await a, { exitCode: 0 });
  };
  await session(0);
  await new Promise((r) => setTimeout(r, 200));
  const before = sockets();
  for (let i = 1; i <= 5; i++) await session(i);
  // A burst of attaches at once (conmon's listen backlog is 10).
  await Promise.all(Array.from({ length: 20 }, (_, i) => session(100 + i)));
  // A WebSocket client that closes its connection mid-session: the attach ends on the server too.
  const ws = new WebSocket((await rt.attach({ containerId: id, stdout: true })).url.replace(/^http/, "ws"), ["v5.channel.k8s.io"]);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  ws.terminate();
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(sockets() <= before + 3, `berthd sockets grew from ${before} to ${sockets()}`);
  await session(11);
});
