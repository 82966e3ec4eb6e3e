// Exec, attach and port-forward through berthd's streaming server driven by a Go client that
// behaves like Kubernetes' own (client-go remotecommand/portforward over moby/spdystream; see
// test-e2e/interop/stream). The CRI RPCs hand out the URLs; the Go binary does the rest.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { randomBytes } from "node:crypto";
import net from "node:net";
import { execFileSync } from "node:child_process";
import { closeSync, constants, existsSync, mkdtempSync, openSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { PassThrough, type Duplex } from "node:stream";
import { REPO_ROOT } from "./harness/daemon.js";
import { startRegistry, type Registry } from "./harness/registry.js";
import { ensureTestImages } from "./harness/images.js";
import { ctrConfig, runCtr, runPod, startEnv, stopEnv, waitExited, type Env } from "./containers-helpers.js";
import { goBuild } from "./harness/go-build.js";
import { spdyRemoteCommand } from "../pkg/streaming/index.js";
import { PtyMaster, openPty, setWindowSize } from "../pkg/sys/index.js";

let reg: Registry;
let env: Env;
let bb: string;
let bin: string;

// hack/install-deps.sh installs Go and spdystream: a missing toolchain fails the build (with the
// packages named), it does not skip these tests.
const skip = false;

before(async () => {
  if (skip) return;
  const built = goBuild(join(REPO_ROOT, "test-e2e", "interop", "stream"));
  reg = await startRegistry();
  const images = await ensureTestImages(reg);
  env = await startEnv(reg, images);
  bb = images["busybox:latest"].ref;
  bin = await built;
});

after(async () => {
  if (env) await stopEnv(env);
  await reg?.stop();
  if (bin) rmSync(dirname(bin), { recursive: true, force: true });
});

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** One run of the Go client: output collected as it comes, stdin under the test's control. */
class GoRun {
  readonly child: ChildProcessWithoutNullStreams;
  readonly done: Promise<Result>;
  #out: Buffer[] = [];
  #err: Buffer[] = [];
  #listeners = new Set<() => void>();

  constructor(args: string[], timeoutMs = 60_000, program = bin, childEnv: NodeJS.ProcessEnv = process.env) {
    this.child = spawn(program, args, { stdio: ["pipe", "pipe", "pipe"], env: childEnv });
    const notify = () => this.#listeners.forEach((l) => l());
    this.child.stdout.on("data", (c: Buffer) => {
      this.#out.push(c);
      notify();
    });
    this.child.stderr.on("data", (c: Buffer) => {
      this.#err.push(c);
      notify();
    });
    this.child.stdin.on("error", () => undefined);
    this.done = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.child.kill("SIGKILL");
        reject(new Error(`stream ${args.join(" ")} did not finish in ${timeoutMs} ms; stdout ${JSON.stringify(this.stdout)}; stderr ${JSON.stringify(this.stderr)}`));
      }, timeoutMs);
      this.child.on("error", reject);
      this.child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code, stdout: this.stdout, stderr: this.stderr });
      });
    });
  }

  get stdout(): string {
    return Buffer.concat(this.#out).toString();
  }

  get stderr(): string {
    return Buffer.concat(this.#err).toString();
  }

  /** Resolves with the match once stdout (or stderr) matches re. */
  waitFor(re: RegExp, where: "stdout" | "stderr" = "stdout", ms = 20_000): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = re.exec(this[where]);
        if (!m) return false;
        this.#listeners.delete(check);
        clearTimeout(timer);
        resolve(m);
        return true;
      };
      const timer = setTimeout(() => {
        this.#listeners.delete(check);
        reject(new Error(`timed out waiting for ${re} on ${where}: ${JSON.stringify(this[where])}`));
      }, ms);
      if (!check()) this.#listeners.add(check);
    });
  }
}

/** Runs the Go client to completion with the given input (then EOF). */
function go(args: string[], stdin = ""): Promise<Result> {
  const run = new GoRun(args);
  run.child.stdin.end(stdin);
  return run.done;
}

const ALL_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"];

