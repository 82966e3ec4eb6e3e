import { createHash } from "node:crypto";
import { Worker } from "node:worker_threads";
import type { IncomingMessage } from "node:http";
import type { Config, RegistryConfig } from "../config/index.js";
import { ContentVerificationError, type Ingest } from "../content/index.js";
import type { DownloadMessage, DownloadRequest } from "./download-worker.js";
import { DeadlineExceededError, FailedPreconditionError, InvalidArgumentError, NotFoundError, UnavailableError } from "../errdefs/index.js";
import { logger } from "../log/index.js";
import type { Agents} from "./http.js";
import { drain, HttpStatusError, isRetryable, readBody, send, SizeLimitError, withRetries, DEFAULT_RETRY, type RetryOptions } from "./http.js";
import { DEFAULT_DOMAIN, formatReference, type Reference } from "./reference.js";
import { cannotConnect, EndpointDenied, endpointsFailed, type Attempt } from "./registry-errors.js";
import { MANIFEST_ACCEPT } from "./manifest.js";

/** Credentials for one pull (from the CRI request or the registry's config). */
export interface Credentials {
  username?: string;
  password?: string;
  /** OAuth2 refresh token exchanged at the token endpoint. */
  identityToken?: string;
  /** A bearer token sent as is. */
  registryToken?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

/** One place an image can be fetched from: a mirror or the registry itself. */
export interface Endpoint {
  /** "http://127.0.0.1:5000" or "https://registry-1.docker.io" (+ optional path prefix). */
  base: string;
  /** Host used for credentials and TLS settings. */
  host: string;
  mirror: boolean;
  tls: { insecureSkipVerify: boolean; caFile: string };
  creds: Credentials | undefined;
}

const EMPTY_REGISTRY: RegistryConfig = { mirrors: [], plain_http: false, insecure_skip_verify: false, ca_file: "", username: "", password: "" };

function configCreds(rc: RegistryConfig): Credentials | undefined {
  return rc.username || rc.password ? { username: rc.username, password: rc.password } : undefined;
}

/** The endpoints of a registry domain: configured mirrors in order, then the registry itself. */
export function endpointsFor(domain: string, config: Config["image"], requestCreds: Credentials | undefined): Endpoint[] {
  const rc = config.registries[domain] ?? EMPTY_REGISTRY;
  const out: Endpoint[] = [];
  for (const m of rc.mirrors) {
    const withScheme = /^[a-z]+:\/\//i.test(m) ? m : `https://${m}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch (err) {
      throw new InvalidArgumentError(`mirror "${m}" of registry "${domain}" is not a URL`, { cause: err });
    }
    const mc = config.registries[url.host] ?? EMPTY_REGISTRY;
    const scheme = /^[a-z]+:\/\//i.test(m) ? url.protocol.replace(":", "") : mc.plain_http ? "http" : "https";
    const path = url.pathname.replace(/\/+$/, "").replace(/\/v2$/, "");
    out.push({
      base: `${scheme}://${url.host}${path}`,
      host: url.host,
      mirror: true,
      tls: { insecureSkipVerify: mc.insecure_skip_verify, caFile: mc.ca_file },
      creds: configCreds(mc),
    });
  }
  const apiHost = domain === DEFAULT_DOMAIN ? "registry-1.docker.io" : domain;
  out.push({
    base: `${rc.plain_http ? "http" : "https"}://${apiHost}`,
    host: domain,
    mirror: false,
    tls: { insecureSkipVerify: rc.insecure_skip_verify, caFile: rc.ca_file },
    creds: requestCreds ?? configCreds(rc),
  });
  return out;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses `Bearer realm="…",service="…",scope="…"`. */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2] ?? "")) !== null) params[(p[1] as string).toLowerCase()] = (p[2] ?? p[3] ?? "").replace(/\\(.)/g, "$1");
  return { scheme: (m[1] as string).toLowerCase(), params };
}

