import { test, after, afterEach, before } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hostname, networkInterfaces } from "node:os";
import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { NamespaceMode, PodSandboxState, Protocol, type DeepPartial, type PodSandboxConfig } from "../api/gen/cri/v1/api.js";
import { BERTHCTL, removeDirs, startDaemon, type Daemon } from "./harness/daemon.js";
import { makeTestNetwork, mountsUnder, type TestNetwork } from "./harness/cni-net.js";

let d: Daemon;
let net: TestNetwork;
let seq = 0;

before(async () => {
  d = await startDaemon();
  net = makeTestNetwork(d.dirs.base);
  net.install(d.dirs.cniConfDir);
});

after(async () => {
  if (d) {
    const pods = await d.client.runtime.listPodSandbox({}).catch(() => ({ items: [] }));
    for (const p of pods.items) await d.client.runtime.removePodSandbox({ podSandboxId: p.id }).catch(() => undefined);
    await d.stop();
    removeDirs(d.dirs);
  }
  net?.cleanup();
});

/** Whatever a failed test left behind is removed, so one failure does not cascade. */
afterEach(async () => {
  const pods = await d.client.runtime.listPodSandbox({}).catch(() => ({ items: [] }));
  for (const p of pods.items) await d.client.runtime.removePodSandbox({ podSandboxId: p.id }).catch(() => undefined);
});

function code(err: unknown): number | undefined {
  return (err as ServiceError).code;
}

function pod(name: string, extra: DeepPartial<PodSandboxConfig> = {}): DeepPartial<PodSandboxConfig> {
  seq++;
  return { metadata: { name, namespace: "e2e", uid: `uid-${name}-${seq}`, attempt: 0 }, logDirectory: join(d.dirs.logs, `${name}-${seq}`), ...extra };
}

interface Info {
  pid: number;
  netnsPath: string;
  ipcNsPath: string;
  utsNsPath: string;
  pidNsPath: string;
  hostsPath: string;
  resolvConfPath: string;
  hostnamePath: string;
  shmPath: string;
}

async function info(id: string): Promise<Info> {
  const s = await d.client.runtime.podSandboxStatus({ podSandboxId: id, verbose: true });
  return JSON.parse(s.info["info"] ?? "{}") as Info;
}

