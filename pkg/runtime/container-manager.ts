import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, rmdirSync, watch, type FSWatcher } from "node:fs";
import { dirname, join, posix } from "node:path";
import { writeFile } from "node:fs/promises";
import type { Config } from "../config/index.js";
import { DeadlineExceededError, errorKind, errorMessage, errorOfKind, FailedPreconditionError, InvalidArgumentError, NotFoundError } from "../errdefs/index.js";
import { logger, withLogFields } from "../log/index.js";
import { buildSpec, detectHostFeatures, imageRuntimeConfig, resourceLimits, type ContainerSpecRequest, type HostFeatures, type Spec } from "../oci/index.js";
import {
  conmonCreate,
  conmonReopenLog,
  execSync,
  findConmon,
  podMonitorCgroup,
  podMonitorMemory,
  processAlive,
  processPss,
  readExitFile,
  runtimeDelete,
  runtimeKill,
  runtimeState,
  runtimeUpdate,
  startCreated,
  stopPodMonitors,
  type ExecSyncResult,
  type OciRuntime,
  type StartPath,
} from "../shim/index.js";
import type { MetadataStore } from "../store/index.js";
import { CleanupStack, KeyedMutex, NameRegistrar, Semaphore, SingleFlight } from "../sync/index.js";
import { detectCgroups, oomScoreAdjFloor, Trash, type CgroupInfo } from "../sys/index.js";
import type { Container, ContainerCreateRequest, ContainerImages, RootfsProvider } from "./container.js";
import { ContainerStore } from "./container-store.js";
import { stringifyWithBigint } from "./json.js";
import { eventTimeNs, type ContainerEvent, type ContainerEventKind, type EventBus } from "../events/index.js";
import { containerCreateDuration, containerStartDuration, monitorsRunning } from "./container-metrics.js";
import { recordExit, recordMonitorLoss, recordStartFailure, recordStartSuccess } from "../metrics/index.js";
import type { Sandbox } from "./sandbox.js";
import type { SandboxManager } from "./sandbox-manager.js";

export interface ContainerManagerOptions {
  config: Config;
  store: MetadataStore;
  cgroupDriver: "cgroupfs" | "systemd";
  lifetime: AbortSignal;
  sandboxes: SandboxManager;
  /** Lifecycle events for GetContainerEvents (snapshots of the pod and its containers). */
  events?: EventBus<ContainerEvent<Sandbox, Container>> | undefined;
}

export interface ContainerFilterSpec {
  id?: string;
  podSandboxId?: string;
  state?: Container["state"];
  labels?: Record<string, string>;
}

const KILL_WAIT_MS = 30_000;
const POLL_MS = 1000;
/**
 * How long after an exit its runtime state is deleted: the reply to the call that
 * saw the exit (ContainerStatus, a List) goes out before a runtime process is spawned
 * and competes with it for the CPU. StopContainer and RemoveContainer do not wait for this.
 */
const DELETE_AFTER_EXIT_MS = 100;

/**
 * A failed runtime create or start: a timeout and exhausted resources (fds, disk) keep their
 * kind; anything else is the container's precondition failing.
 */
function runtimeFailure(message: string, err: unknown): Error {
  const kind = errorKind(err);
  if (kind === "deadline-exceeded" || kind === "resource-exhausted") return errorOfKind(kind, message, { cause: err });
  return new FailedPreconditionError(message, { cause: err });
}

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The cgroup parent a pod's containers and monitors live under. */
export function podCgroupParent(sb: Sandbox): string {
  // systemd: a slice name; critest writes it as a path ("/test.slice"), runc wants the last slice.
  if (sb.cgroupDriver === "systemd") return sb.cgroupParent.split("/").filter(Boolean).pop() || "system.slice";
  return sb.cgroupParent || `/berth/pod-${sb.id}`;
}

/**
 * Containers: create (rootfs snapshot, OCI spec, conmon + runtime create),
 * start, stop, remove, status, exec, log reopen; exit monitoring through
 * conmon's exit files; restart recovery. Container operations take the
 * container's lock; create takes the pod's lock (pod before container).
 */
