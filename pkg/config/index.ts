import { readFileSync } from "node:fs";
import { parse as parseToml, TomlError } from "smol-toml";
import { schema, type Node } from "./schema.js";
import type { Config } from "./types.js";

export type { Config, RuntimeHandlerConfig, RegistryConfig, SloConfig, SloObjectiveConfig } from "./types.js";
export { schema } from "./schema.js";

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly key: string,
    readonly reason: string,
  ) {
    super(`${file}: ${key ? `key "${key}": ` : ""}${reason}`);
    this.name = "ConfigError";
  }
}

function defaultsOf(fields: Record<string, Node>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, node] of Object.entries(fields)) {
    if (node.kind === "table") out[k] = defaultsOf(node.fields);
    else if (node.kind === "map") out[k] = structuredClone(node.default);
    else out[k] = structuredClone(node.default);
  }
  return out;
}

export function defaultConfig(): Config {
  return defaultsOf(schema) as unknown as Config;
}

function typeName(v: unknown): string {
  if (Array.isArray(v)) return "array";
  if (v instanceof Date) return "date";
  return typeof v;
}

/** Merges `input` into `target` per the schema; the first problem is thrown naming file and dotted key. */
function merge(file: string, prefix: string, fields: Record<string, Node>, input: Record<string, unknown>, target: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(input)) {
    const key = prefix ? `${prefix}.${k}` : k;
    const node = fields[k];
    if (!node) throw new ConfigError(file, key, "unknown key");
    switch (node.kind) {
      case "table":
        if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ConfigError(file, key, `expected a table, got ${typeName(v)}`);
        merge(file, key, node.fields, v as Record<string, unknown>, target[k] as Record<string, unknown>);
        break;
      case "map": {
        if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ConfigError(file, key, `expected a table, got ${typeName(v)}`);
        const dest = target[k] as Record<string, Record<string, unknown>>;
        for (const [name, entry] of Object.entries(v as Record<string, unknown>)) {
          const entryKey = `${key}.${JSON.stringify(name).slice(1, -1).includes(".") ? JSON.stringify(name) : name}`;
          if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw new ConfigError(file, entryKey, `expected a table, got ${typeName(entry)}`);
          const base = dest[name] ?? defaultsOf(node.of);
          merge(file, entryKey, node.of, entry as Record<string, unknown>, base);
          dest[name] = base;
        }
        break;
      }
      case "string":
        if (typeof v !== "string") throw new ConfigError(file, key, `expected a string, got ${typeName(v)}`);
        if (node.check) {
          const why = node.check(v);
          if (why) throw new ConfigError(file, key, `${JSON.stringify(v)} ${why}`);
        }
        target[k] = v;
        break;
      case "enum":
        if (typeof v !== "string" || !node.values.includes(v)) {
          throw new ConfigError(file, key, `${JSON.stringify(v)} is not one of ${node.values.map((x) => JSON.stringify(x)).join(", ")}`);
        }
        target[k] = v;
        break;
      case "int": {
        const n = typeof v === "bigint" ? Number(v) : v;
        if (typeof n !== "number" || !Number.isInteger(n)) throw new ConfigError(file, key, `expected an integer, got ${typeName(v)}`);
        if (node.min !== undefined && n < node.min) throw new ConfigError(file, key, `${n} is below the minimum ${node.min}`);
        if (node.max !== undefined && n > node.max) throw new ConfigError(file, key, `${n} is above the maximum ${node.max}`);
        target[k] = n;
        break;
      }
      case "number": {
        const n = typeof v === "bigint" ? Number(v) : v;
        if (typeof n !== "number" || !Number.isFinite(n)) throw new ConfigError(file, key, `expected a number, got ${typeName(v)}`);
        if (n < node.min) throw new ConfigError(file, key, `${n} is below the minimum ${node.min}`);
        if (n > node.max) throw new ConfigError(file, key, `${n} is above the maximum ${node.max}`);
        target[k] = n;
        break;
      }
      case "bool":
        if (typeof v !== "boolean") throw new ConfigError(file, key, `expected true or false, got ${typeName(v)}`);
        target[k] = v;
        break;
      case "strings":
        if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw new ConfigError(file, key, "expected an array of strings");
        target[k] = [...v];
        break;
    }
  }
}

/** Parses TOML text into a full config (defaults + overrides); `file` names the source in errors. */
export function parseConfig(text: string, file = "<config>"): Config {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) throw new ConfigError(file, "", `invalid TOML at line ${err.line}, column ${err.column}: ${err.message.split("\n")[0]}`);
    throw new ConfigError(file, "", `invalid TOML: ${String(err)}`);
  }
  const cfg = defaultConfig() as unknown as Record<string, unknown>;
  merge(file, "", schema, doc, cfg);
  const out = cfg as unknown as Config;
  if (!out.runtime.handlers[out.runtime.default_handler]) {
    throw new ConfigError(file, "runtime.default_handler", `handler "${out.runtime.default_handler}" is not defined in runtime.handlers`);
  }
  for (const [name, h] of Object.entries(out.runtime.handlers)) {
    if (!h.path) throw new ConfigError(file, `runtime.handlers.${name}.path`, "is required");
  }
  for (const [name, o] of Object.entries(out.slo)) {
    if (typeof o === "object" && o.window_days > out.slo.retention_days) {
      throw new ConfigError(file, `slo.${name}.window_days`, `${o.window_days} days is longer than slo.retention_days (${out.slo.retention_days}): the window's buckets would be pruned`);
    }
  }
  return out;
}

/**
 * Loads the config file. A missing file is fine only when `required` is false
 * (the default path); a file given explicitly must exist and be readable.
 */
export function loadConfig(file: string, required: boolean): Config {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && !required) return defaultConfig();
    throw new ConfigError(file, "", `cannot read config file: ${(err as Error).message}`);
  }
  return parseConfig(text, file);
}

function tomlValue(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(", ")}]`;
  return String(v);
}

function renderTable(out: string[], path: string, fields: Record<string, Node>, values: Record<string, unknown>): void {
  const subtables: Array<() => void> = [];
  for (const [k, node] of Object.entries(fields)) {
    const full = path ? `${path}.${k}` : k;
    if (node.kind === "table") {
      subtables.push(() => {
        out.push("", `[${full}]`);
        renderTable(out, full, node.fields, values[k] as Record<string, unknown>);
      });
    } else if (node.kind === "map") {
      subtables.push(() => {
        const entries = values[k] as Record<string, Record<string, unknown>>;
        out.push("", `# ${node.doc}`);
        if (Object.keys(entries).length === 0) {
          const example = Object.keys(node.of)[0] ?? "";
          out.push(`# [${full}."NAME"]`, `# ${example} = ...`);
        }
        for (const [name, entry] of Object.entries(entries)) {
          const key = /^[A-Za-z0-9_-]+$/.test(name) ? name : JSON.stringify(name);
          out.push(`[${full}.${key}]`);
          renderTable(out, `${full}.${key}`, node.of, entry);
        }
      });
    } else {
      out.push(`# ${node.doc}${node.kind === "enum" ? ` (${node.values.join(" | ")})` : ""}`);
      out.push(`${k} = ${tomlValue(values[k])}`);
    }
  }
  for (const render of subtables) render();
}

/** The full configuration as commented TOML (what `berthd config default` prints). */
export function renderConfig(cfg: Config = defaultConfig()): string {
  const out: string[] = ["# berthd configuration. Every key is optional; shown with its default."];
  renderTable(out, "", schema, cfg as unknown as Record<string, unknown>);
  return out.join("\n") + "\n";
}
