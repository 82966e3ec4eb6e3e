import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { FailedPreconditionError } from "../errdefs/index.js";
import { logger } from "../log/index.js";
import { writeFileReplace, isMountPoint } from "../sys/index.js";
import { findNetworkConfig, type NetworkConfigList, type NetworkConfigResult } from "./config.js";
import { findPlugin, invokePlugin, type CniCommand, type CniInvocation } from "./plugin.js";

export interface CniPortMapping {
  hostPort: number;
  containerPort: number;
  /** Lowercase: tcp, udp, sctp. */
  protocol: string;
  hostIP: string;
}

export interface CniBandwidth {
  ingressRate?: number;
  ingressBurst?: number;
  egressRate?: number;
  egressBurst?: number;
}

/** Everything about a pod that its network setup needs. */
export interface PodNetworkRequest {
  /** The sandbox id (CNI_CONTAINERID and K8S_POD_INFRA_CONTAINER_ID). */
  id: string;
  name: string;
  namespace: string;
  uid: string;
  netns: string;
  portMappings: CniPortMapping[];
  bandwidth?: CniBandwidth;
}

export interface PodNetworkStatus {
  /** Pod IPs from the result, IPv4 first; the first is the primary. */
  ips: string[];
  /** Which network (conflist name) the pod is attached to. */
  network: string;
  result: Record<string, unknown> | undefined;
}

/** What is cached on disk per pod: enough to undo the attachment even if the config dir changed. */
interface CacheEntry {
  kind: "berth-cni-cache/v1";
  containerId: string;
  ifName: string;
  netns: string;
  network: Record<string, unknown>;
  args: Array<[string, string]>;
  capabilityArgs: Record<string, unknown>;
  /** Absent while ADD runs (a crash then still lets DEL undo partial work). */
  result?: Record<string, unknown>;
}

export interface CniOptions {
  confDir: string;
  binDirs: readonly string[];
  cacheDir: string;
  timeoutMs: number;
}

const IFNAME = "eth0";

