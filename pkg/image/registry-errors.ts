// Turns what went wrong talking to registries into errors a user can act on:
// transport failures (DNS, refused connections, TLS, timeouts) become
// Unavailable with the host and the cause in words, and a pull that tried
// several endpoints (mirrors, then the registry) says what each one answered.

import { BerthError, errorOfKind, InternalError, NotFoundError, PermissionDeniedError, UnavailableError } from "../errdefs/index.js";
import { HttpStatusError } from "./http.js";

/** Node's error codes for failures to reach a host, in words. */
const NETWORK_WORDS: Record<string, string> = {
  ENOTFOUND: "DNS lookup failed",
  EAI_AGAIN: "DNS lookup failed temporarily",
  EAI_FAIL: "DNS lookup failed",
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ECONNABORTED: "connection aborted",
  EPIPE: "connection closed",
  EHOSTUNREACH: "host unreachable",
  EHOSTDOWN: "host is down",
  ENETUNREACH: "network unreachable",
  ENETDOWN: "network is down",
  ETIMEDOUT: "timed out",
  EADDRNOTAVAIL: "no local address to connect from",
  ERR_STREAM_PREMATURE_CLOSE: "connection closed early",
  UND_ERR_SOCKET: "connection closed",
};

/** OpenSSL's certificate verification codes (as Node reports them), in words. */
const TLS_WORDS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: "TLS certificate is self-signed and not trusted",
  SELF_SIGNED_CERT_IN_CHAIN: "TLS certificate chain ends in an untrusted self-signed certificate",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "TLS certificate cannot be verified (its issuer is unknown)",
  UNABLE_TO_GET_ISSUER_CERT: "TLS certificate cannot be verified (its issuer is unknown)",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "TLS certificate cannot be verified (its issuer is not trusted here)",
  CERT_HAS_EXPIRED: "TLS certificate has expired",
  CERT_NOT_YET_VALID: "TLS certificate is not valid yet",
  CERT_REVOKED: "TLS certificate is revoked",
  CERT_UNTRUSTED: "TLS certificate is not trusted",
  CERT_SIGNATURE_FAILURE: "TLS certificate signature is invalid",
  ERR_TLS_CERT_ALTNAME_INVALID: "TLS certificate does not name this host",
};

const PLAIN_HTTP = "TLS handshake failed: the registry answers in plain HTTP (set plain_http for it if that is intended)";

export interface Unreachable {
  /** The host that could not be reached (a registry, a token service, a blob store it redirects to). */
  host: string | undefined;
  /** The cause in words, e.g. "connection refused". */
  words: string;
  /** Node's code, e.g. "ECONNREFUSED". */
  code: string;
  tls: boolean;
  /** The certificate could not be verified: trusting a CA is the fix. */
  certificate: boolean;
}

/** Describes a failure to reach a host, or undefined when the error is something else (an HTTP answer, a bug). */
export function unreachable(err: unknown): Unreachable | undefined {
  if (err === null || typeof err !== "object" || err instanceof BerthError || err instanceof HttpStatusError) return undefined;
  const e = err as NodeJS.ErrnoException & { host?: unknown; hostname?: unknown };
  const host = typeof e.host === "string" ? e.host : typeof e.hostname === "string" ? e.hostname : undefined;
  const code = typeof e.code === "string" ? e.code : undefined;
  const message = typeof e.message === "string" ? e.message : "";
  if (code !== undefined) {
    const cert = TLS_WORDS[code];
    if (cert !== undefined) return { host, words: cert, code, tls: true, certificate: true };
    // OpenSSL 3 reports a plain-HTTP answer to a TLS hello as EPROTO "wrong version number"
    if (code === "ERR_SSL_WRONG_VERSION_NUMBER" || (code === "EPROTO" && /wrong version number/i.test(message))) return { host, words: PLAIN_HTTP, code, tls: true, certificate: false };
    if (code === "EPROTO" || /^ERR_SSL_|^ERR_TLS_/.test(code)) return { host, words: "TLS handshake failed", code, tls: true, certificate: false };
    if (code === "ECONNRESET" && /socket hang up/i.test(message)) return { host, words: "connection closed by the server", code, tls: false, certificate: false };
    const words = NETWORK_WORDS[code];
    if (words !== undefined) return { host, words, code, tls: false, certificate: false };
  }
  if (/socket hang up|other side closed|premature close/i.test(message)) return { host, words: "connection closed by the server", code: code ?? "ECONNRESET", tls: false, certificate: false };
  return undefined;
}

