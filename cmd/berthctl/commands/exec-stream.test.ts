/**
 * berthctl's streaming client on a real terminal: a pty stands for the
 * user's terminal (the test types into its master and reads what the user
 * would see), the session runs `sh` in a runc busybox container through the
 * streaming server. Port forward is checked against a loopback server.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import fs from "node:fs";
import http from "node:http";
import type net from "node:net";
import tty from "node:tty";
import { after, before, describe, it } from "node:test";
import { setRootLogger } from "../../../pkg/log/index.js";
import { PtyMaster, openPty, setWindowSize } from "../../../pkg/sys/index.js";
import { RuncStreamingBackend, StreamingServer } from "../../../pkg/streaming/index.js";
import { canRunContainers, startBusyboxContainer, type TestContainer } from "../../../pkg/streaming/testing/busybox-container.js";
import { HostBackend } from "../../../pkg/streaming/testing/host-backend.js";
import { parsePortMapping, startPortForward, streamRemoteCommand } from "./exec-stream.js";

setRootLogger({ level: "silent" });

async function waitFor(cond: () => boolean, what: () => string, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting; saw ${JSON.stringify(what())}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("berthctl exec -it on a terminal", { skip: canRunContainers() ? false : "needs root, runc and /bin/busybox" }, () => {
  let ctr: TestContainer;
  let server: StreamingServer;

  before(async () => {
    ctr = startBusyboxContainer();
    server = new StreamingServer({
      address: "127.0.0.1:0",
      tokenTtlSeconds: 60,
      idleTimeoutSeconds: 600,
      backend: new RuncStreamingBackend({ runtimePath: ctr.runtimePath, runtimeRoot: ctr.runtimeRoot, podNetns: () => undefined }),
    });
    await server.start();
  });

  after(async () => {
    await server?.stop();
    ctr?.remove();
  });

  for (const transport of ["spdy", "websocket"] as const) {
    it(`runs an interactive shell that follows the terminal size (${transport})`, async () => {
      const pty = openPty();
      const slave = fs.openSync(pty.slavePath, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
      setWindowSize(slave, 90, 30);
      const user = new PtyMaster(pty.master);
      let screen = "";
      user.on("data", (c: Buffer) => (screen += c.toString("utf8")));
      const stdin = new tty.ReadStream(slave);
      const stdout = new tty.WriteStream(slave);
      try {
        assert.equal(stdout.columns, 90);
        const { url } = server.getExec({ containerId: ctr.id, cmd: ["sh"], tty: true, stdin: true, stdout: true, stderr: false });
        const done = streamRemoteCommand(url, { stdin: true, tty: true, transport, terminal: { stdin, stdout, stderr: stdout } });
        await waitFor(() => screen.includes("# "), () => screen);
        user.write("stty size\r");
        await waitFor(() => screen.includes("30 90"), () => screen);
        setWindowSize(slave, 120, 50);
        stdout.columns = 120;
        stdout.rows = 50;
        stdout.emit("resize");
        await new Promise((r) => setTimeout(r, 200));
        user.write("stty size; exit 3\r");
        assert.equal(await done, 3);
        assert.match(screen, /50 120/);
        assert.equal(stdin.isRaw, false, "raw mode restored");
      } finally {
        stdin.destroy();
        stdout.destroy();
        user.destroy();
      }
    });
  }
});

describe("berthctl port-forward", () => {
  let server: StreamingServer;
  let target: http.Server;
  let targetPort = 0;

  before(async () => {
    server = new StreamingServer({ address: "127.0.0.1:0", tokenTtlSeconds: 60, idleTimeoutSeconds: 600, backend: new HostBackend() });
    await server.start();
    target = http.createServer((_q, r) => r.end("forwarded!\n"));
    target.listen(0, "127.0.0.1");
    await once(target, "listening");
    targetPort = (target.address() as net.AddressInfo).port;
  });

  after(async () => {
    await server.stop();
    target.close();
  });

  it("parses port mappings", () => {
    assert.deepEqual(parsePortMapping("8080:80"), { local: 8080, remote: 80 });
    assert.deepEqual(parsePortMapping("5000"), { local: 5000, remote: 5000 });
    assert.deepEqual(parsePortMapping(":80"), { local: 0, remote: 80 });
    assert.throws(() => parsePortMapping("x:1"), /invalid port mapping/);
    assert.throws(() => parsePortMapping("1:70000"), /invalid port mapping/);
  });

  it("forwards local connections to the pod port", async () => {
    const { url } = server.getPortForward({ podSandboxId: "p", port: [targetPort] });
    const errors: string[] = [];
    const pf = await startPortForward(url, [{ local: 0, remote: targetPort }], (m) => errors.push(m));
    try {
      const local = pf.ports[0]!.local;
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`http://127.0.0.1:${local}/`, { headers: { connection: "close" } });
        assert.equal(await res.text(), "forwarded!\n");
      }
      assert.deepEqual(errors, []);
    } finally {
      pf.close();
    }
  });
});
