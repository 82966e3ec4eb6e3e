import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { writeFileSync, existsSync, statSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { RuntimeServiceService, ImageServiceService, CgroupDriver } from "../api/gen/cri/v1/api.js";
import { CriClient } from "../pkg/cri/index.js";
import { BERTHD, BERTHCTL, makeDirs, removeDirs, startDaemon, type Daemon } from "./harness/daemon.js";

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

function code(err: unknown): number | undefined {
  return (err as ServiceError).code;
}

test("Version names berth and the v1 API", async () => {
  const v = await d.client.runtime.version({ version: "v1" });
  assert.equal(v.runtimeName, "berth");
  assert.equal(v.runtimeApiVersion, "v1");
  assert.match(v.runtimeVersion, /^\d+\.\d+\.\d+/);
});

test("Status: runtime ready, network not ready until a CNI config appears, then ready without restart", async () => {
  const s = await d.client.runtime.status({});
  const net = s.status?.conditions.find((c) => c.type === "NetworkReady");
  assert.equal(s.status?.conditions.find((c) => c.type === "RuntimeReady")?.status, true);
  assert.equal(net?.status, false);
  assert.equal(net?.reason, "NetworkPluginNotReady");
  assert.ok(net?.message);
  writeFileSync(
    join(d.dirs.cniConfDir, "10-test.conflist"),
    JSON.stringify({ cniVersion: "1.0.0", name: "test", plugins: [{ type: "loopback" }] }),
  );
  const s2 = await d.client.runtime.status({ verbose: true });
  assert.equal(s2.status?.conditions.find((c) => c.type === "NetworkReady")?.status, true);
  const cfg = JSON.parse(s2.info["config"] ?? "{}") as { root?: string };
  assert.equal(cfg.root, d.dirs.root);
});

test("RuntimeConfig reports the cgroup driver", async () => {
  const r = await d.client.runtime.runtimeConfig({});
  assert.ok([CgroupDriver.CGROUPFS, CgroupDriver.SYSTEMD].includes(r.linux?.cgroupDriver ?? CgroupDriver.UNRECOGNIZED));
});

test("the socket is mode 0660", () => {
  assert.equal(statSync(d.dirs.socket).mode & 0o777, 0o660);
});

test("every RPC of both services answers: a response or a gRPC status, never a crash", async () => {
  const unimplemented: string[] = [];
  for (const [service, def] of [
    ["runtime", RuntimeServiceService],
    ["image", ImageServiceService],
  ] as const) {
    for (const [key, method] of Object.entries(def)) {
      const api = (service === "runtime" ? d.client.runtime : d.client.image) as unknown as Record<string, (req: unknown, o: unknown) => unknown>;
      const fn = api[key];
      assert.ok(fn, `client has ${key}`);
      if (method.responseStream) {
        const stream = fn({}, { timeoutMs: 2000 }) as NodeJS.EventEmitter & { cancel(): void };
        await new Promise<void>((resolve) => {
          stream.on("data", () => undefined);
          stream.on("error", (err: ServiceError) => {
            if (err.code === GrpcStatus.UNIMPLEMENTED) unimplemented.push(method.path);
            else assert.ok([GrpcStatus.DEADLINE_EXCEEDED, GrpcStatus.CANCELLED, GrpcStatus.INVALID_ARGUMENT, GrpcStatus.NOT_FOUND].includes(err.code), `${method.path}: ${err.code} ${err.details}`);
            resolve();
          });
          stream.on("end", () => resolve());
        });
        continue;
      }
      try {
        await fn({}, { timeoutMs: 10_000 });
      } catch (err) {
        const c = code(err);
        assert.notEqual(c, undefined, `${method.path} threw a non-gRPC error: ${String(err)}`);
        assert.notEqual(c, GrpcStatus.INTERNAL, `${method.path} answered INTERNAL: ${(err as ServiceError).details}`);
        assert.notEqual(c, GrpcStatus.UNAVAILABLE, `${method.path} made the daemon unavailable`);
        if (c === GrpcStatus.UNIMPLEMENTED) {
          assert.match((err as ServiceError).details, new RegExp(method.path.slice(method.path.lastIndexOf("/") + 1)));
          unimplemented.push(method.path);
        }
      }
    }
  }
  // The daemon is still alive and serving.
  await d.client.runtime.version({});
  console.log(`UNIMPLEMENTED so far: ${unimplemented.length} (${unimplemented.map((p) => p.split("/").pop()).join(", ")})`);
  assert.deepEqual(unimplemented, [], "every CRI RPC is implemented");
});

test("a malformed request gets a gRPC status, and the daemon keeps serving", async () => {
  const { Client, credentials } = await import("@grpc/grpc-js");
  const raw = new Client(`unix://${d.dirs.socket}`, credentials.createInsecure());
  const send = (path: string, payload: Buffer): Promise<ServiceError | null> =>
    new Promise((resolve) => {
      raw.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, payload, (err) => resolve(err));
    });
  // Field 1 of VersionRequest declared as a varint but given garbage bytes.
  const bad = await send("/runtime.v1.RuntimeService/Version", Buffer.from([0x0a, 0xff, 0xff, 0xff]));
  assert.ok(bad, "garbage must not succeed");
  assert.ok([GrpcStatus.INTERNAL, GrpcStatus.INVALID_ARGUMENT].includes(bad.code), `got ${bad.code}`);
  const unknown = await send("/runtime.v1.RuntimeService/NoSuchMethod", Buffer.alloc(0));
  assert.equal(unknown?.code, GrpcStatus.UNIMPLEMENTED);
  raw.close();
  await d.client.runtime.version({});
});

