import { lstat, opendir } from "node:fs/promises";

export interface DiskUsage {
  /** Bytes allocated on disk (st_blocks × 512), each hard-linked inode once. */
  usedBytes: bigint;
  /** Inodes under the directory, itself included. */
  inodesUsed: bigint;
  /** True when the walk stopped at maxEntries (figures are then a lower bound). */
  truncated: boolean;
}

export interface DiskUsageOptions {
  /** Stop after this many entries (default 1,000,000). */
  maxEntries?: number;
  signal?: AbortSignal;
}

/**
 * Walks a directory tree (a container's overlay upper dir) and sums disk usage and inodes, like
 * `du -s` and `find | wc -l`. Asynchronous (the event loop stays free), bounded by maxEntries, never
 * follows symlinks or crosses into other entries than directories. Entries that vanish mid-walk are
 * skipped. Returns undefined when the directory does not exist.
 */
export async function diskUsage(dir: string, opts: DiskUsageOptions = {}): Promise<DiskUsage | undefined> {
  const max = opts.maxEntries ?? 1_000_000;
  let root;
  try {
    root = await lstat(dir, { bigint: true });
  } catch {
    return undefined;
  }
  let bytes = root.blocks * 512n;
  let inodes = 1n;
  let entries = 0;
  let truncated = false;
  const seen = new Set<string>();
  const stack: string[] = root.isDirectory() ? [dir] : [];
  while (stack.length > 0 && !truncated) {
    opts.signal?.throwIfAborted();
    const d = stack.pop() as string;
    let handle;
    try {
      handle = await opendir(d, { bufferSize: 128 });
    } catch {
      continue;
    }
    try {
      for await (const ent of handle) {
        if (++entries > max) {
          truncated = true;
          break;
        }
        const p = `${d}/${ent.name}`;
        let st;
        try {
          st = await lstat(p, { bigint: true });
        } catch {
          continue;
        }
        if (st.nlink > 1n && !st.isDirectory()) {
          const key = `${st.dev}:${st.ino}`;
          if (seen.has(key)) continue;
          seen.add(key);
        }
        bytes += st.blocks * 512n;
        inodes++;
        if (st.isDirectory()) stack.push(p);
      }
    } catch {
      // The directory vanished or became unreadable mid-walk: keep what was counted.
    }
  }
  return { usedBytes: bytes, inodesUsed: inodes, truncated };
}
