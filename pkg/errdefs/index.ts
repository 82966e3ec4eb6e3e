/**
 * Typed errors for the whole runtime. Each class carries a kind; the CRI layer
 * (pkg/cri/instrument.ts) is the single place that turns a kind into a gRPC code.
 */

export type ErrorKind =
  | "invalid-argument"
  | "not-found"
  | "already-exists"
  | "failed-precondition"
  | "unavailable"
  | "deadline-exceeded"
  | "unimplemented"
  | "permission-denied"
  | "resource-exhausted"
  | "aborted"
  | "cancelled"
  | "internal";

export abstract class BerthError extends Error {
  abstract readonly kind: ErrorKind;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class InvalidArgumentError extends BerthError {
  readonly kind = "invalid-argument";
}
export class NotFoundError extends BerthError {
  readonly kind = "not-found";
}
export class AlreadyExistsError extends BerthError {
  readonly kind = "already-exists";
}
export class FailedPreconditionError extends BerthError {
  readonly kind = "failed-precondition";
}
export class UnavailableError extends BerthError {
  readonly kind = "unavailable";
}
export class DeadlineExceededError extends BerthError {
  readonly kind = "deadline-exceeded";
}
export class UnimplementedError extends BerthError {
  readonly kind = "unimplemented";
}
export class PermissionDeniedError extends BerthError {
  readonly kind = "permission-denied";
}
export class ResourceExhaustedError extends BerthError {
  readonly kind = "resource-exhausted";
}
export class AbortedError extends BerthError {
  readonly kind = "aborted";
}
export class CancelledError extends BerthError {
  readonly kind = "cancelled";
}
export class InternalError extends BerthError {
  readonly kind = "internal";
}

/**
 * Error codes of an exhausted resource: a full disk (the file system's ENOSPC, EDQUOT and
 * SQLite's SQLITE_FULL) and too many open files (per process EMFILE, system-wide ENFILE).
 */
const EXHAUSTED = new Set(["ENOSPC", "EDQUOT", "SQLITE_FULL", "EMFILE", "ENFILE"]);

/**
 * The kind of any thrown value: our own errors keep theirs, aborts map to cancelled, a full
 * disk or a full fd table is resource-exhausted (not a bug, and gone once there is room, also
 * when it is the cause of a plain Error), the rest is internal.
 */
export function errorKind(err: unknown): ErrorKind {
  if (err instanceof BerthError) return err.kind;
  if (err instanceof Error && err.name === "AbortError") return "cancelled";
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const code = String((e as Error & { code?: unknown }).code);
    if (EXHAUSTED.has(code)) return "resource-exhausted";
    // A worker thread that cannot start for want of fds ("Worker initialization failure: EMFILE").
    if (code === "ERR_WORKER_INIT_FAILED" && /\b(EMFILE|ENFILE)\b/.test(e.message)) return "resource-exhausted";
  }
  return "internal";
}

export function isNotFound(err: unknown): boolean {
  return errorKind(err) === "not-found";
}

/** The message of any thrown value, for logs and statuses. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

const CLASSES: Record<ErrorKind, new (message: string, options?: { cause?: unknown }) => BerthError> = {
  "invalid-argument": InvalidArgumentError,
  "not-found": NotFoundError,
  "already-exists": AlreadyExistsError,
  "failed-precondition": FailedPreconditionError,
  unavailable: UnavailableError,
  "deadline-exceeded": DeadlineExceededError,
  unimplemented: UnimplementedError,
  "permission-denied": PermissionDeniedError,
  "resource-exhausted": ResourceExhaustedError,
  aborted: AbortedError,
  cancelled: CancelledError,
  internal: InternalError,
};

/** A new error of the given kind: for code that rewords an error and keeps its kind. */
export function errorOfKind(kind: ErrorKind, message: string, options?: { cause?: unknown }): BerthError {
  return new CLASSES[kind](message, options);
}
