import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CgroupInfo } from "./cgroups.js";

/** v1 controllers a group of helper processes is placed in (those mounted on this host). */
const V1_CONTROLLERS = ["memory", "pids", "cpu", "cpuacct"];

/** The directories (one per hierarchy) that make up the cgroupfs cgroup `path` (absolute, "/a/b"). */
export function cgroupDirs(info: CgroupInfo, path: string): string[] {
  const rel = path.replace(/^\/+/, "");
  if (info.mode === "v2") return [join(info.unifiedMount ?? "/sys/fs/cgroup", rel)];
  const dirs: string[] = [];
  for (const c of V1_CONTROLLERS) {
    const mount = join("/sys/fs/cgroup", c);
    if (existsSync(join(mount, "cgroup.procs"))) dirs.push(join(mount, rel));
  }
  if (info.unifiedMount) dirs.push(join(info.unifiedMount, rel));
  return dirs;
}

/** Creates cgroup `path` in every hierarchy and moves `pid` into it. */
export function joinCgroup(info: CgroupInfo, path: string, pid: number): void {
  for (const dir of cgroupDirs(info, path)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "cgroup.procs"), String(pid));
  }
}

/** The pids in cgroup `path` (read from the first hierarchy that has it). */
export function cgroupPids(info: CgroupInfo, path: string): number[] {
  for (const dir of cgroupDirs(info, path)) {
    try {
      return readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter((l) => l !== "").map(Number);
    } catch {
      /* try the next hierarchy */
    }
  }
  return [];
}

/** Removes cgroup `path` from every hierarchy (it must be empty); missing ones are fine. */
export function removeCgroup(info: CgroupInfo, path: string): void {
  for (const dir of cgroupDirs(info, path)) {
    try {
      rmdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
}
