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
 * Gives memory back once the daemon has gone quiet after work. A burst of pod starts
 * and removals leaves the V8 heap grown and full of garbage that no major GC collects
 * while the daemon idles (V8 only collects when it allocates, and an idle daemon hardly
 * does), and glibc's arenas keep what was freed: measured after 100 pods were started and
 * removed, PSS 45 -> 51..63 MB, old space used 10.4 -> 11.3..17.8 MB, for minutes.
 * `touch()` marks work; `quietMs` after the last one, one major GC runs (as a V8 task:
 * about 5 ms of the event loop for berthd's heap) and then malloc_trim on a pool thread.
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

  /** One major GC, then malloc_trim. Never rejects. */
  async compact(): Promise<void> {
    const before = process.memoryUsage.rss();
    try {
      await this.#gc?.({ type: "major", execution: "async" });
    } catch (err) {
      logger().debug({ err }, "idle GC failed");
    }
    await mallocTrim();
    this.runs++;
    // the root logger: the timer was armed inside some call, whose fields would be attached otherwise
    rootLogger().debug({ rssBeforeBytes: before, rssAfterBytes: process.memoryUsage.rss(), gc: this.#gc !== undefined }, "gave memory back after work");
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
