import type { ServerUnaryCall, ServerWritableStream, sendUnaryData, ServiceError } from "@grpc/grpc-js";
import { GrpcStatus } from "./grpc-status.js";
import { errorKind, errorMessage, UnavailableError, type ErrorKind } from "../errdefs/index.js";
import { logger, rootLogger, withLogFields } from "../log/index.js";
import { rpcErrors, rpcInflightCount, rpcLatency, rpcRequests } from "../metrics/index.js";

/** What a handler gets besides its request: a signal for the call's deadline and cancellation. */
export interface CallContext {
  signal: AbortSignal;
  reqId: string;
  method: string;
}

export type UnaryImpl<Req, Res> = (req: Req, ctx: CallContext) => Promise<Res>;
/**
 * A server-streaming implementation. `write` returns false when the client is not keeping up;
 * `drained()` then resolves once the call's send buffer emptied (or the call ended): await it
 * before writing more so a slow client cannot grow memory without bound.
 */
export type StreamImpl<Req, Res> = (req: Req, write: (msg: Res) => boolean, ctx: CallContext, drained: () => Promise<void>) => Promise<void>;

/** The single mapping from error kinds to gRPC status codes. */
const CODES: Record<ErrorKind, GrpcStatus> = {
  "invalid-argument": GrpcStatus.INVALID_ARGUMENT,
  "not-found": GrpcStatus.NOT_FOUND,
  "already-exists": GrpcStatus.ALREADY_EXISTS,
  "failed-precondition": GrpcStatus.FAILED_PRECONDITION,
  unavailable: GrpcStatus.UNAVAILABLE,
  "deadline-exceeded": GrpcStatus.DEADLINE_EXCEEDED,
  unimplemented: GrpcStatus.UNIMPLEMENTED,
  "permission-denied": GrpcStatus.PERMISSION_DENIED,
  "resource-exhausted": GrpcStatus.RESOURCE_EXHAUSTED,
  aborted: GrpcStatus.ABORTED,
  cancelled: GrpcStatus.CANCELLED,
  internal: GrpcStatus.INTERNAL,
};

export function grpcCodeOf(err: unknown): GrpcStatus {
  return CODES[errorKind(err)];
}

/**
 * Longest status message sent. The message travels in the grpc-message trailer: one far larger
 * (an error quoting a 100 KB id back) exceeds HTTP/2's header limits, the client never sees the
 * status and the call hangs until its deadline.
 */
export const MAX_STATUS_MESSAGE = 2048;

export function toServiceError(err: unknown): Partial<ServiceError> {
  let details = errorMessage(err);
  if (details.length > MAX_STATUS_MESSAGE) details = `${details.slice(0, MAX_STATUS_MESSAGE)}… (${details.length - MAX_STATUS_MESSAGE} more characters)`;
  const code: number = grpcCodeOf(err);
  return { code, details };
}

/** Daemon-wide readiness: calls that arrive before start-up recovery finished wait for it (bounded). */
export class ReadinessGate {
  #ready = false;
  #waiters: Array<() => void> = [];

  get isOpen(): boolean {
    return this.#ready;
  }

  open(): void {
    this.#ready = true;
    for (const w of this.#waiters) w();
    this.#waiters = [];
  }

  async wait(signal: AbortSignal): Promise<void> {
    if (this.#ready) return;
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(new UnavailableError("berthd is still starting up (recovering state); retry"));
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      });
    });
  }
}

/** Tracks in-flight calls so shutdown can drain them. */
export class InflightTracker {
  #count = 0;
  #idle: Array<() => void> = [];

  enter(): void {
    this.#count++;
  }