interface CachedToken {
  header: string;
  expires: number;
}

export interface RegistryClientOptions {
  config: Config["image"];
  agents: Agents;
  retry?: RetryOptions;
}

/** Talks the OCI distribution protocol to the endpoints of one repository for one pull. */
export class RepositoryClient {
  readonly #tokens = new Map<string, CachedToken>();
  readonly #retry: RetryOptions;
  #resolvedEndpoint: Endpoint | undefined;

  constructor(
    readonly ref: Reference,
    readonly endpoints: Endpoint[],
    private readonly opts: RegistryClientOptions,
    private readonly signal: AbortSignal,
  ) {
    this.#retry = { ...(opts.retry ?? DEFAULT_RETRY), signal };
  }

  get #stallMs(): number {
    return this.opts.config.stall_timeout_seconds * 1000;
  }

  #url(ep: Endpoint, path: string): URL {
    return new URL(`${ep.base}/v2/${this.ref.path}/${path}`);
  }

  /** GET with the endpoint's auth: answers 401 challenges once per request. */
  async #get(ep: Endpoint, url: URL, headers: Record<string, string>): Promise<IncomingMessage> {
    const agent = this.opts.agents.for(url, ep.tls);
    let auth = this.#tokens.get(ep.base);
    for (let round = 0; round < 2; round++) {
      const h = { ...headers };
      if (auth && auth.expires > Date.now()) h["authorization"] = auth.header;
      let res = await send(url, { headers: h, agent, signal: this.signal, timeoutMs: this.#stallMs });
      // Follow redirects (blob storage backends); credentials are not forwarded to another host.
      for (let hops = 0; res.statusCode !== undefined && [301, 302, 303, 307, 308].includes(res.statusCode) && hops < 5; hops++) {
        const loc = res.headers.location;
        await drain(res);
        if (!loc) throw new UnavailableError(`registry ${ep.host} redirected without a location`);
        const next = new URL(loc, url);
        const nh = { ...headers };
        if (next.host === url.host && h["authorization"]) nh["authorization"] = h["authorization"];
        res = await send(next, { headers: nh, agent: this.opts.agents.for(next, ep.tls), signal: this.signal, timeoutMs: this.#stallMs });
      }
      if (res.statusCode !== 401 || round === 1) return res;
      const challenge = parseChallenge(String(res.headers["www-authenticate"] ?? ""));
      await drain(res);
      if (!challenge) return send(url, { headers: h, agent, signal: this.signal, timeoutMs: this.#stallMs });
      auth = await this.#authorize(ep, challenge);
      this.#tokens.set(ep.base, auth);
    }
    throw new Error("unreachable");
  }

  async #authorize(ep: Endpoint, ch: Challenge): Promise<CachedToken> {
    const creds = ep.creds;
    const forever = Number.MAX_SAFE_INTEGER;
    if (ch.scheme === "basic") {
      if (!creds?.username && !creds?.password) throw this.#denied(ep, "the registry requires credentials (basic auth) and none were given");
      return { header: `Basic ${Buffer.from(`${creds.username ?? ""}:${creds.password ?? ""}`).toString("base64")}`, expires: forever };
    }
    if (ch.scheme !== "bearer") throw new UnavailableError(`registry ${ep.host} asks for unsupported auth scheme "${ch.scheme}"`);
    if (creds?.registryToken) return { header: `Bearer ${creds.registryToken}`, expires: forever };
    const realm = ch.params["realm"];
    if (!realm) throw new UnavailableError(`registry ${ep.host} sent a bearer challenge without a realm`);
    const scope = ch.params["scope"] ?? `repository:${this.ref.path}:pull`;
    const service = ch.params["service"];
    const tokenUrl = new URL(realm);
    const agent = this.opts.agents.for(tokenUrl, ep.tls);
    let res: IncomingMessage;
    if (creds?.identityToken) {
      const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: creds.identityToken, client_id: "berth", scope, ...(service ? { service } : {}) });
      res = await send(tokenUrl, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: form.toString(), agent, signal: this.signal, timeoutMs: this.#stallMs });
    } else {
      if (service) tokenUrl.searchParams.set("service", service);
      tokenUrl.searchParams.set("scope", scope);
      const headers: Record<string, string> = {};
      if (creds?.username || creds?.password) headers["authorization"] = `Basic ${Buffer.from(`${creds.username ?? ""}:${creds.password ?? ""}`).toString("base64")}`;
      res = await send(tokenUrl, { headers, agent, signal: this.signal, timeoutMs: this.#stallMs });
    }
    if (res.statusCode === 401 || res.statusCode === 403) {
      await drain(res);
      throw this.#denied(ep, `the token service at ${tokenUrl.host} refused ${creds ? "the credentials" : "anonymous access"} (HTTP ${res.statusCode})`);
    }
    if (res.statusCode !== 200) {
      const body = await drain(res);
      throw new HttpStatusError(`token service ${tokenUrl.host} answered HTTP ${res.statusCode}: ${body.slice(0, 200)}`, res.statusCode ?? 0, res.headers);
    }
    const json = JSON.parse((await readBody(res, 1 << 20, "token response")).toString("utf8")) as { token?: string; access_token?: string; expires_in?: number };
    const token = json.token ?? json.access_token;
    if (!token) throw new UnavailableError(`token service ${tokenUrl.host} returned no token`);
    const ttl = Math.max(30, json.expires_in ?? 60) * 1000;
    return { header: `Bearer ${token}`, expires: Date.now() + ttl - 5000 };
  }

  #denied(ep: Endpoint, why: string): EndpointDenied {
    return new EndpointDenied(`pull access denied for ${ep.host}/${this.ref.path}: ${why}`, why);
  }

  /** Maps a failed response to an error (HttpStatusError for retryable statuses). */
  async #fail(ep: Endpoint, res: IncomingMessage, what: string): Promise<never> {
    const body = await drain(res);
    const status = res.statusCode ?? 0;
    const detail = body.slice(0, 300).trim();
    if (status === 401 || status === 403) throw this.#denied(ep, `HTTP ${status}${detail ? `: ${detail}` : ""}`);
    if (status === 404) throw new NotFoundError(`${what} not found at ${ep.base}${detail ? `: ${detail}` : ""}`);
    throw new HttpStatusError(`${what}: ${ep.base} answered HTTP ${status}${detail ? `: ${detail}` : ""}`, status, res.headers);
  }

  /**
   * Tries each endpoint in order (each with retries) until one succeeds. An endpoint
   * that cannot be reached at all (DNS, refused, TLS) is left at once when another one
   * follows. When all fail, the error says what each answered (see endpointsFailed);
   * `what` names the object in logs and, when it is not the pulled reference itself,
   * in the error.
   */
  async #acrossEndpoints<T>(what: string, first: Endpoint | undefined, fn: (ep: Endpoint) => Promise<T>, object?: string): Promise<T> {
    const order = first ? [first, ...this.endpoints.filter((e) => e !== first)] : this.endpoints;
    const attempts: Attempt[] = [];
    for (const [i, ep] of order.entries()) {
      const more = i < order.length - 1;
      try {
        return await withRetries(() => fn(ep), {
          ...this.#retry,
          ...(more ? { retryable: (err: unknown) => isRetryable(err) && !cannotConnect(err) } : {}),
          onRetry: (err, attempt, delayMs) => logger().warn({ endpoint: ep.base, attempt, delayMs, err: String(err) }, `retrying ${what}`),
        });
      } catch (err) {
        if (this.signal.aborted || err instanceof DeadlineExceededError || err instanceof SizeLimitError || err instanceof FailedPreconditionError) throw err;
        attempts.push({ host: new URL(ep.base).host, configKey: ep.host, err });
        if (more) logger().warn({ endpoint: ep.base, err: String(err) }, `${what} failed at ${ep.mirror ? "mirror" : "registry"}; trying the next endpoint`);
      }
    }
    throw endpointsFailed(`pull ${JSON.stringify(formatReference(this.ref))}${object === undefined ? "" : ` (${object})`}`, attempts);
  }

  /** Resolves a tag or digest to the manifest (or index) it names. */
  async resolve(reference: string, maxBytes: number): Promise<{ desc: Descriptor; body: Buffer }> {
    const object = reference === this.ref.digest || reference === this.ref.tag ? undefined : `manifest ${reference}`;
    return this.#acrossEndpoints(`manifest ${this.ref.path}:${reference}`, undefined, async (ep) => {
      const res = await this.#get(ep, this.#url(ep, `manifests/${reference}`), { accept: MANIFEST_ACCEPT });
      if (res.statusCode !== 200) return this.#fail(ep, res, `manifest ${this.ref.domain}/${this.ref.path}:${reference}`);
      const mediaType = String(res.headers["content-type"] ?? "").split(";")[0]?.trim() ?? "";
      const body = await readBody(res, maxBytes, `manifest of ${this.ref.domain}/${this.ref.path}`).catch((err: unknown) => {
        if (err instanceof SizeLimitError) throw new FailedPreconditionError(err.message);
        throw err;
      });
      this.#resolvedEndpoint = ep;
      const digest = `sha256:${createHash("sha256").update(body).digest("hex")}`;
      return { desc: { mediaType, digest, size: body.length }, body };
    }, object);
  }

  /** Fetches a small blob (config) into memory, verified by the caller. */
  async fetchSmall(desc: Descriptor, maxBytes: number): Promise<Buffer> {
    if (desc.size > maxBytes) throw new FailedPreconditionError(`blob ${desc.digest} is ${desc.size} bytes, more than the limit of ${maxBytes}`);
    return this.#acrossEndpoints(`blob ${desc.digest}`, this.#resolvedEndpoint, async (ep) => {
      const res = await this.#get(ep, this.#url(ep, `blobs/${desc.digest}`), {});
      if (res.statusCode !== 200) return this.#fail(ep, res, `blob ${desc.digest}`);
      return readBody(res, maxBytes, `blob ${desc.digest}`);
    }, `blob ${desc.digest}`);
  }

  /**
   * Downloads a blob into an ingest, resuming from the ingest's offset with a Range
   * request after a broken connection. The bytes flow in a worker thread straight to the
   * ingest file; `onBytes` reports progress.
   */
  async fetchInto(desc: Descriptor, ingest: Ingest, onBytes: (n: number) => void): Promise<void> {
    await this.#acrossEndpoints(`blob ${desc.digest}`, this.#resolvedEndpoint, async (ep) => {
      for (let round = 0; round < 2; round++) {
        if (ingest.offset === desc.size) return;
        const offset = ingest.offset;
        const headers: Record<string, string> = {};
        const auth = this.#tokens.get(ep.base);
        if (auth && auth.expires > Date.now()) headers["authorization"] = auth.header;
        if (offset > 0) logger().info({ digest: desc.digest, offset, endpoint: ep.base }, "resuming blob download");
        const r = await runDownload(
          { url: this.#url(ep, `blobs/${desc.digest}`).toString(), headers, tls: ep.tls, path: ingest.path, offset, size: desc.size, stallMs: this.#stallMs, digest: desc.digest, nice: this.opts.config.pull_nice },
          this.signal,
          onBytes,
        );
        ingest.externalWrite(r.restarted, r.written, r.error ? undefined : r.digest);
        if (r.restarted) onBytes(-offset);
        if (r.error) {
          if (r.error.stall) throw new DeadlineExceededError(r.error.message);
          if (r.error.tooLarge) throw new ContentVerificationError(r.error.message);
          throw Object.assign(new Error(r.error.message), r.error.code ? { code: r.error.code } : {}, r.error.host ? { host: r.error.host } : {});
        }
        if (r.status === 200 || r.status === 206) return;
        if (r.status === 416) {
          ingest.externalWrite(true, 0);
          throw new HttpStatusError(`range not satisfiable for ${desc.digest}; restarting`, 503, {});
        }
        if (r.status === 401 && round === 0) {
          const challenge = parseChallenge(r.headers?.["www-authenticate"] ?? "");
          if (challenge) {
            this.#tokens.set(ep.base, await this.#authorize(ep, challenge));
            continue;
          }
        }
        const detail = (r.body ?? "").slice(0, 300).trim();
        if (r.status === 401 || r.status === 403) throw this.#denied(ep, `HTTP ${r.status}${detail ? `: ${detail}` : ""}`);
        if (r.status === 404) throw new NotFoundError(`blob ${desc.digest} not found at ${ep.base}${detail ? `: ${detail}` : ""}`);
        throw new HttpStatusError(`blob ${desc.digest}: ${ep.base} answered HTTP ${r.status}${detail ? `: ${detail}` : ""}`, r.status, {});
      }
    }, `blob ${desc.digest}`);
  }
}

