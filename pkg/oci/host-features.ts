import { existsSync, readdirSync, readFileSync } from "node:fs";
import { hostDevices } from "./devices.js";
import { capabilitiesOfMask } from "./capabilities.js";
import type { HostFeatures } from "./spec-builder.js";

/** Detects what the spec depends on from this host's /sys. */
export function detectHostFeatures(opts: { cgroupMode: HostFeatures["cgroupMode"]; cgroupDriver: HostFeatures["cgroupDriver"]; unifiedMount: string | undefined; oomScoreAdjFloor: number | undefined }): HostFeatures {
  let apparmor = false;
  try {
    apparmor = existsSync("/sys/kernel/security/apparmor") && /^Y/.test(readFileOr("/sys/module/apparmor/parameters/enabled"));
  } catch {
    apparmor = false;
  }
  const swapAccount =
    opts.cgroupMode === "v2"
      ? existsSync(`${opts.unifiedMount ?? "/sys/fs/cgroup"}/memory.swap.max`) || existsSync(`${opts.unifiedMount ?? "/sys/fs/cgroup"}/system.slice/memory.swap.max`)
      : existsSync("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes");
  const hugepageSizes: string[] = [];
  try {
    for (const d of readdirSync("/sys/kernel/mm/hugepages")) {
      const m = /^hugepages-(\d+)kB$/.exec(d);
      if (!m) continue;
      const kb = Number(m[1]);
      hugepageSizes.push(kb >= 1048576 ? `${kb / 1048576}GB` : kb >= 1024 ? `${kb / 1024}MB` : `${kb}KB`);
    }
  } catch {
    /* no hugepages */
  }
  const bnd = /^CapBnd:\s+([0-9a-f]+)$/m.exec(readFileOr("/proc/self/status"))?.[1];
  return {
    cgroupMode: opts.cgroupMode,
    cgroupDriver: opts.cgroupDriver,
    apparmor,
    swapAccount,
    hugepageSizes,
    oomScoreAdjFloor: opts.oomScoreAdjFloor,
    ...(bnd ? { capabilities: capabilitiesOfMask(bnd) } : {}),
    hostDevices: () => hostDevices(),
  };
}

function readFileOr(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
