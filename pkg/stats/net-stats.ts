import { readFileSync, statSync } from "node:fs";
import { run } from "../sys/index.js";
import { parseNetDev, type InterfaceCounters } from "./parse.js";

/** The inode of a network namespace file (a pinned netns or /proc/<pid>/ns/net), or undefined. */
export function netnsInode(file: string): bigint | undefined {
  try {
    return statSync(file, { bigint: true }).ino;
  } catch {
    return undefined;
  }
}

/**
 * Interface counters of the network namespace `netnsPath`, read through /proc/<pid>/net/dev of a
 * process that lives in it (one small read, no exec). Returns undefined when none of `pids` is in
 * that namespace (the pod has no running process).
 */
export function readNetDevViaPids(netnsPath: string, pids: readonly number[]): InterfaceCounters[] | undefined {
  const want = netnsInode(netnsPath);
  if (want === undefined) return undefined;
  for (const pid of pids) {
    if (netnsInode(`/proc/${pid}/ns/net`) !== want) continue;
    try {
      return parseNetDev(readFileSync(`/proc/${pid}/net/dev`, "utf8"));
    } catch {
      continue;
    }
  }
  return undefined;
}

/**
 * Interface counters of a network namespace with no process in it: enters the namespace file with
 * nsenter and reads /proc/net/dev there (an exec; the collector does this in the background only).
 */
export async function readNetDevViaNsenter(netnsPath: string, signal?: AbortSignal): Promise<InterfaceCounters[] | undefined> {
  const res = await run("nsenter", [`--net=${netnsPath}`, "cat", "/proc/net/dev"], {
    timeoutMs: 5000,
    allowFailure: true,
    ...(signal ? { signal } : {}),
  });
  if (res.exitCode !== 0) return undefined;
  return parseNetDev(res.stdout);
}
