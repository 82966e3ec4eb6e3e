/** "creating" while RunPodSandbox works (never shown to clients; rolled back after a crash). */
export type SandboxState = "creating" | "ready" | "notready";

/** The OCI runtime a pod's containers run with, resolved from the runtime handler. */
export interface RuntimeHandlerInfo {
  /** The handler's name in the config (the default handler's name when the pod named none). */
  name: string;
  /** OCI runtime binary. */
  path: string;
  /** The runtime's state root (--root). */
  root: string;
}

/** The pod's minimal init holding a pod-wide PID namespace. */
export interface SandboxPidInit {
  holderPid: number;
  initPid: number;
  /** Inode of the PID namespace (to tell the init from a reused pid). */
  nsInode: number;
}

/**
 * A pod sandbox as the runtime keeps it (persisted in SQLite). Namespace paths
 * are undefined where the pod shares the host's namespace.
 */
export interface Sandbox {
  id: string;
  name: string;
  namespace: string;
  uid: string;
  attempt: number;
  /** The reserved name: name_namespace_uid_attempt. */
  reservedName: string;
  state: SandboxState;
  /** Nanoseconds since the epoch. */
  createdAt: bigint;
  /** The pod's directory under <state>/sandboxes/<id>. */
  dir: string;
  netnsPath: string | undefined;
  ipcNsPath: string | undefined;
  utsNsPath: string | undefined;
  /** Pinned PID namespace of the pod's init (namespace_options.pid == POD), else undefined. */
  pidNsPath: string | undefined;
  pidInit: SandboxPidInit | undefined;
  hostNetwork: boolean;
  hostPid: boolean;
  hostIpc: boolean;
  /** linux.cgroup_parent as given (cgroupfs path or systemd slice), "" when none. */
  cgroupParent: string;
  cgroupDriver: "cgroupfs" | "systemd";
  logDirectory: string;
  /** The runtime_handler the client asked for ("" = default), echoed in status. */
  runtimeHandler: string;
  handler: RuntimeHandlerInfo;
  hostname: string;
  hostsPath: string;
  resolvConfPath: string;
  hostnamePath: string;
  /** The pod's /dev/shm (a 64m tmpfs under dir), or /dev/shm of the host for host IPC. */
  shmPath: string;
  /** Pod IPs, primary (IPv4 when present) first. */
  ips: string[];
  /** Whether a CNI attachment exists (cleared by CNI DEL at stop). */
  networkAttached: boolean;
  /** The sysctls applied in the pod's namespaces. */
  sysctls: Record<string, string>;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /**
   * The CRI PodSandboxConfig the pod was created from, in proto JSON form
   * (`PodSandboxConfig.toJSON`); the CRI layer reads it back with
   * `PodSandboxConfig.fromJSON(sb.config)`.
   */
  config: Record<string, unknown>;
}

/**
 * What the container layer plugs into sandbox lifecycle. Both are called with
 * the pod's lock held (do not take `SandboxManager.withLock` for the same pod
 * inside), must be idempotent, and must tolerate a pod with no containers.
 */
export interface ContainerHooks {
  /** Stop every container of the pod (each with its grace period, then SIGKILL). */
  stopAll(podId: string, signal: AbortSignal): Promise<void>;
  /** Remove every container of the pod (force: stop first if needed). */
  removeAll(podId: string, signal: AbortSignal): Promise<void>;
  /** A pod lifecycle transition, announced on the container event stream under the pod's id. */
  podEvent?(sb: Sandbox, kind: "created" | "started" | "stopped" | "deleted"): void;
}
