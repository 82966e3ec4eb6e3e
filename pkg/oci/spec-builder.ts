import { readFileSync, realpathSync, statSync } from "node:fs";
import { posix } from "node:path";
import { InvalidArgumentError } from "../errdefs/index.js";
import { logger } from "../log/index.js";
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, applyCapabilityChanges, normalizeCapability } from "./capabilities.js";
import { DEFAULT_DEVICE_RULES, devicesFor } from "./devices.js";
import type { ImageRuntimeConfig } from "./image-config.js";
import { defaultSeccompProfile } from "./seccomp-default.js";
import type { LinuxDevice, LinuxDeviceCgroup, LinuxNamespace, LinuxResources, LinuxSeccomp, Spec, SpecMount } from "./spec-types.js";
import { resolveUser, type ResolvedUser } from "./user.js";

/*
 * The container request as the spec builder reads it. Field names and numeric
 * enum values match the CRI v1 messages, so a CRI ContainerConfig can be passed
 * as is; pkg/oci itself does not depend on generated code.
 */
export interface SecurityProfileInput {
  /** 0 RuntimeDefault, 1 Unconfined, 2 Localhost. */
  profileType: number;
  localhostRef: string;
}
export interface ContainerSpecRequest {
  command?: readonly string[];
  args?: readonly string[];
  workingDir?: string;
  envs?: readonly { key: string; value: string }[];
  mounts?: readonly {
    containerPath: string;
    hostPath: string;
    readonly: boolean;
    propagation: number;
    recursiveReadOnly?: boolean;
    /** An image volume (the image's rootfs); the runtime mounts it and sets host_path before the spec is built. */
    image?: { image: string } | undefined;
    imageSubPath?: string;
  }[];
  devices?: readonly { containerPath: string; hostPath: string; permissions: string }[];
  annotations?: Readonly<Record<string, string>>;
  stdin?: boolean;
  stdinOnce?: boolean;
  tty?: boolean;
  linux?:
    | {
        resources?:
          | {
              cpuPeriod: bigint;
              cpuQuota: bigint;
              cpuShares: bigint;
              memoryLimitInBytes: bigint;
              oomScoreAdj: bigint;
              cpusetCpus: string;
              cpusetMems: string;
              hugepageLimits: readonly { pageSize: string; limit: bigint }[];
              unified: Readonly<Record<string, string>>;
              memorySwapLimitInBytes: bigint;
            }
          | undefined;
        securityContext?:
          | {
              capabilities?: { addCapabilities: readonly string[]; dropCapabilities: readonly string[]; addAmbientCapabilities?: readonly string[] } | undefined;
              privileged: boolean;
              namespaceOptions?: { network: number; pid: number; ipc: number; targetId: string } | undefined;
              runAsUser?: { value: bigint } | undefined;
              runAsUsername: string;
              runAsGroup?: { value: bigint } | undefined;
              readonlyRootfs: boolean;
              supplementalGroups: readonly bigint[];
              apparmorProfile: string;
              seccompProfilePath: string;
              noNewPrivs: boolean;
              maskedPaths: readonly string[];
              readonlyPaths: readonly string[];
              seccomp?: SecurityProfileInput | undefined;
              apparmor?: SecurityProfileInput | undefined;
            }
          | undefined;
      }
    | undefined;
}

/** What the spec needs to know about the pod sandbox the container joins. */
export interface SandboxSpecView {
  id: string;
  hostname: string;
  /** Pinned namespace files; undefined when the pod uses the host's. */
  netnsPath?: string | undefined;
  ipcNsPath?: string | undefined;
  utsNsPath?: string | undefined;
  pidNsPath?: string | undefined;
  hostNetwork: boolean;
  hostPid: boolean;
  hostIpc: boolean;
  cgroupParent: string;
  hostsPath?: string | undefined;
  resolvConfPath?: string | undefined;
  hostnamePath?: string | undefined;
  shmPath?: string | undefined;
  sysctls?: Readonly<Record<string, string>> | undefined;
}