/** cniVersion a >= b (major.minor.patch). */
function versionAtLeast(a: string, b: string): boolean {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

/** The IPs of a CNI result (0.3+ `ips`, or 0.1/0.2 `ip4`/`ip6`), IPv4 first. */
export function resultIps(result: Record<string, unknown> | undefined): string[] {
  if (!result) return [];
  const out: string[] = [];
  const add = (cidr: unknown): void => {
    if (typeof cidr !== "string") return;
    const ip = cidr.split("/")[0] ?? "";
    if (isIP(ip) && !out.includes(ip)) out.push(ip);
  };
  if (Array.isArray(result["ips"])) for (const e of result["ips"] as Array<Record<string, unknown>>) add(e?.["address"]);
  for (const k of ["ip4", "ip6"]) {
    const v = result[k] as Record<string, unknown> | undefined;
    if (v) add(v["ip"]);
  }
  return [...out.filter((ip) => isIP(ip) === 4), ...out.filter((ip) => isIP(ip) === 6)];
}

/**
 * Attaches pods to the CNI network and detaches them: ADD/DEL/CHECK over the
 * plugin chain of the first usable config, with the ADD result cached on disk.
 */
export class CniManager {
  constructor(readonly opts: CniOptions) {
    mkdirSync(opts.cacheDir, { recursive: true, mode: 0o700 });
  }

  /** The current network config (re-read each call: a config added later is noticed). */
  config(): NetworkConfigResult {
    return findNetworkConfig(this.opts.confDir);
  }

  #cacheFile(id: string): string {
    return join(this.opts.cacheDir, `${id}.json`);
  }

  #readCache(id: string): CacheEntry | undefined {
    const file = this.#cacheFile(id);
    if (!existsSync(file)) return undefined;
    try {
      return JSON.parse(readFileSync(file, "utf8")) as CacheEntry;
    } catch (err) {
      logger().warn({ err, file }, "unreadable CNI cache entry; treating as absent");
      return undefined;
    }
  }

  /** Ids that have a cache entry (attached, or an ADD that may have been interrupted). */
  cachedIds(): string[] {
    try {
      return readdirSync(this.opts.cacheDir)
        .filter((n) => n.endsWith(".json") && !n.startsWith("."))
        .map((n) => n.slice(0, -5));
    } catch {
      return [];
    }
  }

  /** The cached IPs of a pod (empty when it has no cached result). */
  cachedIps(id: string): string[] {
    return resultIps(this.#readCache(id)?.result);
  }

  #invocation(command: CniCommand, entry: CacheEntry, signal: AbortSignal | undefined): CniInvocation {
    return {
      command,
      containerId: entry.containerId,
      netns: entry.netns,
      ifName: entry.ifName,
      args: entry.args,
      binDirs: this.opts.binDirs,
      timeoutMs: this.opts.timeoutMs,
      ...(signal ? { signal } : {}),
    };
  }

  /** The stdin of one plugin: its own config plus the list's name/version, runtimeConfig and prevResult. */
  #netconf(entry: CacheEntry, plugin: Record<string, unknown>, prevResult: Record<string, unknown> | undefined): Record<string, unknown> {
    const conf: Record<string, unknown> = { ...plugin, name: entry.network["name"], cniVersion: entry.network["cniVersion"] ?? "0.4.0" };
    const caps = plugin["capabilities"];
    const runtimeConfig: Record<string, unknown> = {};
    if (caps && typeof caps === "object") {
      for (const [cap, on] of Object.entries(caps as Record<string, unknown>)) {
        if (on === true && entry.capabilityArgs[cap] !== undefined) runtimeConfig[cap] = entry.capabilityArgs[cap];
      }
    }
    if (Object.keys(runtimeConfig).length > 0) conf["runtimeConfig"] = runtimeConfig;
    else delete conf["runtimeConfig"];
    if (prevResult) conf["prevResult"] = prevResult;
    return conf;
  }

  #plugins(entry: CacheEntry): Array<Record<string, unknown> & { type: string }> {
    return (entry.network["plugins"] as Array<Record<string, unknown> & { type: string }>) ?? [];
  }

  /**
   * CNI ADD of the pod on the first usable network. The cache entry is written
   * before the first plugin runs, so `teardown` can always undo a partial ADD:
   * callers register `teardown(id)` as the undo before calling this.
   */
  async setup(req: PodNetworkRequest, signal?: AbortSignal): Promise<PodNetworkStatus> {
    const found = this.config();
    if (!found.ok) throw new FailedPreconditionError(`cannot set up the network of pod "${req.id}": ${found.reason}`);
    const net: NetworkConfigList = found.config;
    const entry = this.#entry(req, net);
    // The cache is replaced atomically but not fsynced (two fsyncs cost tens of ms per ADD on a busy disk):
    // it survives a crash of berthd, which is what it is for. A power loss also ends the namespace, and the
    // pod records (SQLite, synchronous=NORMAL) are not durable to the last write either; recovery DELs a pod
    // caught "creating" with the current config when its entry is gone (CNI allows DEL without prevResult).
    writeFileReplace(this.#cacheFile(req.id), JSON.stringify(entry), 0o600);
    let prev: Record<string, unknown> | undefined;
    for (const plugin of this.#plugins(entry)) {
      const out = await invokePlugin(plugin.type, this.#netconf(entry, plugin, prev), this.#invocation("ADD", entry, signal));
      if (out) prev = out;
    }
    entry.result = prev ?? {};
    writeFileReplace(this.#cacheFile(req.id), JSON.stringify(entry), 0o600);
    return { ips: resultIps(prev), network: net.name, result: prev };
  }

  #entry(req: PodNetworkRequest, net: NetworkConfigList): CacheEntry {
    const capabilityArgs: Record<string, unknown> = {};
    if (req.portMappings.length > 0) capabilityArgs["portMappings"] = req.portMappings;
    if (req.bandwidth && Object.keys(req.bandwidth).length > 0) capabilityArgs["bandwidth"] = req.bandwidth;
    const entry: CacheEntry = {
      kind: "berth-cni-cache/v1",
      containerId: req.id,
      ifName: IFNAME,
      netns: req.netns,
      network: net.raw,
      args: [
        ["IgnoreUnknown", "1"],
        ["K8S_POD_NAMESPACE", req.namespace],
        ["K8S_POD_NAME", req.name],
        ["K8S_POD_INFRA_CONTAINER_ID", req.id],
        ["K8S_POD_UID", req.uid],
      ],
      capabilityArgs,
    };
    return entry;
  }

  /**
   * CNI DEL with the cached config and result (plugins in reverse order). No
   * cache entry means nothing is attached: a no-op, so repeating it is safe.
   * The entry is removed only after every plugin succeeded.
   */
  async teardown(id: string, signal?: AbortSignal, fallback?: PodNetworkRequest): Promise<void> {
    let entry = this.#readCache(id);
    if (!entry && fallback) {
      // No cache (lost state dir): DEL with the current config and no prevResult, as CNI allows.
      const found = this.config();
      if (found.ok) entry = this.#entry(fallback, found.config);
    }
    if (!entry) {
      rmSync(this.#cacheFile(id), { force: true });
      return;
    }
    // A namespace that is gone (or a pin file no longer mounted) is passed as "", as CNI allows for DEL.
    if (entry.netns && (!existsSync(entry.netns) || (!entry.netns.startsWith("/proc/") && !isMountPoint(entry.netns)))) entry.netns = "";
    const withPrev = entry.result !== undefined && versionAtLeast(String(entry.network["cniVersion"] ?? "0.4.0"), "0.4.0");
    // Every plugin gets its DEL even when an earlier one fails (so one broken plugin does not strand the
    // others' allocations); a plugin whose binary is gone is skipped. Failures keep the entry for a retry.
    const failures: Error[] = [];
    for (const plugin of [...this.#plugins(entry)].reverse()) {
      try {
        findPlugin(plugin.type, this.opts.binDirs);
      } catch (err) {
        logger().warn({ podSandboxId: id, plugin: plugin.type, err: (err as Error).message }, "CNI DEL: plugin binary missing; skipping it");
        continue;
      }
      try {
        await invokePlugin(plugin.type, this.#netconf(entry, plugin, withPrev ? entry.result : undefined), this.#invocation("DEL", entry, signal));
      } catch (err) {
        failures.push(err as Error);
      }
    }
    if (failures.length) throw failures[0];
    // Not fsynced: an entry a power loss brings back gets one more (idempotent) DEL at the next start.
    rmSync(this.#cacheFile(id), { force: true });
  }

  /** CNI CHECK of an attached pod (CNI 0.4.0+ networks; older ones are not checked). */
  async check(id: string, signal?: AbortSignal): Promise<void> {
    const entry = this.#readCache(id);
    if (!entry?.result) throw new FailedPreconditionError(`pod "${id}" has no network attachment to check`);
    if (!versionAtLeast(String(entry.network["cniVersion"] ?? "0.4.0"), "0.4.0")) return;
    for (const plugin of this.#plugins(entry)) {
      await invokePlugin(plugin.type, this.#netconf(entry, plugin, entry.result), this.#invocation("CHECK", entry, signal));
    }
  }
}
