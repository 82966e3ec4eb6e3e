// Mirrors critest's image tests (cri-tools pkg/validate/image.go) and its
// idempotence tests (idempotence.go). critest's gcr.io/k8s-staging-cri-tools
// test images are replaced by our test image layouts pushed under the same
// repository names to the local registry.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { status as Grpc, type ServiceError } from "@grpc/grpc-js";
import type { Image } from "../api/gen/cri/v1/api.js";
import { startDaemon, removeDirs, type Daemon } from "./harness/daemon.js";
import { startRegistry, type Registry } from "./harness/registry.js";
import { ensureTestImages, type TestImages } from "./harness/images.js";
import { buildImage, OciLayout, pushFromLayout, skeletonEntries } from "../hack/images/index.js";

let reg: Registry;
let images: TestImages;
let d: Daemon;
let work: string;

before(async () => {
  reg = await startRegistry();
  images = await ensureTestImages(reg);
  d = await startDaemon({ configToml: `[image.registries."${reg.host}"]\nplain_http = true\n` });
  work = mkdtempSync(join(tmpdir(), "critest-image-"));
});

after(async () => {
  await d?.stop();
  if (d) removeDirs(d.dirs);
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const im = () => d.client.image;

/** Pushes a standard test image's layout under another repository:tag; returns the manifest digest. */
async function pushAs(std: keyof TestImages, repo: string, tag: string): Promise<string> {
  const l = images[std];
  return (await pushFromLayout(l.layoutDir, l.tag, reg.host, repo, tag)).digest;
}

async function status(ref: string): Promise<Image | undefined> {
  return (await im().imageStatus({ image: { image: ref } })).image;
}

// critest's removeImage: ImageStatus, then RemoveImage by the image ID.
async function removeImage(ref: string) {
  const img = await status(ref);
  if (img) await im().removeImage({ image: { image: img.id } });
}

async function testPullPublicImage(ref: string, check: (s: Image) => void) {
  await removeImage(ref);
  await im().pullImage({ image: { image: ref }, sandboxConfig: { labels: {} } });
  const s = await status(ref);
  assert.ok(s, `image status of ${ref}`);
  assert.ok(s.id);
  assert.ok(s.size > 0n);
  check(s);
  await removeImage(ref);
  assert.equal(await status(ref), undefined, "image status after removal is empty");
}

test("public image with tag should be pulled and removed", async () => {
  const ref = `${reg.host}/test-image-tag:test`;
  await pushAs("busybox:latest", "test-image-tag", "test");
  await testPullPublicImage(ref, (s) => assert.deepEqual(s.repoTags, [ref]));
});

test("public image without tag should be pulled and removed", async () => {
  const ref = `${reg.host}/test-image-latest`;
  await pushAs("busybox:latest", "test-image-latest", "latest");
  await testPullPublicImage(ref, (s) => assert.deepEqual(s.repoTags, [ref + ":latest"]));
});

test("public image with digest should be pulled and removed", async () => {
  const digest = await pushAs("busybox:latest", "test-image-digest", "unused-tag");
  const ref = `${reg.host}/test-image-digest@${digest}`;
  await testPullPublicImage(ref, (s) => {
    assert.deepEqual(s.repoTags, []);
    assert.deepEqual(s.repoDigests, [ref]);
  });
});

test("public image should timeout if requested (DEADLINE_EXCEEDED)", async () => {
  // An image of its own: the client's 1 ms deadline passes first, but the daemon may still
  // finish the pull (its content is local) before the cancel reaches it, as containerd may;
  // with the content of an image later tests pull, that tag would show up on their image.
  const layoutDir = join(work, "timeout-image");
  const layout = await OciLayout.open(layoutDir);
  const built = await buildImage(layout, { layers: [{ entries: skeletonEntries() }], config: { Env: ["BERTH_TEST=timeout"], Cmd: ["sh"] } });
  layout.tag(built.manifest, "test-image-timeout");
  await layout.save();
  await pushFromLayout(layoutDir, "test-image-timeout", reg.host, "test-image-timeout", "test");
  await assert.rejects(im().pullImage({ image: { image: `${reg.host}/test-image-timeout:test` } }, { timeoutMs: 1 }), (err: ServiceError) => err.code === Grpc.DEADLINE_EXCEEDED);
});

test("image status should support all kinds of references", async () => {
  const ref = `${reg.host}/test-image-tag:all`;
  await pushAs("busybox:latest", "test-image-tag", "all");
  await removeImage(ref);
  await im().pullImage({ image: { image: ref } });
  const s = await status(ref);
  assert.ok(s);
  assert.deepEqual(await status(s.id), s, `status by id ${s.id}`);
  for (const tag of s.repoTags) assert.deepEqual(await status(tag), s, `status by ${tag}`);
  assert.ok(s.repoDigests.length > 0);
  for (const dg of s.repoDigests) assert.deepEqual(await status(dg), s, `status by ${dg}`);
  await removeImage(ref);
  assert.equal(await status(ref), undefined);
});

test("image status get image fields should not have Uid|Username empty", async () => {
  const layoutDir = join(work, "user-images");
  const layout = await OciLayout.open(layoutDir);
  const cases: [string, string, bigint | undefined, string][] = [
    ["test-image-user-uid", "1002", 1002n, ""],
    ["test-image-user-username", "www-data", undefined, "www-data"],
    ["test-image-user-uid-group", "1003:1003", 1003n, ""],
    ["test-image-user-username-group", "www-data:www-data", undefined, "www-data"],
  ];
  for (const [repo, user, uid, username] of cases) {
    const built = await buildImage(layout, { layers: [{ entries: skeletonEntries() }], config: { User: user, Cmd: ["sh"] } });
    layout.tag(built.manifest, repo);
    await layout.save();
    await pushFromLayout(layoutDir, repo, reg.host, repo, "latest");
    const ref = `${reg.host}/${repo}`;
    await im().pullImage({ image: { image: ref } });
    const s = await status(ref);
    // critest compares GetUid().GetValue() (0 when unset) and GetUsername().
    assert.equal(s?.uid?.value ?? 0n, uid ?? 0n, `${repo}: uid`);
    assert.equal(s?.username, username, `${repo}: username`);
    if (uid === undefined) assert.equal(s?.uid, undefined, `${repo}: no uid for a user name`);
    await removeImage(ref);
  }
});

test("listImage should get exactly 3 images, each with its one repo tag", async () => {
  const list = [1, 2, 3].map((i) => `${reg.host}/test-image-${i}:latest`);
  const stds = ["busybox:latest", "nonroot:latest", "entrypoint:latest"] as const;
  for (const [i, std] of stds.entries()) await pushAs(std, `test-image-${i + 1}`, "latest");
  for (const ref of list) await removeImage(ref);
  const ids: string[] = [];
  for (const ref of list) ids.push((await im().pullImage({ image: { image: ref } })).imageRef);
  assert.equal(new Set(ids).size, 3);
  const all = (await im().listImages({ filter: {} })).images;
  for (const [i, id] of ids.entries()) {
    const img = all.find((x) => x.id === id);
    assert.deepEqual(img?.repoTags, [list[i]]);
  }
  for (const ref of list) await removeImage(ref);
});

test("listImage should get exactly 3 repoTags in the result image", async () => {
  const list = [1, 2, 3].map((i) => `${reg.host}/test-image-tags:${i}`);
  for (const i of [1, 2, 3]) await pushAs("nonroot:latest", "test-image-tags", String(i));
  for (const ref of list) await removeImage(ref);
  const ids = new Set<string>();
  for (const ref of list) ids.add((await im().pullImage({ image: { image: ref } })).imageRef);
  assert.equal(ids.size, 1);
  const img = (await im().listImages({ filter: {} })).images.find((x) => ids.has(x.id));
  assert.deepEqual([...(img?.repoTags ?? [])].sort(), [...list].sort());
  for (const ref of list) await removeImage(ref);
  assert.equal(await status(list[0] as string), undefined);
});

test("ImageFsInfo reports the image filesystem", async () => {
  await im().pullImage({ image: { image: images["busybox:latest"].ref } });
  const r = await im().imageFsInfo({});
  assert.ok(r.imageFilesystems.length >= 1);
  const fs = r.imageFilesystems[0];
  assert.ok(fs?.fsId?.mountpoint);
  assert.ok((fs?.usedBytes?.value ?? 0n) > 0n);
  assert.ok((fs?.inodesUsed?.value ?? 0n) > 0n);
  assert.ok((fs?.timestamp ?? 0n) > 0n);
});

test("idempotence: stop/remove of unknown pods and containers, RemoveImage of an unknown id twice", async () => {
  const rt = d.client.runtime;
  await rt.stopPodSandbox({ podSandboxId: randomUUID() });
  await rt.removePodSandbox({ podSandboxId: randomUUID() });
  await rt.stopContainer({ containerId: randomUUID(), timeout: 0n });
  await rt.removeContainer({ containerId: randomUUID() });
  const fake = "0".repeat(64);
  await im().removeImage({ image: { image: fake } });
  await im().removeImage({ image: { image: fake } });
});
