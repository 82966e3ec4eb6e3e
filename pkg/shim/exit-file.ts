import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";

export interface ExitInfo {
  exitCode: number;
  /** When the monitor wrote the exit file: the container's end, in ns since the epoch. */
  finishedAt: bigint;
  oomKilled: boolean;
}

/** Reads the exit file conmon writes in the exit dir (and its OOM marker in the persist dir). */
export function readExitFile(exitDir: string, persistDir: string, id: string): ExitInfo | undefined {
  const file = join(exitDir, id);
  let text: string;
  let mtimeNs: bigint;
  try {
    text = readFileSync(file, "utf8").trim();
    mtimeNs = statSync(file, { bigint: true }).mtimeNs;
  } catch {
    return undefined;
  }
  if (text === "") return undefined; // written but not flushed yet: read again later
  const exitCode = Number(text);
  let oomKilled = false;
  try {
    statSync(join(persistDir, "oom"));
    oomKilled = true;
  } catch {
    oomKilled = false;
  }
  return { exitCode: Number.isFinite(exitCode) ? exitCode : 255, finishedAt: mtimeNs, oomKilled };
}
