// Fault 4: hostile CRI input. Structure-aware requests (fast-check) over every
// unary RPC of both services: oversized strings, invalid and foreign ids, path
// tricks in log paths, mounts, devices, names and cgroup parents, huge label
// maps, negative and enormous numbers; plus rounds of concurrent conflicting
// calls on the same ids. Each call must answer (no hang, no crash) with a
// sensible code (never INTERNAL or UNKNOWN for bad input), and a rejected call
// must leave the List* snapshots as they were. What an accepted call created
// is removed again.
//
// Safety on a shared machine: paths the daemon may create (log directories,
// mount sources) stay under the run's temp dir; pulls only reach loopback;
// fuzzed containers are created, never started.

import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import type { Daemon } from "../../test-e2e/harness/daemon.js";
import { removeDirs, startChaosDaemon, type World } from "./env.js";
import { codeName, grpcCode } from "./kill-loop.js";
import { formatLeaks, leakCount, scanLeaks } from "./leaks.js";

export interface FuzzReport {
  cases: number;
  accepted: number;
  rejected: number;
  /** Requests the client could not encode (never sent). */
  clientSide: number;
  concurrentRounds: number;
  crashes: number;
  hangs: number;
  wrongCodes: number;
  stateChanges: number;
  codes: Record<string, number>;
  failures: string[];
}

interface Case {
  svc: "runtime" | "image";
  rpc: string;
  req: Record<string, unknown>;
}

interface Fixture {
  podId: string;
  podConfig: Record<string, unknown>;
  ctrId: string;
  bb: string;
  tmp: string;
  regHost: string;
}

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);
const INT32_MAX = 2 ** 31 - 1;

// ---------------------------------------------------------------- arbitraries

const PATH_TRICKS = ["..", ".", "../", "../../..", "a/../../b", "/etc/passwd", "/proc/self/root", "//", "a//b", "a/./b", "%2e%2e/x", "a\0b", "\u202ex", "con", "-rf", "$(id)", "`id`", "a\nb", " ", "*", "~root"];

function bigString(): fc.Arbitrary<string> {
  return fc.constantFrom(1024, 64 * 1024, 1024 * 1024).map((n) => "x".repeat(n));
}

function str(): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 20 }) },
    { weight: 2, arbitrary: fc.constantFrom(...PATH_TRICKS) },
    { weight: 1, arbitrary: fc.constant("") },
    { weight: 1, arbitrary: bigString() },
  );
}

/** Ids that can never name an existing object (safe for mutating RPCs). */
function badId(): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constant(""),
    fc.stringMatching(/^[0-9a-f]{64}$/),
    fc.constantFrom(...PATH_TRICKS),
    fc.string({ unit: "binary", minLength: 1, maxLength: 30 }).map((s) => `zz${s}`),
    bigString(),
  );
}

/** Ids including the fixtures' (for RPCs that only read). */
function anyId(fx: Fixture): fc.Arbitrary<string> {
  return fc.oneof(badId(), fc.constantFrom(fx.podId, fx.ctrId, fx.podId.slice(0, 12), fx.ctrId.slice(0, 12), `${fx.ctrId}x`, fx.ctrId.toUpperCase()));
}

function int32(): fc.Arbitrary<number> {
  return fc.oneof(fc.integer({ min: -INT32_MAX - 1, max: INT32_MAX }), fc.constantFrom(-1, 0, 1, 65535, 65536, INT32_MAX, -INT32_MAX - 1));
}

function uint32(): fc.Arbitrary<number> {
  return fc.oneof(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.constantFrom(0, 1, 2 ** 32 - 1));
}

function int64(): fc.Arbitrary<bigint> {
  return fc.oneof(fc.bigInt({ min: INT64_MIN, max: INT64_MAX }), fc.constantFrom(-1n, 0n, 1n, 2n, INT64_MAX, INT64_MIN, 2n ** 53n, -(2n ** 53n)));
}

function labels(): fc.Arbitrary<Record<string, string>> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.dictionary(str(), str(), { maxKeys: 8 }) },
    { weight: 1, arbitrary: fc.constantFrom(2000, 20000).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, `v${i}`.padEnd(50, "v")]))) },
  );
}

