import { mkdirSync, chmodSync, existsSync, rmSync, lstatSync } from "node:fs";
import { connect } from "node:net";
import { dirname, join } from "node:path";
import type { Config } from "../../pkg/config/index.js";
import { ContentStore } from "../../pkg/content/index.js";
import { CriServer } from "../../pkg/cri/index.js";
import { ImageService } from "../../pkg/image/index.js";
import { Snapshotter } from "../../pkg/snapshot/index.js";
import { MetricsServer, watchStoreDisk } from "../../pkg/metrics/index.js";
import { SloEngine } from "../../pkg/slo/index.js";
import { rootLogger } from "../../pkg/log/index.js";
import { MetadataStore } from "../../pkg/store/index.js";
import { RuntimeCore, RuntimeStreamingBackend, containerImagesOf, containerRootfsOf, type Container, type Sandbox } from "../../pkg/runtime/index.js";
import { cgroupDriverOf, runtimeStatsSource } from "../../pkg/cri/index.js";
import { StatsCollector } from "../../pkg/stats/index.js";
import { containerEventBus } from "../../pkg/events/index.js";
import { StreamingServer } from "../../pkg/streaming/index.js";
import { IdleCompactor, InstanceLock, detectCgroups, fixMallocThresholds, mallocTrim, lowerOtherThreads, raiseThreadPriority, schedulingGroup, threadNice, threadSliceUs } from "../../pkg/sys/index.js";
import { runtimeVersion } from "../../pkg/version/index.js";

/** Free memory an arena keeps at its top before it is trimmed, and the size from which blocks get their own mapping (see fixMallocThresholds). */
const MALLOC_TRIM_THRESHOLD = 512 * 1024;
const MALLOC_MMAP_THRESHOLD = 256 * 1024;
/**
 * Quiet time after the last pod/container/image change before memory is given back
 * (IdleCompactor). Longer than a pull's worker threads stay idle (downloads 5 s, layer
 * applies 10 s), so that their arenas are free by then.
 */
const COMPACT_AFTER_MS = 30_000;

/** True when something accepts connections on the unix socket. */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** The composition root: builds every component from the config and runs them. */
export class Daemon {
  #lock: InstanceLock | undefined;
  #store: MetadataStore | undefined;
  #cri: CriServer | undefined;
  #metrics: MetricsServer | undefined;
  #snapshotter: Snapshotter | undefined;
  #images: ImageService | undefined;
  #streaming: StreamingServer | undefined;
  #stats: StatsCollector | undefined;
  #events: { closeAll(): void } | undefined;
  #slo: SloEngine | undefined;
  readonly #compactor = new IdleCompactor(COMPACT_AFTER_MS);
  readonly #lifetime = new AbortController();

  constructor(readonly config: Config) {}

