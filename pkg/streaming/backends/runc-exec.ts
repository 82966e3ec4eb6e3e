/**
 * Exec in a running container with `runc exec`, the way the streaming server
 * needs it: the container's own process settings (env, user, cwd,
 * capabilities) with the command replaced, runc in the foreground so its exit
 * status is the command's (128+signal when killed).
 *  - Without a tty the process inherits runc's stdio pipes directly.
 *  - With a tty, runc gets the slave of a pty we open as its stdio: runc makes
 *    the container's terminal, puts ours in raw mode and copies between them;
 *    a resize sets our pty's size and sends runc SIGWINCH, which runc applies to
 *    the container's terminal.
 * Abort kills the exec'd process (its pid comes from --pid-file), then runc.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PtyMaster, openPty, setRawMode, setWindowSize, whenSpawned } from "../../sys/index.js";
import type { StreamIO, TerminalSize } from "../types.js";

export interface RuncExecOptions {
  /** The OCI runtime binary (runc or crun). */
  runtimePath: string;
  /** The runtime's --root (state directory); default: the runtime's own. */
  runtimeRoot?: string;
  /** Where to put the pid file (a private temp dir is made inside). */
  tmpDir?: string;
  /** Give runc this long to exit after the process was killed. */
  killGraceMs?: number;
  /**
   * The container's OCI process (from its config.json). When given, exec runs
   * it with args replaced via --process, and a tty starts at the client's size
   * (consoleSize) instead of 0x0 until runc's first resize.
   */
  process?: Record<string, unknown>;
}

export class ExecStartError extends Error {}

export async function runcExec(
  options: RuncExecOptions,
  containerId: string,
  cmd: string[],
  io: StreamIO,
  signal: AbortSignal,
): Promise<{ exitCode: number }> {
  const dir = await mkdtemp(path.join(options.tmpDir ?? os.tmpdir(), "berth-exec-"));
  const pidFile = path.join(dir, "pid");
  // The client sends its terminal size at once: take it before the process starts.
  const sizes = io.tty ? io.resize?.[Symbol.asyncIterator]() : undefined;
  let firstSize: TerminalSize | undefined;
  if (sizes) {
    const first = await Promise.race([sizes.next(), new Promise<undefined>((r) => setTimeout(() => r(undefined), 250).unref())]);
    if (first && !first.done) firstSize = first.value;
  }
  let processArgs: string[];
  if (options.process) {
    const p: Record<string, unknown> = { ...structuredClone(options.process), args: cmd, terminal: io.tty };
    if (io.tty && firstSize) p["consoleSize"] = { height: firstSize.height, width: firstSize.width };
    else delete p["consoleSize"];
    const processFile = path.join(dir, "process.json");
    await writeFile(processFile, JSON.stringify(p), { mode: 0o600 });
    processArgs = ["--process", processFile, containerId];
  } else {
    processArgs = [...(io.tty ? ["--tty"] : []), containerId, ...cmd];
  }
  const args = [...(options.runtimeRoot ? ["--root", options.runtimeRoot] : []), "exec", "--pid-file", pidFile, ...processArgs];
  let execPid = 0;
  const readPid = async () => {
    if (execPid) return execPid;
    try {
      execPid = Number.parseInt(await readFile(pidFile, "utf8"), 10) || 0;
    } catch {
      execPid = 0;
    }
    return execPid;
  };
  try {
    return io.tty
      ? await runTty(options, args, io, signal, readPid, sizes, firstSize)
      : await runPipes(options, args, io, signal, readPid);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function processExists(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killer(options: RuncExecOptions, runcPid: () => number | undefined, readPid: () => Promise<number>): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    void (async () => {
      // runc writes the pid file only once the process runs: an abort that comes earlier
      // waits for it (bounded, while runc is still alive), so the process is never left behind.
      let pid = await readPid();
      for (let i = 0; pid === 0 && i < 100 && processExists(runcPid()); i++) {
        await new Promise((r) => setTimeout(r, 50));
        pid = await readPid();
      }
      if (pid > 0) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      const t = setTimeout(() => {
        const r = runcPid();
        if (r) {
          try {
            process.kill(r, "SIGKILL");
          } catch {
            // already gone
          }
        }
      }, options.killGraceMs ?? 2000);
      t.unref();
    })();
  };
}

async function runPipes(
  options: RuncExecOptions,
  args: string[],
  io: StreamIO,
  signal: AbortSignal,
  readPid: () => Promise<number>,
): Promise<{ exitCode: number }> {
  const child = spawn(options.runtimePath, args, {
    stdio: [io.stdin ? "pipe" : "ignore", io.stdout ? "pipe" : "ignore", "pipe"],
  });
  await whenSpawned(child);
  const kill = killer(options, () => child.pid, readPid);
  signal.addEventListener("abort", kill, { once: true });
  if (signal.aborted) kill();
  let errTail = "";
  child.stderr!.on("data", (c: Buffer) => {
    errTail = (errTail + c.toString("utf8")).slice(-2048);
    if (io.stderr && !io.stderr.write(c)) {
      child.stderr!.pause();
      io.stderr.once("drain", () => child.stderr!.resume());
    }
  });
  if (io.stdin && child.stdin) {
    child.stdin.on("error", () => undefined);
    io.stdin.pipe(child.stdin);
  }
  if (io.stdout && child.stdout) child.stdout.pipe(io.stdout, { end: false });
  try {
    const exitCode = await new Promise<number>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (code, sig) => resolve(code ?? 128 + (sig ? (os.constants.signals[sig] ?? 9) : 9)));
    });
    if (exitCode !== 0 && (await readPid()) === 0 && !signal.aborted) {
      throw new ExecStartError(errTail.trim() || `${path.basename(options.runtimePath)} exec failed with exit code ${exitCode}`);
    }
    return { exitCode };
  } finally {
    signal.removeEventListener("abort", kill);
    if (io.stdin && child.stdin) io.stdin.unpipe(child.stdin);
  }
}