function sh(cmd: string, args: string[]): { code: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 20_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Nothing of any pod is left: no mounts, no pod dirs, no CNI cache entries or IP allocations, no records. */
async function assertNoResidue(): Promise<void> {
  assert.deepEqual(mountsUnder(d.dirs.base), [], "no mounts left under the daemon's dirs");
  const sbDir = join(d.dirs.state, "sandboxes");
  assert.deepEqual(existsSync(sbDir) ? readdirSync(sbDir) : [], [], "no pod dirs left");
  const cache = join(d.dirs.state, "cni-cache");
  assert.deepEqual(existsSync(cache) ? readdirSync(cache).filter((f) => !f.startsWith(".")) : [], [], "no CNI cache entries left");
  assert.deepEqual(net.allocated(), [], "no host-local IP allocations left");
  assert.equal((await d.client.runtime.listPodSandbox({})).items.length, 0, "no pod records left");
}

test("pod lifecycle: run, status, list filters, stop, remove (each idempotent), nothing left", async () => {
  const cfg = pod("web", {
    hostname: "web-host",
    labels: { app: "web", tier: "front" },
    annotations: { note: "hello" },
    dnsConfig: { servers: ["10.96.0.10", "8.8.8.8"], searches: ["e2e.svc.cluster.local", "svc.cluster.local"], options: ["ndots:5", "timeout:2"] },
    portMappings: [{ protocol: Protocol.TCP, containerPort: 80, hostPort: 0 }],
    linux: { sysctls: { "net.ipv4.ip_unprivileged_port_start": "0", "kernel.shm_rmid_forced": "1" } },
  });
  const { podSandboxId: id } = await d.client.runtime.runPodSandbox({ config: cfg });
  assert.match(id, /^[0-9a-f]{64}$/);

  const st = await d.client.runtime.podSandboxStatus({ podSandboxId: id, verbose: true });
  const s = st.status!;
  assert.equal(s.state, PodSandboxState.SANDBOX_READY);
  assert.equal(s.metadata?.name, "web");
  assert.equal(s.metadata?.namespace, "e2e");
  assert.deepEqual(s.labels, { app: "web", tier: "front" });
  assert.deepEqual(s.annotations, { note: "hello" });
  assert.ok(s.createdAt > BigInt(Date.now() - 60_000) * 1_000_000n && s.createdAt <= BigInt(Date.now()) * 1_000_000n, "created_at is now, in ns");
  assert.ok(s.network?.ip.startsWith(`${net.prefix}.`), `pod IP ${s.network?.ip} is in ${net.subnet}`);
  assert.equal(s.linux?.namespaces?.options?.network, NamespaceMode.POD);
  assert.equal(s.linux?.namespaces?.options?.pid, NamespaceMode.POD);
  assert.equal(s.runtimeHandler, "");
  assert.deepEqual(net.allocated(), [s.network?.ip]);

  const i = JSON.parse(st.info["info"] ?? "{}") as Info;
  assert.ok(i.pid > 0, "the pod PID namespace has an init");
  assert.equal(readFileSync(i.resolvConfPath, "utf8"), "search e2e.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\nnameserver 8.8.8.8\noptions ndots:5 timeout:2\n");
  assert.equal(readFileSync(i.hostnamePath, "utf8"), "web-host\n");
  assert.match(readFileSync(i.hostsPath, "utf8"), new RegExp(`^127\\.0\\.0\\.1\\tlocalhost$[\\s\\S]*^${s.network?.ip.replace(/\./g, "\\.")}\\tweb-host$`, "m"));
  assert.equal(sh("nsenter", [`--uts=${i.utsNsPath}`, "hostname"]).out.trim(), "web-host");
  assert.equal(sh("nsenter", [`--net=${i.netnsPath}`, "sysctl", "-n", "net.ipv4.ip_unprivileged_port_start"]).out.trim(), "0");
  assert.equal(sh("nsenter", [`--ipc=${i.ipcNsPath}`, "sysctl", "-n", "kernel.shm_rmid_forced"]).out.trim(), "1");
  assert.match(sh("nsenter", [`--net=${i.netnsPath}`, "ip", "-br", "addr"]).out, new RegExp(`eth0\\S*\\s+UP\\s+${s.network?.ip}/24`));
  assert.match(sh("nsenter", [`--net=${i.netnsPath}`, "ip", "-br", "link", "show", "lo"]).out, /UNKNOWN|UP/);
  assert.ok(mountsUnder(d.dirs.base).includes(i.shmPath), "the pod's /dev/shm is a mount");
  assert.match(sh("findmnt", ["-n", "-o", "FSTYPE,OPTIONS", i.shmPath]).out, /tmpfs .*size=65536k/);
  assert.equal(sh("nsenter", [`--pid=${i.pidNsPath}`, "--", "sh", "-c", "echo $$"]).code, 0, "the pid namespace can be joined");
  assert.ok(existsSync(cfg.logDirectory!), "the log directory exists");

  const other = await d.client.runtime.runPodSandbox({ config: pod("db", { labels: { app: "db" } }) });
  const list = async (filter: object) => (await d.client.runtime.listPodSandbox({ filter })).items.map((p) => p.id).sort();
  assert.deepEqual(await list({}), [id, other.podSandboxId].sort());
  assert.deepEqual(await list({ id }), [id]);
  assert.deepEqual(await list({ id: id.slice(0, 12) }), [id]);
  assert.deepEqual(await list({ labelSelector: { app: "web" } }), [id]);
  assert.deepEqual(await list({ labelSelector: { app: "web", tier: "back" } }), []);
  assert.deepEqual(await list({ state: { state: PodSandboxState.SANDBOX_READY } }), [id, other.podSandboxId].sort());

  await d.client.runtime.stopPodSandbox({ podSandboxId: id });
  await d.client.runtime.stopPodSandbox({ podSandboxId: id });
  const stopped = (await d.client.runtime.podSandboxStatus({ podSandboxId: id })).status!;
  assert.equal(stopped.state, PodSandboxState.SANDBOX_NOTREADY);
  assert.equal(stopped.network?.ip, "");
  assert.equal(net.allocated().length, 1, "the stopped pod's IP is released, the other pod keeps its own");
  assert.ok(!mountsUnder(d.dirs.base).includes(i.shmPath), "shm unmounted at stop");
  assert.ok(!existsSync(`/proc/${i.pid}`) || readFileSync(`/proc/${i.pid}/stat`, "utf8").includes(") Z"), "the pod init is gone");
  assert.deepEqual(await list({ state: { state: PodSandboxState.SANDBOX_NOTREADY } }), [id]);
  assert.deepEqual(await list({ state: { state: PodSandboxState.SANDBOX_READY } }), [other.podSandboxId]);

  await d.client.runtime.removePodSandbox({ podSandboxId: id });
  await d.client.runtime.removePodSandbox({ podSandboxId: id });
  await d.client.runtime.removePodSandbox({ podSandboxId: other.podSandboxId });
  await assert.rejects(d.client.runtime.podSandboxStatus({ podSandboxId: id }), (e) => code(e) === GrpcStatus.NOT_FOUND);
  await d.client.runtime.stopPodSandbox({ podSandboxId: "0".repeat(64) });
  await d.client.runtime.removePodSandbox({ podSandboxId: "0".repeat(64) });
  await assertNoResidue();
});

test("two pods on the bridge reach each other by IP", async () => {
  const a = await d.client.runtime.runPodSandbox({ config: pod("ping-a") });
  const b = await d.client.runtime.runPodSandbox({ config: pod("ping-b") });
  const ipB = (await d.client.runtime.podSandboxStatus({ podSandboxId: b.podSandboxId })).status?.network?.ip ?? "";
  const ipA = (await d.client.runtime.podSandboxStatus({ podSandboxId: a.podSandboxId })).status?.network?.ip ?? "";
  assert.notEqual(ipA, ipB);
  const fromA = sh("nsenter", [`--net=${(await info(a.podSandboxId)).netnsPath}`, "busybox", "ping", "-c1", "-W3", ipB]);
  assert.equal(fromA.code, 0, fromA.out);
  const fromB = sh("nsenter", [`--net=${(await info(b.podSandboxId)).netnsPath}`, "busybox", "ping", "-c1", "-W3", ipA]);
  assert.equal(fromB.code, 0, fromB.out);
  for (const p of [a, b]) await d.client.runtime.removePodSandbox({ podSandboxId: p.podSandboxId });
  await assertNoResidue();
});

test("a hostNetwork pod shares the host's network, UTS and (when asked) IPC and PID namespaces; no CNI", async () => {
  const { podSandboxId: id } = await d.client.runtime.runPodSandbox({
    config: pod("hostnet", { linux: { securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.NODE, ipc: NamespaceMode.NODE } } } }),
  });
  const st = await d.client.runtime.podSandboxStatus({ podSandboxId: id, verbose: true });
  assert.equal(st.status?.state, PodSandboxState.SANDBOX_READY);
  assert.equal(st.status?.network?.ip, "");
  assert.deepEqual(st.status?.linux?.namespaces?.options && [st.status.linux.namespaces.options.network, st.status.linux.namespaces.options.pid, st.status.linux.namespaces.options.ipc], [NamespaceMode.NODE, NamespaceMode.NODE, NamespaceMode.NODE]);
  const i = JSON.parse(st.info["info"] ?? "{}") as Info;
  assert.equal(i.netnsPath, "");
  assert.equal(i.ipcNsPath, "");
  assert.equal(i.pidNsPath, "");
  assert.equal(i.shmPath, "/dev/shm");
  assert.equal(readFileSync(i.hostnamePath, "utf8"), `${hostname()}\n`);
  assert.equal(readFileSync(i.hostsPath, "utf8"), readFileSync("/etc/hosts", "utf8"));
  assert.equal(readFileSync(i.resolvConfPath, "utf8"), readFileSync("/etc/resolv.conf", "utf8"), "no DNS config: the host's resolv.conf");
  assert.deepEqual(net.allocated(), [], "no CNI for host network");
  await assert.rejects(
    d.client.runtime.runPodSandbox({ config: pod("hostnet-sysctl", { linux: { sysctls: { "net.ipv4.ip_forward": "1" }, securityContext: { namespaceOptions: { network: NamespaceMode.NODE } } } }) }),
    (e) => code(e) === GrpcStatus.INVALID_ARGUMENT && /host network/.test((e as ServiceError).details),
  );
  await d.client.runtime.removePodSandbox({ podSandboxId: id });
  await assertNoResidue();
});

