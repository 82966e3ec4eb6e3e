import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { readFileSync } from "node:fs";
import { rootCertificates } from "node:tls";
import { setTimeout as sleep } from "node:timers/promises";
import { BerthError, errorMessage, UnavailableError } from "../errdefs/index.js";

/**
 * An HTTP failure status from a registry (kept for retry decisions and messages). Once retries
 * are spent it is registry trouble, which a client can retry later: Unavailable, not Internal.
 */
export class HttpStatusError extends UnavailableError {
  constructor(
    message: string,
    readonly status: number,
    readonly headers: IncomingHttpHeaders,
  ) {
    super(message);
    this.name = "HttpStatusError";
  }
}

export interface TlsOptions {
  insecureSkipVerify: boolean;
  caFile: string;
}

/** Keep-alive agents, one per TLS setting, shared by every pull. */
export class Agents {
  readonly #http = new HttpAgent({ keepAlive: true, maxSockets: 16, keepAliveMsecs: 15_000 });
  readonly #https = new Map<string, HttpsAgent>();

  for(url: URL, tls: TlsOptions): HttpAgent | HttpsAgent {
    if (url.protocol === "http:") return this.#http;
    const key = `${tls.insecureSkipVerify}|${tls.caFile}`;
    let a = this.#https.get(key);
    if (!a) {
      const ca = tls.caFile ? [...rootCertificates, readFileSync(tls.caFile, "utf8")] : undefined;
      a = new HttpsAgent({ keepAlive: true, maxSockets: 16, keepAliveMsecs: 15_000, rejectUnauthorized: !tls.insecureSkipVerify, ...(ca ? { ca } : {}) });
      this.#https.set(key, a);
    }
    return a;
  }

  destroy(): void {
    this.#http.destroy();
    for (const a of this.#https.values()) a.destroy();
  }
}

export interface SendOptions {
  method?: "GET" | "HEAD" | "POST";
  headers?: Record<string, string>;
  body?: string;
  agent: HttpAgent | HttpsAgent;
  signal?: AbortSignal;
  /** No response headers within this time → error (retryable). */
  timeoutMs?: number;
}

/** One HTTP request; resolves with the response (body unread). */
export function send(url: URL, opts: SendOptions): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const fn = url.protocol === "https:" ? httpsRequest : httpRequest;
    const headers: Record<string, string> = { "user-agent": "berth/0.1", ...opts.headers };
    if (opts.body !== undefined) headers["content-length"] = String(Buffer.byteLength(opts.body));
    const req = fn(url, { method: opts.method ?? "GET", headers, agent: opts.agent, ...(opts.signal ? { signal: opts.signal } : {}) });
    const t = opts.timeoutMs
      ? setTimeout(() => req.destroy(Object.assign(new Error(`no response from ${url.host} within ${opts.timeoutMs} ms`), { code: "ETIMEDOUT" })), opts.timeoutMs)
      : undefined;
    req.once("response", (res) => {
      if (t) clearTimeout(t);
      // A body that stops arriving for as long is an error too (retryable).
      if (opts.timeoutMs) {
        const ms = opts.timeoutMs;
        res.setTimeout(ms, () => res.destroy(Object.assign(new Error(`${url.host} sent no bytes for ${ms} ms`), { code: "ETIMEDOUT" })));
      }
      resolve(res);
    });
    req.once("error", (err) => {
      if (t) clearTimeout(t);
      reject(err);
    });
    req.end(opts.body);
  });
}

/** Reads a whole (small) body, refusing more than maxBytes. */
export async function readBody(res: IncomingMessage, maxBytes: number, what: string): Promise<Buffer> {
  const len = Number(res.headers["content-length"] ?? NaN);
  if (Number.isFinite(len) && len > maxBytes) {
    res.destroy();
    throw new SizeLimitError(`${what} is ${len} bytes, more than the limit of ${maxBytes}`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res) {
    n += (c as Buffer).length;
    if (n > maxBytes) {
      res.destroy();
      throw new SizeLimitError(`${what} is more than the limit of ${maxBytes} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

export class SizeLimitError extends Error {
  override name = "SizeLimitError";
}

export async function drain(res: IncomingMessage): Promise<string> {
  try {
    return (await readBody(res, 64 * 1024, "error body")).toString("utf8");
  } catch {
    return "";
  }
}

const RETRYABLE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EAI_AGAIN", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "ECONNABORTED", "ERR_STREAM_PREMATURE_CLOSE", "UND_ERR_SOCKET"]);

/** Connection errors, 5xx and 429 are worth another try; everything else is final. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof HttpStatusError) return err.status >= 500 || err.status === 429 || err.status === 408;
  const e = err as NodeJS.ErrnoException | undefined;
  if (!e || typeof e !== "object") return false;
  if (e.name === "AbortError") return false;
  if (e.code && RETRYABLE_CODES.has(e.code)) return true;
  return /socket hang up|aborted|premature close|other side closed/i.test(e.message ?? "");
}

export interface RetryOptions {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  signal?: AbortSignal;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

export const DEFAULT_RETRY: RetryOptions = { attempts: 8, baseDelayMs: 250, maxDelayMs: 4000 };

/**
 * Runs fn, retrying retryable failures with exponential backoff and jitter. A connection
 * failure (refused, reset, unresolvable host) that outlasts the retries is registry trouble:
 * it is rethrown as Unavailable, with the same message.
 */
export async function withRetries<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  let last: unknown;
  for (let attempt = 0; attempt < opts.attempts; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      last = err;
      if (!isRetryable(err)) throw err;
      if (attempt === opts.attempts - 1) throw err instanceof BerthError ? err : new UnavailableError(errorMessage(err), { cause: err });
      opts.signal?.throwIfAborted();
      const delay = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** attempt) * (0.75 + Math.random() * 0.5);
      opts.onRetry?.(err, attempt + 1, Math.round(delay));
      await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : {});
    }
  }
  throw last;
}
