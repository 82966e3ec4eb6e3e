import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidArgumentError } from "../errdefs/index.js";
import { setRootLogger } from "../log/index.js";
import { buildSpec, processArgs, mergeEnv, DEFAULT_MASKED_PATHS, type BuildSpecInput, type ContainerSpecRequest, type HostFeatures } from "./spec-builder.js";
import { DEFAULT_CAPABILITIES, ALL_CAPABILITIES } from "./capabilities.js";
import { resolveInRoot, readFileInRoot } from "./rootfs-path.js";
import { resolveUser } from "./user.js";

setRootLogger({ level: "silent" });

function rootfs(): string {
  const dir = mkdtempSync(join(tmpdir(), "berth-oci-test-"));
  mkdirSync(join(dir, "etc"));
  writeFileSync(join(dir, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nalice:x:1000:1001:Alice:/home/alice:/bin/sh\n");
  writeFileSync(join(dir, "etc/group"), "root:x:0:\nstaff:x:50:alice,bob\nalice:x:1001:\nwheel:x:10:alice\nnogroup:x:65534:\n");
  return dir;
}

const host: HostFeatures = {
  cgroupMode: "hybrid",
  cgroupDriver: "cgroupfs",
  apparmor: false,
  swapAccount: true,
  hugepageSizes: ["2MB"],
  oomScoreAdjFloor: undefined,
  hostDevices: () => [{ path: "/dev/fake0", type: "c", major: 250, minor: 0 }],
};

function sc(over: Partial<NonNullable<NonNullable<ContainerSpecRequest["linux"]>["securityContext"]>> = {}): NonNullable<NonNullable<ContainerSpecRequest["linux"]>["securityContext"]> {
  return {
    privileged: false,
    runAsUsername: "",
    readonlyRootfs: false,
    supplementalGroups: [],
    apparmorProfile: "",
    seccompProfilePath: "",
    noNewPrivs: false,
    maskedPaths: [],
    readonlyPaths: [],
    ...over,
  };
}

function input(root: string, config: ContainerSpecRequest, over: Partial<BuildSpecInput> = {}): BuildSpecInput {
  return {
    id: "c1",
    config,
    image: { Entrypoint: ["/entry"], Cmd: ["a", "b"], Env: ["PATH=/bin", "A=image"], WorkingDir: "/work", User: "" },
    rootfs: root,
    sandbox: {
      id: "s1",
      hostname: "pod-host",
      netnsPath: "/run/x/netns",
      ipcNsPath: "/run/x/ipc",
      utsNsPath: "/run/x/uts",
      hostNetwork: false,
      hostPid: false,
      hostIpc: false,
      cgroupParent: "/kubepods/pod1",
      hostsPath: "/run/x/hosts",
      resolvConfPath: "/run/x/resolv.conf",
      hostnamePath: "/run/x/hostname",
      shmPath: "/run/x/shm",
      sysctls: { "net.ipv4.ip_forward": "1", "kernel.shmmax": "100" },
    },
    host,
    ...over,
  };
}

test("command and args merge with ENTRYPOINT/CMD the Kubernetes way", () => {
  const img = { Entrypoint: ["/ep"], Cmd: ["c1", "c2"] };
  assert.deepEqual(processArgs([], [], img), ["/ep", "c1", "c2"]);
  assert.deepEqual(processArgs(["/cmd"], [], img), ["/cmd"]);
  assert.deepEqual(processArgs([], ["x"], img), ["/ep", "x"]);
  assert.deepEqual(processArgs(["/cmd"], ["x"], img), ["/cmd", "x"]);
  assert.deepEqual(processArgs([], [], { Cmd: ["sh"] }), ["sh"]);
});

test("env: image first, CRI overrides in place, defaults added", () => {
  assert.deepEqual(mergeEnv(["A=1", "B=2"], ["B=3", "C=4"]), ["A=1", "B=3", "C=4"]);
  const root = rootfs();
  try {
    const { spec } = buildSpec(input(root, { envs: [{ key: "A", value: "cri" }, { key: "Z", value: "z" }], tty: true }));
    assert.deepEqual(spec.process.env, ["HOSTNAME=pod-host", "TERM=xterm", "PATH=/bin", "A=cri", "Z=z"]);
    assert.equal(spec.process.cwd, "/work");
    assert.equal(spec.process.terminal, true);
    assert.deepEqual(spec.process.args, ["/entry", "a", "b"]);
  } finally {
    rmSync(root, { recursive: true });
  }
});

test("no command anywhere is InvalidArgument", () => {
  const root = rootfs();
  try {
    assert.throws(() => buildSpec(input(root, {}, { image: {} })), InvalidArgumentError);
  } finally {
    rmSync(root, { recursive: true });
  }
});

test("user resolution: image USER forms and CRI overrides", () => {
  const root = rootfs();
  try {
    assert.deepEqual(resolveUser(root, { imageUser: "" }).uid, 0);
    const alice = resolveUser(root, { imageUser: "alice" });
    assert.equal(alice.uid, 1000);
    assert.equal(alice.gid, 1001);
    assert.deepEqual(alice.additionalGids, [1001, 50, 10]);
    assert.deepEqual(resolveUser(root, { imageUser: "1000" }).gid, 1001);
    assert.deepEqual(resolveUser(root, { imageUser: "4242" }), { uid: 4242, gid: 0, additionalGids: [0], username: undefined, home: undefined });
    const ug = resolveUser(root, { imageUser: "1000:7" });
    assert.equal(ug.uid, 1000);
    assert.equal(ug.gid, 7);
    assert.equal(resolveUser(root, { imageUser: "alice:staff" }).gid, 50);
    assert.equal(resolveUser(root, { imageUser: "nobody" }).uid, 65534);
    assert.throws(() => resolveUser(root, { imageUser: "mallory" }), /mallory/);
    assert.throws(() => resolveUser(root, { imageUser: "alice:nogrp" }), /nogrp/);
    // CRI: run_as_user wins over the image user, run_as_group over the passwd group.
    const cri = resolveUser(root, { runAsUser: 1000, runAsGroup: 3000, supplementalGroups: [4000, 50], imageUser: "nobody" });
    assert.equal(cri.uid, 1000);
    assert.equal(cri.gid, 3000);
    assert.deepEqual(cri.additionalGids, [3000, 50, 10, 4000]);
    assert.equal(resolveUser(root, { runAsUsername: "alice" }).uid, 1000);
    // run_as_group alone is refused (as critest expects).
    assert.throws(() => buildSpec(input(root, { linux: { securityContext: sc({ runAsGroup: { value: 5n } }) } })), /run_as_group/);
  } finally {
    rmSync(root, { recursive: true });
  }
});

test("passwd is read inside the rootfs even through absolute symlinks", () => {
  const root = rootfs();
  try {
    rmSync(join(root, "etc/passwd"));
    mkdirSync(join(root, "real"));
    writeFileSync(join(root, "real/passwd"), "bob:x:77:78::/:/bin/sh\n");
    symlinkSync("/real/passwd", join(root, "etc/passwd"));
    assert.equal(resolveUser(root, { imageUser: "bob" }).uid, 77);
    // A symlink pointing at the host's /etc/shadow stays inside the rootfs.
    symlinkSync("../../../../../../etc/hostname", join(root, "escape"));
    assert.equal(resolveInRoot(root, "/escape"), join(root, "etc/hostname"));
    assert.equal(readFileInRoot(root, "/escape"), undefined);
  } finally {
    rmSync(root, { recursive: true });
  }
});

test("default capabilities, add/drop, ALL", () => {
  const root = rootfs();
  try {
    const def = buildSpec(input(root, {})).spec;
    assert.deepEqual([...def.process.capabilities.bounding].sort(), [...DEFAULT_CAPABILITIES].sort());
    const cfg = (add: string[], drop: string[]): ContainerSpecRequest => ({ linux: { securityContext: sc({ capabilities: { addCapabilities: add, dropCapabilities: drop } }) } });
    const s1 = buildSpec(input(root, cfg(["NET_ADMIN", "cap_sys_time"], ["CHOWN"]))).spec;
    assert.ok(s1.process.capabilities.effective.includes("CAP_NET_ADMIN"));
    assert.ok(s1.process.capabilities.effective.includes("CAP_SYS_TIME"));
    assert.ok(!s1.process.capabilities.effective.includes("CAP_CHOWN"));
    assert.deepEqual(buildSpec(input(root, cfg([], ["ALL"]))).spec.process.capabilities.bounding, []);
    assert.deepEqual(buildSpec(input(root, cfg(["KILL"], ["ALL"]))).spec.process.capabilities.bounding, ["CAP_KILL"]);
    assert.equal(buildSpec(input(root, cfg(["ALL"], []))).spec.process.capabilities.bounding.length, ALL_CAPABILITIES.length);
    assert.throws(() => buildSpec(input(root, cfg(["NOT_A_CAP"], []))), InvalidArgumentError);
  } finally {
    rmSync(root, { recursive: true });
  }
});

test("privileged: all caps, host devices, no masked paths, rw sysfs, no seccomp", () => {
  const root = rootfs();
  try {
    const { spec } = buildSpec(input(root, { linux: { securityContext: sc({ privileged: true, seccomp: { profileType: 0, localhostRef: "" } }) } }));
    assert.equal(spec.process.capabilities.bounding.length, ALL_CAPABILITIES.length);
    assert.deepEqual(spec.linux.maskedPaths, []);
    assert.deepEqual(spec.linux.readonlyPaths, []);
    assert.deepEqual(spec.linux.devices, [{ path: "/dev/fake0", type: "c", major: 250, minor: 0 }]);
    assert.deepEqual(spec.linux.resources.devices, [{ allow: true, access: "rwm" }]);
    assert.ok(spec.mounts.find((m) => m.destination === "/sys")?.options?.includes("rw"));
    assert.equal(spec.linux.seccomp, undefined);
  } finally {
    rmSync(root, { recursive: true });
  }
});

test("masked/readonly paths default like containerd, CRI lists override", () => {
  const root = rootfs();
  try {
    assert.deepEqual(buildSpec(input(root, {})).spec.linux.maskedPaths, [...DEFAULT_MASKED_PATHS]);
    const { spec } = buildSpec(input(root, { linux: { securityContext: sc({ maskedPaths: ["/proc/x"], readonlyPaths: ["/proc/y"], readonlyRootfs: true, noNewPrivs: true }) } }));
    assert.deepEqual(spec.linux.maskedPaths, ["/proc/x"]);
    assert.deepEqual(spec.linux.readonlyPaths, ["/proc/y"]);
    assert.equal(spec.root.readonly, true);
    assert.equal(spec.process.noNewPrivileges, true);
    assert.ok(spec.mounts.find((m) => m.destination === "/etc/hosts")?.options?.includes("ro"));
  } finally {
    rmSync(root, { recursive: true });
  }
});

test("seccomp: RuntimeDefault, Unconfined, Localhost, deprecated path", () => {
  const root = rootfs();
  try {
    const mk = (s: Parameters<typeof sc>[0]) => buildSpec(input(root, { linux: { securityContext: sc(s) } })).spec.linux.seccomp;
    const def = mk({ seccomp: { profileType: 0, localhostRef: "" } });
    assert.equal(def?.defaultAction, "SCMP_ACT_ERRNO");
    const allowed = def?.syscalls?.filter((s) => s.action === "SCMP_ACT_ALLOW" && !s.args).flatMap((s) => s.names) ?? [];
    assert.ok(allowed.includes("read"));
    assert.ok(!allowed.includes("mount"));
    assert.ok(!allowed.includes("unshare"));
    assert.equal(mk({ seccomp: { profileType: 1, localhostRef: "" } }), undefined);
    assert.equal(mk({}), undefined);
    assert.equal(mk({ seccompProfilePath: "runtime/default" })?.defaultAction, "SCMP_ACT_ERRNO");
    const file = join(root, "profile.json");
    writeFileSync(file, JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }] }));
    assert.equal(mk({ seccomp: { profileType: 2, localhostRef: file } })?.defaultAction, "SCMP_ACT_ALLOW");
    assert.throws(() => mk({ seccomp: { profileType: 2, localhostRef: join(root, "missing.json") } }), InvalidArgumentError);
    // SYS_ADMIN unlocks mount in the default profile.
    const admin = buildSpec(input(root, { linux: { securityContext: sc({ seccomp: { profileType: 0, localhostRef: "" }, capabilities: { addCapabilities: ["SYS_ADMIN"], dropCapabilities: [] } }) } })).spec.linux.seccomp;
    assert.ok(admin?.syscalls?.some((s) => s.names.includes("mount") && s.action === "SCMP_ACT_ALLOW"));
  } finally {
    rmSync(root, { recursive: true });
  }
});