test("a duplicate name is AlreadyExists naming the holder; the name is free again after remove", async () => {
  const cfg = pod("dup");
  const first = await d.client.runtime.runPodSandbox({ config: cfg });
  await assert.rejects(d.client.runtime.runPodSandbox({ config: cfg }), (e) => code(e) === GrpcStatus.ALREADY_EXISTS && (e as ServiceError).details.includes(first.podSandboxId));
  await d.client.runtime.stopPodSandbox({ podSandboxId: first.podSandboxId });
  await assert.rejects(d.client.runtime.runPodSandbox({ config: cfg }), (e) => code(e) === GrpcStatus.ALREADY_EXISTS, "a stopped pod still holds its name");
  await d.client.runtime.removePodSandbox({ podSandboxId: first.podSandboxId });
  const second = await d.client.runtime.runPodSandbox({ config: cfg });
  await d.client.runtime.removePodSandbox({ podSandboxId: second.podSandboxId });
  await assertNoResidue();
});

test("bad requests fail with the right code and leave nothing", async () => {
  const cases: Array<[DeepPartial<PodSandboxConfig>, string, number, RegExp]> = [
    [pod("badhandler"), "no-such-runtime", GrpcStatus.INVALID_ARGUMENT, /runtime handler "no-such-runtime"/],
    [pod("badsysctl", { linux: { sysctls: { "kernel.panic": "1" } } }), "", GrpcStatus.INVALID_ARGUMENT, /kernel.panic/],
    [pod("unknownsysctl", { linux: { sysctls: { "net.ipv4.no_such_knob": "1" } } }), "", GrpcStatus.INVALID_ARGUMENT, /no_such_knob/],
    [pod("badcgroup", { linux: { cgroupParent: "../escape" } }), "", GrpcStatus.INVALID_ARGUMENT, /cgroup_parent/],
    [pod("baddns", { dnsConfig: { servers: ["not-an-ip"] } }), "", GrpcStatus.INVALID_ARGUMENT, /not-an-ip/],
    [pod("badhost", { hostname: "bad_host!" }), "", GrpcStatus.INVALID_ARGUMENT, /hostname/],
    [{ metadata: { name: "nouid", namespace: "e2e" } }, "", GrpcStatus.INVALID_ARGUMENT, /uid/],
  ];
  for (const [config, handler, want, msg] of cases) {
    await assert.rejects(d.client.runtime.runPodSandbox({ config, runtimeHandler: handler }), (e) => {
      assert.equal(code(e), want, `${config.metadata?.name}: ${(e as ServiceError).details}`);
      assert.match((e as ServiceError).details, msg);
      return true;
    });
  }
  await assertNoResidue();
});

