import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";

// A command named without a slash is looked up in $PATH by the child between
// fork and exec, once per spawn (posix_spawnp tries each directory in turn; here
// $PATH may start with a user's tool dirs). berthd resolves each name once,
// in the same order, and spawns the absolute path from then on.

const resolved = new Map<string, string>();

/**
 * The absolute path the child's execvp would run for `file` ($PATH order,
 * first executable regular file), cached; `file` itself when it has a slash
 * or is not found (the spawn then reports the error as before).
 */
export function resolveCommand(file: string, pathVar: string | undefined = process.env["PATH"]): string {
  if (file.includes("/")) return file;
  const search = pathVar ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  const key = `${search}\0${file}`;
  const hit = resolved.get(key);
  if (hit !== undefined) return hit;
  for (const dir of search.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, file);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
    } catch {
      continue;
    }
    resolved.set(key, candidate);
    return candidate;
  }
  return file;
}

/** Forgets a resolution (its binary went away): the next spawn looks it up again. */
export function forgetCommand(file: string): void {
  for (const key of resolved.keys()) if (key.endsWith(`\0${file}`)) resolved.delete(key);
}
