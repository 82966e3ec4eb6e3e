import { readFileSync } from "node:fs";
import { detectCgroups, type CgroupInfo } from "../sys/index.js";

/** Where the hierarchies are mounted: v1 controllers by name, and the v2 (unified) mount. */
export interface CgroupLayout {
  mode: "v1" | "v2" | "hybrid";
  /** v2 mount, if any (the root on pure v2, /sys/fs/cgroup/unified on hybrid). */
  unified: string | undefined;
  /** v1 controller name → mount point ("cpuacct" → "/sys/fs/cgroup/cpu,cpuacct"). */
  v1: ReadonlyMap<string, string>;
}

/** The v1 controllers the stats readers use. */
export const V1_CONTROLLERS = ["cpu", "cpuacct", "memory", "pids"] as const;

/** Reads the mount table to find each hierarchy; the mode comes from pkg/sys detectCgroups(). */
export function detectCgroupLayout(info: CgroupInfo = detectCgroups(), mounts?: string): CgroupLayout {
  let text = mounts;
  if (text === undefined) {
    try {
      text = readFileSync("/proc/self/mounts", "utf8");
    } catch {
      text = "";
    }
  }
  const v1 = new Map<string, string>();
  if (info.mode !== "v2") {
    for (const line of text.split("\n")) {
      const f = line.split(" ");
      if (f[2] !== "cgroup" || !f[1] || !f[3]) continue;
      for (const opt of f[3].split(",")) {
        if ((V1_CONTROLLERS as readonly string[]).includes(opt) && !v1.has(opt)) v1.set(opt, f[1]);
      }
    }
  }
  return { mode: info.mode, unified: info.unifiedMount, v1 };
}

/**
 * A layout rooted at a directory, for tests and fixtures: v2 → root is the unified mount;
 * v1 → root/<controller>; hybrid → both, with the unified mount at root/unified.
 */
export function cgroupLayoutAt(root: string, mode: "v1" | "v2" | "hybrid"): CgroupLayout {
  const v1 = new Map<string, string>();
  if (mode !== "v2") for (const c of V1_CONTROLLERS) v1.set(c, `${root}/${c}`);
  return { mode, unified: mode === "v2" ? root : mode === "hybrid" ? `${root}/unified` : undefined, v1 };
}
