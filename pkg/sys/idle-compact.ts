import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { logger, rootLogger } from "../log/index.js";
import { mallocTrim } from "./fs-syscalls.js";

type GcFn = (opts?: { type?: "major" | "minor"; execution?: "sync" | "async" }) => Promise<void> | void;

/** V8's gc() (the --expose-gc extension, turned on at run time); undefined where that fails. */
function exposeGc(): GcFn | undefined {
  try {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as unknown;
    return typeof gc === "function" ? (gc as GcFn) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * V8 flags in force during the compactor's GC only. By default a full GC frees objects but
 * moves only the survivors of pages that are mostly empty: the pages a burst of work filled
 * stay committed, each holding some live data; measured after 100 pods and a big pull, old
 * space used was back at 10.9 MB while its pages kept 21 MB resident. Compacting every page
 * moves the survivors together and returns the emptied pages. Code flushing drops the
 * bytecode and baseline code of every function not running at that moment (a pod start's,
 * a pull's, start-up's: 1 MB of code space and about as much bytecode after 100 pods); a
 * function that runs again is compiled again on its first call. V8 does both by itself only
 * under memory pressure (compaction) or after several GCs an idle daemon never has (code aging).
 *
 * What it costs the polled reads (hack/bench/after-compact.ts, 20 pods): the first
 * ListContainers after the compactor took 6.6 ms (3-4 ms without the flush, 2.8 ms after the
 * same quiet time with no GC at all); the p50 of the following 2000 calls recovered as it
 * does after any quiet time (0.55 -> 0.35 ms over 1500 calls, with or without the GC).
 */
const COMPACTING_GC = {
  on: ["--compact-on-every-full-gc", "--flush-baseline-code", "--stress-flush-code"],
  off: ["--no-compact-on-every-full-gc", "--no-flush-baseline-code", "--no-stress-flush-code"],
};

/**
 * Gives memory back once the daemon has gone quiet after work. A burst of pod starts
 * and removals leaves the V8 heap grown and full of garbage that no major GC collects
 * while the daemon idles (V8 only collects when it allocates, and an idle daemon hardly
 * does), and glibc's arenas keep what was freed: measured after 100 pods were started and
 * removed, PSS 45 -> 51..63 MB, old space used 10.4 -> 11.3..17.8 MB, for minutes.
 * `touch()` marks work; `quietMs` after the last one, one compacting major GC runs (as a
 * V8 task, on the event loop) and then malloc_trim on a pool thread.
 */
export class IdleCompactor {
  readonly #gc = exposeGc();
  readonly #quietMs: number;
  #timer: NodeJS.Timeout | undefined;
  /** Compactions run so far. */
  runs = 0;

  constructor(quietMs: number) {
    this.#quietMs = quietMs;
  }

  touch(): void {
    if (this.#timer) this.#timer.refresh();
    else {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        void this.compact();
      }, this.#quietMs);
      this.#timer.unref();
    }
  }

  /** One compacting major GC, then malloc_trim. Never rejects. */
  async compact(): Promise<void> {
    const before = process.memoryUsage.rss();
    const started = performance.now();
    let gcMs = 0;
    if (this.#gc) {
      let flagged = false;
      try {
        for (const f of COMPACTING_GC.on) setFlagsFromString(f);
        flagged = true;
        await this.#gc({ type: "major", execution: "async" });
      } catch (err) {
        logger().debug({ err }, "idle GC failed");
      } finally {
        if (flagged) for (const f of COMPACTING_GC.off) setFlagsFromString(f);
      }
      gcMs = performance.now() - started;
    }
    await mallocTrim();
    this.runs++;
    // the root logger: the timer was armed inside some call, whose fields would be attached otherwise
    rootLogger().debug({ rssBeforeBytes: before, rssAfterBytes: process.memoryUsage.rss(), gc: this.#gc !== undefined, gcMs: Math.round(gcMs * 10) / 10 }, "gave memory back after work");
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