export class ContainerManager {
  readonly #db: ContainerStore;
  readonly #byId = new Map<string, Container>();
  readonly #names = new NameRegistrar("container");
  /** CreateContainer calls in progress, by request. */
  readonly #creates = new SingleFlight<Container>();
  readonly #locks = new KeyedMutex(120_000);
  readonly #root: string;
  /**
   * Where removed containers' bundles wait to be deleted: renamed there at once and deleted
   * in the background (deleting a bundle's files one by one through the thread pool was a
   * millisecond or more of each RemoveContainer). Emptied at start-up after a crash.
   */
  readonly #trash: Trash;
  readonly #exitDir: string;
  readonly #cgroups: CgroupInfo;
  /** Containers in StartContainer's runtime start, with whether an exit was seen meanwhile. */
  readonly #starting = new Map<string, boolean>();
  /** Runtime state deletes of exited containers, scheduled or in flight (off the request path), by id. */
  readonly #deleting = new Map<string, { done: Promise<void>; now(): void }>();
  readonly #deletes = new Semaphore(4);
  #host: HostFeatures | undefined;
  #images: ContainerImages | undefined;
  #rootfs: RootfsProvider | undefined;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ContainerManagerOptions) {
    this.#db = new ContainerStore(opts.store);
    this.#root = join(opts.config.state, "containers");
    this.#trash = new Trash(`${this.#root}.removed`, "container bundle");
    this.#exitDir = join(opts.config.state, "exits");
    this.#cgroups = detectCgroups();
    opts.sandboxes.setContainerHooks({
      stopAll: (podId, signal) => this.stopAllOfPod(podId, signal),
      removeAll: (podId, signal) => this.removeAllOfPod(podId, signal),
      podEvent: (sb, kind) => this.#publishFor(sb.id, sb.id, sb, kind),
    });
  }

  /** Plugs in the image store and the snapshotter (both built by the composition root). */
  setImageBackend(images: ContainerImages, rootfs: RootfsProvider): void {
    this.#images = images;
    this.#rootfs = rootfs;
  }

  #hostFeatures(): HostFeatures {
    if (!this.#host) {
      const mode = this.opts.config.runtime.restrict_oom_score_adj;
      let floor: number | undefined;
      if (mode === "auto") {
        const f = oomScoreAdjFloor();
        floor = f > -1000 ? f : undefined;
      } else if (mode === "true") {
        floor = Math.max(oomScoreAdjFloor(), Number(readFileSync("/proc/self/oom_score_adj", "utf8").trim()));
      }
      this.#host = detectHostFeatures({ cgroupMode: this.#cgroups.mode, cgroupDriver: this.opts.cgroupDriver, unifiedMount: this.#cgroups.unifiedMount, oomScoreAdjFloor: floor });
    }
    return this.#host;
  }

  #runtimeOf(c: Container): OciRuntime {
    return { name: c.handler.name, path: c.handler.path, root: c.handler.root, callTimeoutMs: this.opts.config.runtime.call_timeout_seconds * 1000 };
  }

  #withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return withLogFields({ containerId: id }, () => this.#locks.run(`container/${id}`, fn));
  }

  /**
   * Every visible container (not those still being created), from memory: exits are
   * recorded as conmon reports them (exit dir watcher, and the poll as a safety net).
   */
  list(filter: ContainerFilterSpec = {}): Container[] {
    let out: Container[] = [];
    for (const c of this.#byId.values()) if (c.state !== "creating") out.push(c);
    if (filter.id) {
      const exact = out.filter((c) => c.id === filter.id);
      out = exact.length > 0 ? exact : out.filter((c) => c.id.startsWith(filter.id as string));
    }
    if (filter.podSandboxId) {
      const pod = filter.podSandboxId;
      const exact = out.filter((c) => c.podSandboxId === pod);
      out = exact.length > 0 ? exact : out.filter((c) => c.podSandboxId.startsWith(pod));
    }
    if (filter.labels) {
      const sel = Object.entries(filter.labels);
      out = out.filter((c) => sel.every(([k, v]) => c.labels[k] === v));
    }
    if (filter.state) out = out.filter((c) => c.state === filter.state);
    return out;
  }

  /** A container by full id or unique id prefix, its state brought up to date with its exit file; NotFound otherwise. */
  get(idOrPrefix: string): Container {
    const c = this.lookup(idOrPrefix);
    this.#refresh(c);
    return c;
  }

  /** A container by full id or unique id prefix, from memory only (the read path: ContainerStatus); NotFound otherwise. */
  lookup(idOrPrefix: string): Container {
    if (!idOrPrefix) throw new NotFoundError("container id is empty");
    const exact = this.#byId.get(idOrPrefix);
    if (exact && exact.state !== "creating") return exact;
    const matches = [...this.#byId.values()].filter((c) => c.state !== "creating" && c.id.startsWith(idOrPrefix));
    if (matches.length === 1 && matches[0]) return matches[0];
    if (matches.length > 1) throw new NotFoundError(`container id prefix "${idOrPrefix}" is ambiguous (${matches.length} containers match)`);
    throw new NotFoundError(`container "${idOrPrefix}" not found`);
  }

  /** The OCI spec the container runs with (from its bundle). */
  spec(c: Container): Spec | undefined {
    try {
      return JSON.parse(readFileSync(join(c.bundle, "config.json"), "utf8")) as Spec;
    } catch (err) {
      // No fd left (EMFILE/ENFILE) is not a missing bundle: the caller gets ResourceExhausted.
      if (errorKind(err) === "resource-exhausted") throw errorOfKind("resource-exhausted", `cannot read the spec of container "${c.id}": ${errorMessage(err)}`, { cause: err });
      return undefined;
    }
  }

  /** The monitor's PSS in bytes, undefined when it no longer runs. */
  monitorPss(c: Container): number | undefined {
    return processAlive(c.conmonPid, c.conmonStartTime) ? processPss(c.conmonPid) : undefined;
  }

  /** The monitors of a pod with their PSS. */
  podMonitors(sb: Sandbox): { pid: number; pssBytes: number }[] {
    return podMonitorMemory(this.#cgroups, podMonitorCgroup(podCgroupParent(sb)));
  }

  // ---------------------------------------------------------------- create

  /**
   * CreateContainer. An identical request while one is still being created (the
   * kubelet's retry after its deadline) shares that create and gets its result
   * instead of "name is reserved".
   */
  create(podSandboxId: string, req: ContainerCreateRequest): Promise<Container> {
    return this.#creates.do(`${podSandboxId}\n${stringifyWithBigint(req)}`, () => this.#createOnce(podSandboxId, req));
  }

  /** Everything done is undone when a step fails. */
  async #createOnce(podSandboxId: string, req: ContainerCreateRequest): Promise<Container> {
    if (!req.name) throw new InvalidArgumentError("CreateContainer: config.metadata.name is required");
    if (!req.image) throw new InvalidArgumentError("CreateContainer: config.image.image is required");
    const sb = this.opts.sandboxes.get(podSandboxId);
    const id = randomBytes(32).toString("hex");
    return withLogFields({ podSandboxId: sb.id, containerId: id }, () =>
      this.opts.sandboxes.withLock(sb.id, async () => {
        if (sb.state !== "ready") throw new FailedPreconditionError(`cannot create container "${req.name}": sandbox "${sb.id}" is not ready`);
        if (!this.#images || !this.#rootfs) throw new FailedPreconditionError("cannot create containers: no image store is configured");
        const image = this.#images.find(req.image);
        if (!image) throw new NotFoundError(`image "${req.image}" not found: pull it first`);
        const reservedName = [req.name, sb.name, sb.namespace, sb.uid, String(req.attempt)].join("_");
        this.#names.reserve(reservedName, id);
        const undo = new CleanupStack();
        undo.push("release container name", () => this.#names.release(reservedName, id));
        const endTimer = containerCreateDuration.startTimer();
        try {
          const c = await this.#create(sb, id, reservedName, req, image, undo);
          endTimer();
          return c;
        } catch (err) {
          recordStartFailure("create", sb.handler.name, err, { name: req.name });
          await undo.unwind(60_000);
          throw err;
        }
      }),
    );
  }

  async #create(sb: Sandbox, id: string, reservedName: string, req: ContainerCreateRequest, image: NonNullable<ReturnType<ContainerImages["find"]>>, undo: CleanupStack): Promise<Container> {
    const log = logger();
    const t0 = performance.now();
    const rootfs = this.#rootfs as RootfsProvider;
    const bundle = join(this.#root, id);
    const imageCfg = imageRuntimeConfig(image.config);
    const logPath = sb.logDirectory && req.logPath ? posix.join(sb.logDirectory, req.logPath) : "";
    const stopSignal = req.stopSignal || imageCfg.StopSignal || "SIGTERM";
    const c: Container = {
      id,
      podSandboxId: sb.id,
      name: req.name,
      attempt: req.attempt,
      reservedName,
      state: "creating",
      createdAt: nowNs(),
      startedAt: 0n,
      finishedAt: 0n,
      exitCode: 0,
      reason: "",
      message: "",
      image: req.image,
      imageId: image.id,
      labels: { ...req.labels },
      annotations: { ...req.annotations },
      logPath,
      bundle,
      snapshotKey: `container-${id}`,
      handler: sb.handler,
      exitDir: this.#exitDir,
      persistDir: join(bundle, "persist"),
      launch: "none",
      pid: 0,
      conmonPid: 0,
      conmonStartTime: undefined,
      stopSignal,
      user: { uid: 0, gid: 0, additionalGids: [] },
      config: req.config,
      tty: req.tty,
      privileged: req.spec.linux?.securityContext?.privileged ?? false,
    };
    // The record comes first: a crash from here on is rolled back by recovery.
    this.#db.insert(c);
    this.#byId.set(id, c);
    undo.push("delete container record", () => {
      this.#byId.delete(id);
      this.#db.delete(id);
    });
    mkdirSync(bundle, { recursive: true, mode: 0o700 });
    undo.push("remove bundle", () => rmSync(bundle, { recursive: true, force: true }));
    const rootfsDir = join(bundle, "rootfs");
    mkdirSync(rootfsDir, { recursive: true });
    undo.push("release rootfs", () => rootfs.release(c.snapshotKey, rootfsDir));
    await rootfs.mount(c.snapshotKey, image.chainId, rootfsDir);
    const tRootfs = performance.now();
    const config = await this.#mountImageVolumes(c, req.spec, undo);

    let targetPidNsPath: string | undefined;
    const targetId = config.linux?.securityContext?.namespaceOptions?.targetId;
    if (config.linux?.securityContext?.namespaceOptions?.pid === 3) {
      const target = targetId ? this.#byId.get(targetId) : undefined;
      if (!target || target.podSandboxId !== sb.id) throw new NotFoundError(`namespace_options.target_id "${targetId ?? ""}": no such container in pod ${sb.id}`);
      if (target.state !== "running") throw new FailedPreconditionError(`namespace_options.target_id "${target.id}" is not running`);
      targetPidNsPath = `/proc/${target.pid}/ns/pid`;
    }
    const parent = podCgroupParent(sb);
    const { spec, user } = buildSpec({
      id,
      config,
      image: imageCfg,
      rootfs: rootfsDir,
      sandbox: {
        id: sb.id,
        hostname: sb.hostname,
        netnsPath: sb.netnsPath,
        ipcNsPath: sb.ipcNsPath,
        utsNsPath: sb.utsNsPath,
        pidNsPath: sb.pidNsPath,
        hostNetwork: sb.hostNetwork,
        hostPid: sb.hostPid,
        hostIpc: sb.hostIpc,
        cgroupParent: parent,
        hostsPath: sb.hostsPath,
        resolvConfPath: sb.resolvConfPath,
        hostnamePath: sb.hostnamePath,
        shmPath: sb.shmPath,
      },
      host: this.#hostFeatures(),
      targetPidNsPath,
    });
    spec.annotations = { ...spec.annotations, "io.kubernetes.cri.container-name": c.name, "io.kubernetes.cri.image-name": c.image };
    c.user = { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids };
    // The bundle is state (lost with /run): a crash mid-create is rolled back, so no fsync is needed.
    await writeFile(join(bundle, "config.json"), JSON.stringify(spec));
    if (logPath) mkdirSync(dirname(logPath), { recursive: true });

    // The monitor and the runtime's create wait for StartContainer (as in containerd).
    c.state = "created";
    this.#db.update(c);
    const ms = (a: number, b: number): number => Math.round((b - a) * 10) / 10;
    const tEnd = performance.now();
    log.info({ name: reservedName, image: c.image, phasesMs: { recordAndRootfs: ms(t0, tRootfs), spec: ms(tRootfs, tEnd) } }, "container created");
    this.#publish(c, "created");
    return c;
  }

  // ---------------------------------------------------------------- start

  /**
   * StartContainer: launches the container (conmon, which runs `runc create`) and
   * starts its process. A failure leaves it exited with exit code 128 and reason
   * StartError, its monitor and runtime state gone.
   */
  async start(id: string): Promise<void> {
    const c = this.get(id);
    await this.#withLock(c.id, async () => {
      this.#refresh(c);
      if (c.state !== "created") throw new FailedPreconditionError(`cannot start container "${c.id}": it is ${c.state}, not created`);
      const sb = this.#sandboxOf(c);
      if (!sb) throw new FailedPreconditionError(`cannot start container "${c.id}": its sandbox "${c.podSandboxId}" is gone`);
      if (sb.state !== "ready") throw new FailedPreconditionError(`cannot start container "${c.id}": sandbox "${sb.id}" is not ready`);
      // An exit seen while the runtime starts it is announced after "started", not before it.
      this.#starting.set(c.id, false);
      let startedAt = 0n;
      const endTimer = containerStartDuration.startTimer();
      const t0 = performance.now();
      let tLaunched = t0;
      let how: StartPath;
      try {
        if (c.launch !== "launched") await this.#launch(c, sb);
        tLaunched = performance.now();
        startedAt = nowNs();
        how = await startCreated(this.#runtimeOf(c), c.id, c.bundle);
        endTimer();
        recordStartSuccess(c.handler.name);
      } catch (err) {
        this.#starting.delete(c.id);
        recordStartFailure("start", c.handler.name, err, { name: c.reservedName });
        await this.#startFailed(c, err);
        throw runtimeFailure(`cannot start container "${c.id}": ${errorMessage(err)}`, err);
      }
      c.startedAt = startedAt;
      if (c.state === "created") c.state = "running";
      else if (c.finishedAt < startedAt) c.finishedAt = startedAt;
      this.#db.update(c);
      const exitedMeanwhile = this.#starting.get(c.id) === true;
      this.#starting.delete(c.id);
      this.#publish(c, "started");
      if (exitedMeanwhile) this.#publish(c, "stopped");
      if (this.#refresh(c) === "exited") this.#deleteRuntimeLater(c);
      const ms = (a: number, b: number): number => Math.round((b - a) * 10) / 10;
      logger().info({ name: c.reservedName, pid: c.pid, conmonPid: c.conmonPid, startPath: how, phasesMs: { monitorAndRuntimeCreate: ms(t0, tLaunched), start: ms(tLaunched, performance.now()) } }, "container started");
    });
  }

  /**
   * Spawns the container's conmon, which runs the runtime's create. The launch is
   * recorded before anything is spawned, so recovery after a crash knows to adopt
   * or clean what it left (see recover()).
   */
  async #launch(c: Container, sb: Sandbox): Promise<void> {
    const rt = this.#runtimeOf(c);
    if (c.launch === "unclean") await this.#cleanInterruptedLaunch(c);
    c.launch = "launching";
    this.#db.update(c);
    const parent = podCgroupParent(sb);
    const created = await conmonCreate(
      { conmonPath: this.opts.config.runtime.conmon_path, logLevel: "warn", cgroups: this.#cgroups, systemdCgroup: this.opts.cgroupDriver === "systemd" },
      {
        id: c.id,
        name: c.reservedName,
        runtime: rt,
        bundle: c.bundle,
        exitDir: this.#exitDir,
        persistDir: c.persistDir,
        logPath: c.logPath || "/dev/null",
        tty: c.tty,
        stdin: c.config["stdin"] === true,
        stdinOnce: c.config["stdinOnce"] === true,
        monitorCgroup: this.opts.cgroupDriver === "cgroupfs" ? podMonitorCgroup(parent) : undefined,
        timeoutMs: this.opts.config.runtime.create_timeout_seconds * 1000,
      },
    );
    c.pid = created.pid;
    c.conmonPid = created.conmonPid;
    c.conmonStartTime = created.conmonStartTime;
    c.launch = "launched";
  }

  /**
   * What a failed StartContainer leaves: the container exited with 128/StartError
   * (as containerd reports it), its monitor killed and its runtime state deleted.
   */
  async #startFailed(c: Container, err: unknown): Promise<void> {
    const log = logger();
    recordExit(c.handler.name, 128, "StartError");
    c.state = "exited";
    c.finishedAt = nowNs();
    c.exitCode = 128;
    c.reason = "StartError";
    c.message = errorMessage(err);
    c.pid = 0;
    this.#db.update(c);
    this.#publish(c, "stopped");
    if (c.launch === "none") return;
    if (c.conmonPid > 0 && processAlive(c.conmonPid, c.conmonStartTime)) {
      try {
        process.kill(c.conmonPid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    try {
      await runtimeDelete(this.#runtimeOf(c), c.id);
      c.launch = "deleted";
    } catch (delErr) {
      // Removal deletes it again.
      c.launch = "launched";
      log.warn({ err: delErr, containerId: c.id }, "cannot delete the runtime state of a container that failed to start");
    }
    rmSync(join(this.#exitDir, c.id), { force: true });
    this.#db.update(c);
  }

  /** Before a new launch of a container whose launch a crash interrupted: nothing of the old one may remain. */
  async #cleanInterruptedLaunch(c: Container): Promise<void> {
    const old = findConmon(c.bundle, c.id);
    if (old?.running) {
      try {
        process.kill(old.conmonPid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    await runtimeDelete(this.#runtimeOf(c), c.id);
    rmSync(join(this.#exitDir, c.id), { force: true });
    rmSync(join(c.persistDir, "oom"), { force: true });
    rmSync(join(c.persistDir, "exit"), { force: true });
  }

  /**
   * Deletes the runtime state of an exited container off the request path (what
   * containerd's shim does at exit), so RemoveContainer only unmounts and removes
   * files. Removal waits for a delete in flight; a crash before the record says
   * "deleted" only means removal deletes again.
   */
  #deleteRuntimeLater(c: Container): void {
    if (c.launch !== "launched" || c.state !== "exited" || this.#starting.has(c.id) || this.#deleting.has(c.id)) return;
    let go!: () => void;
    const due = new Promise<void>((resolve) => (go = resolve));
    const timer = setTimeout(go, DELETE_AFTER_EXIT_MS);
    timer.unref();
    const done = due
      .then(() => this.#deletes.run(() => runtimeDelete(this.#runtimeOf(c), c.id)))
      .then(
        () => {
          if (this.#byId.get(c.id) === c && c.launch === "launched") {
            c.launch = "deleted";
            this.#db.update(c);
          }
        },
        (err: unknown) => logger().warn({ err, containerId: c.id }, "cannot delete the runtime state of an exited container; removal tries again"),
      )
      .finally(() => this.#deleting.delete(c.id));
    this.#deleting.set(c.id, {
      done,
      now: () => {
        clearTimeout(timer);
        go();
      },
    });
  }

  // ---------------------------------------------------------------- exits

  /** Brings a container's state up to date with its exit file and monitor; returns the state. */
  #refresh(c: Container): Container["state"] {
    if (c.state !== "created" && c.state !== "running") return c.state;
    // Not launched: no monitor, no exit file to read.
    if (c.conmonPid === 0 && c.launch !== "launched") return c.state;
    const exit = readExitFile(this.#exitDir, c.persistDir, c.id);
    if (exit) {
      this.#markExited(c, exit.exitCode, exit.finishedAt, exit.oomKilled ? "OOMKilled" : exit.exitCode === 0 ? "Completed" : "Error", "");
      return c.state;
    }
    if (c.conmonPid > 0 && !processAlive(c.conmonPid, c.conmonStartTime)) {
      // The monitor is gone without an exit file: the container's end can no longer be observed.
      const again = readExitFile(this.#exitDir, c.persistDir, c.id);
      if (again) {
        this.#markExited(c, again.exitCode, again.finishedAt, again.oomKilled ? "OOMKilled" : again.exitCode === 0 ? "Completed" : "Error", "");
        return c.state;
      }
      logger().warn({ containerId: c.id, conmonPid: c.conmonPid }, "container monitor died; killing the unmonitored container");
      recordMonitorLoss(c.handler.name, { containerId: c.id, conmonPid: c.conmonPid });
      void runtimeKill(this.#runtimeOf(c), c.id, "KILL", true).catch(() => undefined);
      this.#markExited(c, 137, nowNs(), "Error", `container monitor (conmon pid ${c.conmonPid}) exited unexpectedly; the container was killed and its exit code is unknown`);
    }
    return c.state;
  }

  #markExited(c: Container, exitCode: number, finishedAt: bigint, reason: string, message: string): void {
    c.state = "exited";
    c.exitCode = exitCode;
    // The exit file's mtime is coarse-grained: never report an end before the start.
    c.finishedAt = finishedAt < c.startedAt ? c.startedAt : finishedAt;
    c.reason = reason;
    c.message = message;
    this.#db.update(c);
    recordExit(c.handler.name, exitCode, reason);
    logger().info({ containerId: c.id, name: c.reservedName, exitCode, reason }, "container exited");
    if (this.#starting.has(c.id)) this.#starting.set(c.id, true);
    else {
      this.#publish(c, "stopped");
      this.#deleteRuntimeLater(c);
    }
  }

  /** Publishes a lifecycle event with snapshots of the pod and its containers (only when someone listens). */
  #publish(c: Container, kind: ContainerEventKind): void {
    this.#publishFor(c.id, c.podSandboxId, this.#sandboxOf(c), kind, kind === "deleted" ? c : undefined);
  }

  /** Events about a pod itself carry the pod's id as the container id, as kubelet's evented PLEG expects. */
  #publishFor(id: string, podId: string, sb: Sandbox | undefined, kind: ContainerEventKind, removed?: Container): void {
    const bus = this.opts.events;
    if (!bus || bus.subscriberCount === 0) return;
    const pod = [...this.#byId.values()].filter((x) => x.podSandboxId === podId && x.state !== "creating");
    if (removed) pod.push(removed);
    bus.publish({
      containerId: id,
      kind,
      createdAtNs: eventTimeNs(),
      podSandboxStatus: sb ? structuredClone(sb) : undefined,
      containersStatuses: pod.map((x) => structuredClone(x)),
    });
  }

  /** Watches the exit dir (and polls, for events the watcher misses and for monitors that die). */
  start_(): void {
    if (this.#timer) return;
    mkdirSync(this.#exitDir, { recursive: true });
    try {
      this.#watcher = watch(this.#exitDir, (_event, name) => {
        const c = name ? this.#byId.get(name.toString()) : undefined;
        if (c) this.#refresh(c);
      });
      this.#watcher.on("error", (err) => logger().warn({ err }, "exit dir watcher failed; polling only"));
      this.#watcher.unref();
    } catch (err) {
      logger().warn({ err }, "cannot watch the exit dir; polling only");
    }
    this.#timer = setInterval(() => {
      let live = 0;
      for (const c of this.#byId.values()) if (this.#refresh(c) !== "exited" && c.conmonPid > 0) live++;
      monitorsRunning.set(live);
    }, POLL_MS);
    this.#timer.unref();
  }

  async stopWatching(): Promise<void> {
    this.#watcher?.close();
    if (this.#timer) clearInterval(this.#timer);
  }

  async #waitExited(c: Container, ms: number, signal?: AbortSignal): Promise<boolean> {
    const end = Date.now() + ms;
    while (this.#refresh(c) !== "exited") {
      if (Date.now() >= end || signal?.aborted) return false;
      await sleep(25);
    }
    return true;
  }

  // ---------------------------------------------------------------- stop

  /** StopContainer: stop signal, `timeoutSec` grace, then SIGKILL. Idempotent; unknown ids are fine. */
  async stop(id: string, timeoutSec: number, signal?: AbortSignal): Promise<void> {
    const c = this.#byId.get(id) ?? this.#tryPrefix(id);
    if (!c || c.state === "creating") return;
    await this.#withLock(c.id, () => this.#stopLocked(c, timeoutSec, signal));
  }

  #tryPrefix(id: string): Container | undefined {
    try {
      return this.get(id);
    } catch {
      return undefined;
    }
  }

  /**
   * Stops the container, and deletes its runtime state before returning (as
   * containerd's StopContainer waits for the task's delete), so that RemoveContainer
   * only removes files. A failed delete is logged; removal tries again.
   */
  async #stopLocked(c: Container, timeoutSec: number, signal?: AbortSignal): Promise<void> {
    await this.#killLocked(c, timeoutSec, signal);
    if (c.state !== "exited") return;
    await this.#deleteRuntimeNow(c).catch((err: unknown) => logger().warn({ err, containerId: c.id }, "cannot delete the runtime state of a stopped container; removal tries again"));
  }

  async #killLocked(c: Container, timeoutSec: number, signal?: AbortSignal): Promise<void> {
    if (this.#refresh(c) === "exited") return;
    if (c.state === "created" && c.launch !== "launched") {
      // Never launched: nothing runs, so no runtime call; it can no longer be started (as when CRI-O kills a created container).
      this.#markExited(c, 137, nowNs(), "Error", "stopped before it was started");
      return;
    }
    const rt = this.#runtimeOf(c);
    if (c.state === "running" && timeoutSec > 0) {
      await runtimeKill(rt, c.id, c.stopSignal);
      if (await this.#waitExited(c, timeoutSec * 1000, signal)) return;
      logger().info({ containerId: c.id, timeoutSec }, "container did not stop in its grace period; killing it");
    }
    await runtimeKill(rt, c.id, "KILL", true);
    if (await this.#waitExited(c, KILL_WAIT_MS)) return;
    // No exit file after SIGKILL: ask the runtime directly.
    const st = await runtimeState(rt, c.id);
    if (!st || st.status === "stopped") {
      this.#markExited(c, 137, nowNs(), "Error", "the container's exit was not reported by its monitor");
      return;
    }
    throw new FailedPreconditionError(`container "${c.id}" did not stop after SIGKILL (runtime state ${st.status})`);
  }

  /**
   * Image volumes (CRI Mount.image): each image's rootfs becomes an active snapshot of its own,
   * mounted at BUNDLE/image-volume-N and bind-mounted read-only (image_sub_path inside it).
   * Returns the spec request with those mounts turned into host paths.
   */
  async #mountImageVolumes(c: Container, spec: ContainerSpecRequest, undo: CleanupStack): Promise<ContainerSpecRequest> {
    const mounts = spec.mounts ?? [];
    if (!mounts.some((m) => m.image?.image)) return spec;
    const images = this.#images as ContainerImages;
    const rootfs = this.#rootfs as RootfsProvider;
    const out: NonNullable<ContainerSpecRequest["mounts"]>[number][] = [];
    const criMounts = (c.config["mounts"] ?? []) as Array<Record<string, unknown>>;
    for (const [i, m] of mounts.entries()) {
      const ref = m.image?.image;
      if (!ref) {
        out.push(m);
        continue;
      }
      const dest = m.containerPath;
      if (m.hostPath) throw new InvalidArgumentError(`mount "${dest}": host_path and image are mutually exclusive`);
      if (!m.readonly) throw new InvalidArgumentError(`mount "${dest}": an image volume must be read-only`);
      if (m.recursiveReadOnly) throw new InvalidArgumentError(`mount "${dest}": recursive read-only mounts are not supported by this runtime`);
      const img = images.find(ref);
      if (!img) throw new NotFoundError(`mount "${dest}": image "${ref}" not found: pull it first`);
      const dir = join(c.bundle, `image-volume-${i}`);
      mkdirSync(dir);
      const key = `${c.snapshotKey}-image-${i}`;
      undo.push(`release image volume ${dest}`, () => rootfs.release(key, dir));
      await rootfs.mount(key, img.chainId, dir);
      let hostPath = dir;
      if (m.imageSubPath) {
        const sub = posix.normalize(m.imageSubPath);
        if (posix.isAbsolute(sub) || sub === ".." || sub.startsWith("../")) throw new InvalidArgumentError(`mount "${dest}": image_sub_path "${m.imageSubPath}" must be a path inside the image`);
        let real: string;
        try {
          real = realpathSync(join(dir, sub));
        } catch (err) {
          throw new InvalidArgumentError(`mount "${dest}": image_sub_path "${m.imageSubPath}" does not exist in image "${ref}"`, { cause: err });
        }
        const root = realpathSync(dir);
        if (real !== root && !real.startsWith(root + "/")) throw new InvalidArgumentError(`mount "${dest}": image_sub_path "${m.imageSubPath}" leads out of image "${ref}"`);
        hostPath = real;
      }
      // ContainerStatus reports the image volume's image by its ID (ImageSpec.image_ref).
      const cri = criMounts[i];
      if (cri && typeof cri["image"] === "object" && cri["image"] !== null) (cri["image"] as Record<string, unknown>)["imageRef"] = img.id;
      out.push({ ...m, hostPath, readonly: true });
    }
    return { ...spec, mounts: out };
  }

  /** Unmounts and removes the image volume snapshots of a container (found in its bundle). */
  async #releaseImageVolumes(c: Pick<Container, "bundle" | "snapshotKey">): Promise<void> {
    if (!this.#rootfs) return;
    let names: string[];
    try {
      names = readdirSync(c.bundle);
    } catch {
      return;
    }
    for (const name of names) {
      const m = /^image-volume-(\d+)$/.exec(name);
      if (m) await this.#rootfs.release(`${c.snapshotKey}-image-${m[1]}`, join(c.bundle, name));
    }
  }

  // ---------------------------------------------------------------- remove

  /** RemoveContainer: stops it if needed (no grace), removes its runtime state, rootfs and bundle. Idempotent. */
  async remove(id: string, _signal?: AbortSignal): Promise<void> {
    const c = this.#byId.get(id) ?? this.#tryPrefix(id);
    if (!c || c.state === "creating") return;
    await this.#withLock(c.id, async () => {
      if (!this.#byId.has(c.id)) return;
      const t0 = performance.now();
      await this.#stopLocked(c, 0);
      const tStopped = performance.now();
      const phases = await this.#destroy(c);
      const ms = (a: number, b: number): number => Math.round((b - a) * 10) / 10;
      logger().info({ name: c.reservedName, phasesMs: { stop: ms(t0, tStopped), ...phases } }, "container removed");
    });
  }

  /** Returns how long (ms) the runtime delete, the rootfs release and the file removal took. */
  async #destroy(c: Container): Promise<{ runtimeDelete: number; rootfs: number; files: number }> {
    if (c.conmonPid > 0 && processAlive(c.conmonPid, c.conmonStartTime)) {
      try {
        process.kill(c.conmonPid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    const rootfs = this.#rootfs;
    if (!rootfs && existsSync(join(c.bundle, "rootfs"))) throw new FailedPreconditionError(`cannot remove container "${c.id}": no snapshotter to release its rootfs`);
    // The container has exited: its runtime state and its rootfs are independent, so both go at once.
    const t0 = performance.now();
    const took = (p: Promise<unknown> | undefined): Promise<number> => Promise.resolve(p).then(() => Math.round((performance.now() - t0) * 10) / 10);
    const [runtime, rootfsMs] = await Promise.all([took(this.#deleteRuntimeNow(c)), took(Promise.all([rootfs?.release(c.snapshotKey, join(c.bundle, "rootfs")), this.#releaseImageVolumes(c)]))]);
    const t1 = performance.now();
    await this.#trash.discard(c.bundle);
    rmSync(join(this.#exitDir, c.id), { force: true });
    this.#db.delete(c.id);
    this.#byId.delete(c.id);
    this.#names.release(c.reservedName, c.id);
    this.#publish(c, "deleted");
    return { runtimeDelete: runtime, rootfs: rootfsMs, files: Math.round((performance.now() - t1) * 10) / 10 };
  }

  /** The runtime state of an exited container is gone when this resolves (a delete in flight is awaited, not repeated). */
  async #deleteRuntimeNow(c: Container): Promise<void> {
    const pending = this.#deleting.get(c.id);
    if (pending) {
      pending.now();
      await pending.done;
    }
    if (c.launch === "none" || c.launch === "deleted") return;
    if (c.launch === "unclean") await this.#cleanInterruptedLaunch(c);
    else await runtimeDelete(this.#runtimeOf(c), c.id);
    c.launch = "deleted";
    if (this.#byId.get(c.id) === c) this.#db.update(c);
  }

  // ---------------------------------------------------------------- pod hooks

  /** Called by StopPodSandbox with the pod's lock held: every container is killed (no grace, like containerd). */
  async stopAllOfPod(podId: string, signal: AbortSignal): Promise<void> {
    const cs = [...this.#byId.values()].filter((c) => c.podSandboxId === podId && c.state !== "creating");
    await Promise.all(cs.map((c) => this.#withLock(c.id, () => this.#stopLocked(c, 0, signal))));
    const sb = this.#sandboxOf({ podSandboxId: podId } as Container);
    if (sb && this.opts.cgroupDriver === "cgroupfs") await stopPodMonitors(this.#cgroups, podCgroupParent(sb));
  }

  /** Called by RemovePodSandbox with the pod's lock held. */
  async removeAllOfPod(podId: string, signal: AbortSignal): Promise<void> {
    const cs = [...this.#byId.values()].filter((c) => c.podSandboxId === podId && c.state !== "creating");
    await Promise.all(
      cs.map((c) =>
        this.#withLock(c.id, async () => {
          if (!this.#byId.has(c.id)) return;
          await this.#stopLocked(c, 0, signal);
          await this.#destroy(c);
        }),
      ),
    );
    const sb = this.#sandboxOf({ podSandboxId: podId } as Container);
    if (sb && this.opts.cgroupDriver === "cgroupfs") {
      const parent = podCgroupParent(sb);
      await stopPodMonitors(this.#cgroups, parent);
      if (!sb.cgroupParent) removeCgroupEverywhere(parent);
    }
  }

  #sandboxOf(c: Pick<Container, "podSandboxId">): Sandbox | undefined {
    try {
      return this.opts.sandboxes.get(c.podSandboxId);
    } catch {
      return undefined;
    }
  }

  // ---------------------------------------------------------------- resources

  /**
   * UpdateContainerResources: new cgroup limits, applied with the OCI runtime
   * to a created or running container and recorded in its spec and config.
   */
  async updateResources(id: string, res: NonNullable<NonNullable<ContainerSpecRequest["linux"]>["resources"]>, configJson: Record<string, unknown>): Promise<void> {
    const c = this.get(id);
    await this.#withLock(c.id, async () => {
      const limits = resourceLimits(res, this.#hostFeatures());
      const state = this.#refresh(c);
      // Not launched yet: the new limits go into the spec the launch uses.
      if ((state === "created" && c.launch === "launched") || state === "running") {
        try {
          await runtimeUpdate(this.#runtimeOf(c), c.id, limits as Record<string, unknown>);
        } catch (err) {
          throw new FailedPreconditionError(`cannot update the resources of container "${c.id}": ${errorMessage(err)}`, { cause: err });
        }
      }
      const spec = this.spec(c);
      if (spec) {
        spec.linux.resources = { devices: spec.linux.resources.devices, ...limits };
        await writeFile(join(c.bundle, "config.json"), JSON.stringify(spec));
      }
      c.config = configJson;
      this.#db.update(c);
    });
  }

  // ---------------------------------------------------------------- exec, logs

  async execSync(id: string, cmd: readonly string[], timeoutSec: number): Promise<ExecSyncResult> {
    const c = this.get(id);
    if (cmd.length === 0) throw new InvalidArgumentError("ExecSync: cmd is required");
    if (this.#refresh(c) !== "running") throw new FailedPreconditionError(`cannot exec in container "${c.id}": it is ${c.state}, not running`);
    const spec = this.spec(c);
    if (!spec) throw new FailedPreconditionError(`cannot exec in container "${c.id}": its bundle is gone`);
    const r = await execSync(this.#runtimeOf(c), c.id, c.bundle, spec.process as unknown as Record<string, unknown>, cmd, timeoutSec > 0 ? timeoutSec * 1000 : 0);
    // The process is killed on timeout; the caller gets DeadlineExceeded (as kubelet probes and critest expect).
    if (r.timedOut) throw new DeadlineExceededError(`ExecSync in container "${c.id}": ${JSON.stringify(cmd)} did not finish within ${timeoutSec} s and was killed`);
    return r;
  }

  async reopenLog(id: string): Promise<void> {
    const c = this.get(id);
    if (this.#refresh(c) !== "running") throw new FailedPreconditionError(`cannot reopen the log of container "${c.id}": it is ${c.state}, not running`);
    if (!c.logPath) return;
    try {
      conmonReopenLog(c.bundle);
    } catch (err) {
      throw new FailedPreconditionError(`cannot reopen the log of container "${c.id}": its monitor does not answer (${errorMessage(err)})`, { cause: err });
    }
    const end = Date.now() + 5000;
    while (!existsSync(c.logPath) && Date.now() < end) await sleep(10);
    if (!existsSync(c.logPath)) throw new FailedPreconditionError(`container "${c.id}": the monitor did not reopen ${c.logPath}`);
  }

  // ---------------------------------------------------------------- recovery

  /**
   * Start-up recovery: loads every container; rolls back creates a crash
   * interrupted; reads exit files of containers that ended while berthd was
   * down; removes bundles with no record. Runs after the pods are recovered.
   */
  async recover(): Promise<void> {
    const log = logger();
    mkdirSync(this.#root, { recursive: true, mode: 0o700 });
    mkdirSync(this.#exitDir, { recursive: true });
    // Bundles of containers removed before a crash, not yet deleted.
    mkdirSync(this.#trash.dir, { recursive: true, mode: 0o700 });
    await this.#trash.emptyAll();
    // Watch before loading: an exit between a container's first refresh and the watch is not missed.
    this.start_();
    for (const c of this.#db.all()) {
      // Versions that launched at CreateContainer wrote no launch state.
      const older = (c as Partial<Container>).launch === undefined;
      if (older) c.launch = c.conmonPid > 0 ? "launched" : "launching";
      if (c.state === "creating") {
        log.warn({ containerId: c.id, name: c.reservedName }, "rolling back a CreateContainer interrupted by a crash");
        try {
          if (c.conmonPid > 0 && processAlive(c.conmonPid, c.conmonStartTime)) process.kill(c.conmonPid, "SIGKILL");
          if (older) await runtimeKill(this.#runtimeOf(c), c.id, "KILL", true).catch(() => undefined);
          await this.#destroyRecord(c, older);
        } catch (err) {
          log.error({ err, containerId: c.id }, "rollback of an interrupted container failed; keeping its record");
          this.#byId.set(c.id, c);
          this.#names.reserve(c.reservedName, c.id);
        }
        continue;
      }
      this.#byId.set(c.id, c);
      this.#names.reserve(c.reservedName, c.id);
      if (c.launch === "launching") {
        // A crash in the middle of a start's failure path leaves an exited container whose runtime state may remain.
        if (c.state === "created") await this.#recoverLaunch(c);
        else c.launch = "launched";
      }
      const before = c.state;
      this.#refresh(c);
      if (before !== c.state) log.info({ containerId: c.id, exitCode: c.exitCode, reason: c.reason }, "container exited while berthd was down");
      else if (c.state === "exited") this.#deleteRuntimeLater(c);
      else if (c.state === "created" && c.launch === "launched") {
        // A StartContainer that ran `runc start` but crashed before recording it: the runtime knows.
        const st = await runtimeState(this.#runtimeOf(c), c.id).catch(() => undefined);
        if (st?.status === "running") {
          c.state = "running";
          c.startedAt = nowNs();
          this.#db.update(c);
          log.warn({ containerId: c.id }, "container was started by an interrupted StartContainer; recorded as running");
        }
      }
    }
    for (const name of existsSync(this.#root) ? readdirSync(this.#root) : []) {
      if (this.#byId.has(name)) continue;
      log.warn({ containerId: name }, "removing a container bundle with no record");
      await this.#destroyRecord({ id: name, bundle: join(this.#root, name), snapshotKey: `container-${name}`, handler: undefined } as unknown as Container);
    }
    log.info({ containers: this.#byId.size }, "containers recovered");
  }

  /**
   * A StartContainer interrupted by a crash, between recording the launch and
   * recording its outcome. Like containerd after a restart mid-start: a container
   * that runs (or ran: exit file) is adopted as started; anything short of that
   * is killed and deleted, and the container is CREATED again (startable).
   */
  async #recoverLaunch(c: Container): Promise<void> {
    const log = logger();
    const rt = this.#runtimeOf(c);
    const mon = findConmon(c.bundle, c.id);
    const monAlive = mon?.running === true;
    // An exit file: the process ran (conmon outlives berthd and reports it); refresh() reads its code.
    const exited = readExitFile(this.#exitDir, c.persistDir, c.id) !== undefined;
    const st = await runtimeState(rt, c.id).catch(() => undefined);
    // Running without its monitor is adopted too: refresh() then reports the monitor's loss and kills it.
    if (mon && (exited || st?.status === "running")) {
      c.pid = st?.pid && st.pid > 0 ? st.pid : mon.pid;
      c.conmonPid = mon.conmonPid;
      c.conmonStartTime = mon.conmonStartTime;
      c.launch = "launched";
      c.state = "running";
      c.startedAt = nowNs();
      this.#db.update(c);
      log.warn({ containerId: c.id, pid: c.pid, conmonPid: c.conmonPid }, "container was started by an interrupted StartContainer; recorded as started");
      return;
    }
    log.warn({ containerId: c.id, runtimeState: st?.status ?? "none", monitor: monAlive ? mon?.conmonPid : undefined }, "cleaning up a launch interrupted by a crash; the container is created again");
    if (monAlive && mon) {
      try {
        process.kill(mon.conmonPid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    try {
      await runtimeDelete(rt, c.id);
    } catch (err) {
      log.warn({ err, containerId: c.id }, "cannot delete the runtime state of an interrupted launch; the next start or the removal tries again");
    }
    for (const f of [join(this.#exitDir, c.id), join(c.persistDir, "oom"), join(c.persistDir, "exit"), join(c.bundle, "pidfile"), join(c.bundle, "conmon.pid")]) rmSync(f, { force: true });
    c.pid = 0;
    c.conmonPid = 0;
    c.conmonStartTime = undefined;
    // "unclean" even when the delete worked: a monitor that had not written its pid file yet may still finish its create.
    c.launch = "unclean";
    c.state = "created";
    this.#db.update(c);
  }

  /** Removes what a container may have left (runtime state, rootfs, bundle, record) without taking locks. */
  async #destroyRecord(c: Container, runtimeToo = true): Promise<void> {
    if (c.handler && runtimeToo) await runtimeDelete(this.#runtimeOf(c), c.id).catch(() => undefined);
    if (this.#rootfs) await this.#rootfs.release(c.snapshotKey, join(c.bundle, "rootfs"));
    await this.#releaseImageVolumes(c);
    rmSync(c.bundle, { recursive: true, force: true });
    rmSync(join(this.#exitDir, c.id), { force: true });
    this.#db.delete(c.id);
    this.#byId.delete(c.id);
  }
}

/** Removes an (empty) cgroupfs cgroup berth created, from every hierarchy. */
function removeCgroupEverywhere(path: string): void {
  let hierarchies: string[];
  try {
    hierarchies = readdirSync("/sys/fs/cgroup");
  } catch {
    return;
  }
  for (const h of hierarchies) {
    try {
      rmdirSync(join("/sys/fs/cgroup", h, path));
    } catch {
      /* not there or not empty */
    }
  }
}