test("mounts: CRI binds with propagation, pod files, missing host path", () => {
  const root = rootfs();
  try {
    const hostDir = join(root, "etc");
    const { spec } = buildSpec(
      input(root, {
        mounts: [
          { containerPath: "/data/sub", hostPath: hostDir, readonly: false, propagation: 2 },
          { containerPath: "/data", hostPath: hostDir, readonly: true, propagation: 1 },
          { containerPath: "/etc/hosts", hostPath: join(root, "etc/passwd"), readonly: false, propagation: 0 },
        ],
      }),
    );
    const dests = spec.mounts.map((m) => m.destination);
    assert.ok(dests.indexOf("/data") < dests.indexOf("/data/sub"));
    assert.deepEqual(spec.mounts.find((m) => m.destination === "/data")?.options, ["rbind", "rslave", "ro"]);
    assert.deepEqual(spec.mounts.find((m) => m.destination === "/data/sub")?.options, ["rbind", "rshared", "rw"]);
    assert.equal(spec.mounts.filter((m) => m.destination === "/etc/hosts").length, 1);
    assert.equal(spec.mounts.find((m) => m.destination === "/etc/hosts")?.source, join(root, "etc/passwd"));
    assert.equal(spec.mounts.find((m) => m.destination === "/etc/resolv.conf")?.source, "/run/x/resolv.conf");
    assert.equal(spec.mounts.find((m) => m.destination === "/dev/shm")?.source, "/run/x/shm");
    assert.throws(
      () => buildSpec(input(root, { mounts: [{ containerPath: "/m", hostPath: "/does/not/exist-berth", readonly: false, propagation: 0 }] })),
      (err: Error) => err instanceof InvalidArgumentError && err.message.includes("/does/not/exist-berth"),
    );
    assert.throws(() => buildSpec(input(root, { mounts: [{ containerPath: "rel", hostPath: hostDir, readonly: false, propagation: 0 }] })), InvalidArgumentError);
  } finally {
    rmSync(root, { recursive: true });
  }
});

