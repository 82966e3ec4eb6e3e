import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { CniManager, parseBandwidth, type CniPortMapping } from "../cni/index.js";
import type { Config } from "../config/index.js";
import { errorMessage, FailedPreconditionError, InvalidArgumentError, NotFoundError } from "../errdefs/index.js";
import { logger, withLogFields } from "../log/index.js";
import { ensurePrivateDir, isPinned, pidInitAlive, pidInitRunning, pinNamespaces, startPidInit, stopPidInit, unpinNamespaces, writeSysctlsIn, type PinnedKind } from "../netns/index.js";
import type { MetadataStore } from "../store/index.js";
import { CleanupStack, KeyedMutex, NameRegistrar, SingleFlight } from "../sync/index.js";
import { mount, unmountAll } from "../sys/index.js";
import { hostHostname, validateDns, validateHostname, writeHostnameFile, writeHosts, writeResolvConf, type DnsSettings } from "./pod-files.js";
import type { ContainerHooks, RuntimeHandlerInfo, Sandbox } from "./sandbox.js";
import { SandboxStore } from "./sandbox-store.js";
import { stringifyWithBigint } from "./json.js";
import { validateSysctls } from "./sysctl.js";
import { validateCgroupParent } from "./cgroup-parent.js";
import { recordStartFailure, recordStartSuccess } from "../metrics/index.js";

/** A RunPodSandbox request after CRI translation. */
export interface SandboxSpec {
  name: string;
  namespace: string;
  uid: string;
  attempt: number;
  hostname: string;
  logDirectory: string;
  dns: DnsSettings | undefined;
  portMappings: CniPortMapping[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  hostNetwork: boolean;
  hostIpc: boolean;
  /** "pod": one PID namespace for the pod (with an init); "container": one per container; "host". */
  pidMode: "pod" | "container" | "host";
  sysctls: Record<string, string>;
  cgroupParent: string;
  /** As requested; "" selects the default handler. */
  runtimeHandler: string;
  /** The CRI PodSandboxConfig as proto JSON (kept with the pod). */
  config: Record<string, unknown>;
}

export interface SandboxManagerOptions {
  config: Config;
  store: MetadataStore;
  cgroupDriver: "cgroupfs" | "systemd";
  /** Aborted when berthd shuts down. */
  lifetime: AbortSignal;
}

const SHM_SIZE = "65536k";
/** How often the PID namespace inits of ready pods are checked. */
const INIT_CHECK_MS = 1000;
const NOOP_HOOKS: ContainerHooks = { stopAll: async () => undefined, removeAll: async () => undefined };

function elapsed(since: number): number {
  return Math.round((performance.now() - since) * 10) / 10;
}

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
}

/**
 * Pod sandboxes: their namespaces, files, network and records. Every pod
 * operation runs under the pod's lock; names are reserved synchronously.
 */