test("a CNI failure midway through the chain rolls everything back, including the bridge's IP", async () => {
  net.install(d.dirs.cniConfDir, "05-broken.conflist", [{ type: "no-such-cni-plugin" }]);
  try {
    await assert.rejects(d.client.runtime.runPodSandbox({ config: pod("cnifail") }), (e) => /no-such-cni-plugin/.test((e as ServiceError).details));
    await assertNoResidue();
  } finally {
    rmSync(join(d.dirs.cniConfDir, "05-broken.conflist"));
  }
  const ok = await d.client.runtime.runPodSandbox({ config: pod("after-cnifail") });
  await d.client.runtime.removePodSandbox({ podSandboxId: ok.podSandboxId });
  await assertNoResidue();
});

test("berthctl runp (crictl-style YAML), pods, inspectp, stopp, rmp", async () => {
  const file = join(d.dirs.base, "pod.yaml");
  writeFileSync(
    file,
    [
      "metadata:",
      "  name: ctl-pod",
      "  namespace: e2e",
      "  uid: ctl-uid-1",
      "hostname: ctl-host",
      `log_directory: ${join(d.dirs.logs, "ctl")}`,
      "dns_config:",
      "  servers: [10.0.0.10]",
      "labels:",
      "  my_label: x",
      "linux:",
      "  sysctls:",
      "    net.ipv4.ip_unprivileged_port_start: '100'",
    ].join("\n"),
  );
  const ctl = (...args: string[]) => {
    const r = spawnSync(process.execPath, [BERTHCTL, "--socket", d.dirs.socket, ...args], { encoding: "utf8", timeout: 60_000 });
    assert.equal(r.status, 0, `berthctl ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  const id = ctl("runp", file).trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  const table = ctl("pods", "--label", "my_label=x");
  assert.match(table, /^POD ID\s+CREATED\s+STATE\s+NAME/);
  assert.match(table, new RegExp(`${id.slice(0, 13)}\\s.*Ready\\s+ctl-pod\\s+e2e`));
  assert.equal(ctl("pods", "-q", "--state", "ready").trim(), id);
  const doc = JSON.parse(ctl("inspectp", id.slice(0, 8))) as { status: { state: string; metadata: { name: string } }; info: { info: { hostname: string; sysctls: Record<string, string>; config: { dnsConfig: { servers: string[] } } } } };
  assert.equal(doc.status.state, "SANDBOX_READY");
  assert.equal(doc.info.info.hostname, "ctl-host");
  assert.deepEqual(doc.info.info.sysctls, { "net.ipv4.ip_unprivileged_port_start": "100" });
  assert.deepEqual(doc.info.info.config.dnsConfig.servers, ["10.0.0.10"]);
  assert.match(ctl("stopp", id.slice(0, 10)), new RegExp(`Stopped sandbox ${id}`));
  assert.match(ctl("pods", "--state", "notready"), /NotReady\s+ctl-pod/);
  assert.match(ctl("rmp", id), new RegExp(`Removed sandbox ${id}`));
  assert.equal(ctl("pods", "-q").trim(), "");
  const bad = spawnSync(process.execPath, [BERTHCTL, "--socket", d.dirs.socket, "runp", "--runtime", "nope", file], { encoding: "utf8" });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /INVALID_ARGUMENT: runtime handler "nope"/);
  await assertNoResidue();
});

test("a hostPort mapping reaches a server in the pod from the host (portmap capability)", async () => {
  const hostIp = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === "IPv4" && !a.internal)?.address;
  assert.ok(hostIp, "the host has an IPv4 address");
  const hostPort = 20000 + Math.floor(Math.random() * 20000);
  const { podSandboxId: id } = await d.client.runtime.runPodSandbox({
    config: pod("portmap", { portMappings: [{ protocol: Protocol.TCP, containerPort: 8080, hostPort }] }),
  });
  const www = join(d.dirs.base, `www-${hostPort}`);
  mkdirSync(www);
  writeFileSync(join(www, "index.html"), "hello from the pod\n");
  const i = await info(id);
  const server = spawn("nsenter", [`--net=${i.netnsPath}`, "busybox", "httpd", "-f", "-p", "8080", "-h", www], { stdio: "ignore" });
  try {
    let body = "";
    for (let attempt = 0; attempt < 50 && !body; attempt++) {
      body = await fetch(`http://${hostIp}:${hostPort}/`).then((r) => r.text(), () => "");
      if (!body) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(body, "hello from the pod\n");
  } finally {
    server.kill("SIGKILL");
  }
  await d.client.runtime.removePodSandbox({ podSandboxId: id });
  const nat = sh("iptables", ["-t", "nat", "-S"]).out;
  assert.ok(!nat.includes(`--dport ${hostPort}`), "the hostPort rules are gone after remove");
  await assertNoResidue();
});

test("Status: NetworkReady is false while the first config names a plugin that is not installed", async () => {
  const ready = async () => (await d.client.runtime.status({})).status?.conditions.find((c) => c.type === "NetworkReady");
  assert.equal((await ready())?.status, true);
  net.install(d.dirs.cniConfDir, "05-broken.conflist", [{ type: "no-such-cni-plugin" }]);
  try {
    const c = await ready();
    assert.equal(c?.status, false);
    assert.match(c?.message ?? "", /no-such-cni-plugin/);
  } finally {
    rmSync(join(d.dirs.cniConfDir, "05-broken.conflist"));
  }
  assert.equal((await ready())?.status, true);
});

test("ten pods run and are removed concurrently: distinct IPs, nothing left", async () => {
  const ids = await Promise.all(Array.from({ length: 10 }, (_, k) => d.client.runtime.runPodSandbox({ config: pod(`many-${k}`) }).then((r) => r.podSandboxId)));
  const ips = await Promise.all(ids.map(async (id) => (await d.client.runtime.podSandboxStatus({ podSandboxId: id })).status?.network?.ip));
  assert.equal(new Set(ips).size, 10);
  assert.equal(net.allocated().length, 10);
  await Promise.all(ids.map((id) => d.client.runtime.removePodSandbox({ podSandboxId: id })));
  await assertNoResidue();
});

test("a pod whose PID namespace init is killed becomes NOTREADY; stop and remove still clean up", async () => {
  const { podSandboxId: id } = await d.client.runtime.runPodSandbox({ config: pod("initkill") });
  const { pid } = await info(id);
  assert.ok(pid > 0);
  process.kill(pid, "SIGKILL");
  let state: PodSandboxState | undefined;
  for (let k = 0; k < 50 && state !== PodSandboxState.SANDBOX_NOTREADY; k++) {
    await new Promise((r) => setTimeout(r, 50));
    state = (await d.client.runtime.podSandboxStatus({ podSandboxId: id })).status?.state;
  }
  assert.equal(state, PodSandboxState.SANDBOX_NOTREADY);
  assert.deepEqual((await d.client.runtime.listPodSandbox({ filter: { state: { state: PodSandboxState.SANDBOX_NOTREADY } } })).items.map((p) => p.id), [id]);
  await d.client.runtime.stopPodSandbox({ podSandboxId: id });
  await d.client.runtime.removePodSandbox({ podSandboxId: id });
  await assertNoResidue();
});