/** Absolute paths under the run's temp dir, with tricks that stay inside it. */
function safePath(fx: Fixture): fc.Arbitrary<string> {
  return fc.oneof(
    fc.stringMatching(/^[a-z0-9._-]{1,20}$/).map((s) => join(fx.tmp, "fuzz", s)),
    fc.constantFrom(`${fx.tmp}/fuzz/a/../../fuzz-up`, `${fx.tmp}/fuzz//x`, `${fx.tmp}/fuzz/./y`, `${fx.tmp}/fuzz/a\0b`, "", "relative/path", "./rel", "../rel"),
  );
}

function resources(): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(
    {
      cpuPeriod: int64(),
      cpuQuota: int64(),
      cpuShares: int64(),
      memoryLimitInBytes: int64(),
      oomScoreAdj: int64(),
      cpusetCpus: fc.oneof(str(), fc.constantFrom("0", "0-1", "99999", "-1", "a-b")),
      cpusetMems: fc.oneof(str(), fc.constantFrom("0", "1000")),
      memorySwapLimitInBytes: int64(),
      unified: fc.dictionary(fc.constantFrom("memory.max", "cpu.max", "../escape", "pids.max", ""), str(), { maxKeys: 3 }),
      hugepageLimits: fc.array(fc.record({ pageSize: str(), limit: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }), { maxLength: 2 }),
    },
    { requiredKeys: [] },
  );
}

function namespaceOptions(fx: Fixture): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(
    { network: fc.integer({ min: -1, max: 5 }), pid: fc.integer({ min: -1, max: 5 }), ipc: fc.integer({ min: -1, max: 5 }), targetId: anyId(fx) },
    { requiredKeys: [] },
  );
}

function podConfig(fx: Fixture): fc.Arbitrary<Record<string, unknown>> {
  return fc
    .record(
      {
        metadata: fc.record({ name: str(), namespace: str(), uid: str(), attempt: uint32() }, { requiredKeys: [] }),
        hostname: str(),
        logDirectory: safePath(fx),
        dnsConfig: fc.record({ servers: fc.array(str(), { maxLength: 4 }), searches: fc.array(str(), { maxLength: 8 }), options: fc.array(str(), { maxLength: 4 }) }, { requiredKeys: [] }),
        portMappings: fc.array(fc.record({ protocol: fc.integer({ min: -1, max: 4 }), containerPort: int32(), hostPort: int32(), hostIp: fc.oneof(str(), fc.constantFrom("127.0.0.1", "::1", "0.0.0.0", "999.1.1.1")) }), { maxLength: 3 }),
        labels: labels(),
        annotations: labels(),
        linux: fc.record(
          {
            cgroupParent: fc.oneof(str(), fc.constantFrom("/berth-fuzz", "../../..", "/sys/fs/cgroup", "a.slice", "-.slice", "/kubepods/../../x")),
            securityContext: fc.record(
              { namespaceOptions: namespaceOptions(fx), privileged: fc.boolean(), runAsUser: fc.record({ value: int64() }), supplementalGroups: fc.array(int64(), { maxLength: 3 }) },
              { requiredKeys: [] },
            ),
            sysctls: fc.dictionary(fc.constantFrom("net.ipv4.ip_forward", "kernel.shm_rmid_forced", "../../etc/x", "kernel.hostname", "net.core.somaxconn", "", "fs.file-max"), str(), { maxKeys: 2 }),
            overhead: resources(),
            resources: resources(),
          },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: [] },
    )
    .map((cfg) => {
      // Never ask for sysctls in the host's own namespaces (they would change this shared machine).
      const linux = cfg["linux"] as Record<string, unknown> | undefined;
      const ns = (linux?.["securityContext"] as Record<string, unknown> | undefined)?.["namespaceOptions"] as Record<string, number> | undefined;
      if (linux && (ns === undefined || ns["network"] !== 0 || ns["ipc"] !== 0)) delete linux["sysctls"];
      return cfg;
    });
}

function containerConfig(fx: Fixture): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(
    {
      metadata: fc.record({ name: str(), attempt: uint32() }, { requiredKeys: [] }),
      image: fc.record({ image: fc.oneof(fc.constant(fx.bb), str(), fc.constant(`${fx.bb}@sha256:${"0".repeat(64)}`)) }, { requiredKeys: [] }),
      command: fc.array(str(), { maxLength: 4 }),
      args: fc.array(str(), { maxLength: 4 }),
      workingDir: fc.oneof(str(), fc.constantFrom("/", "relative", "/../../..", "/proc/self")),
      envs: fc.array(fc.record({ key: str(), value: str() }), { maxLength: 4 }),
      mounts: fc.array(
        fc.record(
          { containerPath: fc.oneof(str(), fc.constantFrom("/", "/proc", "/proc/sys", "/../../etc", "relative", "/dev/null")), hostPath: safePath(fx), readonly: fc.boolean(), propagation: fc.integer({ min: -1, max: 4 }) },
          { requiredKeys: [] },
        ),
        { maxLength: 3 },
      ),
      devices: fc.array(fc.record({ containerPath: str(), hostPath: fc.oneof(safePath(fx), fc.constantFrom("/dev/null", "/dev/../etc/passwd", "/dev/nonexistent")), permissions: fc.oneof(str(), fc.constantFrom("rwm", "r", "xyz")) }, { requiredKeys: [] }), { maxLength: 2 }),
      labels: labels(),
      annotations: labels(),
      logPath: fc.oneof(str(), fc.constantFrom("../../x.log", "/abs/x.log", "a/b/c.log", "..", "", "x\0.log", "../../../../y.log")),
      stdin: fc.boolean(),
      stdinOnce: fc.boolean(),
      tty: fc.boolean(),
      linux: fc.record(
        {
          resources: resources(),
          securityContext: fc.record(
            {
              capabilities: fc.record({ addCapabilities: fc.array(fc.oneof(str(), fc.constantFrom("CAP_SYS_ADMIN", "ALL", "NET_RAW", "cap_bogus")), { maxLength: 3 }), dropCapabilities: fc.array(str(), { maxLength: 3 }) }, { requiredKeys: [] }),
              privileged: fc.boolean(),
              namespaceOptions: namespaceOptions(fx),
              runAsUser: fc.record({ value: int64() }),
              runAsUsername: str(),
              readonlyRootfs: fc.boolean(),
              supplementalGroups: fc.array(int64(), { maxLength: 3 }),
              maskedPaths: fc.array(str(), { maxLength: 3 }),
              readonlyPaths: fc.array(str(), { maxLength: 3 }),
              seccomp: fc.record({ profileType: fc.integer({ min: -1, max: 4 }), localhostRef: fc.oneof(str(), safePath(fx)) }, { requiredKeys: [] }),
              apparmor: fc.record({ profileType: fc.integer({ min: -1, max: 4 }), localhostRef: str() }, { requiredKeys: [] }),
            },
            { requiredKeys: [] },
          ),
        },
        { requiredKeys: [] },
      ),
      stopSignal: fc.integer({ min: -1, max: 70 }),
    },
    { requiredKeys: [] },
  );
}

