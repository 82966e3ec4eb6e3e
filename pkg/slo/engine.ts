import { hostname } from "node:os";
import type { SloConfig } from "../config/index.js";
import { logger } from "../log/index.js";
import { registry } from "../metrics/index.js";
import type { MetadataStore, Migration } from "../store/index.js";
import { sloDefinitions, type SliCounts, type SloDefinition } from "./definitions.js";

/** The "slo" component's tables in the metadata store. */
export const SLO_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "slo_buckets: SLI event counts per SLO, time bucket and reason",
    up: (db) =>
      db.exec(`CREATE TABLE slo_buckets (
        slo TEXT NOT NULL,
        bucket INTEGER NOT NULL,
        reason TEXT NOT NULL,
        events REAL NOT NULL,
        PRIMARY KEY (slo, bucket, reason)
      ) WITHOUT ROWID`),
  },
];

/** The short windows every SLO is shown over, next to its objective window (the burn-rate alert windows). */
export const SHORT_WINDOWS: ReadonlyArray<{ label: string; seconds: number }> = [
  { label: "1h", seconds: 3600 },
  { label: "6h", seconds: 6 * 3600 },
];

/** Burn rates at which the multi-window alerts fire (Google SRE workbook): 2% of a 30 d budget in 1 h, 5% in 6 h. */
export const FAST_BURN = 14.4;
export const SLOW_BURN = 6;

export interface SloWindowValue {
  window: string;
  seconds: number;
  events: number;
  bad: number;
  /** Good events / events, as a percentage; null without events. */
  sli: number | null;
  /** How fast the error budget burns: 1 spends exactly the budget over the objective window. */
  burnRate: number | null;
}

export interface SloStatus {
  name: string;
  title: string;
  /** Percent; null for an indicator without an objective. */
  objective: number | null;
  thresholdSeconds?: number;
  window: string;
  windows: SloWindowValue[];
  /** Null for an indicator without an objective. */
  errorBudget: {
    /** Bad events the objective window allows at its current volume. */
    allowed: number;
    spent: number;
    /** Fraction of the budget left (negative when overspent); null without events. */
    remaining: number | null;
  } | null;
  /** The reasons behind the bad events of the objective window, most frequent first. */
  topReasons: Array<{ reason: string; events: number }>;
  state: "ok" | "burning" | "burning fast" | "exhausted" | "no data" | "indicator";
}

export interface SloReport {
  node: string;
  generatedAt: string;
  /** When the counters were last written to the metadata store. */
  flushedAt: string | null;
  bucketSeconds: number;
  slos: SloStatus[];
}

export interface SloEngineOptions {
  store: MetadataStore;
  config: SloConfig;
  /** Seconds since the epoch; tests move time. */
  now?: () => number;
}

const windowLabel = (s: number): string => (s % 86_400 === 0 ? `${s / 86_400}d` : s % 3600 === 0 ? `${s / 3600}h` : `${s}s`);

function minus(a: SliCounts, b: SliCounts | undefined): SliCounts {
  const out: SliCounts = { total: Math.max(0, a.total - (b?.total ?? 0)), bad: new Map() };
  for (const [k, v] of a.bad) {
    const d = v - (b?.bad.get(k) ?? 0);
    if (d > 0) out.bad.set(k, d);
  }
  return out;
}

/**
 * Computes the SLOs inside berthd. Every flush interval it reads the SLI counters
 * from the metrics registry (no work on the request path), and adds what changed
 * since the last flush to the current time bucket in the metadata store, in one
 * transaction; buckets older than the retention are pruned. A kill -9 loses at
 * most one flush interval; a restart keeps the windows.
 */