/** Facts about the host the spec depends on (detected once by the caller). */
export interface HostFeatures {
  cgroupMode: "v1" | "v2" | "hybrid";
  cgroupDriver: "cgroupfs" | "systemd";
  apparmor: boolean;
  /** memory.memsw (v1) or memory.swap.max (v2) exists. */
  swapAccount: boolean;
  /** Hugepage sizes the kernel offers, in the CRI spelling ("2MB", "1GB"). */
  hugepageSizes: readonly string[];
  /** Lowest oom_score_adj allowed; undefined = do not clamp. */
  oomScoreAdjFloor: number | undefined;
  /** Capabilities berthd itself may grant (its bounding set): privileged and "ALL" mean these. */
  capabilities?: readonly string[];
  /**
   * The propagation of the host mount a path lives on ("shared", "slave", "private"),
   * used to refuse rshared/rslave binds the host cannot honour; undefined = not checked.
   */
  mountPropagation?: (path: string) => "shared" | "slave" | "private" | undefined;
  /** Device nodes a privileged container gets (normally every node under /dev). */
  hostDevices: () => LinuxDevice[];
}

export interface BuildSpecInput {
  id: string;
  config: ContainerSpecRequest;
  image: ImageRuntimeConfig;
  /** The container rootfs (mounted): root.path, and where /etc/passwd is read. */
  rootfs: string;
  sandbox: SandboxSpecView;
  host: HostFeatures;
  /** /proc/<pid>/ns/pid of the target container when pid namespace mode is TARGET. */
  targetPidNsPath?: string | undefined;
}

export interface BuiltSpec {
  spec: Spec;
  user: ResolvedUser;
}

export const DEFAULT_MASKED_PATHS: readonly string[] = [
  "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
  "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
];
export const DEFAULT_READONLY_PATHS: readonly string[] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const NS_POD = 0;
const NS_CONTAINER = 1;
const NS_NODE = 2;
const NS_TARGET = 3;

/** The process argv the Kubernetes way: command replaces ENTRYPOINT (and drops CMD); args replaces CMD. */
export function processArgs(command: readonly string[], args: readonly string[], image: ImageRuntimeConfig): string[] {
  const entrypoint = command.length > 0 ? [...command] : [...(image.Entrypoint ?? [])];
  const cmd = args.length > 0 ? [...args] : command.length > 0 ? [] : [...(image.Cmd ?? [])];
  return [...entrypoint, ...cmd];
}

/** Image env first, then the CRI envs; a later key replaces an earlier one in place. */
export function mergeEnv(...lists: (readonly string[])[]): string[] {
  const order: string[] = [];
  const values = new Map<string, string>();
  for (const list of lists) {
    for (const kv of list) {
      const eq = kv.indexOf("=");
      const key = eq >= 0 ? kv.slice(0, eq) : kv;
      if (!values.has(key)) order.push(key);
      values.set(key, kv);
    }
  }
  return order.map((k) => values.get(k) as string);
}

function checkAbsolute(path: string, field: string): string {
  if (!path.startsWith("/")) throw new InvalidArgumentError(`${field} "${path}" must be an absolute path`);
  return posix.normalize(path);
}

/** Seccomp for the container, or undefined for unconfined. */
function seccompFor(sc: NonNullable<NonNullable<ContainerSpecRequest["linux"]>["securityContext"]> | undefined, caps: readonly string[]): LinuxSeccomp | undefined {
  if (!sc || sc.privileged) return undefined;
  let kind: "default" | "unconfined" | "localhost";
  let file = "";
  if (sc.seccomp) {
    if (sc.seccomp.profileType === 0) kind = "default";
    else if (sc.seccomp.profileType === 1) kind = "unconfined";
    else if (sc.seccomp.profileType === 2) {
      kind = "localhost";
      file = sc.seccomp.localhostRef;
    } else throw new InvalidArgumentError(`seccomp: unknown profile type ${sc.seccomp.profileType}`);
  } else {
    const p = sc.seccompProfilePath;
    if (p === "" || p === "unconfined") kind = "unconfined";
    else if (p === "runtime/default" || p === "docker/default") kind = "default";
    else if (p.startsWith("localhost/")) {
      kind = "localhost";
      file = p.slice("localhost/".length);
    } else throw new InvalidArgumentError(`seccomp_profile_path "${p}" is not unconfined, runtime/default or localhost/<path>`);
  }
  if (kind === "unconfined") return undefined;
  if (kind === "default") return defaultSeccompProfile(caps);
  if (!file.startsWith("/")) throw new InvalidArgumentError(`seccomp localhost profile "${file}" must be an absolute path`);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new InvalidArgumentError(`seccomp localhost profile "${file}" cannot be read`, { cause: err });
  }
  try {
    const profile = JSON.parse(text) as LinuxSeccomp & { defaultErrnoRet?: number };
    if (typeof profile.defaultAction !== "string") throw new Error("defaultAction missing");
    return profile;
  } catch (err) {
    throw new InvalidArgumentError(`seccomp localhost profile "${file}" is not a valid profile: ${(err as Error).message}`, { cause: err });
  }
}

