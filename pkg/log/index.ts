import { AsyncLocalStorage } from "node:async_hooks";
import { pino, type Logger, type Level } from "pino";

export type { Logger } from "pino";

/** Fields whose values never reach a log line (registry credentials from pull requests). */
const REDACT = [
  "auth.password",
  "auth.auth",
  "auth.identityToken",
  "auth.registryToken",
  "*.auth.password",
  "*.auth.auth",
  "*.auth.identityToken",
  "*.auth.registryToken",
  "password",
  "authorization",
  "headers.authorization",
];

export const LOG_LEVELS: readonly Level[] = ["fatal", "error", "warn", "info", "debug", "trace"];

let root: Logger = pino({ level: "info", redact: { paths: REDACT, censor: "[redacted]" } });

/** Replaces the process-wide root logger (berthd does this once at start, tests to silence it). */
export function setRootLogger(options: { level: Level | "silent"; destination?: NodeJS.WritableStream }): Logger {
  const opts = {
    level: options.level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT, censor: "[redacted]" },
    formatters: { level: (label: string) => ({ level: label }) },
  };
  root = options.destination ? pino(opts, options.destination) : pino(opts);
  return root;
}

const requestLogger = new AsyncLocalStorage<Logger>();

/** The logger of the current request if one is running, otherwise the root logger. */
export function logger(): Logger {
  return requestLogger.getStore() ?? root;
}

export function rootLogger(): Logger {
  return root;
}

/** The fields each request-scoped logger carries (its own and its parents'). */
const boundFields = new WeakMap<Logger, Record<string, unknown>>();

/**
 * Runs fn with a request-scoped child logger that carries the given fields. A field the
 * current scope already carries with the same value is not added again (pino would write
 * the key twice).
 */
export function withLogFields<T>(fields: Record<string, unknown>, fn: () => T): T {
  const parent = logger();
  const bound = boundFields.get(parent) ?? {};
  const fresh: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) if (bound[k] !== v) fresh[k] = v;
  if (Object.keys(fresh).length === 0) return requestLogger.run(parent, fn);
  const child = parent.child(fresh);
  boundFields.set(child, { ...bound, ...fresh });
  return requestLogger.run(child, fn);
}