export class SloEngine {
  readonly definitions: SloDefinition[];
  readonly #store: MetadataStore;
  readonly #cfg: SloConfig;
  readonly #now: () => number;
  /** Counter values at the last flush (the baseline of the next delta). */
  readonly #flushed = new Map<string, SliCounts>();
  #flushedAt: number | null = null;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(opts: SloEngineOptions) {
    this.#store = opts.store;
    this.#cfg = opts.config;
    this.#now = opts.now ?? (() => Date.now() / 1000);
    this.definitions = sloDefinitions(opts.config);
    opts.store.migrate("slo", SLO_MIGRATIONS);
  }

  /** Takes the counters' baseline and starts the flush timer. */
  async start(): Promise<void> {
    for (const d of this.definitions) this.#flushed.set(d.name, await d.read(registry));
    this.#timer = setInterval(() => void this.flush().catch((err: unknown) => logger().warn({ err }, "cannot write SLO counters")), this.#cfg.flush_interval_seconds * 1000);
    this.#timer.unref();
  }

  /** Stops the timer and writes what is pending. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush();
    this.#stopped = true;
  }

  /** Writes the events since the last flush into the current bucket (one transaction) and prunes old buckets. */
  flush(): Promise<void> {
    const run = this.#flushing.then(async () => {
      if (this.#stopped) return;
      const now = this.#now();
      const bucket = this.#bucketOf(now);
      const current = new Map<string, SliCounts>();
      for (const d of this.definitions) current.set(d.name, await d.read(registry));
      const upsert = this.#store.db.prepare(
        "INSERT INTO slo_buckets (slo, bucket, reason, events) VALUES (?, ?, ?, ?) ON CONFLICT(slo, bucket, reason) DO UPDATE SET events = events + excluded.events",
      );
      const cutoff = this.#bucketOf(now - this.#cfg.retention_days * 86_400);
      this.#store.tx(() => {
        for (const [name, cur] of current) {
          const delta = minus(cur, this.#flushed.get(name));
          if (delta.total > 0) upsert.run(name, bucket, "", delta.total);
          for (const [reason, n] of delta.bad) upsert.run(name, bucket, reason, n);
        }
        this.#store.db.prepare("DELETE FROM slo_buckets WHERE bucket < ?").run(cutoff);
      });
      for (const [name, cur] of current) this.#flushed.set(name, cur);
      this.#flushedAt = now;
    });
    this.#flushing = run.catch(() => undefined);
    return run;
  }

  /** The SLO view: stored buckets plus the events not flushed yet. */
  async report(): Promise<SloReport> {
    const now = this.#now();
    const q = this.#store.db.prepare("SELECT reason, SUM(events) AS events FROM slo_buckets WHERE slo = ? AND bucket >= ? GROUP BY reason");
    const slos: SloStatus[] = [];
    for (const d of this.definitions) {
      const pending = minus(await d.read(registry), this.#flushed.get(d.name));
      const over = (seconds: number): SliCounts => {
        const out: SliCounts = { total: pending.total, bad: new Map(pending.bad) };
        for (const row of q.all(d.name, this.#bucketOf(now - seconds)) as Array<{ reason: string; events: number }>) {
          if (row.reason === "") out.total += row.events;
          else out.bad.set(row.reason, (out.bad.get(row.reason) ?? 0) + row.events);
        }
        return out;
      };
      const budget = d.objective === null ? null : 1 - d.objective;
      const windows: SloWindowValue[] = [];
      let long: SliCounts = { total: 0, bad: new Map() };
      for (const w of [...SHORT_WINDOWS, { label: windowLabel(d.windowSeconds), seconds: d.windowSeconds }]) {
        const c = over(w.seconds);
        const bad = [...c.bad.values()].reduce((a, b) => a + b, 0);
        windows.push({
          window: w.label,
          seconds: w.seconds,
          events: c.total,
          bad,
          sli: c.total > 0 ? (100 * (c.total - bad)) / c.total : null,
          burnRate: c.total > 0 && budget !== null ? bad / c.total / budget : null,
        });
        long = c;
      }
      const last = windows[windows.length - 1] as SloWindowValue;
      const allowed = (budget ?? 0) * last.events;
      const remaining = last.events > 0 && budget !== null ? 1 - last.bad / allowed : null;
      const burn1h = windows[0]?.burnRate ?? 0;
      const burn6h = windows[1]?.burnRate ?? 0;
      const state: SloStatus["state"] =
        d.objective === null ? "indicator" : last.events === 0 ? "no data" : remaining !== null && remaining <= 0 ? "exhausted" : (burn1h ?? 0) >= FAST_BURN ? "burning fast" : (burn6h ?? 0) >= SLOW_BURN ? "burning" : "ok";
      slos.push({
        name: d.name,
        title: d.title,
        objective: d.objective === null ? null : Math.round(d.objective * 100_000) / 1000,
        ...(d.thresholdSeconds !== undefined ? { thresholdSeconds: d.thresholdSeconds } : {}),
        window: windowLabel(d.windowSeconds),
        windows,
        errorBudget: budget === null ? null : { allowed, spent: last.bad, remaining },
        topReasons: [...long.bad.entries()]
          .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
          .slice(0, 5)
          .map(([reason, events]) => ({ reason, events })),
        state,
      });
    }
    return {
      node: hostname(),
      generatedAt: new Date(now * 1000).toISOString(),
      flushedAt: this.#flushedAt === null ? null : new Date(this.#flushedAt * 1000).toISOString(),
      bucketSeconds: this.#cfg.bucket_seconds,
      slos,
    };
  }

  #bucketOf(t: number): number {
    const b = this.#cfg.bucket_seconds;
    return Math.floor(t / b) * b;
  }
}
