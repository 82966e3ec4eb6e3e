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
  let store = parent;
  if (Object.keys(fresh).length > 0) {
    store = parent.child(fresh);
    boundFields.set(store, { ...bound, ...fresh });
  }
  return scoped(store, fn);
}

/**
 * Scopes open now (withLogFields calls whose fn has not finished). The storage is switched
 * off when the last one ends: while it is on, Node runs an async hook for every promise the
 * process makes, and the polled reads served between pod changes (which open no scope) would
 * pay for it on each await. run() switches it on again. A task a call left running that logs
 * after every scope ended writes through the root logger, without the call's fields.
 */
let openScopes = 0;

function scopeEnded(): void {
  openScopes--;
  if (openScopes === 0) requestLogger.disable();
}

function scoped<T>(store: Logger, fn: () => T): T {
  openScopes++;
  let result: T;
  try {
    result = requestLogger.run(store, fn);
  } catch (err) {
    scopeEnded();
    throw err;
  }
  if (result instanceof Promise) result.then(scopeEnded, scopeEnded);
  else scopeEnded();
  return result;
}

/** How many request scopes are open; the storage is on while this is above 0 (tests). */
export function logScopesOpen(): number {
  return openScopes;
}
