import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { logger } from "../log/index.js";
import {
  bindMount,
  childPids,
  CLONE_NEWIPC,
  CLONE_NEWNET,
  CLONE_NEWUTS,
  interfaceUp,
  isMountPoint,
  makePrivate,
  mountOf,
  mountSyscall,
  MS_BIND,
  namespaceOf,
  nsSyscallsAvailable,
  processAlive,
  run,
  sethostnameSyscall,
  setnsSyscall,
  spawnDetached,
  unmountAll,
  unshareSyscall,
} from "../sys/index.js";

export type PinnedKind = "net" | "ipc" | "uts";

/**
 * Makes dir a place where namespace files can be bind-mounted: nsfs bind mounts
 * are refused under a shared mount (they would propagate and loop), so when the
 * mount holding dir is shared, dir becomes a private bind mount of itself.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  const m = mountOf(dir);
  if (m && m.mountPoint === dir) {
    if (m.optional.some((o) => o.startsWith("shared:"))) await makePrivate(dir);
    return;
  }
  if (m && m.optional.some((o) => o.startsWith("shared:"))) {
    await bindMount(dir, dir);
    await makePrivate(dir);
    logger().info({ dir }, "made the namespace pin dir a private bind mount");
  }
}

function touch(file: string): void {
  closeSync(openSync(file, "a", 0o444));
}

/**
 * Creates new namespaces of the given kinds and pins each as a bind-mounted
 * file dir/<kind> (the namespace lives as long as the mount). In the new
 * namespaces the hostname is set (uts) and loopback is brought up (net).
 * Returns the file of each kind. On failure nothing is left pinned.
 *
 * Done in-process with system calls when they are available (`pinInProcess`),
 * otherwise with `unshare(1)`.
 */
export async function pinNamespaces(dir: string, kinds: readonly PinnedKind[], hostname: string | undefined, signal?: AbortSignal): Promise<Record<PinnedKind, string | undefined>> {
  const files: Record<PinnedKind, string | undefined> = { net: undefined, ipc: undefined, uts: undefined };
  if (kinds.length === 0) return files;
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  for (const k of kinds) {
    const f = join(dir, k);
    touch(f);
    files[k] = f;
  }
  try {
    if (nsSyscallsAvailable()) pinInProcess(files, kinds, kinds.includes("uts") ? hostname : undefined);
    else await pinWithUnshare(files, kinds, hostname, signal);
  } catch (err) {
    await unpinNamespaces(dir);
    throw err;
  }
  return files;
}

const CLONE_FLAG: Record<PinnedKind, number> = { net: CLONE_NEWNET, uts: CLONE_NEWUTS, ipc: CLONE_NEWIPC };

/**
 * The calling thread (berthd's main thread: this is synchronous JS, so no other
 * JS and no libuv callback runs on it meanwhile) leaves its namespaces of the
 * given kinds for new ones, bind-mounts them onto the pin files, sets the
 * hostname and brings loopback up, then returns to the namespaces it had.
 * Only this thread ever sees the new namespaces: libuv's threadpool and V8's
 * threads keep their own, no fd or socket is opened in between besides the
 * ioctl socket (closed here), and nothing is spawned. The mount namespace is
 * not touched, so the pins are visible daemon-wide. A thread that cannot get
 * back to its namespaces would make the daemon work in a pod's network: that
 * aborts the process (systemd restarts it; recovery finds the half-made pod).
 */
function pinInProcess(files: Record<PinnedKind, string | undefined>, kinds: readonly PinnedKind[], hostname: string | undefined): void {
  let flags = 0;
  for (const k of kinds) flags |= CLONE_FLAG[k];
  withThreadNamespaces(kinds, () => unshareSyscall(flags), () => {
    for (const k of kinds) mountSyscall(`/proc/thread-self/ns/${k}`, files[k] as string, null, MS_BIND, null);
    if (hostname) sethostnameSyscall(hostname);
    if (kinds.includes("net")) interfaceUp("lo");
  });
}

/**
 * Runs `enter` then `fn` on the calling thread and puts the thread back into
 * the namespaces of the given kinds it had before, whatever happened (a thread
 * that cannot get back aborts the process). Synchronous by design: see pinInProcess.
 */
