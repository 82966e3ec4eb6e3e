import { readFileSync } from "node:fs";
import { MNT_DETACH, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, SyscallError, mountSyscall, umountSyscallAsync } from "./syscalls.js";

export interface MountInfo {
  id: number;
  parent: number;
  mountPoint: string;
  /** Optional fields, e.g. "shared:1", "master:2" (empty for private mounts). */
  optional: string[];
  fsType: string;
  source: string;
}

/** Undoes the octal escapes mountinfo uses for spaces, tabs, newlines and backslashes. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The mount table of this process (/proc/self/mountinfo). */
export function readMountInfo(): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    if (!line) continue;
    const f = line.split(" ");
    const sep = f.indexOf("-");
    if (sep < 6) continue;
    out.push({
      id: Number(f[0]),
      parent: Number(f[1]),
      mountPoint: unescape(f[4] ?? ""),
      optional: f.slice(6, sep),
      fsType: f[sep + 1] ?? "",
      source: unescape(f[sep + 2] ?? ""),
    });
  }
  return out;
}

/** True when something is mounted exactly at path. */
export function isMountPoint(path: string): boolean {
  return readMountInfo().some((m) => m.mountPoint === path);
}

/** Mount points at or below dir, deepest first (the order to unmount them in). */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith("/") ? dir : `${dir}/`;
  return readMountInfo()
    .map((m) => m.mountPoint)
    .filter((p) => p === dir || p.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
}

/** The mount that holds path (the longest mount point that is a prefix of it). */
export function mountOf(path: string): MountInfo | undefined {
  let best: MountInfo | undefined;
  for (const m of readMountInfo()) {
    const p = m.mountPoint === "/" ? "/" : `${m.mountPoint}/`;
    if ((path === m.mountPoint || path.startsWith(p)) && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

const FLAG_OPTIONS: Record<string, number> = { nosuid: MS_NOSUID, nodev: MS_NODEV, noexec: MS_NOEXEC };

/** mount(2) of a filesystem; flag options (nosuid, nodev, noexec) become flags, the rest is passed as data. */
export async function mount(source: string, target: string, fsType: string, options: string[], _signal?: AbortSignal): Promise<void> {
  let flags = 0;
  const data: string[] = [];
  for (const o of options) {
    const f = FLAG_OPTIONS[o];
    if (f !== undefined) flags |= f;
    else data.push(o);
  }
  mountSyscall(source, target, fsType, flags, data.length ? data.join(",") : null);
}

export async function bindMount(source: string, target: string, _signal?: AbortSignal): Promise<void> {
  mountSyscall(source, target, null, MS_BIND, null);
}

export async function makePrivate(target: string): Promise<void> {
  mountSyscall("none", target, null, MS_PRIVATE, null);
}

/**
 * Unmounts every mount at or below path, deepest first (stacked mounts
 * included); a path that is not mounted is fine (idempotent). Busy mounts are
 * detached lazily.
 */
export async function unmountAll(path: string): Promise<void> {
  for (const p of mountsUnder(path)) {
    try {
      await umountSyscallAsync(p);
    } catch (err) {
      if (err instanceof SyscallError && err.code === "EBUSY") await umountSyscallAsync(p, MNT_DETACH);
      else throw err;
    }
  }
}
