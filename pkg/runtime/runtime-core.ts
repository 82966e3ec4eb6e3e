import type { Config } from "../config/index.js";
import type { MetadataStore } from "../store/index.js";
import { SandboxManager } from "./sandbox-manager.js";
import { ContainerManager } from "./container-manager.js";
import type { ContainerEvent, EventBus } from "../events/index.js";
import type { Sandbox } from "./sandbox.js";
import type { Container } from "./container.js";

export interface RuntimeCoreOptions {
  config: Config;
  store: MetadataStore;
  cgroupDriver: "cgroupfs" | "systemd";
  lifetime: AbortSignal;
  /** Where container lifecycle events go (GetContainerEvents). */
  events?: EventBus<ContainerEvent<Sandbox, Container>> | undefined;
}

/**
 * The core the CRI layer calls. Sandboxes now; the container layer adds its
 * manager beside them and plugs into sandbox stop/remove through
 * `sandboxes.setContainerHooks`.
 */
export class RuntimeCore {
  readonly sandboxes: SandboxManager;
  readonly containers: ContainerManager;

  constructor(readonly opts: RuntimeCoreOptions) {
    this.sandboxes = new SandboxManager(opts);
    this.containers = new ContainerManager({ ...opts, sandboxes: this.sandboxes });
  }

  /** Start-up recovery; runs before the CRI server opens its readiness gate. */
  async recover(): Promise<void> {
    await this.sandboxes.recover();
    await this.containers.recover();
  }
}