  async start(): Promise<void> {
    const cfg = this.config;
    const log = rootLogger();
    log.info({ version: runtimeVersion(), config: cfg }, "berthd starting");
    // (the number of malloc arenas is capped when node starts: cmd/berthd/main.ts)
    if (!fixMallocThresholds(MALLOC_TRIM_THRESHOLD, MALLOC_MMAP_THRESHOLD)) log.debug("malloc thresholds left dynamic (set in the environment, or not glibc)");
    mkdirSync(cfg.root, { recursive: true, mode: 0o711 });
    mkdirSync(cfg.state, { recursive: true, mode: 0o711 });
    this.#lock = await InstanceLock.acquire(cfg.root);

    this.#store = MetadataStore.open(join(cfg.root, "metadata.db"));
    // SLO windows are counted from here on (before recovery and the first call).
    this.#slo = new SloEngine({ store: this.#store, config: cfg.slo });
    await this.#slo.start();
    const cgroups = detectCgroups();
    log.info({ cgroups }, "cgroups detected");
    if (cfg.image.pull_nice > 0) {
      const group = schedulingGroup(cgroups.unifiedMount);
      if (group === undefined) {
        log.warn({ pullNice: cfg.image.pull_nice }, "image.pull_nice not applied: berthd shares the root scheduling group with every process (no cpu cgroup of its own, autogroup off), where niced pulls would get a fraction of the CPU");
        cfg.image.pull_nice = 0;
      } else log.info({ pullNice: cfg.image.pull_nice, group }, "pull threads run niced within berthd's scheduling group");
    }

    const socket = cfg.grpc.address;
    mkdirSync(dirname(socket), { recursive: true, mode: 0o711 });
    if (existsSync(socket)) {
      if (!lstatSync(socket).isSocket()) throw new Error(`${socket} exists and is not a socket; refusing to replace it`);
      if (await socketAnswers(socket)) throw new Error(`socket ${socket} is in use by another running process`);
      rmSync(socket, { force: true });
      log.info({ socket }, "removed stale socket");
    }

    const content = ContentStore.open({ root: join(cfg.root, "content"), store: this.#store });
    this.#snapshotter = await Snapshotter.open({ root: join(cfg.root, "snapshots"), store: this.#store, workerNice: cfg.image.pull_nice });
    const snapshotter = this.#snapshotter;
    watchStoreDisk("content", join(cfg.root, "content"), () => content.usage().bytes);
    watchStoreDisk("snapshots", join(cfg.root, "snapshots"), async () => Number((await snapshotter.usage()).bytes));
    this.#images = new ImageService({ config: cfg, store: this.#store, content, snapshotter: this.#snapshotter, lifetime: this.#lifetime.signal, progressDir: join(cfg.state, "pulls") });

    const events = containerEventBus<Sandbox, Container>(cfg.events.buffer_size);
    this.#events = events;
    const runtime = new RuntimeCore({ config: cfg, store: this.#store, cgroupDriver: cgroupDriverOf({ config: cfg, cgroups }), lifetime: this.#lifetime.signal, events });
    runtime.containers.setImageBackend(containerImagesOf(this.#images), containerRootfsOf(this.#snapshotter));
    if (cfg.streaming.address) {
      const execTmp = join(cfg.state, "exec");
      mkdirSync(execTmp, { recursive: true, mode: 0o700 });
      this.#streaming = StreamingServer.fromConfig(cfg.streaming, new RuntimeStreamingBackend(runtime, { tmpDir: execTmp }), log);
      await this.#streaming.start();
    }
    const driver = cgroupDriverOf({ config: cfg, cgroups });
    this.#stats = new StatsCollector({ source: runtimeStatsSource(runtime, driver), intervalSeconds: cfg.stats.collect_interval_seconds });
    this.#cri = new CriServer({
      config: cfg,
      cgroups,
      store: this.#store,
      lifetime: this.#lifetime.signal,
      runtime,
      images: this.#images,
      stats: this.#stats,
      events,
      ...(this.#streaming ? { streaming: this.#streaming } : {}),
      onWorkDone: () => this.#compactor.touch(),
    });
    await this.#cri.listen(socket);
    chmodSync(socket, parseInt(cfg.grpc.socket_mode, 8));

    if (cfg.metrics.address) {
      const slo = this.#slo;
      this.#metrics = new MetricsServer({ "/slo": () => slo.report() });
      const addr = await this.#metrics.listen(cfg.metrics.address);
      log.info({ address: `${addr.address}:${addr.port}` }, "metrics served at /metrics");
      log.info({ url: `http://${addr.address}:${addr.port}/slo` }, "SLO report served at /slo");
    }

    this.#prioritizeEventLoop();

    // Restart recovery of later components runs here, before the gate opens.
    await runtime.recover();
    this.#images.start();
    this.#stats.start();
    // Collect what a crash may have left (partial ingests, unreferenced blobs and snapshots).
    // Then give back what start-up freed in malloc's arenas (module sources read, recovery,
    // the store's first queries): about 2 MB of an idle daemon's PSS, for a few ms of a pool
    // thread. Start-up is work like any other: the compactor runs after it too (the code that
    // only start-up runs, the heap its module loading grew).
    void this.#images
      .gc()
      .catch((err: unknown) => log.warn({ err }, "start-up image garbage collection failed"))
      .finally(() => {
        void mallocTrim();
        this.#compactor.touch();
      });
    this.#cri.ready();
    log.info({ socket }, "berthd ready: serving CRI v1");
  }

  /**
   * Raises the event loop's CPU weight (grpc.event_loop_nice). Runs after start-up's file
   * work has started the libuv pool, whose threads (they decompress layers too) keep nice 0.
   */
  #prioritizeEventLoop(): void {
    const nice = this.config.grpc.event_loop_nice;
    const sliceUs = this.config.grpc.event_loop_slice_us;
    if (nice !== 0 || sliceUs > 0) {
      try {
        raiseThreadPriority(nice, sliceUs);
        rootLogger().debug({ nice: threadNice(), sliceUs: threadSliceUs() }, "event loop thread raised");
      } catch (err) {
        rootLogger().warn({ err, nice, sliceUs }, "cannot raise the event loop thread's priority (needs CAP_SYS_NICE); it keeps nice 0");
      }
    }
    // image.pull_nice: the threads started so far (libuv pool, V8 helpers) go below it too;
    // the pull's own workers set theirs when they start
    const low = this.config.image.pull_nice;
    if (low > 0) rootLogger().debug({ nice: low, threads: lowerOtherThreads(low) }, "helper threads lowered");
  }

  async stop(): Promise<void> {
    this.#lifetime.abort(new Error("berthd is shutting down"));
    this.#compactor.stop();
    this.#events?.closeAll();
    const grace = this.config.grpc.shutdown_grace_seconds * 1000;
    if (this.#cri) await this.#cri.shutdown(grace);
    await this.#streaming?.stop();
    if (this.#metrics) await this.#metrics.close();
    await this.#stats?.stop();
    await this.#images?.stop();
    await this.#slo?.stop().catch((err: unknown) => rootLogger().warn({ err }, "cannot write SLO counters at shutdown"));
    this.#snapshotter?.close();
    this.#store?.close();
    if (this.#cri) rmSync(this.config.grpc.address, { force: true });
    this.#lock?.release();
  }
}
