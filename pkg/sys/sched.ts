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

/**
 * Gives the calling thread the nice value `nice` (negative: more CPU weight) while the
 * threads and processes it creates from now on start at nice 0. Needs CAP_SYS_NICE for a
 * negative value; throws SyscallError when the kernel refuses.
 */
export function raiseThreadPriority(nice: number): void {
  const require = createRequire(import.meta.url);
  const koffi = require("koffi") as Koffi;
  const libc = koffi.load("libc.so.6");
  const setscheduler = libc.func("int sched_setscheduler(int pid, int policy, const int *param)") as (pid: number, policy: number, param: number[]) => number;
  // pid 0: the calling thread only (Linux schedules threads, not processes)
  if (setscheduler(0, SCHED_OTHER | SCHED_RESET_ON_FORK, [0]) < 0) throw new SyscallError("sched_setscheduler", koffi.errno(), "SCHED_OTHER|SCHED_RESET_ON_FORK");
  // os.setPriority(prio) is setpriority(PRIO_PROCESS, 0, prio): also the calling thread only
  setPriority(nice);
}

/** The calling thread's nice value. */
export function threadNice(): number {
  return getPriority();
}
