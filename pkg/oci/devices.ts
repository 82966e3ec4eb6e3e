import { readdirSync, statSync, type BigIntStats } from "node:fs";
import { join } from "node:path";
import { InvalidArgumentError } from "../errdefs/index.js";
import type { LinuxDevice, LinuxDeviceCgroup } from "./spec-types.js";

function majorOf(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}
function minorOf(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}

function deviceOf(hostPath: string, containerPath: string, st: BigIntStats): LinuxDevice | undefined {
  const type = st.isCharacterDevice() ? "c" : st.isBlockDevice() ? "b" : st.isFIFO() ? "p" : undefined;
  if (!type) return undefined;
  return {
    path: containerPath,
    type,
    major: majorOf(st.rdev),
    minor: minorOf(st.rdev),
    fileMode: Number(st.mode & 0o777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
  };
}

/** The device nodes for one CRI Device (a node, or a directory of nodes). Missing host path → InvalidArgument. */
export function devicesFor(hostPath: string, containerPath: string, permissions: string): { devices: LinuxDevice[]; rules: LinuxDeviceCgroup[] } {
  let st: BigIntStats;
  try {
    st = statSync(hostPath, { bigint: true });
  } catch (err) {
    throw new InvalidArgumentError(`device host path "${hostPath}" does not exist`, { cause: err });
  }
  const access = permissions === "" ? "rwm" : permissions;
  if (!/^[rwm]+$/.test(access)) throw new InvalidArgumentError(`device "${hostPath}": permissions "${permissions}" must be made of r, w, m`);
  const devices: LinuxDevice[] = [];
  if (st.isDirectory()) {
    for (const name of readdirSync(hostPath)) {
      try {
        const d = deviceOf(join(hostPath, name), join(containerPath, name), statSync(join(hostPath, name), { bigint: true }));
        if (d) devices.push(d);
      } catch {
        /* a node that vanished: skip */
      }
    }
  } else {
    const d = deviceOf(hostPath, containerPath, st);
    if (!d) throw new InvalidArgumentError(`device host path "${hostPath}" is not a device node`);
    devices.push(d);
  }
  const rules = devices.map((d) => ({ allow: true, type: d.type, major: d.major, minor: d.minor, access }));
  return { devices, rules };
}

/** Every device node under /dev (privileged containers get them all), skipping pseudo-terminals. */
export function hostDevices(root = "/dev"): LinuxDevice[] {
  const out: LinuxDevice[] = [];
  const walk = (dir: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const p = join(dir, name);
      if (p === "/dev/pts" || p === "/dev/shm" || p === "/dev/mqueue" || p === "/dev/console" || p === "/dev/ptmx") continue;
      let st: BigIntStats;
      try {
        st = statSync(p, { bigint: true });
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(p);
      else {
        const d = deviceOf(p, p, st);
        if (d && d.type !== "p") out.push(d);
      }
    }
  };
  walk(root);
  return out;
}

/** The device cgroup rules every container gets (deny all, then the standard nodes and ptys). */
export const DEFAULT_DEVICE_RULES: readonly LinuxDeviceCgroup[] = [
  { allow: false, access: "rwm" },
  { allow: true, type: "c", major: 1, minor: 3, access: "rwm" }, // null
  { allow: true, type: "c", major: 1, minor: 8, access: "rwm" }, // random
  { allow: true, type: "c", major: 1, minor: 7, access: "rwm" }, // full
  { allow: true, type: "c", major: 5, minor: 0, access: "rwm" }, // tty
  { allow: true, type: "c", major: 1, minor: 5, access: "rwm" }, // zero
  { allow: true, type: "c", major: 1, minor: 9, access: "rwm" }, // urandom
  { allow: true, type: "c", major: 5, minor: 1, access: "rwm" }, // console
  { allow: true, type: "c", major: 136, access: "rwm" }, // pts
  { allow: true, type: "c", major: 5, minor: 2, access: "rwm" }, // ptmx
  { allow: true, type: "c", major: 10, minor: 200, access: "rwm" }, // tun
];