/** True for failures to reach a host at all, where another attempt at once is unlikely to help. */
export function cannotConnect(err: unknown): boolean {
  const u = unreachable(err);
  return u !== undefined && (u.tls || ["ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EHOSTDOWN", "ENETDOWN", "EADDRNOTAVAIL"].includes(u.code));
}

/** One endpoint's failed answer. */
export interface Attempt {
  /** The endpoint's host as dialled, e.g. "registry-1.docker.io" or "mirror.local:5000". */
  host: string;
  /** The registry domain whose settings (ca_file, plain_http) apply to the endpoint. */
  configKey: string;
  err: unknown;
}

function tlsHint(a: Attempt): string {
  return `; trust its CA with image.registries."${a.configKey}".ca_file`;
}

/** "cannot reach registry gcr.io: DNS lookup failed (ENOTFOUND)", for one endpoint that could not be reached. */
function unreachableMessage(a: Attempt, u: Unreachable): string {
  const hint = u.certificate ? tlsHint(a) : "";
  if (u.host === undefined || sameHost(u.host, a.host)) return `cannot reach registry ${a.host}: ${u.words} (${u.code})${hint}`;
  return `cannot reach ${u.host} (used by registry ${a.host}): ${u.words} (${u.code})${hint}`;
}

function sameHost(h: string, endpointHost: string): boolean {
  return h === endpointHost || endpointHost.startsWith(`${h}:`) || endpointHost.replace(/^\[|\](:\d+)?$/g, "") === h;
}

/** What an endpoint answered, in a few words, for the list of endpoints tried. */
function answer(a: Attempt): string {
  const u = unreachable(a.err);
  if (u !== undefined) return u.host === undefined || sameHost(u.host, a.host) ? u.words : `${u.host}: ${u.words}`;
  if (a.err instanceof EndpointDenied) return `access denied: ${a.err.why}`;
  if (a.err instanceof NotFoundError) return "not found";
  if (a.err instanceof HttpStatusError) return `HTTP ${a.err.status}`;
  const msg = a.err instanceof Error ? a.err.message : String(a.err);
  return msg.length > 160 ? `${msg.slice(0, 157)}...` : msg;
}

/** Access refused by one endpoint; `why` is the short reason used when several endpoints are listed. */
export class EndpointDenied extends PermissionDeniedError {
  constructor(
    message: string,
    readonly why: string,
  ) {
    super(message);
    this.name = "PermissionDeniedError"; // what logs and clients know it as
  }
}

/** Registry trouble worth telling apart from a bug: cannot connect, or an HTTP error status. */
function isRegistryTrouble(err: unknown): boolean {
  return unreachable(err) !== undefined || err instanceof HttpStatusError || err instanceof UnavailableError;
}

/**
 * The error for a request that failed at every endpoint. `subject` says what was
 * asked for, e.g. `pull "docker.io/library/busybox:latest"`. With one endpoint its
 * own error stands (made Unavailable when it is registry trouble); with several, the
 * message lists what each answered and the code is the most relevant one: NotFound
 * only when every endpoint said not found, PermissionDenied when one refused access,
 * Unavailable when one could not be reached or failed.
 */
export function endpointsFailed(subject: string, attempts: readonly Attempt[]): Error {
  const last = attempts[attempts.length - 1];
  if (last === undefined) return new InternalError(`${subject}: no registry endpoint to try`);
  if (attempts.length === 1) {
    const u = unreachable(last.err);
    if (u !== undefined) return new UnavailableError(`${subject}: ${unreachableMessage(last, u)}`, { cause: last.err });
    if (last.err instanceof HttpStatusError) return new UnavailableError(`${subject}: ${last.err.message}`, { cause: last.err });
    return last.err instanceof Error ? last.err : new InternalError(String(last.err));
  }
  const message = `${subject}: tried ${attempts.map((a) => `${a.host} (${answer(a)})`).join(", ")}`;
  const errs = attempts.map((a) => a.err);
  const cause = new AggregateError(errs, message);
  if (errs.every((e) => e instanceof NotFoundError)) return new NotFoundError(message, { cause });
  if (errs.some((e) => e instanceof PermissionDeniedError)) return new PermissionDeniedError(message, { cause });
  if (errs.some(isRegistryTrouble)) return new UnavailableError(message, { cause });
  // otherwise the last endpoint's kind (e.g. FailedPrecondition), with the whole story
  if (last.err instanceof BerthError) return errorOfKind(last.err.kind, message, { cause });
  return new InternalError(message, { cause });
}
