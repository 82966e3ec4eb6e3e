import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { UsageError } from "./context.js";

/** Map fields whose keys are user data (never renamed). */
const MAP_FIELDS = new Set(["labels", "annotations", "sysctls", "unified", "labelSelector", "label_selector"]);

function camel(k: string): string {
  return k.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** crictl-style config files use the proto's snake_case names; ts-proto's fromJSON wants camelCase. */
export function camelizeKeys(v: unknown, keepKeys = false): unknown {
  if (Array.isArray(v)) return v.map((x) => camelizeKeys(x));
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      out[keepKeys ? k : camel(k)] = keepKeys ? x : camelizeKeys(x, MAP_FIELDS.has(k));
    }
    return out;
  }
  return v;
}

/** Reads a JSON or YAML config file (crictl's pod/container config format) into a plain object with camelCase keys. */
export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${file} is not valid ${/\.ya?ml$/i.test(file) ? "YAML" : "JSON"}: ${(err as Error).message}`);
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new UsageError(`${file}: expected an object`);
  return camelizeKeys(doc) as Record<string, unknown>;
}
