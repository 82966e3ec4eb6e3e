import { readFileSync } from "node:fs";
import { run } from "./exec.js";

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

export async function mount(source: string, target: string, fsType: string, options: string[], signal?: AbortSignal): Promise<void> {
  const args = ["-t", fsType];
  if (options.length) args.push("-o", options.join(","));
  await run("mount", [...args, source, target], { timeoutMs: 30_000, ...(signal ? { signal } : {}) });
}

export async function bindMount(source: string, target: string, signal?: AbortSignal): Promise<void> {
  await run("mount", ["--bind", source, target], { timeoutMs: 30_000, ...(signal ? { signal } : {}) });
}

export async function makePrivate(target: string): Promise<void> {
  await run("mount", ["--make-private", target], { timeoutMs: 30_000 });
}

/**
 * Unmounts every mount at or below path, deepest first; a path that is not
 * mounted is fine (idempotent). Busy mounts are detached lazily.
 */
export async function unmountAll(path: string): Promise<void> {
  for (const p of mountsUnder(path)) {
    const r = await run("umount", [p], { timeoutMs: 30_000, allowFailure: true });
    if (r.exitCode !== 0 && isMountPoint(p)) await run("umount", ["-l", p], { timeoutMs: 30_000 });
  }
}