test("berthctl version and info talk to the daemon; a dead socket gives a clear error", () => {
  const v = spawnSync(process.execPath, [BERTHCTL, "--socket", d.dirs.socket, "version"], { encoding: "utf8" });
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stdout, /RuntimeName:\s+berth/);
  const info = spawnSync(process.execPath, [BERTHCTL, "-o", "json", "info"], { encoding: "utf8", env: { ...process.env, BERTH_SOCKET: d.dirs.socket } });
  assert.equal(info.status, 0, info.stderr);
  const doc = JSON.parse(info.stdout) as { status: { status: { conditions: Array<{ type: string }> } } };
  assert.ok(doc.status.status.conditions.some((c) => c.type === "RuntimeReady"));
  const dead = spawnSync(process.execPath, [BERTHCTL, "--socket", "/nonexistent/berth.sock", "version"], { encoding: "utf8" });
  assert.equal(dead.status, 1);
  assert.match(dead.stderr, /cannot reach the runtime at \/nonexistent\/berth.sock: is berthd running/);
});

test("a second berthd on the same root is refused with a clear message", () => {
  const r = spawnSync(process.execPath, [BERTHD, "--root", d.dirs.root, "--state", join(d.dirs.base, "state2"), "--socket", join(d.dirs.base, "other.sock"), "--config", d.dirs.config], {
    encoding: "utf8",
    timeout: 20_000,
  });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /another berthd is already running with root/);
});

test("config errors name the file, key and reason", () => {
  const dirs = makeDirs();
  try {
    const run = (toml: string): { status: number | null; stderr: string } => {
      writeFileSync(dirs.config, toml);
      return spawnSync(process.execPath, [BERTHD, "--config", dirs.config, "--root", dirs.root, "--state", dirs.state, "--socket", dirs.socket], { encoding: "utf8", timeout: 20_000 });
    };
    const unknown = run("[grpc]\nadress = \"/x\"\n");
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, new RegExp(`${dirs.config}: key "grpc.adress": unknown key`));
    const badValue = run("[image]\nmax_concurrent_downloads = 0\n");
    assert.equal(badValue.status, 2);
    assert.match(badValue.stderr, /key "image.max_concurrent_downloads": 0 is below the minimum 1/);
    const badType = run('log_level = "loud"\n');
    assert.match(badType.stderr, /key "log_level": "loud" is not one of/);
    const badToml = run("[grpc\n");
    assert.match(badToml.stderr, /invalid TOML at line 1/);
    chmodSync(dirs.base, 0o700);
    const missing = spawnSync(process.execPath, [BERTHD, "--config", join(dirs.base, "missing.toml"), "--root", dirs.root], { encoding: "utf8" });
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /missing.toml: cannot read config file: ENOENT/);
    const isDir = spawnSync(process.execPath, [BERTHD, "--config", dirs.base, "--root", dirs.root], { encoding: "utf8" });
    assert.match(isDir.stderr, /cannot read config file: EISDIR/);
    assert.equal(existsSync(dirs.root), false, "a bad config must not create the root dir");
  } finally {
    removeDirs(dirs);
  }
});

test("berthd config default prints the full default config", () => {
  const r = spawnSync(process.execPath, [BERTHD, "config", "default"], { encoding: "utf8" });
  assert.equal(r.status, 0);
  assert.match(r.stdout, /\[runtime\.handlers\.runc\]/);
  assert.match(r.stdout, /address = "\/run\/berth\/berth.sock"/);
});

test("SIGTERM drains and exits 0, removing the socket; a stale socket is replaced on restart", async () => {
  const dd = await startDaemon();
  const code = await dd.stop();
  assert.equal(code, 0, dd.output());
  assert.equal(existsSync(dd.dirs.socket), false);
  // A kill -9 leaves the socket file behind; the next start replaces it.
  const d2 = await startDaemon({ dirs: dd.dirs });
  await d2.kill();
  assert.equal(existsSync(dd.dirs.socket), true);
  const d3 = await startDaemon({ dirs: dd.dirs });
  const c = new CriClient(dd.dirs.socket);
  assert.equal((await c.runtime.version({})).runtimeName, "berth");
  c.close();
  assert.equal(await d3.stop(), 0);
  removeDirs(dd.dirs);
});

test("/metrics counts calls per RPC with latency and errors by gRPC code", async () => {
  await d.client.runtime.version({});
  await d.client.runtime.status({});
  await d.client.image.pullImage({ image: { image: "" } }).catch(() => undefined);
  const body = await (await fetch(d.metricsUrl())).text();
  assert.match(body, /berth_cri_requests_total\{service="runtime",method="Version",code="OK"\} [1-9]/);
  assert.match(body, /berth_cri_request_duration_seconds_bucket\{le="[0-9.]+",service="runtime",method="Status"\}/);
  assert.match(body, /berth_cri_errors_total\{service="image",method="PullImage",code="[A-Z_]+"\} [1-9]/);
  assert.match(body, /berth_process_resident_memory_bytes \d+/);
});
