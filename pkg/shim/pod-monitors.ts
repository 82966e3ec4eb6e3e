import { posix } from "node:path";
import { cgroupPids, removeCgroup, type CgroupInfo } from "../sys/index.js";
import { processPss } from "./proc.js";

/** The cgroupfs path where a pod's monitors live: a `berth-conmon` child of the pod's cgroup parent. */
export function podMonitorCgroup(cgroupParent: string): string {
  return posix.join(cgroupParent, "berth-conmon");
}

/** The monitor processes of a pod. */
export function podMonitorPids(cgroups: CgroupInfo, cgroupParent: string): number[] {
  return cgroupPids(cgroups, podMonitorCgroup(cgroupParent));
}

/** Kills whatever monitors are left in the pod's group and removes the group. */
export async function stopPodMonitors(cgroups: CgroupInfo, cgroupParent: string): Promise<void> {
  const path = podMonitorCgroup(cgroupParent);
  for (let i = 0; i < 50; i++) {
    const pids = cgroupPids(cgroups, path);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  removeCgroup(cgroups, path);
}

/** PSS of each monitor of the pod, bytes. */
export function podMonitorMemory(cgroups: CgroupInfo, cgroupParent: string): { pid: number; pssBytes: number }[] {
  return podMonitorPids(cgroups, cgroupParent).flatMap((pid) => {
    const pss = processPss(pid);
    return pss === undefined ? [] : [{ pid, pssBytes: pss }];
  });
}
