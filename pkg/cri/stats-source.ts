import { readFileSync } from "node:fs";
import { join } from "node:path";
import { podCgroupParent, type Container, type RuntimeCore, type Sandbox } from "../runtime/index.js";
import { overlayUpperDir, type StatsContainerInfo, type StatsSandboxInfo, type StatsSource } from "../stats/index.js";

/**
 * The runtime core seen as a stats source: containers with their OCI cgroupsPath (read once from
 * the bundle), overlay upper dir (once from mountinfo) and pid; pods with the cgroup parent their
 * containers live under and their pinned netns.
 */
export function runtimeStatsSource(runtime: RuntimeCore, cgroupDriver: "cgroupfs" | "systemd"): StatsSource {
  const fixed = new Map<string, { cgroupPath: string; upperDir: string | undefined }>();
  /** mountinfo is read at most once per call that meets containers not seen before. */
  let mountinfo: string | undefined;
  const fixedOf = (c: Container): { cgroupPath: string; upperDir: string | undefined } => {
    let f = fixed.get(c.id);
    if (!f) {
      const spec = runtime.containers.spec(c);
      if (mountinfo === undefined) {
        try {
          mountinfo = readFileSync("/proc/self/mountinfo", "utf8");
        } catch {
          mountinfo = "";
        }
      }
      f = { cgroupPath: spec?.linux?.cgroupsPath ?? "", upperDir: overlayUpperDir(join(c.bundle, "rootfs"), mountinfo) };
      if (spec) fixed.set(c.id, f);
    }
    return f;
  };
  const fresh = <T>(fn: () => T): T => {
    mountinfo = undefined;
    try {
      return fn();
    } finally {
      mountinfo = undefined;
    }
  };
  const info = (c: Container): StatsContainerInfo => {
    const f = fixedOf(c);
    return {
      id: c.id,
      podSandboxId: c.podSandboxId,
      metadata: { name: c.name, attempt: c.attempt },
      labels: c.labels,
      annotations: c.annotations,
      cgroupPath: f.cgroupPath,
      upperDir: f.upperDir,
      pid: c.state === "running" && c.pid > 0 ? c.pid : undefined,
      image: c.image,
    };
  };
  const podInfo = (sb: Sandbox): StatsSandboxInfo => ({
    id: sb.id,
    metadata: { name: sb.name, uid: sb.uid, namespace: sb.namespace, attempt: sb.attempt },
    labels: sb.labels,
    annotations: sb.annotations,
    // Under systemd with no parent given, containers go to system.slice: that is no pod cgroup.
    cgroupParent: sb.cgroupParent || cgroupDriver === "cgroupfs" ? podCgroupParent(sb) : "",
    netnsPath: sb.hostNetwork ? undefined : sb.netnsPath,
  });
  return {
    containers(): StatsContainerInfo[] {
      const list = runtime.containers.list();
      const live = new Set(list.map((c) => c.id));
      for (const id of fixed.keys()) if (!live.has(id)) fixed.delete(id);
      return fresh(() => list.map(info));
    },
    sandboxes(): StatsSandboxInfo[] {
      return runtime.sandboxes.list().map(podInfo);
    },
    container(id: string): StatsContainerInfo | undefined {
      try {
        const c = runtime.containers.get(id);
        return c.state === "creating" ? undefined : fresh(() => info(c));
      } catch {
        return undefined;
      }
    },
    sandbox(id: string): StatsSandboxInfo | undefined {
      try {
        return podInfo(runtime.sandboxes.get(id));
      } catch {
        return undefined;
      }
    },
    containersOf(podSandboxId: string): StatsContainerInfo[] {
      return fresh(() => runtime.containers.list({ podSandboxId }).filter((c) => c.podSandboxId === podSandboxId).map(info));
    },
  };
}
