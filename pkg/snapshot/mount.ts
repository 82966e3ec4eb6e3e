import { join } from "node:path";
import { InternalError, InvalidArgumentError } from "../errdefs/index.js";
import {
  MNT_DETACH,
  MS_BIND,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_RDONLY,
  MS_REC,
  MS_REMOUNT,
  mountSyscall,
  run,
  umountSyscallAsync,
} from "../sys/index.js";

/** One mount, as containerd describes them: mount(8)-style type, source and options. */
export interface Mount {
  type: string;
  source: string;
  /** Sub-path under the target passed to mountAll; the target itself when absent. */
  target?: string;
  options: string[];
}

/** The kernel copies at most one page of mount data. */
const MAX_MOUNT_DATA = 4095;

const FLAGS: Record<string, { set: number } | { clear: number }> = {
  ro: { set: MS_RDONLY },
  rw: { clear: MS_RDONLY },
  nosuid: { set: MS_NOSUID },
  suid: { clear: MS_NOSUID },
  nodev: { set: MS_NODEV },
  dev: { clear: MS_NODEV },
  noexec: { set: MS_NOEXEC },
  exec: { clear: MS_NOEXEC },
  bind: { set: MS_BIND },
  rbind: { set: MS_BIND | MS_REC },
};

function parseOptions(options: readonly string[]): { flags: number; data: string[] } {
  let flags = 0;
  const data: string[] = [];
  for (const o of options) {
    const f = FLAGS[o];
    if (f === undefined) data.push(o);
    else if ("set" in f) flags |= f.set;
    else flags &= ~f.clear;
  }
  return { flags, data };
}

function describe(m: Mount, target: string): string {
  const opts = m.options.join(",");
  return `mount ${m.type} ${m.source} on ${target} (${opts.length > 300 ? `${opts.slice(0, 300)}…` : opts})`;
}

/**
 * An overlay whose options do not fit in a page: the lowerdirs are rewritten
 * relative to their common parent directory and mount(8) runs there as its
 * working directory (the kernel resolves relative lowerdirs from the cwd).
 */
async function mountLongOverlay(m: Mount, target: string, flags: number, data: string[]): Promise<void> {
  const lowerIdx = data.findIndex((o) => o.startsWith("lowerdir="));
  const lowerOpt = data[lowerIdx];
  if (lowerOpt === undefined) throw new InvalidArgumentError(`${describe(m, target)}: options longer than ${MAX_MOUNT_DATA} bytes and no lowerdir to shorten`);
  const lowers = lowerOpt.slice("lowerdir=".length).split(":");
  let prefix = lowers[0]?.split("/").slice(0, -1) ?? [];
  for (const l of lowers) {
    const parts = l.split("/");
    let i = 0;
    while (i < prefix.length && i < parts.length - 1 && prefix[i] === parts[i]) i++;
    prefix = prefix.slice(0, i);
  }
  const cwd = prefix.join("/") || "/";
  if (!cwd.startsWith("/")) throw new InvalidArgumentError(`${describe(m, target)}: lowerdirs must be absolute to be shortened`);
  const strip = cwd === "/" ? 1 : cwd.length + 1;
  const rel = [...data];
  rel[lowerIdx] = `lowerdir=${lowers.map((l) => l.slice(strip)).join(":")}`;
  const relData = rel.join(",");
  if (relData.length > MAX_MOUNT_DATA) {
    throw new InvalidArgumentError(`${describe(m, target)}: ${lowers.length} layers need ${relData.length} bytes of mount options even with relative paths (limit ${MAX_MOUNT_DATA})`);
  }
  const args = ["-t", m.type, "-o", [...(flags & MS_RDONLY ? ["ro"] : []), relData].join(","), m.source, target];
  try {
    await run("mount", ["--no-mtab", ...args], { cwd, timeoutMs: 60_000 });
  } catch (err) {
    throw new InternalError(`${describe(m, target)} failed: ${(err as Error).message}`, { cause: err });
  }
}

/** Mounts each of `mounts` in order at `target` (or at their sub-path under it). */
export async function mountAll(mounts: readonly Mount[], target: string): Promise<void> {
  for (const m of mounts) {
    const dest = m.target !== undefined && m.target !== "" && m.target !== "/" ? join(target, m.target) : target;
    const { flags, data } = parseOptions(m.options);
    try {
      if (m.type === "bind" || flags & MS_BIND) {
        mountSyscall(m.source, dest, null, flags & (MS_BIND | MS_REC) || MS_BIND, null);
        const extra = flags & ~(MS_BIND | MS_REC);
        if (extra !== 0) mountSyscall("", dest, null, MS_REMOUNT | MS_BIND | extra, null);
        continue;
      }
      const joined = data.join(",");
      if (joined.length > MAX_MOUNT_DATA) {
        await mountLongOverlay(m, dest, flags, data);
        continue;
      }
      mountSyscall(m.source, dest, m.type, flags, joined === "" ? null : joined);
    } catch (err) {
      if (err instanceof InternalError || err instanceof InvalidArgumentError) throw err;
      throw new InternalError(`${describe(m, dest)} failed: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** Detaches every mount stacked on `target`; a target that is not mounted (or missing) is fine. */
export async function unmountAll(target: string): Promise<void> {
  for (let i = 0; i < 64; i++) {
    try {
      if (!(await umountSyscallAsync(target, MNT_DETACH))) return;
    } catch (err) {
      throw new InternalError(`unmount ${target} failed: ${(err as Error).message}`, { cause: err });
    }
  }
  throw new InternalError(`unmount ${target}: still mounted after 64 detaches`);
}
