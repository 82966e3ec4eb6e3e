// What a berthd run leaves on the host, by kind: mounts under its dirs, pinned
// namespace files, bundles, veths on the test bridge, host-local IPs, portmap's
// iptables rules (found by the run's unique CNI network name), runc containers,
// conmon processes, snapshot dirs, ingest files and content blobs.

import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { DaemonDirs } from "../../test-e2e/harness/daemon.js";
import type { World } from "./env.js";

export const LEAK_KINDS = [
  "mount-overlay",
  "mount-shm",
  "mount-nsfs",
  "mount-other",
  "netns-file",
  "sandbox-dir",
  "bundle",
  "veth",
  "ip",
  "iptables-rule",
  "runc-container",
  "conmon",
  "snapshot-dir",
  "ingest-file",
  "content-blob",
] as const;
export type LeakKind = (typeof LEAK_KINDS)[number];
export type Leaks = Record<LeakKind, string[]>;

export function emptyLeaks(): Leaks {
  return Object.fromEntries(LEAK_KINDS.map((k) => [k, [] as string[]])) as unknown as Leaks;
}

export function leakCount(l: Leaks): number {
  return LEAK_KINDS.reduce((n, k) => n + l[k].length, 0);
}

export function addLeaks(into: Record<LeakKind, number>, l: Leaks): void {
  for (const k of LEAK_KINDS) into[k] += l[k].length;
}

/** Mounts under `dir` with their filesystem type, from this process's mountinfo. */
export function mountsWithType(dir: string): Array<{ path: string; fstype: string }> {
  const out: Array<{ path: string; fstype: string }> = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    if (!line) continue;
    const fields = line.split(" ");
    const path = (fields[4] ?? "").replace(/\\040/g, " ");
    if (path !== dir && !path.startsWith(`${dir}/`)) continue;
    const sep = fields.indexOf("-");
    out.push({ path, fstype: sep >= 0 ? (fields[sep + 1] ?? "") : "" });
  }
  return out;
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** runc containers in the daemon's runtime roots (<state>/runtime/<handler>). */
export function runcContainers(dirs: DaemonDirs): string[] {
  const out: string[] = [];
  for (const handler of list(join(dirs.state, "runtime"))) {
    const root = join(dirs.state, "runtime", handler);
    const r = spawnSync("runc", ["--root", root, "list", "--format", "json"], { encoding: "utf8", timeout: 20_000 });
    if (r.status !== 0) {
      out.push(`(runc list in ${handler} failed: ${r.stderr.trim()})`);
      continue;
    }
    const parsed = JSON.parse(r.stdout.trim() || "null") as Array<{ id: string; status: string }> | null;
    out.push(...(parsed ?? []).map((c) => c.id));
  }
  return out;
}

/** conmon processes of this daemon (their `-c` container id), found through /proc. */
export function conmons(dirs: DaemonDirs): Array<{ pid: number; id: string }> {
  const out: Array<{ pid: number; id: string }> = [];
  for (const p of list("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0");
    } catch {
      continue;
    }
    if (!(argv[0] ?? "").endsWith("conmon")) continue;
    if (!argv.some((a) => a.startsWith(dirs.state))) continue;
    const i = argv.indexOf("-c");
    out.push({ pid: Number(p), id: i >= 0 ? (argv[i + 1] ?? "?") : "?" });
  }
  return out;
}

/** iptables nat rules that name this run's CNI network (portmap writes it into its comments). */
export function iptablesRules(netName: string): string[] {
  const r = spawnSync("iptables-save", ["-t", "nat"], { encoding: "utf8", timeout: 20_000 });
  if (r.status !== 0) return [];
  return r.stdout.split("\n").filter((l) => l.includes(netName));
}

export function veths(bridge: string): string[] {
  const r = spawnSync("ip", ["-o", "link", "show", "master", bridge], { encoding: "utf8", timeout: 10_000 });
  if (r.status !== 0) return [];
  return r.stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => (l.split(":")[1] ?? "").trim());
}

/** Everything on the host that belongs to the daemon on `dirs` (call after its owners were removed and GC ran). */
export function scanLeaks(world: World, dirs: DaemonDirs): Leaks {
  const l = emptyLeaks();
  for (const m of mountsWithType(dirs.base)) {
    if (m.fstype === "overlay") l["mount-overlay"].push(m.path);
    else if (m.fstype === "nsfs") l["mount-nsfs"].push(m.path);
    else if (m.fstype === "tmpfs" && m.path.endsWith("/shm")) l["mount-shm"].push(m.path);
    else l["mount-other"].push(`${m.path} (${m.fstype})`);
  }
  const sandboxes = join(dirs.state, "sandboxes");
  for (const id of list(sandboxes)) {
    l["sandbox-dir"].push(id);
    for (const f of list(join(sandboxes, id))) if (["net", "ipc", "uts", "pid"].includes(f)) l["netns-file"].push(`${id}/${f}`);
  }
  l.bundle.push(...list(join(dirs.state, "containers")));
  l.veth.push(...veths(world.net.bridge));
  l.ip.push(...world.net.allocated());
  l["iptables-rule"].push(...iptablesRules(world.netName));
  l["runc-container"].push(...runcContainers(dirs));
  l.conmon.push(...conmons(dirs).map((c) => `${c.pid}:${c.id}`));
  l["snapshot-dir"].push(...list(join(dirs.root, "snapshots")).filter((f) => /^\d+$/.test(f)));
  l["ingest-file"].push(...list(join(dirs.root, "content", "ingest")));
  l["content-blob"].push(...list(join(dirs.root, "content", "blobs", "sha256")));
  return l;
}

export function formatLeaks(l: Leaks): string {
  const parts = LEAK_KINDS.filter((k) => l[k].length > 0).map((k) => `${k}=${l[k].length} [${l[k].slice(0, 3).join(", ")}${l[k].length > 3 ? ", …" : ""}]`);
  return parts.length ? parts.join("; ") : "none";
}
