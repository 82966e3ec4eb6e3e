import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { getPriority, setPriority } from "node:os";
import { SyscallError } from "./syscalls.js";

// Scheduling of berthd's event-loop thread.
//
// The CRI server answers on one thread. While an image is pulled, berthd's worker threads
// (downloads, hashing, decompression, layer writes) and the libuv pool keep both CPUs of a
// small node busy, and every CRI call waits for the scheduler to give the event loop a turn.
// The event loop itself needs little CPU: a higher weight (a negative nice value) lets it run
// as soon as a call arrives without taking much from anyone. SCHED_RESET_ON_FORK makes every
// thread and process it starts afterwards (worker threads, conmon, runc, CNI plugins, and so
// the containers) begin at nice 0 again, as if the event loop had never been raised.

const SCHED_OTHER = 0;
const SCHED_RESET_ON_FORK = 0x40000000;

interface Koffi {
  load(path: string): { func(decl: string): (...args: unknown[]) => number };
  errno(): number;
}

const SCHED_FLAG_RESET_ON_FORK = 0x01;
/** sched_setattr(2) and sched_getattr(2) by number (glibc has no wrapper before 2.41). */
const SYS_SCHED_SETATTR: Partial<Record<string, number>> = { x64: 314, arm64: 274 };

/**
 * Gives the calling thread the nice value `nice` (negative: more CPU weight) while the
 * threads and processes it creates from now on start at nice 0. Needs CAP_SYS_NICE for a
 * negative value; throws SyscallError when the kernel refuses.
 *
 * `sliceUs` > 0 also asks for a short time slice (sched_setattr's sched_runtime for
 * SCHED_OTHER, Linux 6.12+ EEVDF; older kernels ignore it): a woken thread with a shorter
 * slice than the running one preempts it at once instead of waiting for the end of that
 * thread's slice (up to a few ms), which is what a CRI call waits for while workers keep
 * the CPUs busy. The kernel clamps it to 100 us .. 100 ms.
 */
export function raiseThreadPriority(nice: number, sliceUs = 0): void {
  const require = createRequire(import.meta.url);
  const koffi = require("koffi") as Koffi;
  const libc = koffi.load("libc.so.6");
  const nr = SYS_SCHED_SETATTR[process.arch];
  if (sliceUs > 0 && nr !== undefined) {
    const syscall = libc.func("long syscall(long nr, ...)") as (nr: number, ...args: unknown[]) => number;
    // struct sched_attr (SCHED_ATTR_SIZE_VER0, 48 bytes): size, policy, flags, nice, priority, runtime, deadline, period
    const attr = Buffer.alloc(48);
    attr.writeUInt32LE(48, 0);
    attr.writeUInt32LE(SCHED_OTHER, 4);
    attr.writeBigUInt64LE(BigInt(SCHED_FLAG_RESET_ON_FORK), 8);
    attr.writeInt32LE(nice, 16);
    attr.writeBigUInt64LE(BigInt(sliceUs) * 1000n, 24);
    // pid 0: the calling thread only
    if (syscall(nr, "int", 0, "void *", attr, "unsigned int", 0) < 0) throw new SyscallError("sched_setattr", koffi.errno(), `SCHED_OTHER nice ${nice} slice ${sliceUs}us`);
    return;
  }
  const setscheduler = libc.func("int sched_setscheduler(int pid, int policy, const int *param)") as (pid: number, policy: number, param: number[]) => number;
  // pid 0: the calling thread only (Linux schedules threads, not processes)
  if (setscheduler(0, SCHED_OTHER | SCHED_RESET_ON_FORK, [0]) < 0) throw new SyscallError("sched_setscheduler", koffi.errno(), "SCHED_OTHER|SCHED_RESET_ON_FORK");
  // os.setPriority(prio) is setpriority(PRIO_PROCESS, 0, prio): also the calling thread only
  setPriority(nice);
}

/** The calling thread's time slice in microseconds (from /proc; undefined where the kernel does not show it). */
export function threadSliceUs(): number | undefined {
  try {
    const m = /^se\.slice\s*:\s*(\d+)/m.exec(readFileSync(`/proc/self/task/${process.pid}/sched`, "utf8"));
    return m ? Number(m[1]) / 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** The calling thread's nice value. */
export function threadNice(): number {
  return getPriority();
}

/**
 * Gives the calling thread the nice value `nice` (0 to 19: less CPU weight than the event
 * loop and the rest of the process's group; needs no privilege). 0 leaves it alone.
 */
export function lowerThreadPriority(nice: number): void {
  if (nice > 0) setPriority(nice);
}

/**
 * Gives every thread of this process but the calling one the nice value `nice`: the threads
 * started before it (the libuv pool, which decompresses layers, and V8's helper threads).
 * Threads that cannot be changed (gone meanwhile) are skipped; returns how many were.
 */
export function lowerOtherThreads(nice: number, self = process.pid): number {
  let n = 0;
  for (const name of readdirSync("/proc/self/task")) {
    const tid = Number(name);
    if (tid === self) continue;
    try {
      setPriority(tid, nice);
      n++;
    } catch {
      // the thread ended
    }
  }
  return n;
}

/**
 * The scheduling group this process's threads share with nothing but their own process
 * family, if any: a cgroup of its own with the cpu controller (v1 or v2), or its session's
 * autogroup. Within such a group the CPU share of the whole group is fixed and nice values
 * only divide it among berthd's threads; in the root group (no cpu cgroup, autogroup off)
 * a niced thread competes with every other process at its low weight. `unifiedMount`: where
 * cgroup v2 is mounted (detectCgroups).
 */
export function schedulingGroup(unifiedMount: string | undefined): string | undefined {
  let lines: string[] = [];
  try {
    lines = readFileSync("/proc/self/cgroup", "utf8").split("\n");
  } catch {
    return undefined;
  }
  for (const line of lines) {
    const [id, controllers = "", path = "/"] = line.split(":");
    if (path === "/" || path === "") continue;
    if (id !== "0" && controllers.split(",").includes("cpu")) return `cgroup cpu:${path}`;
    if (id === "0" && unifiedMount !== undefined) {
      try {
        if (readFileSync(`${unifiedMount}${path}/cgroup.controllers`, "utf8").split(/\s+/).includes("cpu")) return `cgroup ${path}`;
      } catch {
        // not readable: not ours to judge
      }
    }
  }
  try {
    if (readFileSync("/proc/sys/kernel/sched_autogroup_enabled", "utf8").trim() === "1") return readFileSync("/proc/self/autogroup", "utf8").split(" ")[0]?.trim() || "autogroup";
  } catch {
    // no autogroup support
  }
  return undefined;
}
