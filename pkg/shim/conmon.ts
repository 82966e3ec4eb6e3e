import { closeSync, mkdirSync, openSync, readFileSync, constants, writeSync, existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import { DeadlineExceededError } from "../errdefs/index.js";
import { logger } from "../log/index.js";
import { fastSpawn, joinCgroup, killGroup, type CgroupInfo } from "../sys/index.js";
import type { OciRuntime } from "./oci-runtime.js";
import { processStartTime } from "./proc.js";

export interface ConmonOptions {
  conmonPath: string;
  logLevel: "debug" | "info" | "warn" | "error";
  cgroups: CgroupInfo;
  systemdCgroup: boolean;
}

export interface ConmonCreateRequest {
  id: string;
  name: string;
  runtime: OciRuntime;
  bundle: string;
  /** Where conmon writes `<id>` with the exit code. */
  exitDir: string;
  /** Per-container dir: conmon's `oom` marker and `exit` file. */
  persistDir: string;
  logPath: string;
  tty: boolean;
  stdin: boolean;
  stdinOnce: boolean;
  /** cgroupfs path the monitor joins (the pod's monitor group), undefined to stay put. */
  monitorCgroup: string | undefined;
  timeoutMs: number;
}

export interface ConmonCreated {
  /** The container's init pid (host namespace). */
  pid: number;
  conmonPid: number;
  conmonStartTime: string | undefined;
}

interface SyncMessage {
  data?: number;
  pid?: number;
  message?: string;
}

function readSync(stream: Readable, timeoutMs: number, what: string): Promise<SyncMessage> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const done = (err: Error | undefined, msg?: SyncMessage): void => {
      clearTimeout(timer);
      stream.removeAllListeners("data");
      stream.removeAllListeners("end");
      stream.removeAllListeners("error");
      if (err) reject(err);
      else resolve(msg as SyncMessage);
    };
    const timer = setTimeout(() => done(new DeadlineExceededError(`${what}: no answer within ${timeoutMs / 1000} s; conmon and the runtime were killed`)), timeoutMs);
    stream.on("data", (chunk: Buffer) => {
      buf += chunk.toString("utf8");
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      try {
        done(undefined, JSON.parse(buf.slice(0, nl)) as SyncMessage);
      } catch (err) {
        done(new Error(`conmon sent an unreadable sync message ${JSON.stringify(buf.slice(0, 200))}`, { cause: err }));
      }
    });
    stream.on("end", () => done(new Error(buf.trim() === "" ? "conmon closed its sync pipe without an answer" : `conmon sent ${JSON.stringify(buf.slice(0, 200))}`)));
    stream.on("error", (err) => done(err));
  });
}

/**
 * Starts one conmon for a container the way CRI-O does: conmon forks into the
 * background, runs `<runtime> create`, and reports the container pid (or the
 * runtime's error) as JSON on the sync pipe. Before it does anything it waits
 * on the start pipe, so it can be moved into the pod's monitor cgroup first.
 */
