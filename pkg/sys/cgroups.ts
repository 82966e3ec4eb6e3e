import { existsSync, readFileSync, statfsSync } from "node:fs";

const CGROUP2_SUPER_MAGIC = 0x63677270;

export interface CgroupInfo {
  /** "v2": unified only; "hybrid": v1 controllers plus a v2 mount; "v1": legacy only. */
  mode: "v1" | "v2" | "hybrid";
  /** Where the v2 hierarchy is mounted, if any. */
  unifiedMount: string | undefined;
  /** Whether systemd runs the host (it then owns the cgroup tree). */
  systemd: boolean;
}

export function detectCgroups(): CgroupInfo {
  const systemd = existsSync("/run/systemd/system");
  let rootIsV2 = false;
  try {
    rootIsV2 = statfsSync("/sys/fs/cgroup").type === CGROUP2_SUPER_MAGIC;
  } catch {
    rootIsV2 = false;
  }
  if (rootIsV2) return { mode: "v2", unifiedMount: "/sys/fs/cgroup", systemd };
  let unified: string | undefined;
  try {
    const mounts = readFileSync("/proc/self/mounts", "utf8");
    for (const line of mounts.split("\n")) {
      const f = line.split(" ");
      if (f[2] === "cgroup2" && f[1]) unified = f[1];
    }
  } catch {
    unified = undefined;
  }
  return { mode: unified ? "hybrid" : "v1", unifiedMount: unified, systemd };
}