/** Image references that resolve to loopback only: the test registry, a closed port, or invalid syntax. */
function loopbackRef(fx: Fixture): fc.Arbitrary<string> {
  return fc.oneof(
    fc.tuple(fc.constantFrom(fx.regHost, fx.regHost, fx.regHost, "127.0.0.1:1"), fc.oneof(fc.constantFrom("busybox", "nonexistent", "a/../b", "UPPER", "x".repeat(300)), str()), fc.oneof(fc.constantFrom(":latest", ":nope", "@sha256:bad", `@sha256:${"a".repeat(64)}`, ""), str().map((s) => `:${s}`))).map(([h, n, t]) => `${h}/${n}${t}`),
    // Malformed references, always behind a loopback host (a bare name would mean docker.io).
    fc.constantFrom("", "127.0.0.1:1/UPPER/CASE", "127.0.0.1:1/a b", "127.0.0.1:1/@sha256:", "127.0.0.1:1/x@sha256:zz", "127.0.0.1:1/\0", "127.0.0.1:1/x:y:z"),
  );
}

function caseArb(fx: Fixture): fc.Arbitrary<Case> {
  const rt = (rpc: string, req: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<Case> => req.map((r) => ({ svc: "runtime" as const, rpc, req: r }));
  const im = (rpc: string, req: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<Case> => req.map((r) => ({ svc: "image" as const, rpc, req: r }));
  const rec = (m: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<Record<string, unknown>> => fc.record(m, { requiredKeys: [] }) as fc.Arbitrary<Record<string, unknown>>;
  const ctrFilter = rec({ id: anyId(fx), state: rec({ state: fc.integer({ min: -1, max: 5 }) }), podSandboxId: anyId(fx), labelSelector: labels() });
  const podFilter = rec({ id: anyId(fx), state: rec({ state: fc.integer({ min: -1, max: 3 }) }), labelSelector: labels() });
  const safeCmd = fc.oneof(fc.constant([] as string[]), fc.constant([""]), fc.constant(["/nonexistent"]), str().map((s) => ["echo", s]), fc.constant(["\0"]), fc.constant(["sh", "-c", "exit 3"]));
  return fc.oneof(
    rt("version", rec({ version: str() })),
    rt("runPodSandbox", rec({ config: podConfig(fx), runtimeHandler: fc.oneof(fc.constant(""), fc.constant("runc"), str()) })),
    rt("stopPodSandbox", rec({ podSandboxId: badId() })),
    rt("removePodSandbox", rec({ podSandboxId: badId() })),
    rt("podSandboxStatus", rec({ podSandboxId: anyId(fx), verbose: fc.boolean() })),
    rt("listPodSandbox", rec({ filter: podFilter })),
    rt("createContainer", rec({ podSandboxId: fc.oneof(fc.constant(fx.podId), anyId(fx)), config: containerConfig(fx), sandboxConfig: fc.oneof(fc.constant(fx.podConfig), podConfig(fx)) })),
    rt("startContainer", rec({ containerId: badId() })),
    rt("stopContainer", rec({ containerId: badId(), timeout: int64() })),
    rt("removeContainer", rec({ containerId: badId() })),
    rt("listContainers", rec({ filter: ctrFilter })),
    rt("containerStatus", rec({ containerId: anyId(fx), verbose: fc.boolean() })),
    rt("updateContainerResources", rec({ containerId: fc.oneof(fc.constant(fx.ctrId), badId()), linux: resources(), annotations: labels() })),
    rt("reopenContainerLog", rec({ containerId: anyId(fx) })),
    rt("execSync", fc.oneof(rec({ containerId: badId(), cmd: fc.array(str(), { maxLength: 3 }), timeout: int64() }), rec({ containerId: fc.constant(fx.ctrId), cmd: safeCmd, timeout: fc.constantFrom(-1n, 0n, 1n, 5n, INT64_MAX, INT64_MIN) }))),
    rt("exec", rec({ containerId: anyId(fx), cmd: fc.array(str(), { maxLength: 3 }), tty: fc.boolean(), stdin: fc.boolean(), stdout: fc.boolean(), stderr: fc.boolean() })),
    rt("attach", rec({ containerId: anyId(fx), tty: fc.boolean(), stdin: fc.boolean(), stdout: fc.boolean(), stderr: fc.boolean() })),
    rt("portForward", rec({ podSandboxId: anyId(fx), port: fc.array(int32(), { maxLength: 3 }) })),
    rt("containerStats", rec({ containerId: anyId(fx) })),
    rt("listContainerStats", rec({ filter: rec({ id: anyId(fx), podSandboxId: anyId(fx), labelSelector: labels() }) })),
    rt("podSandboxStats", rec({ podSandboxId: anyId(fx) })),
    rt("listPodSandboxStats", rec({ filter: rec({ id: anyId(fx), labelSelector: labels() }) })),
    rt("updateRuntimeConfig", rec({ runtimeConfig: rec({ networkConfig: rec({ podCidr: fc.oneof(str(), fc.constantFrom("10.0.0.0/8", "300.0.0.0/8", "::/0", "a,b")) }) }) })),
    rt("status", rec({ verbose: fc.boolean() })),
    rt("checkpointContainer", rec({ containerId: anyId(fx), location: safePath(fx), timeout: int64() })),
    rt("listMetricDescriptors", rec({})),
    rt("listPodSandboxMetrics", rec({})),
    rt("runtimeConfig", rec({})),
    rt("updatePodSandboxResources", rec({ podSandboxId: anyId(fx), overhead: resources(), resources: resources() })),
    im("listImages", rec({ filter: rec({ image: rec({ image: str() }) }) })),
    im("imageStatus", rec({ image: rec({ image: fc.oneof(str(), fc.constant(fx.bb)), annotations: labels() }), verbose: fc.boolean() })),
    im("pullImage", rec({ image: rec({ image: loopbackRef(fx), annotations: labels() }), auth: rec({ username: str(), password: str(), auth: str(), serverAddress: str(), identityToken: str(), registryToken: str() }) })),
    im("removeImage", rec({ image: rec({ image: str().filter((s) => !fx.bb.startsWith(s) && !s.startsWith("sha256:")) }) })),
    im("imageFsInfo", rec({})),
  );
}

// ---------------------------------------------------------------- running cases

type Snapshot = string;

async function snapshot(d: Daemon): Promise<Snapshot> {
  const pods = (await d.client.runtime.listPodSandbox({}, { timeoutMs: 30_000 })).items.map((p) => `${p.id}:${p.state}`).sort();
  const ctrs = (await d.client.runtime.listContainers({}, { timeoutMs: 30_000 })).containers.map((c) => `${c.id}:${c.state}`).sort();
  const imgs = (await d.client.image.listImages({}, { timeoutMs: 30_000 })).images.map((i) => `${i.id}:${[...i.repoTags].sort().join(",")}`).sort();
  return JSON.stringify({ pods, ctrs, imgs });
}

export function describe(c: Case): string {
  const text = JSON.stringify(c.req, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : typeof v === "string" && v.length > 80 ? `<${v.length} chars>` : v));
  return `${c.rpc} ${text.length > 400 ? `${text.slice(0, 400)}…` : text}`;
}

function call(d: Daemon, c: Case, timeoutMs: number): Promise<unknown> {
  const api = (c.svc === "runtime" ? d.client.runtime : d.client.image) as unknown as Record<string, (req: unknown, o: { timeoutMs: number }) => Promise<unknown>>;
  const fn = api[c.rpc];
  if (!fn) throw new Error(`no RPC ${c.rpc}`);
  return fn(c.req, { timeoutMs });
}

export async function runFuzz(world: World, opts: { cases: number; seed: number; log: (l: string) => void }): Promise<FuzzReport> {
  const rep: FuzzReport = { cases: 0, accepted: 0, rejected: 0, clientSide: 0, concurrentRounds: 0, crashes: 0, hangs: 0, wrongCodes: 0, stateChanges: 0, codes: {}, failures: [] };
  const fail = (x: string): void => {
    opts.log(`  FAIL ${x.slice(0, 1500)}`);
    fail(x);
  };
  const cwd = process.cwd();
  // berthd inherits the harness's cwd: a relative path it wrongly accepted lands in the temp dir, not the repository.
  const runDir = join(world.work, "fuzz-cwd");
  mkdirSync(runDir, { recursive: true });
  process.chdir(runDir);
  let d: Daemon | undefined;
  try {
    d = await startChaosDaemon(world);
    process.chdir(cwd);
    const dirs = d.dirs;
    const bb = world.images["busybox:latest"].ref;
    await d.client.image.pullImage({ image: { image: bb } });
    const logDirectory = join(dirs.base, "pod-logs", "a", "b", "c", "d", "e", "fixture");
    mkdirSync(logDirectory, { recursive: true });
    mkdirSync(join(world.work, "fuzz"), { recursive: true });
    const podConfigFx = { metadata: { name: "fixture", namespace: "fuzz", uid: "fixture-uid", attempt: 0 }, hostname: "fixture", logDirectory };
    const podId = (await d.client.runtime.runPodSandbox({ config: podConfigFx })).podSandboxId;
    const ctrId = (await d.client.runtime.createContainer({ podSandboxId: podId, config: { metadata: { name: "fixture" }, image: { image: bb }, command: ["sleep", "3600"], logPath: "fixture.log" }, sandboxConfig: podConfigFx })).containerId;
    await d.client.runtime.startContainer({ containerId: ctrId });
    const fx: Fixture = { podId, podConfig: podConfigFx, ctrId, bb, tmp: world.work, regHost: world.reg.host };
    const cases = fc.sample(caseArb(fx), { numRuns: opts.cases, seed: opts.seed });
    let before = await snapshot(d);
    for (const [i, c] of cases.entries()) {
      const label = `fuzz case ${i} (seed ${opts.seed}): ${describe(c)}`;
      rep.cases++;
      let result: unknown;
      let error: unknown;
      try {
        result = await call(d, c, 30_000);
      } catch (err) {
        error = err;
      }
      if (d.process.exitCode !== null || d.process.signalCode !== null) {
        rep.crashes++;
        fail(`berthd crashed on ${label}\n${d.output().slice(-2000)}`);
        const dead = d;
        d = await startChaosDaemon(world, { dirs: dead.dirs });
        before = await snapshot(d);
        continue;
      }
      if (error === undefined) {
        rep.accepted++;
        rep.codes["OK"] = (rep.codes["OK"] ?? 0) + 1;
        const problem = await undo(d, c, result, fx);
        if (problem) fail(`${problem}: ${label}`);
        const after = await snapshot(d);
        if (after !== before) {
          rep.stateChanges++;
          fail(`accepted call left state behind after its undo: ${label}`);
        }
        before = after;
        continue;
      }
      const code = grpcCode(error);
      const msg = (error as Error).message ?? "";
      if (code === 13 && /serialization failure/i.test(msg)) {
        rep.clientSide++;
        continue;
      }
      rep.rejected++;
      rep.codes[codeName(code)] = (rep.codes[codeName(code)] ?? 0) + 1;
      const execTimedOut = code === 4 && c.rpc === "execSync";
      if (code === 4 && !execTimedOut) {
        rep.hangs++;
        fail(`no answer within 30 s: ${label}`);
      } else if (code === undefined || code === 2 || code === 13) {
        rep.wrongCodes++;
        fail(`${codeName(code)} (${msg.slice(0, 200)}) for ${label}`);
      } else if (!((error as { details?: string }).details ?? "").trim()) {
        fail(`${codeName(code)} without a message for ${label}`);
      }
      const after = await snapshot(d);
      if (after !== before) {
        rep.stateChanges++;
        fail(`rejected call (${codeName(code)}) changed the List* snapshot: ${label}`);
        before = after;
      }
      if ((i + 1) % 100 === 0) opts.log(`  ${i + 1} cases: ${JSON.stringify(rep.codes)}`);
    }
    // Concurrent conflicting calls on the same ids.
    const rounds = Math.max(1, Math.floor(opts.cases / 50));
    for (let r = 0; r < rounds; r++) {
      rep.concurrentRounds++;
      await conflictRound(d, fx, r, opts.seed, rep, fail);
    }
    if ((await snapshot(d)) !== before) fail("the concurrent rounds left objects behind");
    await d.client.runtime.stopPodSandbox({ podSandboxId: podId });
    await d.client.runtime.removePodSandbox({ podSandboxId: podId });
    for (const img of (await d.client.image.listImages({})).images) await d.client.image.removeImage({ image: { image: img.id } });
    const leaks = scanLeaks(world, d.dirs);
    if (leakCount(leaks) > 0) fail(`fuzz: leaks after removing everything: ${formatLeaks(leaks)}`);
    // Relative paths must not have been taken relative to berthd's working directory.
    const strays = [...readdirSync(runDir), ...["rel"].filter((f) => existsSync(join(world.work, f)))];
    if (strays.length) fail(`berthd created ${strays.join(", ")} from relative or climbing paths (relative to its working directory ${runDir})`);
    opts.log(`  fuzz done: ${rep.cases} cases, codes ${JSON.stringify(rep.codes)}`);
  } catch (err) {
    fail(`fuzz: harness error: ${(err as Error).stack ?? String(err)}`);
  } finally {
    process.chdir(cwd);
    if (d) {
      await d.stop().catch(() => undefined);
      removeDirs(d.dirs);
    }
  }
  return rep;
}

/** Removes what an accepted call created; returns a problem the accepted call shows, if any. */
async function undo(d: Daemon, c: Case, result: unknown, fx: Fixture): Promise<string | undefined> {
  const res = result as Record<string, unknown>;
  if (c.rpc === "runPodSandbox" && typeof res["podSandboxId"] === "string") {
    await d.client.runtime.stopPodSandbox({ podSandboxId: res["podSandboxId"] });
    await d.client.runtime.removePodSandbox({ podSandboxId: res["podSandboxId"] });
  } else if (c.rpc === "createContainer" && typeof res["containerId"] === "string") {
    const st = (await d.client.runtime.containerStatus({ containerId: res["containerId"] })).status;
    const podId = (await d.client.runtime.listContainers({ filter: { id: res["containerId"] } })).containers[0]?.podSandboxId;
    await d.client.runtime.removeContainer({ containerId: res["containerId"] });
    // An accepted log path stays inside the pod's log directory.
    const dir = String(fx.podConfig["logDirectory"]);
    if (st && st.logPath !== "" && podId === fx.podId && !st.logPath.startsWith(`${dir}/`)) return `accepted log path ${JSON.stringify(st.logPath)} is outside the pod's log directory ${dir}`;
  } else if (c.rpc === "pullImage" && typeof res["imageRef"] === "string") {
    const img = (await d.client.image.listImages({})).images.find((i) => i.id === res["imageRef"]);
    if (img && !img.repoTags.includes(fx.bb)) await d.client.image.removeImage({ image: { image: img.id } });
    else if (img) for (const t of img.repoTags.filter((t) => t !== fx.bb)) await d.client.image.removeImage({ image: { image: t } }).catch(() => undefined);
  }
  return undefined;
}

/** A pod and a container, then a shuffled burst of conflicting calls on them at once. */
async function conflictRound(d: Daemon, fx: Fixture, round: number, seed: number, rep: FuzzReport, fail: (x: string) => void): Promise<void> {
  const name = `conflict-${round}`;
  const config = { ...fx.podConfig, metadata: { name, namespace: "fuzz", uid: `uid-${name}`, attempt: 0 }, hostname: name };
  const podId = (await d.client.runtime.runPodSandbox({ config })).podSandboxId;
  const cconf = { metadata: { name: "c" }, image: { image: fx.bb }, command: ["sleep", "600"], logPath: "c.log" };
  const ctrId = (await d.client.runtime.createContainer({ podSandboxId: podId, config: cconf, sandboxConfig: config })).containerId;
  const rt = d.client.runtime;
  const calls: Array<[string, () => Promise<unknown>]> = [
    ["startContainer", () => rt.startContainer({ containerId: ctrId })],
    ["startContainer", () => rt.startContainer({ containerId: ctrId })],
    ["stopContainer", () => rt.stopContainer({ containerId: ctrId, timeout: 0n })],
    ["removeContainer", () => rt.removeContainer({ containerId: ctrId })],
    ["containerStatus", () => rt.containerStatus({ containerId: ctrId })],
    ["execSync", () => rt.execSync({ containerId: ctrId, cmd: ["true"], timeout: 5n })],
    ["reopenContainerLog", () => rt.reopenContainerLog({ containerId: ctrId })],
    ["updateContainerResources", () => rt.updateContainerResources({ containerId: ctrId, linux: { cpuShares: 512n } })],
    ["createContainer(same name)", () => rt.createContainer({ podSandboxId: podId, config: cconf, sandboxConfig: config })],
    ["stopPodSandbox", () => rt.stopPodSandbox({ podSandboxId: podId })],
    ["removePodSandbox", () => rt.removePodSandbox({ podSandboxId: podId })],
    ["podSandboxStatus", () => rt.podSandboxStatus({ podSandboxId: podId })],
    ["runPodSandbox(same name)", () => rt.runPodSandbox({ config })],
  ];
  const order = fc.sample(fc.shuffledSubarray(calls, { minLength: 6 }), { numRuns: 1, seed: seed + round })[0] ?? calls;
  const results = await Promise.all(
    order.map(([n, f]) =>
      f().then(
        (v) => ({ n, code: 0, v }),
        (err: unknown) => ({ n, code: grpcCode(err), v: (err as Error).message }),
      ),
    ),
  );
  for (const r of results) {
    rep.codes[codeName(r.code)] = (rep.codes[codeName(r.code)] ?? 0) + 1;
    if (r.code === undefined || r.code === 2 || r.code === 13 || (r.code === 4 && r.n !== "execSync")) {
      rep.wrongCodes++;
      fail(`concurrent round ${round} (seed ${seed}): ${r.n} answered ${codeName(r.code)}: ${String(r.v).slice(0, 200)} (order: ${order.map(([n]) => n).join(", ")})`);
    }
  }
  // Whatever won, the pod and everything in it can be stopped and removed, and nothing of it remains.
  for (const p of (await rt.listPodSandbox({})).items.filter((p) => p.metadata?.name === name)) {
    await rt.stopPodSandbox({ podSandboxId: p.id });
    await rt.removePodSandbox({ podSandboxId: p.id });
  }
  const left = (await rt.listContainers({})).containers.filter((c) => c.podSandboxId !== fx.podId);
  if (left.length) fail(`concurrent round ${round}: ${left.length} containers outlived their pod's removal`);
}