export async function conmonCreate(opts: ConmonOptions, req: ConmonCreateRequest): Promise<ConmonCreated> {
  mkdirSync(req.exitDir, { recursive: true });
  mkdirSync(req.persistDir, { recursive: true });
  const pidFile = join(req.bundle, "pidfile");
  const conmonPidFile = join(req.bundle, "conmon.pid");
  rmSync(pidFile, { force: true });
  rmSync(conmonPidFile, { force: true });
  const args = [
    "--api-version", "1",
    "-c", req.id,
    "-u", req.id,
    "-n", req.name,
    "-r", req.runtime.path,
    "-b", req.bundle,
    "-p", pidFile,
    "-P", conmonPidFile,
    "-l", `k8s-file:${req.logPath}`,
    "--exit-dir", req.exitDir,
    "--persist-dir", req.persistDir,
    "--socket-dir-path", join(req.bundle, "sock"),
    "--full-attach",
    "--log-level", opts.logLevel,
    "--runtime-arg", `--root=${req.runtime.root}`,
  ];
  if (req.tty) args.push("-t");
  if (req.stdin) args.push("-i");
  if (req.stdin && !req.stdinOnce) args.push("--leave-stdin-open");
  if (opts.systemdCgroup) args.push("-s");

  const errFile = join(req.bundle, "conmon.stderr");
  const errFd = openSync(errFile, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
  let child;
  try {
    // posix_spawn, not a fork of the daemon (see pkg/sys/fast-spawn.ts); a new session, as detached.
    child = await fastSpawn(opts.conmonPath, args, {
      cwd: req.bundle,
      setsid: true,
      env: { ...process.env, _OCI_SYNCPIPE: "3", _OCI_STARTPIPE: "4" },
      stdio: ["ignore", errFd, errFd, "pipe", "pipe"],
    });
  } catch (err) {
    throw new Error(`cannot run conmon at ${opts.conmonPath}: ${(err as Error).message}`, { cause: err });
  } finally {
    closeSync(errFd);
  }
  const syncStream = child.stdio[3] as Socket;
  const startStream = child.stdio[4] as Socket;
  const exited = child.exited.then((st) => st.code ?? -1);
  const log = logger();
  try {
    if (req.monitorCgroup !== undefined) {
      try {
        joinCgroup(opts.cgroups, req.monitorCgroup, child.pid);
      } catch (err) {
        log.warn({ containerId: req.id, cgroup: req.monitorCgroup, err }, "cannot move conmon into the pod's monitor cgroup");
      }
    }
    const syncPromise = readSync(syncStream, req.timeoutMs, `conmon (${req.runtime.name} create)`);
    startStream.write("0");
    const first = await Promise.race([syncPromise, exited.then((code) => ({ exited: code }))]);
    let msg: SyncMessage;
    if ("exited" in first) {
      if (first.exited !== 0) {
        throw new Error(`conmon exited with ${first.exited}: ${readTail(errFile)}`);
      }
      msg = await syncPromise;
    } else msg = first;
    const pid = msg.data ?? msg.pid ?? -1;
    if (pid <= 0) {
      throw new Error(`${req.runtime.name} create failed: ${msg.message ?? readTail(errFile) ?? "no message"}`);
    }
    const conmonPid = Number(readFileSync(conmonPidFile, "utf8").trim());
    return { pid, conmonPid, conmonStartTime: processStartTime(conmonPid) };
  } catch (err) {
    // Leave nothing running: the conmon started here (a process group leader: it and anything it
    // forked that stayed in its group) and the daemonized conmon (if any) die with this create.
    killGroup(child.pid);
    try {
      if (existsSync(conmonPidFile)) {
        const daemon = Number(readFileSync(conmonPidFile, "utf8").trim());
        killGroup(daemon);
        if (daemon > 0) process.kill(daemon, "SIGKILL");
      }
    } catch {
      /* already gone */
    }
    throw err;
  } finally {
    syncStream.destroy();
    startStream.destroy();
  }
}

function readTail(file: string): string {
  try {
    const text = readFileSync(file, "utf8").trim();
    return text.slice(-2000);
  } catch {
    return "";
  }
}

/** Asks conmon (through its control fifo) to reopen the container log file. */
export function conmonReopenLog(bundle: string): void {
  writeCtl(bundle, "2 0 0\n");
}

/** Tells conmon (through its control fifo) the terminal size. */
export function conmonResize(bundle: string, height: number, width: number): void {
  writeCtl(bundle, `1 ${height} ${width}\n`);
}

function writeCtl(bundle: string, line: string): void {
  // Non-blocking: with conmon gone there is no reader and open fails (ENXIO) instead of hanging.
  const fd = openSync(join(bundle, "ctl"), constants.O_WRONLY | constants.O_NONBLOCK);
  try {
    writeSync(fd, line);
  } finally {
    closeSync(fd);
  }
}

/** A monitor found from the files conmon leaves in a bundle. */
export interface ConmonFound {
  /** From BUNDLE/conmon.pid. */
  conmonPid: number;
  /** Whether that pid still runs and is this container's conmon (its command line names the container and bundle). */
  running: boolean;
  conmonStartTime: string | undefined;
  /** The container's init pid from the runtime's pid file, 0 when there is none. */
  pid: number;
}

function readPid(file: string): number {
  try {
    const n = Number(readFileSync(file, "utf8").trim());
    return Number.isInteger(n) && n > 0 ? n : 0;
  } catch {
    return 0;
  }
}

/**
 * The conmon a launch started for container `id`, from the pid files in its
 * bundle; undefined when conmon wrote none.
 */
export function findConmon(bundle: string, id: string): ConmonFound | undefined {
  const conmonPid = readPid(join(bundle, "conmon.pid"));
  if (conmonPid === 0) return undefined;
  let running = false;
  try {
    const argv = readFileSync(`/proc/${conmonPid}/cmdline`, "utf8").split("\0");
    running = argv.includes(id) && argv.includes(bundle);
  } catch {
    running = false;
  }
  return { conmonPid, running, conmonStartTime: running ? processStartTime(conmonPid) : undefined, pid: readPid(join(bundle, "pidfile")) };
}
