import type { ContainerSpecRequest, ImageConfigFile } from "../oci/index.js";
import type { RuntimeHandlerInfo } from "./sandbox.js";

/**
 * "creating" while CreateContainer works (never shown; rolled back after a
 * crash); then created → running → exited.
 */
export type ContainerState = "creating" | "created" | "running" | "exited";

/**
 * Where a container stands with its monitor and OCI runtime. CreateContainer
 * prepares everything else; StartContainer launches (conmon + `runc create`) and
 * starts, like containerd. Records of versions that launched at create have no
 * such field and count as "launched".
 * - none: never launched: no monitor, no runtime state.
 * - launching: a StartContainer began a launch (recorded before conmon is spawned);
 *   only seen after a crash, where recovery adopts or cleans what it left.
 * - launched: monitor and runtime state exist (or existed, until the runtime state is deleted).
 * - deleted: the runtime state was deleted after the container exited.
 * - unclean: recovery cleaned an interrupted launch; the runtime state is deleted
 *   again before the next launch and at removal (the old monitor may have finished
 *   its `runc create` late).
 */
export type LaunchState = "none" | "launching" | "launched" | "deleted" | "unclean";

/** A container as the runtime keeps it (persisted in SQLite). Times are ns since the epoch, 0n = unset. */
export interface Container {
  id: string;
  podSandboxId: string;
  name: string;
  attempt: number;
  /** The reserved name: container_pod_namespace_uid_attempt. */
  reservedName: string;
  state: ContainerState;
  createdAt: bigint;
  startedAt: bigint;
  finishedAt: bigint;
  exitCode: number;
  reason: string;
  message: string;
  /** The image as the request named it. */
  image: string;
  /** The image id (config digest). */
  imageId: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Absolute log path, "" when the pod has no log directory or the container no log path. */
  logPath: string;
  /** <state>/containers/<id>: config.json, rootfs (mount point), conmon's files. */
  bundle: string;
  snapshotKey: string;
  handler: RuntimeHandlerInfo;
  /** Where conmon writes the exit code (shared dir) and the OOM marker (per container). */
  exitDir: string;
  persistDir: string;
  launch: LaunchState;
  /** The container's init pid (host namespace), 0 before the launch. */
  pid: number;
  /** 0 before the launch. */
  conmonPid: number;
  conmonStartTime: string | undefined;
  /** Signal name sent first by StopContainer (from the request, else the image, else SIGTERM). */
  stopSignal: string;
  user: { uid: number; gid: number; additionalGids: number[] };
  /**
   * The CRI ContainerConfig the container was created from, in proto JSON form
   * (`ContainerConfig.toJSON`); the CRI layer reads it back for status.
   */
  config: Record<string, unknown>;
  tty: boolean;
  privileged: boolean;
}

/** A CreateContainer request after CRI translation. */
export interface ContainerCreateRequest {
  name: string;
  attempt: number;
  /** The image as the request names it. */
  image: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Relative to the pod's log directory; "" for none. */
  logPath: string;
  tty: boolean;
  stdin: boolean;
  stdinOnce: boolean;
  /** Signal name StopContainer sends first; undefined = the image's StopSignal, else SIGTERM. */
  stopSignal: string | undefined;
  /** The process, security and resource settings the OCI spec is built from (CRI field names). */
  spec: ContainerSpecRequest;
  /** The request's ContainerConfig in proto JSON form, kept for status. */
  config: Record<string, unknown>;
}

/** An image as the container layer needs it. */
export interface ContainerImage {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  config: ImageConfigFile;
  /** The snapshot the container's rootfs is prepared on. */
  chainId: string;
}

/** Looks images up by any reference form or id. */
export interface ContainerImages {
  find(refOrId: string): ContainerImage | undefined;
}

/** Prepares and releases container root filesystems (active overlay snapshots). */
export interface RootfsProvider {
  /** Creates the active snapshot `key` on top of `chainId` and mounts it at target. */
  mount(key: string, chainId: string, target: string): Promise<void>;
  /** Unmounts target and removes snapshot `key`; both may already be gone. */
  release(key: string, target: string): Promise<void>;
}
