// Worker thread that downloads one blob (one attempt) straight into an ingest
// file, so the bytes of a pull never pass through berthd's event loop. The main
// thread handles auth, retries, endpoint fallback and verification. The bytes are
// hashed here as they arrive (the file is never read back to hash it); the main
// thread compares the digest with the descriptor's.
import { createHash } from "node:crypto";
import { closeSync, ftruncateSync, openSync, readFileSync, readSync, writeSync } from "node:fs";
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { rootCertificates } from "node:tls";
import { parentPort, workerData } from "node:worker_threads";
import { lowerThreadPriority } from "../sys/index.js";

export interface DownloadRequest {
  url: string;
  headers: Record<string, string>;
  tls: { insecureSkipVerify: boolean; caFile: string };
  path: string;
  /** Bytes already in the file (a Range request resumes after them). */
  offset: number;
  size: number;
  stallMs: number;
  digest: string;
  /** Nice value of this thread (image.pull_nice; see apply-worker.ts). */
  nice: number;
}

export type DownloadMessage =
  | { type: "progress"; bytes: number }
  | {
      type: "done";
      /** The server ignored the Range request: the file was restarted from zero. */
      restarted: boolean;
      /** Bytes appended to the file by this attempt (after a restart: from zero). */
      written: number;
      status: number;
      /** sha256 of the whole file (its bytes 0 to start + written) when the attempt received the body without error. */
      digest?: string;
      headers?: Record<string, string>;
      body?: string;
      /** `host`: the host a connection error came from (the registry or the blob store it redirected to). */
      error?: { message: string; code?: string; host?: string; stall?: boolean; tooLarge?: boolean };
    };

// One download at a time per worker; a worker serves many (see runDownload): starting a
// worker costs its module loads, and ending one makes berthd's event loop wait for the thread.
let req = workerData as DownloadRequest;
const post = (m: DownloadMessage): void => parentPort?.postMessage(m);

// The nice value is set once: a worker serves the downloads of one daemon (one config).
lowerThreadPriority(req.nice);

function headersOf(res: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}

function send(url: URL, headers: Record<string, string>): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const https = url.protocol === "https:";
    const agent = https
      ? new HttpsAgent({ rejectUnauthorized: !req.tls.insecureSkipVerify, ...(req.tls.caFile ? { ca: [...rootCertificates, readFileSync(req.tls.caFile, "utf8")] } : {}) })
      : new HttpAgent();
    const r = (https ? httpsRequest : httpRequest)(url, { headers: { "user-agent": "berth/0.1", ...headers }, agent });
    const t = setTimeout(() => r.destroy(Object.assign(new Error(`no response from ${url.host} within ${req.stallMs} ms`), { code: "ETIMEDOUT" })), req.stallMs);
    r.once("response", (res) => {
      clearTimeout(t);
      resolve(res);
    });
    r.once("error", (err) => {
      clearTimeout(t);
      reject(Object.assign(err, { host: url.host }));
    });
    r.end();
  });
}

async function readSmall(res: IncomingMessage): Promise<string> {
  let s = "";
  for await (const c of res) {
    if (s.length < 2000) s += (c as Buffer).toString("utf8");
  }
  return s.slice(0, 2000);
}

async function main(): Promise<void> {
  let url = new URL(req.url);
  const headers = { ...req.headers };
  if (req.offset > 0) headers["range"] = `bytes=${req.offset}-`;
  let res = await send(url, headers);
  for (let hops = 0; res.statusCode !== undefined && [301, 302, 303, 307, 308].includes(res.statusCode) && hops < 5; hops++) {
    const loc = res.headers.location;
    res.resume();
    if (!loc) break;
    const next = new URL(loc, url);
    if (next.host !== url.host) delete headers["authorization"];
    url = next;
    res = await send(url, headers);
  }
  const status = res.statusCode ?? 0;
  let restarted = false;
  if (status === 206) {
    const m = /bytes (\d+)-/.exec(String(res.headers["content-range"] ?? ""));
    if (!m || Number(m[1]) !== req.offset) {
      res.resume();
      return post({ type: "done", restarted: false, written: 0, status: 503, body: "unexpected Content-Range; restarting" });
    }
  } else if (status === 200) {
    restarted = req.offset > 0;
  } else {
    return post({ type: "done", restarted: false, written: 0, status, headers: headersOf(res), body: await readSmall(res) });
  }
  const start = restarted ? 0 : req.offset;
  const fd = openSync(req.path, "r+");
  let written = 0;
  let unreported = 0;
  let lastReport = Date.now();
  const hash = createHash("sha256");
  try {
    // Whatever lies past our start (a restart, stale bytes) goes: the file is exactly what was verified so far.
    ftruncateSync(fd, start);
    // a resumed download: the bytes already there are hashed first
    if (start > 0) {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (let pos = 0; pos < start; ) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, start - pos), pos);
        if (n <= 0) throw new Error(`${req.path} is shorter than the ${start} bytes it held`);
        hash.update(buf.subarray(0, n));
        pos += n;
      }
    }
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => res.destroy(Object.assign(new Error(`download of ${req.digest} received no bytes for ${req.stallMs / 1000} s`), { stall: true })), req.stallMs);
    };
    arm();
    try {
      for await (const chunk of res) {
        arm();
        const c = chunk as Buffer;
        if (start + written + c.length > req.size) {
          throw Object.assign(new Error(`blob ${req.digest} is larger than its descriptor says (${req.size} bytes)`), { tooLarge: true });
        }
        let off = 0;
        while (off < c.length) off += writeSync(fd, c, off, c.length - off, start + written + off);
        hash.update(c);
        written += c.length;
        unreported += c.length;
        if (Date.now() - lastReport >= 100) {
          post({ type: "progress", bytes: unreported });
          unreported = 0;
          lastReport = Date.now();
        }
      }
      if (!res.complete) throw Object.assign(new Error(`connection closed in the middle of blob ${req.digest}`), { code: "ECONNRESET" });
    } finally {
      if (timer) clearTimeout(timer);
    }
    if (unreported > 0) post({ type: "progress", bytes: unreported });
    post({ type: "done", restarted, written, status, digest: `sha256:${hash.digest("hex")}` });
  } catch (err) {
    if (unreported > 0) post({ type: "progress", bytes: unreported });
    const e = err as NodeJS.ErrnoException & { stall?: boolean; tooLarge?: boolean; host?: string };
    const error: { message: string; code?: string; host?: string; stall?: boolean; tooLarge?: boolean } = { message: e.message ?? String(err) };
    if (e.code) error.code = e.code;
    if (e.host) error.host = e.host;
    if (e.stall) error.stall = true;
    if (e.tooLarge) error.tooLarge = true;
    post({ type: "done", restarted, written, status, error });
  } finally {
    closeSync(fd);
  }
}

function run(): void {
  main().catch((err: unknown) => {
    const e = err as NodeJS.ErrnoException & { host?: string };
    post({ type: "done", restarted: false, written: 0, status: 0, error: { message: e.message ?? String(err), ...(e.code ? { code: e.code } : {}), ...(e.host ? { host: e.host } : {}) } });
  });
}

// the first request comes as workerData, the next ones as messages (each after the previous "done")
run();
parentPort?.on("message", (next: DownloadRequest) => {
  req = next;
  run();
});