test("exec without a tty: every protocol version, stdout and stderr apart, exit codes, stdin to EOF", { skip }, async () => {
  const pod = await runPod(env, "go-exec");
  const id = await runCtr(env, pod, ctrConfig("sleeper", bb, { command: ["sleep", "3600"] }));
  const rt = env.d.client.runtime;
  const exec = async (cmd: string, extra: { stdin?: boolean; stdout?: boolean; stderr?: boolean } = {}) =>
    (await rt.exec({ containerId: id, cmd: ["/bin/sh", "-c", cmd], stdout: true, stderr: true, ...extra })).url;

  // client-go's own offer (v5 first): berth picks v5, which over SPDY is v4.
  let r = await go(["exec", await exec("echo out; echo err >&2")]);
  assert.deepEqual(r, { code: 0, stdout: "out\n", stderr: "err\nprotocol: v5.channel.k8s.io\n" });

  for (const protocol of ALL_PROTOCOLS) {
    const args = ["exec", "-protocols", protocol];
    r = await go([...args, await exec("echo out; echo err >&2")]);
    assert.deepEqual(r, { code: 0, stdout: "out\n", stderr: `err\nprotocol: ${protocol}\n` }, protocol);
    // A non-zero exit: v4/v5 carry the code in a Status, v2/v3 as text (an error for the client).
    r = await go([...args, await exec("echo partial; exit 3")]);
    assert.equal(r.stdout, "partial\n", protocol);
    if (protocol === "v5.channel.k8s.io" || protocol === "v4.channel.k8s.io") {
      assert.equal(r.code, 3, protocol);
      assert.match(r.stderr, /command terminated with exit code 3\n$/);
    } else if (protocol !== "channel.k8s.io") {
      assert.equal(r.code, 1, protocol);
      assert.match(r.stderr, /error: error executing remote command: command terminated with non-zero exit code: exit status 3\n$/);
    }
    // v1 never half-closes stdin, so only v2+ can run a command that reads to EOF.
    if (protocol !== "channel.k8s.io") {
      r = await go([...args, "-stdin", await exec("cat; echo eof", { stdin: true })], "line 1\nline 2\n");
      assert.deepEqual(r, { code: 0, stdout: "line 1\nline 2\neof\n", stderr: `protocol: ${protocol}\n` }, protocol);
    }
  }

  // Exit codes up to 255, and a process killed by a signal (128+9).
  r = await go(["exec", await exec("exit 255")]);
  assert.equal(r.code, 255);
  r = await go(["exec", await exec("kill -9 $$")]);
  assert.equal(r.code, 137);

  // Only the streams the request asked for.
  r = await go(["exec", "-no-stdout", await exec("echo out; echo err >&2; exit 4", { stdout: false })]);
  assert.deepEqual(r, { code: 4, stdout: "", stderr: "err\nprotocol: v5.channel.k8s.io\ncommand terminated with exit code 4\n" });

  // Several MiB each way through stdin and stdout, and a large stderr alongside.
  const big = randomBytes(3 * 1024 * 1024).toString("base64");
  r = await go(["exec", "-stdin", await exec("cat; head -c 2000000 /dev/zero | tr '\\0' e >&2", { stdin: true })], big);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.length, big.length);
  assert.ok(r.stdout === big, "stdout came back intact");
  assert.equal(r.stderr.length, 2_000_000 + "protocol: v5.channel.k8s.io\n".length);

  // The command exits while the client's input is still open: the server closes stdin from its
  // side, the client's stdin drain ends, and it exits with the code.
  const open = new GoRun(["exec", "-stdin", await exec("echo bye; exit 6", { stdin: true })]);
  r = await open.done;
  assert.deepEqual(r, { code: 6, stdout: "bye\n", stderr: "protocol: v5.channel.k8s.io\ncommand terminated with exit code 6\n" });
  open.child.stdin.destroy();

  // The client goes away mid-command (kubectl killed): berthd kills the exec'd process.
  const gone = new GoRun(["exec", await exec("echo started; exec sleep 3601")]);
  await gone.waitFor(/started\n/);
  gone.child.kill("SIGKILL");
  await gone.done;
  for (let i = 0; ; i++) {
    const ps = await go(["exec", await exec("ps -o args")]);
    assert.match(ps.stdout, /sleep 3600/, "ps sees the container's processes");
    if (!ps.stdout.includes("sleep 3601")) break;
    if (i > 50) assert.fail(`the exec'd process outlived its client: ${ps.stdout}`);
    await new Promise((res) => setTimeout(res, 100));
  }

  // Nothing the server speaks: the 403 body becomes the client's upgrade error.
  r = await go(["exec", "-protocols", "v9.channel.k8s.io", await exec("true")]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error: unable to upgrade connection: unable to upgrade: unable to negotiate protocol: client supports \["v9\.channel\.k8s\.io"\]/);

  // A command that cannot start: a Failure status whose message the client shows.
  r = await go(["exec", (await rt.exec({ containerId: id, cmd: ["/no/such/binary"], stdout: true, stderr: true })).url]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /no\/such\/binary|exit code 12[67]/);
});