test("mount propagation: rootfs propagation follows the binds; impossible ones and recursive read-only are refused", () => {
  const root = rootfs();
  try {
    const dir = join(root, "etc");
    const mk = (propagation: number, prop?: "shared" | "slave" | "private", extra: Record<string, unknown> = {}) =>
      buildSpec(input(root, { mounts: [{ containerPath: "/m", hostPath: dir, readonly: false, propagation, ...extra }] }, { host: { ...host, ...(prop ? { mountPropagation: () => prop } : {}) } })).spec;
    assert.equal(mk(0).linux.rootfsPropagation, undefined);
    assert.equal(mk(1, "slave").linux.rootfsPropagation, "rslave");
    assert.equal(mk(2, "shared").linux.rootfsPropagation, "rshared");
    assert.throws(() => mk(2, "private"), /not on a shared mount/);
    assert.throws(() => mk(1, "private"), /private mount/);
    assert.throws(() => mk(0, undefined, { recursiveReadOnly: true }), /recursive read-only/);
  } finally {
    rmSync(root, { recursive: true });
  }
});

test("devices: a CRI device becomes a node and a cgroup rule", () => {
  const root = rootfs();
  try {
    const { spec } = buildSpec(input(root, { devices: [{ containerPath: "/dev/mynull", hostPath: "/dev/null", permissions: "rw" }] }));
    assert.deepEqual(spec.linux.devices?.map((d) => [d.path, d.type, d.major, d.minor]), [["/dev/mynull", "c", 1, 3]]);
    assert.deepEqual(spec.linux.resources.devices.at(-1), { allow: true, type: "c", major: 1, minor: 3, access: "rw" });
    assert.throws(() => buildSpec(input(root, { devices: [{ containerPath: "/dev/x", hostPath: "/dev/nope-berth", permissions: "" }] })), InvalidArgumentError);
  } finally {
    rmSync(root, { recursive: true });
  }
});

