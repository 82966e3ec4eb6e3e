import { readFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const RUNTIME_NAME = "berth";
export const RUNTIME_API_VERSION = "v1";
/** The CRI protocol version this build speaks (VersionResponse.version). */
export const CRI_VERSION = "0.1.0";

let cached: string | undefined;

/** berth's own version, from the package.json found above this module (source or dist layout). */
export function runtimeVersion(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const file = join(dir, "package.json");
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: string; version?: string };
      if (pkg.name === "berth" && pkg.version) {
        cached = pkg.version;
        return cached;
      }
    }
    dir = dirname(dir);
  }
  cached = "0.0.0-unknown";
  return cached;
}
