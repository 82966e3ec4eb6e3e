// Registry failures a user can act on, over real loopback sockets: refused
// ports, names that do not resolve, TLS trouble, and mirrors in front of a
// registry. The only name lookups are for the reserved .invalid TLD.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../config/index.js";
import { NotFoundError, PermissionDeniedError, UnavailableError } from "../errdefs/index.js";
import { setRootLogger } from "../log/index.js";
import { Agents } from "./http.js";
import { parseReference } from "./reference.js";
import { endpointsFor, RepositoryClient } from "./registry.js";

setRootLogger({ level: "silent" });

const MANIFEST = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: {}, layers: [] }));
const agents = new Agents();
after(() => agents.destroy());

/** A registry that serves team/app:v1, or answers every request with `status`. */
async function registry(status = 200): Promise<{ host: string; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    hits++;
    if (status === 200 && req.url === "/v2/team/app/manifests/v1") {
      res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json", "content-length": String(MANIFEST.length) });
      return void res.end(MANIFEST);
    }
    if (status === 401) return void res.writeHead(401, { "www-authenticate": 'Basic realm="test"' }).end();
    res.writeHead(status === 200 ? 404 : status, { "content-type": "application/json" }).end(JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return { host: `127.0.0.1:${port}`, hits: () => hits, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** A loopback port nothing listens on: bound, then closed. */
async function refusedHost(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return `127.0.0.1:${port}`;
}

function client(domain: string, toml: string, attempts = 3): RepositoryClient {
  const cfg = parseConfig(toml);
  const ref = parseReference(`${domain}/team/app:v1`);
  return new RepositoryClient(ref, endpointsFor(ref.domain, cfg.image, undefined), { config: cfg.image, agents, retry: { attempts, baseDelayMs: 10, maxDelayMs: 20 } }, AbortSignal.timeout(20_000));
}

function plain(...hosts: string[]): string {
  return hosts.map((h) => `[image.registries."${h}"]\nplain_http = true\n`).join("");
}

function rejectsWith(p: Promise<unknown>, cls: new (...a: never[]) => Error, message: string): Promise<void> {
  return assert.rejects(p, (err: Error) => {
    assert.ok(err instanceof cls, `${err.name}: ${err.message}`);
    assert.equal(err.message, message);
    return true;
  });
}

test("a refused port is Unavailable naming the host and the cause", async () => {
  const host = await refusedHost();
  await rejectsWith(client(host, plain(host)).resolve("v1", 1 << 20), UnavailableError, `pull "${host}/team/app:v1": cannot reach registry ${host}: connection refused (ECONNREFUSED)`);
});

test("a name that does not resolve is Unavailable, and is not retried", async () => {
  // .invalid is reserved (RFC 6761): no resolver answers with an address
  const host = "berth-unit-test.invalid:5000";
  const started = performance.now();
  // with 3 attempts 10 ms apart a retry would not show in the time; 50 attempts would
  await rejectsWith(client(host, plain(host), 50).resolve("v1", 1 << 20), UnavailableError, `pull "${host}/team/app:v1": cannot reach registry ${host}: DNS lookup failed (ENOTFOUND)`);
  assert.ok(performance.now() - started < 5000, "one lookup, not fifty");
});

test("a refused mirror is left at once for the registry", async () => {
  const reg = await registry();
  const mirror = await refusedHost();
  try {
    const c = client(reg.host, `${plain(reg.host)}mirrors = ["http://${mirror}"]\n`, 50);
    const started = performance.now();
    assert.equal((await c.resolve("v1", 1 << 20)).desc.size, MANIFEST.length);
    // 50 attempts with backoff would take far longer than this
    assert.ok(performance.now() - started < 5000);
    assert.equal(reg.hits(), 1);
  } finally {
    await reg.close();
  }
});

test("a refused mirror and a refused registry: both endpoints are listed, Unavailable", async () => {
  const up = await refusedHost();
  const mirror = await refusedHost();
  await rejectsWith(
    client(up, `${plain(up)}mirrors = ["http://${mirror}", "http://berth-mirror.invalid"]\n`).resolve("v1", 1 << 20),
    UnavailableError,
    `pull "${up}/team/app:v1": tried ${mirror} (connection refused), berth-mirror.invalid (DNS lookup failed), ${up} (connection refused)`,
  );
});

test("NotFound only when every endpoint says not found", async () => {
  const up = await registry(404);
  const mirror = await registry(404);
  const refused = await refusedHost();
  try {
    await rejectsWith(client(up.host, `${plain(up.host)}mirrors = ["http://${mirror.host}"]\n`).resolve("v1", 1 << 20), NotFoundError, `pull "${up.host}/team/app:v1": tried ${mirror.host} (not found), ${up.host} (not found)`);
    await rejectsWith(client(up.host, `${plain(up.host)}mirrors = ["http://${refused}"]\n`).resolve("v1", 1 << 20), UnavailableError, `pull "${up.host}/team/app:v1": tried ${refused} (connection refused), ${up.host} (not found)`);
  } finally {
    await up.close();
    await mirror.close();
  }
});

test("access denied anywhere is PermissionDenied; a 5xx alone is Unavailable", async () => {
  const up = await registry(401);
  const broken = await registry(503);
  const refused = await refusedHost();
  try {
    await rejectsWith(
      client(up.host, `${plain(up.host)}mirrors = ["http://${refused}"]\n`).resolve("v1", 1 << 20),
      PermissionDeniedError,
      `pull "${up.host}/team/app:v1": tried ${refused} (connection refused), ${up.host} (access denied: the registry requires credentials (basic auth) and none were given)`,
    );
    await assert.rejects(client(broken.host, plain(broken.host)).resolve("v1", 1 << 20), (err: Error) => {
      assert.ok(err instanceof UnavailableError, `${err.name}: ${err.message}`);
      assert.match(err.message, new RegExp(`^pull "${broken.host}/team/app:v1": manifest .* answered HTTP 503`));
      return true;
    });
    assert.equal(broken.hits(), 3, "a 5xx is retried");
  } finally {
    await up.close();
    await broken.close();
  }
});

test("TLS trouble is Unavailable with the cause in words and what to configure", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "berth-tls-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const gen = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=127.0.0.1"], { encoding: "utf8" });
  assert.equal(gen.status, 0, gen.stderr);
  const server = createHttpsServer({ key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) }, (_req, res) => res.writeHead(404).end());
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const tlsHost = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const http = await registry();
  try {
    await rejectsWith(
      client(tlsHost, "").resolve("v1", 1 << 20),
      UnavailableError,
      `pull "${tlsHost}/team/app:v1": cannot reach registry ${tlsHost}: TLS certificate is self-signed and not trusted (DEPTH_ZERO_SELF_SIGNED_CERT); trust its CA with image.registries."${tlsHost}".ca_file`,
    );
    // HTTPS spoken to a plain-HTTP registry
    await assert.rejects(client(http.host, "").resolve("v1", 1 << 20), (err: Error) => {
      assert.ok(err instanceof UnavailableError, `${err.name}: ${err.message}`);
      assert.match(err.message, new RegExp(`^pull "${http.host}/team/app:v1": cannot reach registry ${http.host}: TLS handshake failed: the registry answers in plain HTTP \\(set plain_http for it if that is intended\\) \\((ERR_SSL_WRONG_VERSION_NUMBER|EPROTO)\\)$`));
      return true;
    });
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
    await http.close();
  }
});
