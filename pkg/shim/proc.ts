import { readFileSync } from "node:fs";

/** The start time of a process (field 22 of /proc/PID/stat, clock ticks since boot), undefined if gone. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19];
  } catch {
    return undefined;
  }
}

/** Whether pid still runs and is the same process (same start time) as when recorded. One read of /proc/PID/stat. */
export function processAlive(pid: number, startTime: string | undefined): boolean {
  if (pid <= 0) return false;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ESRCH") return false;
    // Not readable for another reason (EMFILE/ENFILE: no fd left): never conclude the
    // process is gone from that; a signal 0 needs no fd and tells whether the pid exists.
    return pidExists(pid);
  }
  const rest = stat.slice(stat.lastIndexOf(")") + 2);
  const fields = rest.split(" ");
  if (fields[19] === undefined) return false;
  if (startTime !== undefined && fields[19] !== startTime) return false;
  return fields[0] !== "Z";
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Proportional set size of a process in bytes (/proc/PID/smaps_rollup), undefined if gone. */
export function processPss(pid: number): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    const m = /^Pss:\s+(\d+) kB/m.exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
