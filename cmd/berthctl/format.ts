import { stringify as yamlStringify } from "yaml";

const replacer = (_k: string, v: unknown): unknown => (typeof v === "bigint" ? v.toString() : v);

export function toJson(v: unknown): string {
  return JSON.stringify(v, replacer, 2);
}

export function toYaml(v: unknown): string {
  return yamlStringify(JSON.parse(JSON.stringify(v, replacer)));
}

/** A plain aligned table: header row plus rows, columns separated by 3 spaces. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("   ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** "3 seconds ago" style age of a nanosecond timestamp. */
export function age(ns: bigint): string {
  if (ns <= 0n) return "";
  const s = Math.max(0, Math.floor((Date.now() - Number(ns / 1_000_000n)) / 1000));
  if (s < 60) return `${s} seconds ago`;
  if (s < 3600) return `${Math.floor(s / 60)} minutes ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} hours ago`;
  return `${Math.floor(s / 86400)} days ago`;
}

export function bytes(n: number | bigint): string {
  let v = Number(n);
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)}${units[i]}`;
}

/** Verbose info maps values to JSON text: show each parsed where it is JSON, as text otherwise. */
export function parseVerboseInfo(info: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(info)) {
    try {
      out[k] = JSON.parse(v);
    } catch {
      out[k] = v;
    }
  }
  return out;
}

/** Prints one inspect document, or a list of them, as YAML or JSON (the default). */
export function inspectDocs(docs: unknown[], output: string): string {
  const doc = docs.length === 1 ? docs[0] : docs;
  return output === "yaml" ? toYaml(doc) : toJson(doc);
}
