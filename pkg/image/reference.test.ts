import { test } from "node:test";
import assert from "node:assert/strict";
import { normalizeReference, parseReference } from "./reference.js";
import { chainIdsOf } from "./service.js";
import { parseChallenge } from "./registry.js";
import { selectPlatform, parseManifest } from "./manifest.js";

const D = `sha256:${"a".repeat(64)}`;

test("references normalise like docker and containerd", () => {
  assert.equal(normalizeReference("busybox"), "docker.io/library/busybox:latest");
  assert.equal(normalizeReference("busybox:1.36"), "docker.io/library/busybox:1.36");
  assert.equal(normalizeReference("index.docker.io/foo/bar"), "docker.io/foo/bar:latest");
  assert.equal(normalizeReference("127.0.0.1:5000/x/y:t"), "127.0.0.1:5000/x/y:t");
  assert.equal(normalizeReference("localhost/app"), "localhost/app:latest");
  assert.equal(normalizeReference(`busybox@${D}`), `docker.io/library/busybox@${D}`);
  assert.equal(normalizeReference(`busybox:1@${D}`), `docker.io/library/busybox:1@${D}`);
  assert.deepEqual(parseReference("registry.k8s.io/pause:3.9"), { domain: "registry.k8s.io", path: "pause", tag: "3.9" });
});

test("malformed references are InvalidArgument naming the reference", () => {
  for (const bad of ["", "Busybox", "busybox:", "busybox@sha256:abc", "a//b", "busybox:-x", "host:port/x", " busybox", "-a/b", "busybox@md5:" + "a".repeat(32)]) {
    assert.throws(() => parseReference(bad), (err: Error) => err.name === "InvalidArgumentError" && err.message.includes(`"${bad}"`), bad);
  }
});

test("chain ids follow the OCI image spec", () => {
  const a = `sha256:${"1".repeat(64)}`;
  const b = `sha256:${"2".repeat(64)}`;
  const ids = chainIdsOf([a, b]);
  assert.equal(ids[0], a);
  assert.match(ids[1] as string, /^sha256:[a-f0-9]{64}$/);
  assert.notEqual(ids[1], b);
});

test("WWW-Authenticate challenges parse", () => {
  const c = parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"');
  assert.equal(c?.scheme, "bearer");
  assert.equal(c?.params["realm"], "https://auth.docker.io/token");
  assert.equal(c?.params["scope"], "repository:library/busybox:pull");
  assert.equal(parseChallenge('Basic realm="x"')?.scheme, "basic");
});

test("platform selection and schema 1 refusal", () => {
  const idx = parseManifest(
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [
      { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: D, size: 1, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
      { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: `sha256:${"b".repeat(64)}`, size: 2, platform: { os: "linux", architecture: "amd64" } },
    ] })),
    "",
    "t",
  );
  assert.equal(idx.kind, "index");
  if (idx.kind !== "index") return;
  assert.equal(selectPlatform(idx, { os: "linux", architecture: "amd64" }, "t").size, 2);
  assert.equal(selectPlatform(idx, { os: "linux", architecture: "arm64" }, "t").size, 1);
  assert.throws(() => selectPlatform(idx, { os: "linux", architecture: "s390x" }, "t"), /no image for platform linux\/s390x/);
  assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 1, fsLayers: [] })), "application/vnd.docker.distribution.manifest.v1+prettyjws", "old"), /schema 1/);
});