test("namespaces: joins the pod's, host ones omitted, pid modes", () => {
  const root = rootfs();
  try {
    const ns = (cfg: ContainerSpecRequest, sb: Partial<BuildSpecInput["sandbox"]> = {}) => {
      const base = input(root, cfg);
      return buildSpec({ ...base, sandbox: { ...base.sandbox, ...sb } }).spec.linux.namespaces;
    };
    assert.deepEqual(ns({}), [{ type: "mount" }, { type: "network", path: "/run/x/netns" }, { type: "ipc", path: "/run/x/ipc" }, { type: "uts", path: "/run/x/uts" }, { type: "pid" }]);
    const host = ns({ linux: { securityContext: sc({ namespaceOptions: { network: 2, pid: 2, ipc: 2, targetId: "" } }) } }, { hostNetwork: true, hostIpc: true, hostPid: true, netnsPath: undefined, ipcNsPath: undefined, utsNsPath: undefined });
    assert.deepEqual(host, [{ type: "mount" }]);
    const pod = ns({ linux: { securityContext: sc({ namespaceOptions: { network: 0, pid: 0, ipc: 0, targetId: "" } }) } }, { pidNsPath: "/run/x/pid" });
    assert.deepEqual(pod.at(-1), { type: "pid", path: "/run/x/pid" });
  } finally {
    rmSync(root, { recursive: true });
  }
});

