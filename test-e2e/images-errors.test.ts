// Pull errors a user can act on, through berthd's CRI socket: a registry that
// cannot be reached is UNAVAILABLE naming the host and the cause in words, and a
// pull through mirrors says what each endpoint answered. Only loopback ports
// and names under the reserved .invalid TLD are used.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status as Grpc, type ServiceError } from "@grpc/grpc-js";
import { removeDirs, startDaemon, type Daemon } from "./harness/daemon.js";
import { startRegistry, type Registry } from "./harness/registry.js";
import { buildImage, OciLayout, pushFromLayout } from "../hack/images/index.js";

/** A loopback port nothing listens on: bound, then closed. */
async function refusedHost(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  return `127.0.0.1:${typeof addr === "object" && addr !== null ? addr.port : 0}`;
}

const UNRESOLVABLE = "berth-e2e.invalid:5000";

let reg: Registry;
let d: Daemon;
let deadMirror: string;
let deadUpstream: string;
let deadAlone: string;
let tinyDigest: string;
const work = mkdtempSync(join(tmpdir(), "berth-pull-errors-"));

before(async () => {
  reg = await startRegistry();
  deadMirror = await refusedHost();
  deadUpstream = await refusedHost();
  deadAlone = await refusedHost();
  const layoutDir = join(work, "tiny");
  const layout = await OciLayout.open(layoutDir);
  const built = await buildImage(layout, { layers: [{ entries: [{ type: "file", path: "hello", content: "hi\n" }] }], config: { Cmd: ["/hello"] } });
  layout.tag(built.manifest, "v1");
  await layout.save();
  await pushFromLayout(layoutDir, "v1", reg.host, "tiny", "v1");
  tinyDigest = built.config.digest;
  const toml = [
    `[image.registries."${reg.host}"]`,
    `plain_http = true`,
    `mirrors = ["http://${deadMirror}"]`,
    `[image.registries."${deadUpstream}"]`,
    `plain_http = true`,
    `mirrors = ["http://${deadMirror}"]`,
    `[image.registries."${deadAlone}"]`,
    `plain_http = true`,
    `[image.registries."${UNRESOLVABLE}"]`,
    `plain_http = true`,
  ].join("\n");
  d = await startDaemon({ configToml: toml });
});

after(async () => {
  await d?.stop();
  if (d) removeDirs(d.dirs);
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

function failsWith(image: string, code: Grpc, details: string): Promise<void> {
  return assert.rejects(d.client.image.pullImage({ image: { image } }), (err: ServiceError) => {
    assert.equal(err.code, code, `${err.code}: ${err.details}`);
    assert.equal(err.details, details);
    return true;
  });
}

test("a refused port is UNAVAILABLE: cannot reach registry, connection refused", async () => {
  await failsWith(`${deadAlone}/app:v1`, Grpc.UNAVAILABLE, `pull "${deadAlone}/app:v1": cannot reach registry ${deadAlone}: connection refused (ECONNREFUSED)`);
});

test("a name that does not resolve is UNAVAILABLE: DNS lookup failed, at once", async () => {
  const started = performance.now();
  await failsWith(`${UNRESOLVABLE}/app:v1`, Grpc.UNAVAILABLE, `pull "${UNRESOLVABLE}/app:v1": cannot reach registry ${UNRESOLVABLE}: DNS lookup failed (ENOTFOUND)`);
  // not a behaviour under test for speed: a retried NXDOMAIN would take seconds of backoff
  assert.ok(performance.now() - started < 10_000, "an NXDOMAIN answer is final");
});

test("a refused mirror falls back to the registry, and the pull succeeds", async () => {
  const r = await d.client.image.pullImage({ image: { image: `${reg.host}/tiny:v1` } });
  assert.equal(r.imageRef, tinyDigest);
  assert.match(d.output(), new RegExp(`"endpoint":"http://${deadMirror.replace(/\./g, "\\.")}".*failed at mirror; trying the next endpoint`));
});

test("a refused mirror and a refused registry: UNAVAILABLE listing both endpoints", async () => {
  await failsWith(`${deadUpstream}/app:v1`, Grpc.UNAVAILABLE, `pull "${deadUpstream}/app:v1": tried ${deadMirror} (connection refused), ${deadUpstream} (connection refused)`);
});

test("a refused mirror and a registry without the image: the code says unreachable, the message says both", async () => {
  await failsWith(`${reg.host}/missing:v1`, Grpc.UNAVAILABLE, `pull "${reg.host}/missing:v1": tried ${deadMirror} (connection refused), ${reg.host} (not found)`);
});