function apparmorFor(sc: NonNullable<NonNullable<ContainerSpecRequest["linux"]>["securityContext"]> | undefined, host: HostFeatures): string | undefined {
  if (!host.apparmor || !sc || sc.privileged) return undefined;
  if (sc.apparmor) {
    if (sc.apparmor.profileType === 2) return sc.apparmor.localhostRef.replace(/^localhost\//, "");
    return undefined;
  }
  const p = sc.apparmorProfile;
  if (p.startsWith("localhost/")) return p.slice("localhost/".length);
  return undefined;
}

type CriResources = NonNullable<NonNullable<ContainerSpecRequest["linux"]>["resources"]>;

/** The cgroup limits (cpu, memory, hugepages, unified) of CRI LinuxContainerResources, as the host supports them. */
export function resourceLimits(res: CriResources, host: Pick<HostFeatures, "swapAccount" | "hugepageSizes" | "cgroupMode">): Omit<LinuxResources, "devices"> {
  const out: Omit<LinuxResources, "devices"> = {};
  const cpu: NonNullable<LinuxResources["cpu"]> = {};
  if (res.cpuShares > 0n) cpu.shares = Number(res.cpuShares);
  if (res.cpuQuota > 0n) cpu.quota = Number(res.cpuQuota);
  if (res.cpuPeriod > 0n) cpu.period = Number(res.cpuPeriod);
  if (res.cpusetCpus) cpu.cpus = res.cpusetCpus;
  if (res.cpusetMems) cpu.mems = res.cpusetMems;
  if (Object.keys(cpu).length > 0) out.cpu = cpu;
  if (res.memoryLimitInBytes > 0n) {
    const limit = Number(res.memoryLimitInBytes);
    out.memory = { limit };
    if (host.swapAccount) out.memory.swap = res.memorySwapLimitInBytes > 0n ? Number(res.memorySwapLimitInBytes) : limit;
  }
  const pages = res.hugepageLimits.filter((h) => host.hugepageSizes.includes(h.pageSize));
  if (pages.length > 0) out.hugepageLimits = pages.map((h) => ({ pageSize: h.pageSize, limit: Number(h.limit) }));
  if (host.cgroupMode === "v2" && Object.keys(res.unified).length > 0) out.unified = { ...res.unified };
  return out;
}

/** Builds the OCI runtime spec (config.json) of one container. */
export function buildSpec(input: BuildSpecInput): BuiltSpec {
  const { config, image, sandbox, host } = input;
  const sc = config.linux?.securityContext;
  const privileged = sc?.privileged ?? false;
  const res = config.linux?.resources;

  const args = processArgs(config.command ?? [], config.args ?? [], image);
  if (args.length === 0) throw new InvalidArgumentError("container has no command: neither the request nor the image gives one");

  if (sc?.runAsGroup && !sc.runAsUser && !sc.runAsUsername) {
    throw new InvalidArgumentError("security_context.run_as_group is set without run_as_user or run_as_username");
  }
  const user = resolveUser(input.rootfs, {
    runAsUser: sc?.runAsUser ? Number(sc.runAsUser.value) : undefined,
    runAsUsername: sc?.runAsUsername,
    runAsGroup: sc?.runAsGroup ? Number(sc.runAsGroup.value) : undefined,
    supplementalGroups: (sc?.supplementalGroups ?? []).map(Number),
    imageUser: image.User,
  });

  const imageEnv = image.Env ?? [];
  const base = [`HOSTNAME=${sandbox.hostname}`];
  if (!imageEnv.some((e) => e.startsWith("PATH="))) base.push(`PATH=${DEFAULT_PATH}`);
  if (config.tty) base.push("TERM=xterm");
  const env = mergeEnv(base, imageEnv, (config.envs ?? []).map((e) => `${e.key}=${e.value}`));

  let caps: string[];
  const hostCaps = host.capabilities ?? ALL_CAPABILITIES;
  if (privileged) caps = [...hostCaps];
  else caps = applyCapabilityChanges(DEFAULT_CAPABILITIES, sc?.capabilities?.addCapabilities ?? [], sc?.capabilities?.dropCapabilities ?? [], hostCaps);
  const ambient = (sc?.capabilities?.addAmbientCapabilities ?? []).map((c) => normalizeCapability(c, "capabilities.add_ambient_capabilities")).filter((c) => c !== "ALL" && caps.includes(c));

  const cwd = config.workingDir || image.WorkingDir || "/";
  checkAbsolute(cwd, "working_dir");

  // Namespaces.
  const nsOpts = sc?.namespaceOptions;
  const namespaces: LinuxNamespace[] = [{ type: "mount" }];
  if (!sandbox.hostNetwork) {
    if (!sandbox.netnsPath) throw new InvalidArgumentError(`sandbox ${sandbox.id} has no network namespace`);
    namespaces.push({ type: "network", path: sandbox.netnsPath });
  }
  if (!sandbox.hostIpc) namespaces.push(sandbox.ipcNsPath ? { type: "ipc", path: sandbox.ipcNsPath } : { type: "ipc" });
  if (!sandbox.hostNetwork) namespaces.push(sandbox.utsNsPath ? { type: "uts", path: sandbox.utsNsPath } : { type: "uts" });
  // Without options: a PID namespace of its own. The proto's zero is POD (containerd and CRI-O join the pod's
  // namespace then), but the pod's namespace here holds berth's `sh` + `sleep` init, which a container's
  // `pgrep sleep` (critest's exec-timeout check) would find; kubelet always sends the mode explicitly.
  const pidMode = nsOpts?.pid ?? NS_CONTAINER;
  if (pidMode === NS_TARGET) {
    if (!input.targetPidNsPath) throw new InvalidArgumentError(`namespace_options.target_id "${nsOpts?.targetId ?? ""}" has no running process to share a PID namespace with`);
    namespaces.push({ type: "pid", path: input.targetPidNsPath });
  } else if (pidMode === NS_POD && sandbox.pidNsPath) namespaces.push({ type: "pid", path: sandbox.pidNsPath });
  else if (pidMode === NS_NODE || (sandbox.hostPid && pidMode !== NS_CONTAINER)) {
    /* host PID namespace */
  } else namespaces.push({ type: "pid" });
  if (host.cgroupMode === "v2") namespaces.push({ type: "cgroup" });

  // Mounts.
  const ro = sc?.readonlyRootfs ?? false;
  const defaults: SpecMount[] = [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", privileged ? "rw" : "ro"] },
    { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", privileged ? "rw" : "ro"] },
  ];
  const criMounts: SpecMount[] = [];
  let rootfsPropagation: string | undefined;
  for (const m of config.mounts ?? []) {
    const dest = checkAbsolute(m.containerPath, "mount container_path");
    if (m.hostPath === "") throw new InvalidArgumentError(`mount "${dest}": host_path is empty`);
    let src: string;
    try {
      src = realpathSync(m.hostPath);
      statSync(src);
    } catch (err) {
      throw new InvalidArgumentError(`mount "${dest}": host path "${m.hostPath}" does not exist`, { cause: err });
    }
    const propagation = m.propagation === 1 ? "rslave" : m.propagation === 2 ? "rshared" : m.propagation === 0 ? "rprivate" : undefined;
    if (!propagation) throw new InvalidArgumentError(`mount "${dest}": unknown propagation ${m.propagation}`);
    if (m.recursiveReadOnly) throw new InvalidArgumentError(`mount "${dest}": recursive read-only mounts are not supported by this runtime`);
    const hostProp = host.mountPropagation?.(src);
    if (propagation === "rshared" && hostProp !== undefined && hostProp !== "shared") {
      throw new InvalidArgumentError(`mount "${dest}": host path "${src}" is not on a shared mount, so bidirectional propagation is impossible`);
    }
    if (propagation === "rslave" && hostProp === "private") {
      throw new InvalidArgumentError(`mount "${dest}": host path "${src}" is on a private mount, so host-to-container propagation is impossible`);
    }
    if (propagation === "rshared") rootfsPropagation = "rshared";
    else if (propagation === "rslave" && rootfsPropagation !== "rshared") rootfsPropagation = "rslave";
    criMounts.push({ destination: dest, type: "bind", source: src, options: ["rbind", propagation, m.readonly ? "ro" : "rw"] });
  }
  criMounts.sort((a, b) => a.destination.split("/").length - b.destination.split("/").length);
  const criDests = new Set(criMounts.map((m) => m.destination));

  const podMounts: SpecMount[] = [];
  const podFile = (dest: string, src: string | undefined): void => {
    if (src && !criDests.has(dest)) podMounts.push({ destination: dest, type: "bind", source: src, options: ["rbind", "rprivate", ro ? "ro" : "rw"] });
  };
  podFile("/etc/hostname", sandbox.hostnamePath);
  podFile("/etc/hosts", sandbox.hostsPath);
  podFile("/etc/resolv.conf", sandbox.resolvConfPath);
  const shm = sandbox.hostIpc ? "/dev/shm" : sandbox.shmPath;
  if (shm && !criDests.has("/dev/shm")) podMounts.push({ destination: "/dev/shm", type: "bind", source: shm, options: ["rbind", "rprivate", "rw"] });
  else if (!criDests.has("/dev/shm")) {
    podMounts.push({ destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] });
  }
  const taken = new Set([...criDests, ...podMounts.map((m) => m.destination)]);
  const mounts = [...defaults.filter((m) => !taken.has(m.destination)), ...podMounts, ...criMounts];

  // Devices.
  const devices: LinuxDevice[] = [];
  const deviceRules: LinuxDeviceCgroup[] = [...DEFAULT_DEVICE_RULES];
  if (privileged) {
    devices.push(...host.hostDevices());
    deviceRules.length = 0;
    deviceRules.push({ allow: true, access: "rwm" });
  }
  for (const d of config.devices ?? []) {
    const dest = checkAbsolute(d.containerPath, "device container_path");
    const got = devicesFor(d.hostPath, dest, d.permissions);
    devices.push(...got.devices);
    if (!privileged) deviceRules.push(...got.rules);
  }

  // Resources.
  const resources: LinuxResources = { devices: deviceRules, ...(res ? resourceLimits(res, host) : {}) };

  let oomScoreAdj: number | undefined = res ? Number(res.oomScoreAdj) : undefined;
  if (oomScoreAdj !== undefined && host.oomScoreAdjFloor !== undefined && oomScoreAdj < host.oomScoreAdjFloor) {
    logger().info({ containerId: input.id, requested: oomScoreAdj, applied: host.oomScoreAdjFloor }, "oom_score_adj clamped to what the host allows");
    oomScoreAdj = host.oomScoreAdjFloor;
  }

  // Sysctls: the pod's, minus the ones that would change a host namespace.
  const sysctl: Record<string, string> = {};
  for (const [k, v] of Object.entries(sandbox.sysctls ?? {})) {
    if (sandbox.hostNetwork && k.startsWith("net.")) continue;
    if (sandbox.hostIpc && (k.startsWith("kernel.shm") || k.startsWith("kernel.msg") || k === "kernel.sem" || k.startsWith("fs.mqueue."))) continue;
    sysctl[k] = v;
  }

  const cgroupsPath = host.cgroupDriver === "systemd" ? `${sandbox.cgroupParent || "system.slice"}:berth:${input.id}` : posix.join(sandbox.cgroupParent || "/berth", `berth-${input.id}`);

  const seccomp = seccompFor(sc, caps);
  const apparmorProfile = apparmorFor(sc, host);
  const maskedPaths = privileged ? [] : sc && sc.maskedPaths.length > 0 ? [...sc.maskedPaths] : [...DEFAULT_MASKED_PATHS];
  const readonlyPaths = privileged ? [] : sc && sc.readonlyPaths.length > 0 ? [...sc.readonlyPaths] : [...DEFAULT_READONLY_PATHS];

  const spec: Spec = {
    ociVersion: "1.0.2",
    process: {
      terminal: config.tty ?? false,
      user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
      args,
      env,
      cwd: posix.normalize(cwd),
      capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient },
      noNewPrivileges: sc?.noNewPrivs ?? false,
      ...(oomScoreAdj !== undefined ? { oomScoreAdj } : {}),
      ...(apparmorProfile ? { apparmorProfile } : {}),
    },
    root: { path: input.rootfs, readonly: ro },
    mounts,
    annotations: { ...(config.annotations ?? {}), "io.kubernetes.cri.sandbox-id": sandbox.id, "io.kubernetes.cri.container-type": "container" },
    linux: {
      namespaces,
      devices,
      resources,
      cgroupsPath,
      ...(Object.keys(sysctl).length > 0 ? { sysctl } : {}),
      ...(seccomp ? { seccomp } : {}),
      maskedPaths,
      readonlyPaths,
      ...(rootfsPropagation ? { rootfsPropagation } : {}),
    },
  };
  return { spec, user };
}