test("resources, oom_score_adj clamp, cgroup path, sysctls", () => {
  const root = rootfs();
  try {
    const resources = {
      cpuPeriod: 100000n,
      cpuQuota: 50000n,
      cpuShares: 512n,
      memoryLimitInBytes: 64n * 1024n * 1024n,
      oomScoreAdj: -998n,
      cpusetCpus: "0",
      cpusetMems: "",
      hugepageLimits: [{ pageSize: "2MB", limit: 0n }, { pageSize: "1GB", limit: 0n }],
      unified: { "memory.high": "1000" },
      memorySwapLimitInBytes: 0n,
    };
    const base = input(root, { linux: { resources } }, { host: { ...host, oomScoreAdjFloor: 0 } });
    const { spec } = buildSpec(base);
    assert.deepEqual(spec.linux.resources.cpu, { shares: 512, quota: 50000, period: 100000, cpus: "0" });
    assert.deepEqual(spec.linux.resources.memory, { limit: 67108864, swap: 67108864 });
    assert.deepEqual(spec.linux.resources.hugepageLimits, [{ pageSize: "2MB", limit: 0 }]);
    assert.equal(spec.linux.resources.unified, undefined, "unified only on cgroup v2");
    assert.equal(spec.process.oomScoreAdj, 0);
    assert.equal(spec.linux.cgroupsPath, "/kubepods/pod1/berth-c1");
    assert.deepEqual(spec.linux.sysctl, { "net.ipv4.ip_forward": "1", "kernel.shmmax": "100" });
    const unclamped = buildSpec(input(root, { linux: { resources } }));
    assert.equal(unclamped.spec.process.oomScoreAdj, -998);
    const systemd = buildSpec(input(root, {}, { host: { ...host, cgroupDriver: "systemd", cgroupMode: "v2" } }));
    assert.equal(systemd.spec.linux.cgroupsPath, "/kubepods/pod1:berth:c1");
    const hostNet = buildSpec({ ...base, sandbox: { ...base.sandbox, hostNetwork: true, hostIpc: true } });
    assert.equal(hostNet.spec.linux.sysctl, undefined);
  } finally {
    rmSync(root, { recursive: true });
  }
});