  leave(): void {
    this.#count--;
    if (this.#count === 0) {
      for (const w of this.#idle) w();
      this.#idle = [];
    }
  }

  get count(): number {
    return this.#count;
  }

  /** Resolves when no call is in flight, or after timeoutMs (returns false then). */
  drained(timeoutMs: number): Promise<boolean> {
    if (this.#count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      t.unref();
      this.#idle.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }
}

export interface InstrumentOptions {
  service: string;
  gate: ReadinessGate;
  inflight: InflightTracker;
  /** Methods that answer before recovery finished (Version, Status). */
  ungated?: ReadonlySet<string>;
  /** Called when a call that is not a polled read (a pod/container/image change, an exec) ends. */
  onWorkDone?: () => void;
}

/** Methods whose calls are logged at debug level: the kubelet polls them constantly. */
const QUIET = new Set(["Version", "Status", "ListPodSandbox", "ListContainers", "ListImages", "ImageFsInfo", "ContainerStatus", "PodSandboxStatus", "ImageStatus", "ListContainerStats", "ListPodSandboxStats", "ContainerStats", "PodSandboxStats", "ListPodSandboxMetrics", "ListMetricDescriptors"]);

/**
 * The AbortSignal of a call (its deadline and the client's cancel), made on first use: most
 * reads never look at it, and an AbortController plus a deadline timer per call is a
 * measurable share of a List call. grpc-js reports every stream close as "cancelled",
 * finished calls included, so `done()` stops listening first.
 */
class CallSignal {
  #ac: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;
  #cancelled = false;
  readonly #onCancel = (): void => {
    this.#cancelled = true;
    this.#ac?.abort(new DOMException("the client cancelled the call", "AbortError"));
  };

  constructor(private readonly call: { cancelled: boolean; getDeadline(): Date | number; on(ev: "cancelled", fn: () => void): unknown; removeListener(ev: "cancelled", fn: () => void): unknown }) {
    call.on("cancelled", this.#onCancel);
    if (call.cancelled) this.#cancelled = true;
  }

  get signal(): AbortSignal {
    if (this.#ac) return this.#ac.signal;
    const ac = (this.#ac = new AbortController());
    if (this.#cancelled) {
      ac.abort(new DOMException("the client cancelled the call", "AbortError"));
      return ac.signal;
    }
    const deadline = this.call.getDeadline();
    const ms = deadline instanceof Date ? deadline.getTime() : deadline;
    if (Number.isFinite(ms) && ms > 0) {
      this.#timer = setTimeout(() => ac.abort(new DOMException("the call's deadline passed", "TimeoutError")), Math.max(0, ms - Date.now()));
      this.#timer.unref();
    }
    return ac.signal;
  }

  done(): void {
    this.call.removeListener("cancelled", this.#onCancel);
    if (this.#timer) clearTimeout(this.#timer);
  }
}

/**
 * A class, not an object literal with a getter: each literal with its own getter closure
 * gets its own hidden class, whose descriptors (in old space) keep the call's young
 * objects alive through every scavenge. That made 30 % of each scavenge survive (2 MB
 * promoted per 500 calls, a full GC every few seconds); with the class, under 1 %.
 */
class Context implements CallContext {
  constructor(
    private readonly cs: CallSignal,
    readonly reqId: string,
    readonly method: string,
  ) {}

  get signal(): AbortSignal {
    return this.cs.signal;
  }
}

function identify(req: unknown): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  if (req && typeof req === "object") {
    const r = req as Record<string, unknown>;
    if (typeof r["podSandboxId"] === "string" && r["podSandboxId"]) fields["podSandboxId"] = r["podSandboxId"];
    if (typeof r["containerId"] === "string" && r["containerId"]) fields["containerId"] = r["containerId"];
    const image = r["image"] as { image?: unknown } | undefined;
    if (image && typeof image.image === "string" && image.image) fields["image"] = image.image;
  }
  return fields;
}

/** gRPC status names by code, for the metrics' code label (GrpcStatus[code] is a keyed lookup on the enum object). */
const CODE_NAMES: readonly string[] = Array.from({ length: 17 }, (_, c) => GrpcStatus[c] ?? String(c));

type Outcome<T> = { ok: true; value: T } | { ok: false; err: unknown };

/**
 * Request ids: 8 hex digits, a random start per process and then a counter, unique for
 * 2^32 calls of one daemon (a crypto.randomUUID per call cost more than the call's metrics).
 */
let nextReqId = (Math.random() * 0x1_0000_0000) >>> 0;
function newReqId(): string {
  nextReqId = (nextReqId + 1) >>> 0;
  return nextReqId.toString(16).padStart(8, "0");
}

/**
 * Runs a call: readiness gate, request id, request-scoped logger. `respond` sends the
 * outcome to the client first; metrics and the "call done" line come after it, off the
 * path the client waits on.
 */
async function instrumented<T>(opts: InstrumentOptions, method: string, req: unknown, cs: CallSignal, body: (ctx: CallContext) => Promise<T>, respond: (outcome: Outcome<T>) => void): Promise<void> {
  const reqId = newReqId();
  const started = performance.now();
  opts.inflight.enter();
  rpcInflightCount[opts.service] = (rpcInflightCount[opts.service] ?? 0) + 1;
  const quiet = QUIET.has(method);
  const fields = (): Record<string, unknown> => ({ rpc: method, reqId, ...identify(req) });
  const run = async (): Promise<void> => {
    let outcome: Outcome<T>;
    try {
      if (!opts.gate.isOpen && !opts.ungated?.has(method)) await opts.gate.wait(cs.signal);
      const ctx = new Context(cs, reqId, method);
      outcome = { ok: true, value: await body(ctx) };
    } catch (err) {
      outcome = { ok: false, err };
    }
    try {
      respond(outcome);
    } catch (err) {
      // The connection's writer does not throw; if it ever does, the call is still accounted for.
      logger().error({ err }, "sending the response failed");
    }
    const seconds = (performance.now() - started) / 1000;
    const code = outcome.ok ? GrpcStatus.OK : grpcCodeOf(outcome.err);
    const codeName = CODE_NAMES[code] ?? String(code);
    rpcRequests.inc({ service: opts.service, method, code: codeName });
    rpcLatency.observe({ service: opts.service, method }, seconds);
    rpcInflightCount[opts.service] = (rpcInflightCount[opts.service] ?? 1) - 1;
    opts.inflight.leave();
    if (!quiet) opts.onWorkDone?.();
    const durationMs = Math.round(seconds * 1000 * 10) / 10;
    if (outcome.ok) {
      if (quiet) logger().debug({ durationMs }, "call done");
      else logger().info({ durationMs }, "call done");
    } else {
      rpcErrors.inc({ service: opts.service, method, code: codeName });
      const level = code === GrpcStatus.INTERNAL ? "error" : code === GrpcStatus.NOT_FOUND && quiet ? "debug" : "warn";
      const log = quietScope ? logger().child(fields()) : logger();
      log[level]({ durationMs, code: codeName, err: outcome.err }, "call failed");
    }
  };
  // The polled reads (answered from memory, logging nothing of their own) skip the request-scoped
  // child logger unless their debug lines are wanted: building it costs more than the read.
  const quietScope = quiet && !rootLogger().isLevelEnabled("debug");
  return quietScope ? run() : withLogFields(fields(), run);
}

/** Wraps a unary implementation: readiness gate, request id, deadline/cancel signal, logs, metrics, error mapping. */
export function unary<Req, Res>(opts: InstrumentOptions, method: string, impl: UnaryImpl<Req, Res>) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    const cs = new CallSignal(call);
    void instrumented(opts, method, call.request, cs, (ctx) => impl(call.request, ctx), (outcome) => {
      cs.done();
      if (outcome.ok) callback(null, outcome.value);
      else callback(toServiceError(outcome.err));
    });
  };
}

/** Wraps a server-streaming implementation the same way; the stream ends when impl resolves. */
export function serverStream<Req, Res>(opts: InstrumentOptions, method: string, impl: StreamImpl<Req, Res>) {
  return (call: ServerWritableStream<Req, Res>): void => {
    const cs = new CallSignal(call);
    const drained = (): Promise<void> =>
      new Promise<void>((resolve) => {
        const signal = cs.signal;
        if (call.cancelled || signal.aborted || !call.writableNeedDrain) return resolve();
        const done = (): void => {
          call.off("drain", done);
          call.off("close", done);
          signal.removeEventListener("abort", done);
          resolve();
        };
        call.on("drain", done);
        call.on("close", done);
        signal.addEventListener("abort", done, { once: true });
      });
    void instrumented(opts, method, call.request, cs, (ctx) => impl(call.request, (msg) => call.write(msg), ctx, drained), (outcome) => {
      cs.done();
      if (outcome.ok) call.end();
      else if (!call.cancelled) call.emit("error", toServiceError(outcome.err));
    });
  };
}