function withThreadNamespaces<T>(kinds: readonly PinnedKind[], enter: () => void, fn: () => T): T {
  const saved: Array<{ kind: PinnedKind; fd: number }> = [];
  try {
    for (const kind of kinds) saved.push({ kind, fd: openSync(`/proc/thread-self/ns/${kind}`, "r") });
    try {
      enter();
      return fn();
    } finally {
      for (const { kind, fd } of saved) {
        try {
          setnsSyscall(fd, CLONE_FLAG[kind], `back to berthd's ${kind} namespace`);
        } catch (err) {
          writeSync(2, `berthd: fatal: cannot return to its own ${kind} namespace: ${String(err)}\n`);
          process.abort();
        }
      }
    }
  } finally {
    for (const { fd } of saved) closeSync(fd);
  }
}

/**
 * Writes sysctls (dotted keys, already validated: letters, digits and `_:@+-`
 * between dots) through /proc/sys from inside the pod's pinned namespaces: the
 * net.* files resolve to the network namespace of the thread that opens them,
 * the IPC ones to its IPC namespace. Falls back to nsenter + sysctl(8) without FFI.
 */
export async function writeSysctlsIn(ns: Partial<Record<"net" | "ipc", string>>, sysctls: Record<string, string>, signal?: AbortSignal): Promise<void> {
  const entries = Object.entries(sysctls);
  if (entries.length === 0) return;
  if (!nsSyscallsAvailable()) {
    await runInNamespaces(ns, ["sysctl", "-q", "-w", ...entries.map(([k, v]) => `${k}=${v}`)], signal);
    return;
  }
  const kinds = (["net", "ipc"] as const).filter((k) => ns[k]);
  const targets: Array<{ kind: "net" | "ipc"; fd: number }> = [];
  try {
    for (const kind of kinds) targets.push({ kind, fd: openSync(ns[kind] as string, "r") });
    withThreadNamespaces(
      kinds,
      () => {
        for (const { kind, fd } of targets) setnsSyscall(fd, CLONE_FLAG[kind], ns[kind] as string);
      },
      () => {
        for (const [k, v] of entries) writeFileSync(`/proc/sys/${k.split(".").join("/")}`, v);
      },
    );
  } finally {
    for (const { fd } of targets) closeSync(fd);
  }
}

/** The process way (no FFI): unshare(1) pins, a shell sets the hostname and brings lo up. */
async function pinWithUnshare(files: Record<PinnedKind, string | undefined>, kinds: readonly PinnedKind[], hostname: string | undefined, signal?: AbortSignal): Promise<void> {
  const args = kinds.map((k) => `--${k}=${files[k] as string}`);
  const script = 'set -e; if [ -n "$1" ]; then hostname "$1"; fi; if [ "$2" = 1 ]; then ip link set lo up; fi';
  await run("unshare", [...args, "--", "sh", "-c", script, "sh", kinds.includes("uts") ? (hostname ?? "") : "", kinds.includes("net") ? "1" : "0"], {
    timeoutMs: 30_000,
    ...(signal ? { signal } : {}),
  });
}

/** Unmounts and removes every pinned namespace file in dir (idempotent). */
export async function unpinNamespaces(dir: string): Promise<void> {
  for (const k of ["net", "ipc", "uts", "pid"]) {
    const f = join(dir, k);
    await unmountAll(f);
    rmSync(f, { force: true });
  }
}

/** True when the file is a live pinned namespace. */
export function isPinned(file: string): boolean {
  return existsSync(file) && isMountPoint(file);
}

/** The inode of a pinned namespace ("pid:[N]" compares with N), or undefined. */
export function pinnedInode(file: string): number | undefined {
  try {
    return isMountPoint(file) ? statSync(file).ino : undefined;
  } catch {
    return undefined;
  }
}

export interface PidInit {
  /** The `unshare` process that holds the init (its parent). */
  holderPid: number;
  /** PID 1 of the pod's PID namespace. */
  initPid: number;
  /** The pinned PID namespace file. */
  nsPath: string;
  /** The namespace's inode (0 when unknown). */
  nsInode?: number;
}

/** A tiny reaper: waits for (and so reaps) every child, forever. */
const INIT_SCRIPT = 'trap "exit 0" TERM; while :; do sleep 2147483647 & wait; done';