async function runTty(
  options: RuncExecOptions,
  args: string[],
  io: StreamIO,
  signal: AbortSignal,
  readPid: () => Promise<number>,
  sizes: AsyncIterator<TerminalSize> | undefined,
  firstSize: TerminalSize | undefined,
): Promise<{ exitCode: number }> {
  const pty = openPty();
  const master = new PtyMaster(pty.master);
  let slave = -1;
  try {
    slave = fs.openSync(pty.slavePath, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
    // Our side has the client's size too: runc copies it on every SIGWINCH.
    setWindowSize(slave, firstSize?.width ?? 80, firstSize?.height ?? 24);
    // Raw from the start: runc relays the container's terminal, which already translates
    // newlines; if ours did too until runc switched it to raw, early output got \r\r\n.
    setRawMode(slave);
    const child = spawn(options.runtimePath, args, { stdio: [slave, slave, slave] });
    fs.closeSync(slave);
    slave = -1;
    const kill = killer(options, () => child.pid, readPid);
    signal.addEventListener("abort", kill, { once: true });
    if (signal.aborted) kill();
    // Later sizes: set ours, then tell runc to copy it to the container's terminal.
    void (async () => {
      if (!sizes) return;
      for (let r = await sizes.next(); !r.done; r = await sizes.next()) {
        if (master.destroyed) break;
        try {
          master.resize(r.value.width, r.value.height);
          if (child.pid) process.kill(child.pid, "SIGWINCH");
        } catch {
          break;
        }
      }
    })();
    const output = new Promise<void>((resolve) => {
      master.on("data", (c: Buffer) => {
        if (io.stdout && !io.stdout.write(c)) {
          master.pause();
          io.stdout.once("drain", () => master.resume());
        }
      });
      master.on("end", () => resolve());
      master.on("close", () => resolve());
    });
    if (io.stdin) {
      io.stdin.on("data", (c: Buffer) => {
        if (!master.destroyed && !master.write(c)) {
          io.stdin!.pause();
          master.once("drain", () => io.stdin!.resume());
        }
      });
    }
    try {
      const exitCode = await new Promise<number>((resolve, reject) => {
        child.once("error", reject);
        child.once("exit", (code, sig) => resolve(code ?? 128 + (sig ? (os.constants.signals[sig] ?? 9) : 9)));
      });
      // runc held the last slave fd: the master reads to the end of the output, then EIO.
      await Promise.race([output, new Promise((r) => setTimeout(r, 2000).unref())]);
      if (exitCode !== 0 && (await readPid()) === 0 && !signal.aborted) {
        throw new ExecStartError(`${path.basename(options.runtimePath)} exec --tty failed with exit code ${exitCode}`);
      }
      return { exitCode };
    } finally {
      signal.removeEventListener("abort", kill);
    }
  } finally {
    if (slave >= 0) fs.closeSync(slave);
    master.destroy();
  }
}
