import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { parseConfig } from "../config/index.js";
import { errorKind } from "../errdefs/index.js";
import { Agents } from "./http.js";
import { parseReference } from "./reference.js";
import { endpointsFor, RepositoryClient, type Credentials } from "./registry.js";

const MANIFEST = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: {}, layers: [] }));

/** A local registry speaking the bearer-token flow (the docker.io way), with a token service beside it. */
async function tokenRegistry(handler?: (req: IncomingMessage, res: ServerResponse) => boolean) {
  const log: string[] = [];
  let port = 0;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", `http://127.0.0.1:${port}`);
    log.push(`${req.method} ${url.pathname}${url.search} ${req.headers.authorization ?? "-"}`);
    if (handler?.(req, res)) return;
    if (url.pathname === "/token") {
      const basic = `Basic ${Buffer.from("alice:pw").toString("base64")}`;
      if (req.method === "POST") {
        let body = "";
        req.on("data", (c: Buffer) => (body += c.toString()));
        req.on("end", () => {
          const form = new URLSearchParams(body);
          if (form.get("grant_type") === "refresh_token" && form.get("refresh_token") === "idtok") {
            res.end(JSON.stringify({ access_token: "tok-from-refresh", expires_in: 300 }));
          } else {
            res.writeHead(401).end();
          }
        });
        return;
      }
      if (req.headers.authorization !== basic) return void res.writeHead(401).end("bad creds");
      assert.equal(url.searchParams.get("service"), "test-registry");
      assert.equal(url.searchParams.get("scope"), "repository:team/app:pull");
      return void res.end(JSON.stringify({ token: "tok123", expires_in: 300 }));
    }
    if (url.pathname === "/v2/team/app/manifests/v1") {
      const ok = ["Bearer tok123", "Bearer tok-from-refresh", "Bearer given-registry-token"].includes(req.headers.authorization ?? "");
      if (!ok) {
        res.writeHead(401, { "www-authenticate": `Bearer realm="http://127.0.0.1:${port}/token",service="test-registry",scope="repository:team/app:pull"` });
        return void res.end();
      }
      res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json", "content-length": String(MANIFEST.length) });
      return void res.end(MANIFEST);
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;
  return { host: `127.0.0.1:${port}`, log, close: () => new Promise<void>((r) => server.close(() => r())) };
}

function client(host: string, creds: Credentials | undefined, extraToml = ""): RepositoryClient {
  const cfg = parseConfig(`[image.registries."${host}"]\nplain_http = true\n${extraToml}`);
  const ref = parseReference(`${host}/team/app:v1`);
  return new RepositoryClient(ref, endpointsFor(ref.domain, cfg.image, creds), { config: cfg.image, agents: new Agents(), retry: { attempts: 4, baseDelayMs: 10, maxDelayMs: 20 } }, AbortSignal.timeout(10_000));
}

test("bearer challenge: token fetched with basic creds and scope, cached, and used", async () => {
  const reg = await tokenRegistry();
  try {
    const c = client(reg.host, { username: "alice", password: "pw" });
    const a = await c.resolve("v1", 1 << 20);
    assert.equal(a.desc.size, MANIFEST.length);
    assert.equal(a.desc.mediaType, "application/vnd.oci.image.manifest.v1+json");
    await c.resolve("v1", 1 << 20);
    assert.equal(reg.log.filter((l) => l.startsWith("GET /token")).length, 1, "token cached");
    assert.ok(reg.log.some((l) => l.endsWith("Bearer tok123")));
  } finally {
    await reg.close();
  }
});

test("bearer challenge: refused credentials are PermissionDenied; identity and registry tokens work", async () => {
  const reg = await tokenRegistry();
  try {
    await assert.rejects(client(reg.host, { username: "alice", password: "wrong" }).resolve("v1", 1 << 20), (err: Error) => err.name === "PermissionDeniedError" && /refused the credentials/.test(err.message));
    await assert.rejects(client(reg.host, undefined).resolve("v1", 1 << 20), (err: Error) => err.name === "PermissionDeniedError" && /anonymous/.test(err.message));
    assert.equal((await client(reg.host, { identityToken: "idtok" }).resolve("v1", 1 << 20)).desc.size, MANIFEST.length);
    assert.equal((await client(reg.host, { registryToken: "given-registry-token" }).resolve("v1", 1 << 20)).desc.size, MANIFEST.length);
    assert.ok(!reg.log.some((l) => l.includes("POST /token") && l.includes("idtok")), "refresh token travels in the body only");
  } finally {
    await reg.close();
  }
});

test("5xx is retried with backoff; size limits are enforced", async () => {
  let failures = 2;
  const reg = await tokenRegistry((req, res) => {
    if (req.url?.includes("/manifests/") && failures > 0) {
      failures--;
      res.writeHead(503).end("busy");
      return true;
    }
    return false;
  });
  try {
    const c = client(reg.host, { registryToken: "given-registry-token" });
    assert.equal((await c.resolve("v1", 1 << 20)).desc.size, MANIFEST.length);
    assert.equal(failures, 0);
    await assert.rejects(c.resolve("v1", 10), /more than the limit of 10/);
  } finally {
    await reg.close();
  }
});

test("mirrors are tried in order and fall back to the registry", async () => {
  const reg = await tokenRegistry();
  const dead = await tokenRegistry((_req, res) => {
    res.writeHead(500).end("mirror broken");
    return true;
  });
  try {
    const c = client(reg.host, { registryToken: "given-registry-token" }, `mirrors = ["http://${dead.host}"]\n`);
    assert.equal(c.endpoints.length, 2);
    assert.equal(c.endpoints[0]?.mirror, true);
    assert.equal((await c.resolve("v1", 1 << 20)).desc.size, MANIFEST.length);
    assert.ok(dead.log.length >= 1, "the mirror was asked first");
  } finally {
    await reg.close();
    await dead.close();
  }
});

test("a registry that keeps answering 5xx is Unavailable once retries are spent, not Internal", async () => {
  const reg = await tokenRegistry((_req, res) => {
    res.writeHead(500).end(JSON.stringify({ errors: [{ code: "UNKNOWN", message: "broken" }] }));
    return true;
  });
  try {
    const c = client(reg.host, { registryToken: "given-registry-token" });
    const err = await c.resolve("v1", 1 << 20).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof Error, "resolve failed");
    assert.match(err.message, /answered HTTP 500/);
    assert.equal(errorKind(err), "unavailable");
    assert.ok(reg.log.length >= 2, "it was retried first");
  } finally {
    await reg.close();
  }
});

test("a registry nobody listens at is Unavailable, with the host and the cause in words", async () => {
  const c = client("127.0.0.1:1", undefined);
  const err = await c.resolve("v1", 1 << 20).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof Error, "resolve failed");
  assert.match(err.message, /cannot reach registry 127\.0\.0\.1:1: connection refused \(ECONNREFUSED\)/);
  assert.equal(errorKind(err), "unavailable");
});

test("registries are spoken to over HTTPS unless configured, docker.io goes to registry-1", () => {
  const cfg = parseConfig("");
  assert.equal(endpointsFor("127.0.0.1:5000", cfg.image, undefined)[0]?.base, "https://127.0.0.1:5000");
  assert.equal(endpointsFor("docker.io", cfg.image, undefined)[0]?.base, "https://registry-1.docker.io");
});