/**
 * Starts a minimal init process in a new PID namespace, pinned at dir/pid. It
 * is detached from berthd and outlives restarts; containers join the namespace
 * through the pinned file while the init runs.
 */
export async function startPidInit(dir: string, signal?: AbortSignal): Promise<PidInit> {
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  const nsPath = join(dir, "pid");
  touch(nsPath);
  const holderPid = await spawnDetached("unshare", [`--pid=${nsPath}`, "--fork", "--kill-child", "--", "sh", "-c", INIT_SCRIPT]);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const initPid = childPids(holderPid)[0];
    if (initPid !== undefined && isMountPoint(nsPath)) {
      const ino = pinnedInode(nsPath);
      if (ino !== undefined && namespaceOf(initPid, "pid") === `pid:[${ino}]`) return { holderPid, initPid, nsPath, nsInode: ino };
    }
    if (!processAlive(holderPid) || Date.now() > deadline || signal?.aborted) {
      await stopPidInit({ holderPid, initPid: initPid ?? 0, nsPath });
      throw new Error(`the PID namespace init did not start (pin ${nsPath})`);
    }
    await sleep(5);
  }
}

/** Cheap liveness check (two /proc reads, no mount table): the init runs, in the namespace recorded at start. */
export function pidInitRunning(initPid: number, nsInode: number): boolean {
  return processAlive(initPid) && namespaceOf(initPid, "pid") === `pid:[${nsInode}]`;
}

/** Whether the recorded init still runs in the pinned namespace (guards against pid reuse). */
export function pidInitAlive(init: PidInit): boolean {
  const ino = pinnedInode(init.nsPath);
  return ino !== undefined && processAlive(init.initPid) && namespaceOf(init.initPid, "pid") === `pid:[${ino}]`;
}

function holds(pid: number, nsPath: string): boolean {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return cmd[0] === "unshare" && cmd.includes(`--pid=${nsPath}`);
  } catch {
    return false;
  }
}

/** The holder processes of a pin file, found by their command line (when the recorded pid is unknown). */
function findHolders(nsPath: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(name)) continue;
    const pid = Number(name);
    if (pid !== process.pid && holds(pid, nsPath)) out.push(pid);
  }
  return out;
}

/**
 * Kills the init (which kills every process of the namespace) and its holder,
 * then unpins the namespace. Idempotent; only kills processes proven to be ours.
 */
export async function stopPidInit(init: PidInit): Promise<void> {
  const ino = pinnedInode(init.nsPath);
  if (init.initPid > 0 && ino !== undefined && namespaceOf(init.initPid, "pid") === `pid:[${ino}]`) {
    try {
      process.kill(init.initPid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  const holders = init.holderPid > 0 && holds(init.holderPid, init.nsPath) ? [init.holderPid] : findHolders(init.nsPath);
  for (const holder of holders) {
    for (const child of childPids(holder)) {
      if (ino !== undefined && namespaceOf(child, "pid") === `pid:[${ino}]`) {
        try {
          process.kill(child, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    try {
      process.kill(holder, "SIGKILL");
    } catch {
      // already gone
    }
  }
  // SIGKILL is asynchronous: wait (bounded) until the init and holders are gone or zombies,
  // so a stopped pod has no running process left when StopPodSandbox returns.
  await waitGone([init.initPid, ...holders].filter((p) => p > 0), 5000);
  await unmountAll(init.nsPath);
  rmSync(init.nsPath, { force: true });
}

function goneOrZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state === "Z" || state === "X";
  } catch {
    return true;
  }
}

async function waitGone(pids: number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !pids.every(goneOrZombie)) await sleep(10);
}

/** Runs a command inside the given namespace files (nsenter). */
export async function runInNamespaces(ns: Partial<Record<"net" | "ipc" | "uts" | "pid", string>>, argv: readonly string[], signal?: AbortSignal): Promise<string> {
  const args: string[] = [];
  for (const [k, f] of Object.entries(ns)) if (f) args.push(`--${k}=${f}`);
  const r = await run("nsenter", [...args, "--", ...argv], { timeoutMs: 30_000, ...(signal ? { signal } : {}) });
  return r.stdout;
}