test("exec with a tty: stdin, the first size at once, a resize later (v5, v4, v3)", { skip }, async () => {
  const pod = await runPod(env, "go-tty");
  const id = await runCtr(env, pod, ctrConfig("sleeper", bb, { command: ["sleep", "3600"] }));
  const rt = env.d.client.runtime;
  for (const protocol of ["v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io"]) {
    const script = 'tty; stty size; while [ "$(stty size)" != "30 100" ]; do sleep 0.1; done; echo resized; read x; echo "got:$x"; exit 6';
    const { url } = await rt.exec({ containerId: id, cmd: ["/bin/sh", "-c", script], tty: true, stdin: true, stdout: true });
    const run = new GoRun(["exec", "-tty", "-stdin", "-protocols", protocol, "-sizes", "80x24,100x30", url]);
    await run.waitFor(/resized\r\n/);
    run.child.stdin.end("hello\n");
    const r = await run.done;
    // The terminal echoes the input line; output lines end in \r\n; stderr is merged (no stderr stream).
    // Early lines may come out as \r\r\n (runc clears ONLCR on the console while the command starts;
    // see runc-backend.test.ts).
    assert.match(r.stdout, /^\/dev\/pts\/\d+\r?\r\n24 80\r?\r\nresized\r?\r\nhello\r\ngot:hello\r\n$/, `${protocol}: ${JSON.stringify(r.stdout)}`);
    if (protocol === "v3.channel.k8s.io") {
      assert.equal(r.code, 1);
      assert.match(r.stderr, /error executing remote command: command terminated with non-zero exit code: exit status 6/);
    } else {
      assert.equal(r.code, 6, r.stderr);
    }
  }
  // v2 has no resize stream: the terminal keeps its default size, the exchange still works.
  const { url } = await rt.exec({ containerId: id, cmd: ["/bin/sh", "-c", "tty >/dev/null && echo tty-ok"], tty: true, stdout: true });
  const r = await go(["exec", "-tty", "-protocols", "v2.channel.k8s.io", "-sizes", "80x24", url]);
  assert.deepEqual(r, { code: 0, stdout: "tty-ok\r\n", stderr: "protocol: v2.channel.k8s.io\n" });
});

test("attach through conmon's socket: plain stdio with stdin_once, and a tty with resize", { skip }, async () => {
  const pod = await runPod(env, "go-attach");
  const rt = env.d.client.runtime;

  // The short sleep before the exit: once under load the last line on stderr never reached the
  // attach (stdout had arrived); conmon seems to close its attach sockets at the container's exit
  // before it forwards what is still in the pipes. This test is about the client's protocol.
  const once = await runCtr(env, pod, ctrConfig("once", bb, { command: ["/bin/sh", "-c", "cat; echo stdin-closed; echo to-stderr >&2; sleep 0.5"], stdin: true, stdinOnce: true }));
  const a = await rt.attach({ containerId: once, stdin: true, stdout: true, stderr: true });
  let r = await go(["attach", "-stdin", a.url], "line\n");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "line\nstdin-closed\n");
  assert.equal(r.stderr, "to-stderr\nprotocol: v5.channel.k8s.io\n");
  assert.equal((await waitExited(env, once)).exitCode, 0);

  const tty = await runCtr(env, pod, ctrConfig("tty", bb, { command: ["/bin/sh"], stdin: true, tty: true }));
  const t = await rt.attach({ containerId: tty, tty: true, stdin: true, stdout: true });
  const run = new GoRun(["attach", "-tty", "-stdin", "-sizes", "91x33,120x40", t.url]);
  // The size travels through conmon's control fifo: ask until the shell's terminal has it.
  for (let i = 0; !/33 91/.test(run.stdout); i++) {
    if (i > 50) assert.fail(`terminal size never reached the container: ${JSON.stringify(run.stdout)}`);
    run.child.stdin.write("stty size\n");
    await run.waitFor(/33 91/, "stdout", 200).catch(() => undefined);
  }
  for (let i = 0; !/40 120/.test(run.stdout); i++) {
    if (i > 50) assert.fail(`second size never reached the container: ${JSON.stringify(run.stdout)}`);
    run.child.stdin.write("stty size\n");
    await run.waitFor(/40 120/, "stdout", 200).catch(() => undefined);
  }
  run.child.stdin.write("echo $((6*7)); exit 3\n");
  r = await run.done;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\r\n42\r\n/);
  assert.equal((await waitExited(env, tty)).exitCode, 3);
});

