import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface NetworkConfigList {
  /** The file the network came from. */
  file: string;
  name: string;
  cniVersion: string;
  plugins: Array<Record<string, unknown> & { type: string }>;
  /** The whole parsed document, as plugins receive it (a .conf is wrapped into a list). */
  raw: Record<string, unknown>;
}

export type NetworkConfigResult = { ok: true; config: NetworkConfigList } | { ok: false; reason: string };

const EXTENSIONS = [".conflist", ".conf", ".json"];

/**
 * Finds the network configuration the way kubelet-era runtimes do: the first
 * file in lexical order under confDir with a known extension that parses into
 * a usable network (a .conflist, or a single-plugin .conf/.json).
 */
export function findNetworkConfig(confDir: string): NetworkConfigResult {
  let names: string[];
  try {
    names = readdirSync(confDir).filter((n) => EXTENSIONS.some((e) => n.endsWith(e))).sort();
  } catch (err) {
    return { ok: false, reason: `cannot read CNI config dir ${confDir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
  if (names.length === 0) return { ok: false, reason: `no CNI network config found in ${confDir}` };
  const problems: string[] = [];
  for (const name of names) {
    const file = join(confDir, name);
    try {
      const doc = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
      const config = toList(file, doc);
      return { ok: true, config };
    } catch (err) {
      problems.push(`${file}: ${(err as Error).message}`);
    }
  }
  return { ok: false, reason: `no usable CNI network config in ${confDir}: ${problems.join("; ")}` };
}

function toList(file: string, doc: Record<string, unknown>): NetworkConfigList {
  if (typeof doc !== "object" || doc === null) throw new Error("not a JSON object");
  const name = doc["name"];
  if (typeof name !== "string" || name === "") throw new Error('missing "name"');
  const cniVersion = typeof doc["cniVersion"] === "string" ? doc["cniVersion"] : "0.4.0";
  if (Array.isArray(doc["plugins"])) {
    const plugins = doc["plugins"] as unknown[];
    if (plugins.length === 0) throw new Error('"plugins" is empty');
    for (const [i, p] of plugins.entries()) {
      if (typeof p !== "object" || p === null || typeof (p as Record<string, unknown>)["type"] !== "string") {
        throw new Error(`plugins[${i}] has no "type"`);
      }
    }
    return { file, name, cniVersion, plugins: plugins as NetworkConfigList["plugins"], raw: doc };
  }
  if (typeof doc["type"] !== "string") throw new Error('neither "plugins" nor "type"');
  const { name: _n, cniVersion: _v, ...plugin } = doc;
  const raw = { cniVersion, name, plugins: [plugin] };
  return { file, name, cniVersion, plugins: raw.plugins as NetworkConfigList["plugins"], raw };
}
