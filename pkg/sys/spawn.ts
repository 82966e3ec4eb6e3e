import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { logger } from "../log/index.js";
import { resolveCommand } from "./which.js";

/**
 * Starts a long-lived process in its own session, detached from berthd (it
 * survives a berthd restart or kill -9). Returns its pid.
 */
export function spawnDetached(file: string, args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    // argv[0] stays the name as given (what `ps` and holder look-ups by command line see).
    const child = spawn(resolveCommand(file), args, { detached: true, stdio: "ignore", argv0: file });
    child.once("error", (err) => reject(new Error(`cannot start ${file}: ${err.message}`, { cause: err })));
    child.once("spawn", () => {
      logger().debug({ argv: [file, ...args], pid: child.pid }, "started detached process");
      child.unref();
      if (child.pid === undefined) reject(new Error(`cannot start ${file}: no pid`));
      else resolve(child.pid);
    });
  });
}

/** The direct children of a process (from /proc/PID/task/*\/children). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const s = readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim();
      if (s) out.push(...s.split(/\s+/).map(Number));
    }
  } catch {
    // gone
  }
  return out;
}

/** The namespace a process is in, e.g. "pid:[4026532177]", or undefined when it is gone. */
export function namespaceOf(pid: number, kind: string): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/${kind}`);
  } catch {
    return undefined;
  }
}

/**
 * True when the process exists and is not a zombie. A /proc file that cannot be read for
 * another reason than the process being gone (EMFILE/ENFILE: no fd left) never makes a live
 * process dead: a signal 0, which needs no fd, decides then.
 */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ESRCH") return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === "EPERM";
    }
  }
}

/**
 * Resolves once a spawned child is running, rejects with the spawn error (ENOENT, EMFILE …).
 * Await it before touching `child.stdio`: when no fd is left for the pipes Node gives up before
 * creating them and reports the failure only on 'error', which must have a listener.
 */
export function whenSpawned(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      child.off("spawn", onSpawn);
      reject(err);
    };
    const onSpawn = (): void => {
      child.off("error", onError);
      resolve();
    };
    child.once("error", onError);
    child.once("spawn", onSpawn);
  });
}
