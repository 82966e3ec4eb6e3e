import type { Config } from "../config/index.js";
import type { ImageService } from "../image/index.js";
import type { MetadataStore } from "../store/index.js";
import type { CgroupInfo } from "../sys/index.js";
import type { Container, RuntimeCore, Sandbox } from "../runtime/index.js";
import type { ContainerEvent, EventBus } from "../events/index.js";
import type { StatsProvider } from "./stats-convert.js";
import type { StreamingServer } from "../streaming/index.js";

/** What the CRI handlers need from the rest of the daemon (built in cmd/berthd/daemon.ts). */
export interface CriDeps {
  config: Config;
  cgroups: CgroupInfo;
  store: MetadataStore;
  /** Aborted when berthd shuts down: work that outlives a request runs under it. */
  lifetime: AbortSignal;
  /** Pods (and, later, containers): the runtime core. */
  runtime: RuntimeCore;
  /** Images: pull, list, status, remove, fs info; `images.get(ref)` for container creation. */
  images: ImageService;
  /** Container and pod stats from the background collector's cache. */
  stats: StatsProvider;
  /** Container lifecycle events the runtime publishes (GetContainerEvents). */
  events: EventBus<ContainerEvent<Sandbox, Container>>;
  /** Exec/Attach/PortForward URLs; absent when streaming.address is empty. */
  streaming?: StreamingServer;
  /** Called when a call that changes something (not a polled read) ends: the daemon's idle memory compaction. */
  onWorkDone?: () => void;
}