const DOWNLOAD_WORKER = new URL("./download-worker.js", import.meta.url);

/** How long a download worker waits for the next blob before it ends. */
const DOWNLOAD_IDLE_MS = 5_000;
/** Download workers between two downloads. */
const idleDownloaders: Array<{ worker: Worker; timer: NodeJS.Timeout }> = [];

/**
 * Runs one download attempt in a worker thread; the signal terminates it. A worker that
 * finished its download is kept for the next one (a pull's layers follow one another) and
 * ends after DOWNLOAD_IDLE_MS without work: ending a thread holds up the event loop while
 * it joins, so it happens after a pull, not between its layers.
 */
function runDownload(req: DownloadRequest, signal: AbortSignal, onBytes: (n: number) => void): Promise<Extract<DownloadMessage, { type: "done" }>> {
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const idle = idleDownloaders.pop();
    let w: Worker;
    if (idle) {
      clearTimeout(idle.timer);
      w = idle.worker;
      w.ref();
      w.postMessage(req);
    } else {
      w = new Worker(DOWNLOAD_WORKER, { workerData: req });
      // a worker that ends while idle must not be handed the next download
      w.once("exit", () => {
        const i = idleDownloaders.findIndex((e) => e.worker === w);
        if (i >= 0) {
          clearTimeout(idleDownloaders[i]?.timer);
          idleDownloaders.splice(i, 1);
        }
      });
    }
    let done = false;
    const finish = (fn: () => void, reusable: boolean): void => {
      if (done) return;
      done = true;
      signal.removeEventListener("abort", onAbort);
      w.off("message", onMessage);
      w.off("error", onError);
      w.off("exit", onExit);
      fn();
      if (!reusable) {
        void w.terminate();
        return;
      }
      w.unref();
      const entry = {
        worker: w,
        timer: setTimeout(() => {
          const i = idleDownloaders.indexOf(entry);
          if (i >= 0) idleDownloaders.splice(i, 1);
          void w.terminate();
        }, DOWNLOAD_IDLE_MS),
      };
      entry.timer.unref();
      idleDownloaders.push(entry);
    };
    const onAbort = (): void => finish(() => reject(signal.reason as Error), false);
    const onMessage = (m: DownloadMessage): void => {
      if (m.type === "progress") onBytes(m.bytes);
      // after a failed attempt the worker is not reused (its connection may still be closing)
      else finish(() => resolve(m), m.error === undefined);
    };
    const onError = (err: Error): void => finish(() => reject(err), false);
    const onExit = (code: number): void => finish(() => reject(new Error(`download worker exited (code ${code}) without a result`)), false);
    signal.addEventListener("abort", onAbort, { once: true });
    w.on("message", onMessage);
    w.on("error", onError);
    w.on("exit", onExit);
  });
}

export { isRetryable };
