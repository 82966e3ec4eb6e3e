import { InvalidArgumentError } from "../errdefs/index.js";

/** Checks linux.cgroup_parent against the cgroup driver's syntax ("" means none). */
export function validateCgroupParent(parent: string, driver: "cgroupfs" | "systemd"): void {
  if (!parent) return;
  if (driver === "systemd") {
    // A slice name (kubelet: kubepods-burstable-pod<uid>.slice), optionally written as a path ("/test.slice", as critest does).
    if (!/^\/?[A-Za-z0-9_.:@\\-]+\.slice(\/[A-Za-z0-9_.:@\\-]+\.slice)*$/.test(parent)) {
      throw new InvalidArgumentError(`linux.cgroup_parent "${parent}" is not a systemd slice name (e.g. kubepods-besteffort.slice); the cgroup driver is systemd`);
    }
  } else if (!parent.startsWith("/") || parent.split("/").includes("..")) {
    throw new InvalidArgumentError(`linux.cgroup_parent "${parent}" must be an absolute cgroup path (e.g. /kubepods/besteffort); the cgroup driver is cgroupfs`);
  }
}