/** Sends data through the forwarded local port, half-closes, and returns what came back. */
function roundTrip(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1");
    const got: Buffer[] = [];
    sock.on("data", (c: Buffer) => got.push(c));
    sock.on("error", reject);
    sock.on("close", () => resolve(Buffer.concat(got)));
    sock.end(data);
  });
}

function httpGet(port: number): Promise<string> {
  return roundTrip(port, Buffer.from("GET /index.html HTTP/1.0\r\n\r\n")).then((b) => b.toString());
}

/**
 * Waits until TCP ports listen in the container's network namespace (read from /proc/net/tcp
 * through an exec). Probing through the forward instead would fail the session: client-go 1.23+
 * closes it at the first refused connection.
 */
async function waitListening(containerId: string, ports: number[]): Promise<void> {
  const rt = env.d.client.runtime;
  for (let i = 0; ; i++) {
    const { url } = await rt.exec({ containerId, cmd: ["cat", "/proc/net/tcp", "/proc/net/tcp6"], stdout: true });
    const r = await go(["exec", url]);
    const listening = new Set(
      r.stdout
        .split("\n")
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f[3] === "0A")
        .map((f) => parseInt(f[1]!.split(":")[1]!, 16)),
    );
    if (ports.every((p) => listening.has(p))) return;
    if (i > 200) assert.fail(`ports ${ports.join(", ")} never listened: ${r.stdout}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

test("port-forward: concurrent connections both ways, a closed port reports through the error stream", { skip }, async () => {
  const pod = await runPod(env, "go-pf");
  const rt = env.d.client.runtime;
  const httpd = await runCtr(env, pod, ctrConfig("httpd", bb, { command: ["/bin/sh", "-c", "mkdir -p /www && echo pod-content > /www/index.html && exec httpd -f -p 8080 -h /www"] }));
  await runCtr(env, pod, ctrConfig("echo", bb, { command: ["nc", "-ll", "-p", "9000", "-e", "cat"] }));
  await waitListening(httpd, [8080, 9000]);

  const start = async (extra: string[] = []) => {
    const { url } = await rt.portForward({ podSandboxId: pod.id, port: [] });
    const run = new GoRun(["portforward", ...extra, "-ports", "8080,9000,9999", url]);
    const local: Record<string, number> = {};
    for (const remote of ["8080", "9000", "9999"]) {
      const m = await run.waitFor(new RegExp(`Forwarding from 127\\.0\\.0\\.1:(\\d+) -> ${remote}\\n`));
      local[remote] = Number(m[1]);
    }
    return { run, local };
  };

  const { run, local } = await start();
  assert.match(await httpGet(local["8080"]!), /200 OK[\s\S]*pod-content\n$/);
  // Several connections at once, both ports, data both ways (nc runs cat per connection).
  const payloads = Array.from({ length: 6 }, () => randomBytes(256 * 1024));
  const [echoed, pages] = await Promise.all([
    Promise.all(payloads.map((p) => roundTrip(local["9000"]!, p))),
    Promise.all([httpGet(local["8080"]!), httpGet(local["8080"]!)]),
  ]);
  for (let i = 0; i < payloads.length; i++) assert.ok(echoed[i]!.equals(payloads[i]!), `echo ${i}: ${echoed[i]!.length} bytes back`);
  for (const page of pages) assert.match(page, /pod-content\n$/);
  // One large transfer: spdystream never sends WINDOW_UPDATE, so nothing may wait for one.
  const large = randomBytes(16 * 1024 * 1024);
  assert.ok((await roundTrip(local["9000"]!, large)).equals(large), "16 MiB echo differs");

  // Nothing listens on 9999: the error stream carries the reason, and (as current client-go does)
  // the client then closes the whole session.
  assert.equal((await roundTrip(local["9999"]!, Buffer.from("x"))).length, 0);
  const r = await run.done;
  assert.equal(r.code, 1);
  assert.match(r.stderr, /an error occurred forwarding \d+ -> 9999: error forwarding port 9999 to pod [0-9a-f]+: .*(refused|ECONNREFUSED)/);
  assert.match(r.stderr, /lost connection to pod\n$/);

  // client-go 1.22 and older kept the session after such an error: the next connection must still work.
  const again = await start(["-keep-on-error"]);
  assert.equal((await roundTrip(again.local["9999"]!, Buffer.from("x"))).length, 0);
  await again.run.waitFor(/an error occurred forwarding \d+ -> 9999/, "stderr");
  assert.match(await httpGet(again.local["8080"]!), /pod-content\n$/);
  const p = randomBytes(64 * 1024);
  assert.ok((await roundTrip(again.local["9000"]!, p)).equals(p));
  again.run.child.kill("SIGTERM");
  assert.equal((await again.run.done).code, 0);
});

test("bench: exec round trip through the Go client, Exec RPC to exit status (prints p50/p90)", { skip }, async () => {
  const pod = await runPod(env, "go-bench");
  const id = await runCtr(env, pod, ctrConfig("sleeper", bb, { command: ["sleep", "3600"] }));
  const rt = env.d.client.runtime;
  const n = Number(process.env["BERTH_INTEROP_BENCH_N"] ?? 50);
  const pid = env.d.process.pid!;
  const sockets = () =>
    readdirSync(`/proc/${pid}/fd`).filter((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:");
      } catch {
        return false;
      }
    }).length;
  const socketsBefore = sockets();
  const run = new GoRun(["bench"], 600_000);
  // Interleaved with berth's own Node client over the same server, so a slow machine shows in both.
  const goMs: number[] = [];
  const nodeMs: number[] = [];
  const elapsed = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
  for (let i = 0; i < n; i++) {
    let t0 = process.hrtime.bigint();
    const { url } = await rt.exec({ containerId: id, cmd: ["true"], stdout: true });
    run.child.stdin.write(url + "\n");
    await run.waitFor(new RegExp(`^(?:.*\\n){${i + 1}}`));
    goMs.push(elapsed(t0));
    t0 = process.hrtime.bigint();
    const res = await spdyRemoteCommand((await rt.exec({ containerId: id, cmd: ["true"], stdout: true })).url, { stdout: new PassThrough().resume() });
    assert.equal(res.exitCode, 0);
    nodeMs.push(elapsed(t0));
  }
  run.child.stdin.end();
  const r = await run.done;
  const results = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { exit: number; stdout: string; error?: string; ms: number });
  assert.equal(results.length, n);
  for (const res of results) assert.deepEqual({ ...res, ms: 0 }, { exit: 0, stdout: "", ms: 0 });
  const summary = (ms: number[]) => {
    ms.sort((a, b) => a - b);
    const pct = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]!.toFixed(1);
    return `p50 ${pct(0.5)} ms, p90 ${pct(0.9)} ms, max ${ms[ms.length - 1]!.toFixed(1)} ms`;
  };
  // Every session's connection is gone from berthd (the clients close them; allow a moment).
  for (let i = 0; sockets() > socketsBefore + 2; i++) {
    if (i > 50) assert.fail(`berthd sockets grew from ${socketsBefore} to ${sockets()} over ${2 * n} exec sessions`);
    await new Promise((res) => setTimeout(res, 100));
  }
  console.log(
    `# exec 'true' round trip (Exec RPC → exit status), n=${n}: Go client ${summary(goMs)} ` +
      `(of which the SPDY session, upgrade to status: ${summary(results.map((x) => x.ms))}); berth's Node client ${summary(nodeMs)}`,
  );
});

