// Mirrors critest's image volume tests (cri-tools pkg/validate/image_volume.go):
// a CRI Mount with `image` set mounts that image's filesystem read-only into
// the container, optionally only its image_sub_path.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ContainerState, type ContainerConfig, type DeepPartial, type PodSandboxConfig } from "../api/gen/cri/v1/api.js";
import { startRegistry, type Registry } from "./harness/registry.js";
import { ensureTestImages } from "./harness/images.js";
import { residue, startEnv, stopEnv, type Env } from "./containers-helpers.js";
import { mountsUnder } from "./harness/cni-net.js";

let reg: Registry;
let env: Env;
let bb: string;
let volImage: string;
let volImageId: string;

before(async () => {
  reg = await startRegistry();
  const images = await ensureTestImages(reg);
  env = await startEnv(reg, images);
  bb = images["busybox:latest"].ref;
  // critest mounts its busybox test image, the one the container runs.
  volImage = bb;
  volImageId = env.ids[volImage] as string;
});

after(async () => {
  if (env) await stopEnv(env);
  await reg?.stop();
});

const rt = () => env.d.client.runtime;
const uuid = () => randomUUID();
const path = "/mnt/image-volume";
type Pod = { id: string; config: DeepPartial<PodSandboxConfig> };

async function pod(): Promise<Pod> {
  const config: DeepPartial<PodSandboxConfig> = {
    metadata: { name: "create-PodSandbox-for-container-" + uuid(), uid: "cri-test-uid" + uuid(), namespace: "cri-test-namespace" + uuid(), attempt: 2 },
    linux: {},
  };
  return { id: (await rt().runPodSandbox({ config })).podSandboxId, config };
}

function volumeCtr(prefix: string, mount: Record<string, unknown> = {}): DeepPartial<ContainerConfig> {
  return {
    metadata: { name: prefix + uuid(), attempt: 2 },
    image: { image: env.ids[bb] as string, userSpecifiedImage: bb },
    command: ["sh", "-c", "top"],
    mounts: [{ containerPath: path, readonly: true, image: { image: volImageId, userSpecifiedImage: volImage }, ...mount }],
  };
}

async function create(p: Pod, config: DeepPartial<ContainerConfig>) {
  return (await rt().createContainer({ podSandboxId: p.id, config, sandboxConfig: p.config })).containerId;
}

async function startRunning(id: string) {
  await rt().startContainer({ containerId: id });
  const end = Date.now() + 60_000;
  while ((await rt().containerStatus({ containerId: id })).status?.state !== ContainerState.CONTAINER_RUNNING) {
    if (Date.now() > end) throw new Error(`container ${id} not running`);
    await sleep(200);
  }
}

async function exec(id: string, cmd: string[]) {
  const r = await rt().execSync({ containerId: id, cmd, timeout: 30n });
  return { ok: r.exitCode === 0, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

async function removePod(p: Pod) {
  await rt().stopPodSandbox({ podSandboxId: p.id });
  await rt().removePodSandbox({ podSandboxId: p.id });
}

test("image volume: ContainerStatus mounts carry the image digest (image_ref)", async () => {
  const p = await pod();
  try {
    const id = await create(p, volumeCtr("image-volume-digest-test-"));
    const st = (await rt().containerStatus({ containerId: id })).status;
    const m = st?.mounts.find((x) => x.containerPath === path);
    assert.ok(m, JSON.stringify(st?.mounts));
    assert.equal(m.image?.imageRef, volImageId);
    assert.equal(m.readonly, true);
    await rt().removeContainer({ containerId: id });
  } finally {
    await removePod(p);
  }
});

test("image volume: the image is mounted, read-only, and its binaries run (not noexec)", async () => {
  const p = await pod();
  try {
    const id = await create(p, volumeCtr("image-volume-mount-test-"));
    await startRunning(id);
    assert.equal((await exec(id, ["ls", "-A", path + "/bin/sh"])).ok, true);
    const w = await exec(id, ["touch", path + "/test-write"]);
    assert.equal(w.ok, false, "writing to an image volume fails");
    assert.match(w.stderr, /Read-only file system/);
    const run = await exec(id, [path + "/bin/ls", path]);
    assert.equal(run.ok, true, run.stderr);
    assert.match(run.stdout, /\bbin\b/);
    await rt().removeContainer({ containerId: id });
    // Removing the container unmounts and removes the volume's snapshot.
    assert.deepEqual(mountsUnder(join(env.d.dirs.state, "containers")), []);
  } finally {
    await removePod(p);
  }
});

test("image volume with readonly=false is rejected and leaves nothing", async () => {
  const p = await pod();
  try {
    await assert.rejects(create(p, volumeCtr("image-volume-readonly-test-", { readonly: false })), /read-only/);
    assert.deepEqual((await rt().listContainers({ filter: { podSandboxId: p.id } })).containers, []);
  } finally {
    await removePod(p);
  }
});

test("image volume subPath: only that directory is mounted; a missing subPath is an error", async () => {
  const p = await pod();
  try {
    const id = await create(p, volumeCtr("image-volume-subpath-test-", { imageSubPath: "etc" }));
    await startRunning(id);
    assert.equal((await exec(id, ["ls", path])).ok, true);
    assert.equal((await exec(id, ["ls", path + "/etc/passwd"])).ok, false, "the full image root is not mounted");
    assert.equal((await exec(id, ["ls", path + "/passwd"])).ok, true);

    await assert.rejects(create(p, volumeCtr("image-volume-subpath-fail-test-", { imageSubPath: "not-existing" })), /image_sub_path/);
    await assert.rejects(create(p, volumeCtr("image-volume-subpath-escape-test-", { imageSubPath: "../../.." })), /image_sub_path/);
    // The failed creates rolled back their volume snapshots: only the running container's bundle remains.
    const bundles = readdirSync(join(env.d.dirs.state, "containers"));
    assert.deepEqual(bundles, [id]);
  } finally {
    await removePod(p);
  }
  assert.deepEqual(await residue(env), []);
});

test("image volume of an unknown image is NotFound", async () => {
  const p = await pod();
  try {
    await assert.rejects(create(p, volumeCtr("image-volume-unknown-", { image: { image: "sha256:" + "1".repeat(64) } })), /not found/);
  } finally {
    await removePod(p);
  }
});
