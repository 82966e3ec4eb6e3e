// A private CNI bridge network for one test run: a unique bridge name and
// subnet, host-local IPAM data inside the test's temp dir, and cleanup of the
// bridge afterwards. Real plugins from /usr/lib/cni.

import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface TestNetwork {
  bridge: string;
  /** e.g. 10.213.47 (the /24 prefix). */
  prefix: string;
  subnet: string;
  /** host-local's data dir for this network. */
  ipamDir: string;
  /** IPs host-local currently has allocated. */
  allocated(): string[];
  /** The conflist document. */
  conflist(extraPlugins?: Array<Record<string, unknown>>): Record<string, unknown>;
  /** Writes the conflist into a CNI conf dir. */
  install(confDir: string, file?: string, extraPlugins?: Array<Record<string, unknown>>): void;
  /** Deletes the bridge. */
  cleanup(): void;
}

function usedPrefixes(): Set<string> {
  const out = execFileSync("ip", ["-4", "route", "show"], { encoding: "utf8" });
  const used = new Set<string>();
  for (const m of out.matchAll(/^(10\.\d+\.\d+)\./gm)) if (m[1]) used.add(m[1]);
  return used;
}

export function makeTestNetwork(baseDir: string): TestNetwork {
  const used = usedPrefixes();
  let prefix = "";
  for (let i = 0; i < 100 && !prefix; i++) {
    const p = `10.${200 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 250) + 1}`;
    if (!used.has(p)) prefix = p;
  }
  const bridge = `berth-e2e${Math.floor(Math.random() * 100000)}`;
  const ipamDir = join(baseDir, "ipam");
  const name = "berth-e2e";
  const subnet = `${prefix}.0/24`;
  const conflist = (extra: Array<Record<string, unknown>> = []): Record<string, unknown> => ({
    cniVersion: "1.0.0",
    name,
    plugins: [
      {
        type: "bridge",
        bridge,
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: { type: "host-local", dataDir: ipamDir, ranges: [[{ subnet }]], routes: [{ dst: "0.0.0.0/0" }] },
      },
      { type: "portmap", capabilities: { portMappings: true } },
      ...extra,
    ],
  });
  return {
    bridge,
    prefix,
    subnet,
    ipamDir,
    allocated() {
      const dir = join(ipamDir, name);
      if (!existsSync(dir)) return [];
      return readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
    },
    conflist,
    install(confDir, file = "10-berth-e2e.conflist", extra = []) {
      writeFileSync(join(confDir, file), JSON.stringify(conflist(extra)));
    },
    cleanup() {
      spawnSync("ip", ["link", "del", bridge], { stdio: "ignore" });
    },
  };
}

/** Mount points under dir (from this process's mountinfo). */
export function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
}