// --- kubectl through a fake API server -------------------------------------------------------
//
// kubectl exec/attach/port-forward talk to an API server: discovery, a GET of the pod, then a POST
// to pods/NAME/{exec,attach,portforward} that the API server upgrades by proxying to the kubelet,
// which proxies to the runtime's streaming URL. This stand-in answers discovery and the pod GET
// from a table, asks berthd for the URL over CRI, and splices the client's connection onto it with
// only the request line rewritten (headers and every byte after them untouched).

/** kubectl to use: BERTH_KUBECTL, else Debian's kubernetes-client 1.20 unpacked by hack/install-deps.sh, else /usr/bin/kubectl. */
const DEBIAN_KUBECTL = join(REPO_ROOT, ".tmp", "kubernetes-client", "usr", "bin", "kubectl");
const KUBECTL = process.env["BERTH_KUBECTL"] ?? (existsSync(DEBIAN_KUBECTL) ? DEBIAN_KUBECTL : "/usr/bin/kubectl");
function kubectlVersion(): string | undefined {
  if (!existsSync(KUBECTL)) return undefined;
  try {
    const out = execFileSync(KUBECTL, ["version", "--client", "-o", "json"], { encoding: "utf8", timeout: 20_000, env: { ...process.env, HOME: tmpdir() } });
    return (JSON.parse(out) as { clientVersion?: { gitVersion?: string } }).clientVersion?.gitVersion;
  } catch {
    return undefined;
  }
}
const kubectlVer = skip ? undefined : kubectlVersion();
const skipKubectl = skip || (kubectlVer ? false : `no kubectl at ${KUBECTL} (set BERTH_KUBECTL; Debian package kubernetes-client)`);