export class SandboxManager {
  readonly cni: CniManager;
  /** One lock per pod id: container operations on a pod take it too (pod before container). */
  readonly locks = new KeyedMutex(120_000);
  readonly #names = new NameRegistrar("sandbox");
  /** RunPodSandbox builds in progress, by request. */
  readonly #runs = new SingleFlight<Sandbox>();
  readonly #db: SandboxStore;
  readonly #byId = new Map<string, Sandbox>();
  readonly #root: string;
  #hooks: ContainerHooks = NOOP_HOOKS;
  #initTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: SandboxManagerOptions) {
    const cfg = opts.config;
    this.#root = join(cfg.state, "sandboxes");
    this.cni = new CniManager({
      confDir: cfg.cni.conf_dir,
      binDirs: cfg.cni.bin_dirs,
      cacheDir: cfg.cni.cache_dir || join(cfg.state, "cni-cache"),
      timeoutMs: cfg.cni.plugin_timeout_seconds * 1000,
    });
    this.#db = new SandboxStore(opts.store);
  }

  /** The container layer's hooks, called by stop and remove. */
  setContainerHooks(hooks: ContainerHooks): void {
    this.#hooks = hooks;
  }

  /** Runs fn with the pod's lock held. */
  withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(`sandbox/${id}`, fn);
  }

  /**
   * Every visible pod (not those still being created), from memory: a pod whose PID
   * namespace init died is marked not ready by the liveness timer (`#watchInits`).
   */
  list(): Sandbox[] {
    const out: Sandbox[] = [];
    for (const s of this.#byId.values()) if (s.state !== "creating") out.push(s);
    return out;
  }

  /**
   * A ready pod whose PID namespace init died (killed, OOM) is not ready any
   * more: the pod-wide PID namespace is gone with it.
   */
  #refresh(sb: Sandbox): Sandbox {
    if (sb.state === "ready" && sb.pidInit && sb.pidInit.nsInode > 0 && !pidInitRunning(sb.pidInit.initPid, sb.pidInit.nsInode)) {
      logger().warn({ podSandboxId: sb.id, initPid: sb.pidInit.initPid }, "the pod's PID namespace init exited; sandbox is not ready");
      sb.state = "notready";
      this.#db.update(sb);
    }
    return sb;
  }

  /** A pod by full id or unique id prefix, its state checked against its PID namespace init; NotFound otherwise. */
  get(idOrPrefix: string): Sandbox {
    return this.#refresh(this.lookup(idOrPrefix));
  }

  /** A pod by full id or unique id prefix, from memory only (the read path: PodSandboxStatus); NotFound otherwise. */
  lookup(idOrPrefix: string): Sandbox {
    if (!idOrPrefix) throw new NotFoundError("sandbox id is empty");
    const exact = this.#byId.get(idOrPrefix);
    if (exact && exact.state !== "creating") return exact;
    const matches = [...this.#byId.values()].filter((s) => s.state !== "creating" && s.id.startsWith(idOrPrefix));
    if (matches.length === 1 && matches[0]) return matches[0];
    if (matches.length > 1) throw new NotFoundError(`sandbox id prefix "${idOrPrefix}" is ambiguous (${matches.length} pods match)`);
    throw new NotFoundError(`sandbox "${idOrPrefix}" not found`);
  }

  /**
   * Replaces the pod's recorded CRI config (UpdatePodSandboxResources: the
   * kubelet resized the pod's cgroup itself and tells the runtime the new
   * pod-level resources). Persisted; NotFound for an unknown pod.
   */
  async updateConfig(idOrPrefix: string, update: (config: Record<string, unknown>) => Record<string, unknown>): Promise<Sandbox> {
    const id = this.get(idOrPrefix).id;
    return this.withLock(id, async () => {
      const sb = this.get(id);
      sb.config = update(structuredClone(sb.config));
      this.#db.update(sb);
      return sb;
    });
  }

  /** A pod that must be ready (for creating or starting containers in it): NotFound or FailedPrecondition otherwise. */
  getReady(idOrPrefix: string, action = "use"): Sandbox {
    const sb = this.get(idOrPrefix);
    if (sb.state !== "ready") throw new FailedPreconditionError(`cannot ${action}: sandbox "${sb.id}" is not ready`);
    return sb;
  }

  #handler(requested: string): RuntimeHandlerInfo {
    const cfg = this.opts.config.runtime;
    const name = requested || cfg.default_handler;
    const h = cfg.handlers[name];
    if (!h) {
      const known = Object.keys(cfg.handlers).sort().join(", ");
      throw new InvalidArgumentError(`runtime handler "${name}" is not configured (known: ${known || "none"})`);
    }
    return { name, path: h.path, root: h.root || join(this.opts.config.state, "runtime", name) };
  }

  /** Config defaults (runtime.default_sysctls) that apply to this pod, then the pod's own. */
  #sysctls(spec: SandboxSpec): Record<string, string> {
    const merged: Record<string, string> = {};
    for (const kv of this.opts.config.runtime.default_sysctls) {
      const i = kv.indexOf("=");
      if (i > 0) merged[kv.slice(0, i)] = kv.slice(i + 1);
    }
    try {
      validateSysctls(merged, { hostNetwork: spec.hostNetwork, hostIpc: spec.hostIpc });
    } catch {
      for (const k of Object.keys(merged)) delete merged[k]; // defaults that do not fit this pod are skipped
    }
    return validateSysctls({ ...merged, ...spec.sysctls }, { hostNetwork: spec.hostNetwork, hostIpc: spec.hostIpc });
  }

  /**
   * RunPodSandbox. An identical request while one is still being built (the
   * kubelet's retry after its deadline) shares that build and gets its result
   * instead of "name is reserved"; a different request for the name does not.
   */
  run(spec: SandboxSpec): Promise<Sandbox> {
    return this.#runs.do(stringifyWithBigint(spec), () => this.#run(spec));
  }

  /**
   * Validates, reserves the name, records the pod as "creating",
   * builds it step by step (each step's undo registered at once) and marks it
   * ready. Any failure undoes everything and rethrows.
   */
  async #run(spec: SandboxSpec): Promise<Sandbox> {
    if (!spec.name || !spec.namespace || !spec.uid) throw new InvalidArgumentError("sandbox metadata needs name, namespace and uid");
    const handler = this.#handler(spec.runtimeHandler);
    validateCgroupParent(spec.cgroupParent, this.opts.cgroupDriver);
    const sysctls = this.#sysctls(spec);
    if (spec.hostname) validateHostname(spec.hostname);
    if (spec.dns) validateDns(spec.dns);
    const bandwidth = parseBandwidth(spec.annotations);
    for (const p of spec.portMappings) {
      if (p.containerPort <= 0 || p.containerPort > 65535) throw new InvalidArgumentError(`port_mappings: container_port ${p.containerPort} is out of range`);
      if (p.hostPort < 0 || p.hostPort > 65535) throw new InvalidArgumentError(`port_mappings: host_port ${p.hostPort} is out of range`);
    }

    const id = randomBytes(32).toString("hex");
    const reservedName = `${spec.name}_${spec.namespace}_${spec.uid}_${spec.attempt}`;
    this.#names.reserve(reservedName, id);
    const dir = join(this.#root, id);
    const hostname = spec.hostNetwork ? hostHostname() : spec.hostname || hostHostname();
    const sb: Sandbox = {
      id,
      name: spec.name,
      namespace: spec.namespace,
      uid: spec.uid,
      attempt: spec.attempt,
      reservedName,
      state: "creating",
      createdAt: nowNs(),
      dir,
      netnsPath: undefined,
      ipcNsPath: undefined,
      utsNsPath: undefined,
      pidNsPath: undefined,
      pidInit: undefined,
      hostNetwork: spec.hostNetwork,
      hostPid: spec.pidMode === "host",
      hostIpc: spec.hostIpc,
      cgroupParent: spec.cgroupParent,
      cgroupDriver: this.opts.cgroupDriver,
      logDirectory: spec.logDirectory,
      runtimeHandler: spec.runtimeHandler,
      handler,
      hostname,
      hostsPath: join(dir, "hosts"),
      resolvConfPath: join(dir, "resolv.conf"),
      hostnamePath: join(dir, "hostname"),
      shmPath: spec.hostIpc ? "/dev/shm" : join(dir, "shm"),
      ips: [],
      networkAttached: false,
      sysctls,
      labels: spec.labels,
      annotations: spec.annotations,
      config: spec.config,
    };
    return withLogFields({ podSandboxId: id }, () => this.withLock(id, () => this.#create(sb, spec, bandwidth)));
  }

  async #create(sb: Sandbox, spec: SandboxSpec, bandwidth: ReturnType<typeof parseBandwidth>): Promise<Sandbox> {
    const stack = new CleanupStack();
    // The build runs under the daemon's lifetime, not the request: a client that gives up does not leave half a pod.
    const signal = this.opts.lifetime;
    const log = logger();
    // Where the time goes (ms per step; the network and the local steps overlap), logged with "sandbox ready".
    const phases: Record<string, number> = {};
    const t0 = performance.now();
    try {
      stack.push("release name", () => this.#names.release(sb.reservedName, sb.id));
      this.#db.insert(sb);
      this.#byId.set(sb.id, sb);
      stack.push("delete record", () => {
        this.#db.delete(sb.id);
        this.#byId.delete(sb.id);
      });
      mkdirSync(sb.dir, { recursive: true, mode: 0o711 });
      stack.push("remove pod dir", async () => {
        await unmountAll(sb.dir);
        rmSync(sb.dir, { recursive: true, force: true });
      });
      if (sb.logDirectory && !existsSync(sb.logDirectory)) {
        const created = mkdirSync(sb.logDirectory, { recursive: true, mode: 0o755 });
        if (created) stack.push("remove log dir", () => rmSync(created, { recursive: true, force: true }));
      }

      phases.prepare = elapsed(t0);

      let t = performance.now();
      const kinds: PinnedKind[] = [];
      if (!sb.hostNetwork) kinds.push("net", "uts");
      if (!sb.hostIpc) kinds.push("ipc");
      stack.push("unpin namespaces", () => unpinNamespaces(sb.dir));
      const pins = await pinNamespaces(sb.dir, kinds, sb.hostname, signal);
      sb.netnsPath = pins.net;
      sb.utsNsPath = pins.uts;
      sb.ipcNsPath = pins.ipc;
      phases.pinNamespaces = elapsed(t);

      // Before the network: a sysctl such as net.ipv4.conf.default.* must apply to the interface CNI creates.
      if (Object.keys(sb.sysctls).length > 0) {
        t = performance.now();
        await this.#applySysctls(sb, signal);
        phases.sysctls = elapsed(t);
      }

      // The network and the pod's local parts (PID namespace init, shm, files) do not depend on each other:
      // they run side by side. Each registers its undo the moment its resource exists; both are let finish
      // (or fail) before any error is rethrown, so the rollback never races a step still running.
      const network = async (): Promise<void> => {
        if (sb.hostNetwork || !sb.netnsPath) return;
        const t1 = performance.now();
        stack.push("CNI DEL", (s) => this.cni.teardown(sb.id, s));
        const net = await this.cni.setup(
          { id: sb.id, name: sb.name, namespace: sb.namespace, uid: sb.uid, netns: sb.netnsPath, portMappings: spec.portMappings, ...(bandwidth ? { bandwidth } : {}) },
          signal,
        );
        sb.ips = net.ips;
        sb.networkAttached = true;
        phases.cni = elapsed(t1);
      };
      const local = async (): Promise<void> => {
        let t1 = performance.now();
        if (!sb.hostIpc) {
          mkdirSync(sb.shmPath, { recursive: true, mode: 0o1777 });
          stack.push("unmount shm", () => unmountAll(sb.shmPath));
          await mount("shm", sb.shmPath, "tmpfs", ["nosuid", "nodev", "noexec", "mode=1777", `size=${SHM_SIZE}`], signal);
        }
        writeHostnameFile(sb.hostnamePath, sb.hostname);
        writeResolvConf(sb.resolvConfPath, spec.dns);
        phases.shmAndFiles = elapsed(t1);
        if (spec.pidMode === "pod") {
          t1 = performance.now();
          // Recorded before the init starts, so a crash in between still finds (and stops) it.
          sb.pidNsPath = join(sb.dir, "pid");
          this.#db.update(sb);
          stack.push("stop pid init", () => stopPidInit({ holderPid: sb.pidInit?.holderPid ?? 0, initPid: sb.pidInit?.initPid ?? 0, nsPath: join(sb.dir, "pid") }));
          const init = await startPidInit(sb.dir, signal);
          sb.pidInit = { holderPid: init.holderPid, initPid: init.initPid, nsInode: init.nsInode ?? 0 };
          this.#db.update(sb);
          phases.pidInit = elapsed(t1);
        }
      };
      t = performance.now();
      const settled = await Promise.allSettled([network(), local()]);
      phases.networkAndLocal = elapsed(t);
      for (const r of settled) if (r.status === "rejected") throw r.reason;

      t = performance.now();
      writeHosts(sb.hostsPath, { hostNetwork: sb.hostNetwork, hostname: sb.hostname, ip: sb.ips[0] });
      sb.state = "ready";
      this.#db.update(sb);
      stack.commit();
      phases.finish = elapsed(t);
      phases.total = elapsed(t0);
      log.info({ name: sb.reservedName, ips: sb.ips, handler: sb.handler.name, phasesMs: phases }, "sandbox ready");
      recordStartSuccess(sb.handler.name, "sandbox");
      this.#hooks.podEvent?.(sb, "created");
      this.#hooks.podEvent?.(sb, "started");
      return sb;
    } catch (err) {
      log.warn({ err: errorMessage(err), name: sb.reservedName }, "RunPodSandbox failed; rolling back");
      recordStartFailure("sandbox", sb.handler.name, err, { name: sb.reservedName });
      await stack.unwind();
      throw err;
    }
  }

  async #applySysctls(sb: Sandbox, signal: AbortSignal): Promise<void> {
    const entries = Object.entries(sb.sysctls);
    if (entries.length === 0) return;
    const ns: Partial<Record<"net" | "ipc", string>> = {};
    if (sb.netnsPath) ns.net = sb.netnsPath;
    if (sb.ipcNsPath) ns.ipc = sb.ipcNsPath;
    try {
      await writeSysctlsIn(ns, sb.sysctls, signal);
    } catch (err) {
      throw new InvalidArgumentError(`cannot apply linux.sysctls ${entries.map(([k, v]) => `${k}=${v}`).join(", ")}: ${errorMessage(err)}`, { cause: err });
    }
  }

  /**
   * StopPodSandbox: stops the pod's containers, detaches it from the network,
   * unmounts its shm and ends its PID namespace. Idempotent; an unknown id is fine.
   */
  async stop(id: string, signal: AbortSignal): Promise<void> {
    const sb = this.#byId.get(id);
    if (!sb || sb.state === "creating") return;
    await withLogFields({ podSandboxId: id }, () =>
      this.withLock(id, async () => {
        if (this.#byId.get(id) === sb) await this.#stopLocked(sb, signal);
      }),
    );
  }

  async #stopLocked(sb: Sandbox, signal: AbortSignal): Promise<void> {
    await this.#hooks.stopAll(sb.id, signal);
    await this.#release(sb, signal);
    if (sb.state !== "notready") {
      sb.state = "notready";
      this.#db.update(sb);
      logger().info({ name: sb.reservedName }, "sandbox stopped");
      this.#hooks.podEvent?.(sb, "stopped");
    }
  }

  /** Undoes what a running pod holds besides its pinned namespaces and files (repeatable). */
  async #release(sb: Sandbox, signal: AbortSignal): Promise<void> {
    // Without a cache entry (e.g. the state dir was lost in a reboot) an attached pod is detached with the current config,
    // and so is one a crash caught "creating" (its ADD may have run; the cache entry is not fsynced).
    const fallback = (sb.networkAttached || sb.state === "creating") && sb.netnsPath && !sb.hostNetwork ? { id: sb.id, name: sb.name, namespace: sb.namespace, uid: sb.uid, netns: sb.netnsPath, portMappings: [] } : undefined;
    await this.cni.teardown(sb.id, signal, fallback);
    if (sb.networkAttached) {
      sb.networkAttached = false;
      this.#db.update(sb);
    }
    if (!sb.hostIpc) await unmountAll(sb.shmPath);
    if (sb.pidNsPath) await stopPidInit({ holderPid: sb.pidInit?.holderPid ?? 0, initPid: sb.pidInit?.initPid ?? 0, nsPath: sb.pidNsPath });
  }

  /** RemovePodSandbox: removes the pod's containers, stops it if needed, frees everything. Idempotent. */
  async remove(id: string, signal: AbortSignal): Promise<void> {
    const sb = this.#byId.get(id);
    if (!sb || sb.state === "creating") return;
    await withLogFields({ podSandboxId: id }, () =>
      this.withLock(id, async () => {
        if (!this.#byId.has(id)) return;
        await this.#hooks.removeAll(sb.id, signal);
        await this.#stopLocked(sb, signal);
        await this.#destroy(sb);
        logger().info({ name: sb.reservedName }, "sandbox removed");
        this.#hooks.podEvent?.(sb, "deleted");
      }),
    );
  }

  /** Unpins namespaces, removes the pod's dir, record and name. */
  async #destroy(sb: Sandbox): Promise<void> {
    await unpinNamespaces(sb.dir);
    await unmountAll(sb.dir);
    rmSync(sb.dir, { recursive: true, force: true });
    this.#db.delete(sb.id);
    this.#byId.delete(sb.id);
    this.#names.release(sb.reservedName, sb.id);
  }

  /**
   * Start-up recovery: loads every pod, rolls back those a crash caught in
   * "creating", marks pods whose namespaces or init are gone not ready, and
   * removes leftovers that have no record (pod dirs, CNI attachments).
   */
  async recover(): Promise<void> {
    const log = logger();
    await ensurePrivateDir(this.#root);
    const signal = AbortSignal.timeout(120_000);
    for (const sb of this.#db.all()) {
      if (sb.state === "creating") {
        log.warn({ podSandboxId: sb.id, name: sb.reservedName }, "rolling back a RunPodSandbox interrupted by a crash");
        try {
          await this.#release(sb, signal);
          await this.#destroy(sb);
        } catch (err) {
          log.error({ err, podSandboxId: sb.id }, "rollback of an interrupted sandbox failed; keeping its record for the next start");
          this.#byId.set(sb.id, sb);
          this.#names.reserve(sb.reservedName, sb.id);
        }
        continue;
      }
      this.#byId.set(sb.id, sb);
      this.#names.reserve(sb.reservedName, sb.id);
      if (sb.state === "ready") {
        const lost: string[] = [];
        if (sb.netnsPath && !isPinned(sb.netnsPath)) lost.push("network namespace");
        if (sb.ipcNsPath && !isPinned(sb.ipcNsPath)) lost.push("IPC namespace");
        if (sb.pidNsPath && sb.pidInit && !pidInitAlive({ ...sb.pidInit, nsPath: sb.pidNsPath })) lost.push("PID namespace init");
        if (lost.length) {
          log.warn({ podSandboxId: sb.id, lost }, "sandbox lost its namespaces while berthd was down; marking it not ready");
          sb.state = "notready";
          this.#db.update(sb);
        }
      }
    }
    // Leftovers without a record: a crash between creating a resource and recording it cannot happen
    // (the record comes first), but a record deleted before its dir was removed can.
    if (existsSync(this.#root)) {
      for (const name of readdirSync(this.#root)) {
        if (this.#byId.has(name)) continue;
        const dir = join(this.#root, name);
        log.warn({ dir }, "removing a sandbox dir with no record");
        if (existsSync(join(dir, "pid"))) await stopPidInit({ holderPid: 0, initPid: 0, nsPath: join(dir, "pid") });
        await unpinNamespaces(dir);
        await unmountAll(dir);
        rmSync(dir, { recursive: true, force: true });
      }
    }
    for (const id of this.cni.cachedIds()) {
      if (this.#byId.has(id)) continue;
      log.warn({ podSandboxId: id }, "releasing a CNI attachment with no sandbox record");
      try {
        await this.cni.teardown(id, signal);
      } catch (err) {
        log.error({ err, podSandboxId: id }, "CNI DEL of a leftover attachment failed");
      }
    }
    this.#watchInits();
    log.info({ sandboxes: this.#byId.size }, "sandboxes recovered");
  }

  /**
   * Checks the PID namespace init of every ready pod once a second (two /proc reads
   * each), so that reads answer from memory and still see a pod whose init died.
   */
  #watchInits(): void {
    if (this.#initTimer) return;
    this.#initTimer = setInterval(() => {
      for (const sb of this.#byId.values()) if (sb.pidInit) this.#refresh(sb);
    }, INIT_CHECK_MS);
    this.#initTimer.unref();
    this.opts.lifetime.addEventListener("abort", () => clearInterval(this.#initTimer), { once: true });
  }
}