interface FakePod {
  podSandboxId: string;
  containerId: string;
  container: { name: string; stdin?: boolean; tty?: boolean };
}

class FakeApiServer {
  readonly pods = new Map<string, FakePod>();
  readonly requests: string[] = [];
  #server = http.createServer();
  #sockets = new Set<Duplex>();
  url = "";

  constructor(private readonly e: Env) {
    this.#server.on("request", (req, res) => this.#request(req, res));
    this.#server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
      socket.on("error", () => undefined);
      this.#upgrade(req, socket, head).catch((err: Error) => {
        socket.end(`HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${err.message}\n`);
      });
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }

  #json(res: http.ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { "content-type": "application/json" }).end(JSON.stringify(body));
  }

  #request(req: http.IncomingMessage, res: http.ServerResponse): void {
    const u = new URL(req.url ?? "/", "http://x");
    this.requests.push(`${req.method} ${u.pathname}`);
    if (u.pathname === "/api") return this.#json(res, 200, { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [] });
    if (u.pathname === "/apis") return this.#json(res, 200, { kind: "APIGroupList", apiVersion: "v1", groups: [] });
    if (u.pathname === "/api/v1") {
      return this.#json(res, 200, {
        kind: "APIResourceList",
        groupVersion: "v1",
        resources: [
          { name: "pods", singularName: "", namespaced: true, kind: "Pod", verbs: ["get", "list"], shortNames: ["po"] },
          { name: "pods/exec", singularName: "", namespaced: true, kind: "PodExecOptions", verbs: ["create", "get"] },
          { name: "pods/attach", singularName: "", namespaced: true, kind: "PodAttachOptions", verbs: ["create", "get"] },
          { name: "pods/portforward", singularName: "", namespaced: true, kind: "PodPortForwardOptions", verbs: ["create", "get"] },
        ],
      });
    }
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(u.pathname);
    const pod = m ? this.pods.get(m[2]!) : undefined;
    if (m && pod && req.method === "GET") {
      return this.#json(res, 200, {
        kind: "Pod",
        apiVersion: "v1",
        metadata: { name: m[2], namespace: m[1], uid: pod.podSandboxId },
        spec: { containers: [{ image: "busybox", ...pod.container }] },
        status: { phase: "Running", containerStatuses: [{ name: pod.container.name, ready: true, restartCount: 0, image: "busybox", imageID: "", state: { running: {} } }] },
      });
    }
    this.#json(res, 404, { kind: "Status", apiVersion: "v1", status: "Failure", message: `${u.pathname} not found`, reason: "NotFound", code: 404 });
  }

  async #upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const u = new URL(req.url ?? "/", "http://x");
    this.requests.push(`${req.method} ${u.pathname} upgrade=${(req.headers.upgrade ?? "").toLowerCase()}`);
    const m = /^\/api\/v1\/namespaces\/[^/]+\/pods\/([^/]+)\/(exec|attach|portforward)$/.exec(u.pathname);
    const pod = m ? this.pods.get(m[1]!) : undefined;
    if (!m || !pod) throw new Error(`no such pod subresource: ${u.pathname}`);
    const flag = (name: string) => u.searchParams.get(name) === "true" || u.searchParams.get(name) === "1";
    const rt = this.e.d.client.runtime;
    let target: string;
    if (m[2] === "exec") {
      const r = await rt.exec({ containerId: pod.containerId, cmd: u.searchParams.getAll("command"), stdin: flag("stdin"), stdout: flag("stdout"), stderr: flag("stderr"), tty: flag("tty") });
      target = r.url;
    } else if (m[2] === "attach") {
      const r = await rt.attach({ containerId: pod.containerId, stdin: flag("stdin"), stdout: flag("stdout"), stderr: flag("stderr"), tty: flag("tty") });
      target = r.url;
    } else {
      target = (await rt.portForward({ podSandboxId: pod.podSandboxId, port: [] })).url;
    }
    const t = new URL(target);
    const upstream = net.connect(Number(t.port), t.hostname);
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
    await new Promise<void>((resolve, reject) => {
      upstream.once("connect", resolve);
      upstream.once("error", reject);
    });
    // The client's request, with the path replaced and Host pointing at the streaming server.
    let text = `${req.method} ${t.pathname} HTTP/1.1\r\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!;
      text += `${name}: ${name.toLowerCase() === "host" ? t.host : req.rawHeaders[i + 1]!}\r\n`;
    }
    upstream.write(text + "\r\n");
    if (head.length > 0) upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
  }
}

function kubectlArgs(home: string, args: string[]): string[] {
  return ["--kubeconfig", join(home, "kubeconfig"), "--cache-dir", join(home, "cache"), "-n", "e2e", ...args];
}

function kubectlEnv(home: string, websockets: boolean): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HOME: home,
    // kubectl 1.30+ tries WebSocket first; keep it on SPDY, the path under test, unless asked.
    KUBECTL_REMOTE_COMMAND_WEBSOCKETS: String(websockets),
    KUBECTL_PORT_FORWARD_WEBSOCKETS: "false",
  };
}

/** A kubectl run against the fake API server. */
function kubectl(home: string, args: string[], websockets = false): GoRun {
  return new GoRun(kubectlArgs(home, args), 120_000, KUBECTL, kubectlEnv(home, websockets));
}

/** kubectl with its stdio on a new pty of the given size; returns the user's side of the terminal. */
function kubectlOnPty(home: string, args: string[], columns: number, rows: number) {
  const pty = openPty();
  const slave = openSync(pty.slavePath, constants.O_RDWR | constants.O_NOCTTY);
  setWindowSize(slave, columns, rows);
  const child = spawn(KUBECTL, kubectlArgs(home, args), { stdio: [slave, slave, slave], env: kubectlEnv(home, false) });
  closeSync(slave);
  const user = new PtyMaster(pty.master);
  const screen = { text: "" };
  user.on("data", (c: Buffer) => (screen.text += c.toString("utf8")));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const waitScreen = async (re: RegExp, ms = 20_000) => {
    const end = Date.now() + ms;
    while (!re.test(screen.text)) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${re} on kubectl's terminal: ${JSON.stringify(screen.text)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  return { child, user, screen, exited, waitScreen };
}

function kubectlMinor(): number {
  const m = /^v1\.(\d+)\./.exec(kubectlVer ?? "");
  return m ? Number(m[1]) : 0;
}

/** kubectl 1.30 and later speak remote command over WebSocket (v5) as well. */
function kubectlHasWebSockets(): boolean {
  return kubectlMinor() >= 30;
}

test(`kubectl (${kubectlVer ?? "absent"}) exec, attach and port-forward through a fake API server`, { skip: skipKubectl }, async () => {
  const api = new FakeApiServer(env);
  await api.start();
  const home = mkdtempSync(join(tmpdir(), "berth-kubectl-"));
  writeFileSync(
    join(home, "kubeconfig"),
    [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "- name: fake",
      `  cluster: {server: "${api.url}"}`,
      "users:",
      "- name: nobody",
      "  user: {}",
      "contexts:",
      "- name: fake",
      "  context: {cluster: fake, user: nobody, namespace: e2e}",
      "current-context: fake",
      "",
    ].join("\n"),
  );
  try {
    const pod = await runPod(env, "kubectl");
    const sleeper = await runCtr(env, pod, ctrConfig("sleeper", bb, { command: ["sleep", "3600"] }));
    api.pods.set("sleeper", { podSandboxId: pod.id, containerId: sleeper, container: { name: "sleeper" } });

    // exec: stdout and stderr apart, the exit code, stdin to EOF.
    let run = kubectl(home, ["exec", "sleeper", "--", "/bin/sh", "-c", "echo out; echo err >&2; exit 3"]);
    run.child.stdin.end();
    let r = await run.done;
    assert.equal(r.stdout, "out\n");
    assert.match(r.stderr, /^err\ncommand terminated with exit code 3\n$/);
    assert.equal(r.code, 3);
    run = kubectl(home, ["exec", "-i", "sleeper", "--", "/bin/sh", "-c", "cat; echo eof"]);
    run.child.stdin.end("from kubectl\n");
    r = await run.done;
    assert.deepEqual(r, { code: 0, stdout: "from kubectl\neof\n", stderr: "" });
    if (kubectlHasWebSockets()) {
      // The same over WebSocket (the SPDY work must not have disturbed it).
      run = kubectl(home, ["exec", "-i", "sleeper", "--", "/bin/sh", "-c", "cat; echo err >&2; exit 4"], true);
      run.child.stdin.end("over websocket\n");
      r = await run.done;
      assert.deepEqual(r, { code: 4, stdout: "over websocket\n", stderr: "err\ncommand terminated with exit code 4\n" });
      assert.equal(api.requests.filter((q) => q.endsWith("/exec upgrade=websocket")).length, 1, api.requests.join(", "));
    }

    // exec -it on a real terminal: kubectl sends its terminal's size, and a new one on SIGWINCH.
    const t = kubectlOnPty(home, ["exec", "-it", "sleeper", "--", "sh"], 90, 30);
    try {
      await t.waitScreen(/# /);
      t.user.write("stty size\r");
      await t.waitScreen(/30 90/);
      setWindowSize(t.user.fd, 120, 50);
      // Sent by hand: the pty is not kubectl's controlling terminal.
      t.child.kill("SIGWINCH");
      for (let i = 0; !/50 120/.test(t.screen.text); i++) {
        if (i > 50) assert.fail(`the new size never reached the shell: ${JSON.stringify(t.screen.text)}`);
        t.user.write("stty size\r");
        await t.waitScreen(/50 120/, 200).catch(() => undefined);
      }
      t.user.write("echo hi; exit 5\r");
      assert.equal(await t.exited, 5);
      assert.match(t.screen.text, /\nhi\r+\n/);
    } finally {
      t.child.kill("SIGKILL");
      t.user.destroy();
    }

    // attach to a stdin_once container: input, output, and the session ends when the container does.
    const once = await runCtr(env, pod, ctrConfig("once", bb, { command: ["/bin/sh", "-c", "cat; echo stdin-closed"], stdin: true, stdinOnce: true }));
    api.pods.set("once", { podSandboxId: pod.id, containerId: once, container: { name: "once", stdin: true } });
    run = kubectl(home, ["attach", "-i", "once"]);
    run.child.stdin.end("attached line\n");
    r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "attached line\nstdin-closed\n");

    // port-forward: httpd in the pod, two requests at once through kubectl's local port.
    await runCtr(env, pod, ctrConfig("httpd", bb, { command: ["/bin/sh", "-c", "mkdir -p /www && echo kubectl-content > /www/index.html && exec httpd -f -p 8080 -h /www"] }));
    await waitListening(sleeper, [8080]);
    run = kubectl(home, ["port-forward", "pod/sleeper", ":8080", ":9999"]);
    const port = Number((await run.waitFor(/Forwarding from 127\.0\.0\.1:(\d+) -> 8080/))[1]);
    const closedPort = Number((await run.waitFor(/Forwarding from 127\.0\.0\.1:(\d+) -> 9999/))[1]);
    const pages = await Promise.all([httpGet(port), httpGet(port), httpGet(port)]);
    for (const page of pages) assert.match(page, /200 OK[\s\S]*kubectl-content\n$/);
    // Nothing listens on 9999: kubectl shows the error stream's text. Up to 1.22 it carries on;
    // from 1.23 it closes the session and exits.
    assert.equal((await roundTrip(closedPort, Buffer.from("x"))).length, 0);
    await run.waitFor(/an error occurred forwarding \d+ -> 9999: error forwarding port 9999 to pod [0-9a-f]+: .*refused/, "stderr");
    if (kubectlMinor() <= 22) {
      assert.match(await httpGet(port), /kubectl-content\n$/);
      run.child.kill("SIGTERM");
      await run.done;
    } else {
      const exited = await run.done;
      assert.notEqual(exited.code, 0, exited.stderr);
    }
    assert.ok(api.requests.includes("POST /api/v1/namespaces/e2e/pods/sleeper/portforward upgrade=spdy/3.1"), api.requests.join(", "));
    assert.equal(api.requests.filter((q) => q.endsWith("/exec upgrade=spdy/3.1")).length, 3, api.requests.join(", "));
  } finally {
    await api.stop();
    rmSync(home, { recursive: true, force: true });
  }
});
