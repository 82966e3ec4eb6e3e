// Layers as real builders write them: umoci and others end a layer's tar at an
// entry boundary, without the two zero blocks of the end-of-archive marker (or
// with one). Go's archive/tar, which containerd uses, accepts them, so berth
// must too. A layer cut inside an entry is refused, naming the layer and the entry.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { status as Grpc, type ServiceError } from "@grpc/grpc-js";
import { startDaemon } from "./harness/daemon.js";
import { makeTestNetwork } from "./harness/cni-net.js";
import { startRegistry, type Registry } from "./harness/registry.js";
import type { TestImages } from "./harness/images.js";
import { buildImage, buildLayer, buildTar, entriesEnd, layerFromTar, OciLayout, pushFromLayout, staticBusyboxEntries, type BuiltImage, type ImageSpec } from "../hack/images/index.js";
import { ctrConfig, runPod, runToExit, stopEnv, type Env } from "./containers-helpers.js";

let reg: Registry;
let env: Env;
const work = mkdtempSync(join(tmpdir(), "berth-layers-test-"));

before(async () => {
  reg = await startRegistry();
  const d = await startDaemon({ configToml: `[image.registries."${reg.host}"]\nplain_http = true\n` });
  const net = makeTestNetwork(d.dirs.base);
  net.install(d.dirs.cniConfDir);
  // this file builds its own images: no standard test images are needed
  env = { d, net, images: {} as TestImages, ids: {} };
});

after(async () => {
  if (env) await stopEnv(env);
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

async function push(name: string, spec: ImageSpec): Promise<{ ref: string; built: BuiltImage }> {
  const layoutDir = join(work, name);
  const layout = await OciLayout.open(layoutDir);
  const built = await buildImage(layout, spec);
  layout.tag(built.manifest, "latest");
  await layout.save();
  await pushFromLayout(layoutDir, "latest", reg.host, name, "latest");
  return { ref: `${reg.host}/${name}:latest`, built };
}

test("an image whose layers have no end-of-archive marker (or one zero block) pulls and runs", async () => {
  const busybox = await buildLayer(await staticBusyboxEntries(), { end: "none" });
  const plain = await buildLayer([{ type: "dir", path: "data" }, { type: "file", path: "data/no-marker.txt", content: "written without the marker\n" }], { compression: "none", end: "none" });
  const oneBlock = await buildLayer([{ type: "file", path: "data/one-block.txt", content: "one zero block\n" }], { end: "one-zero-block" });
  // the fixture is what it claims: each tar stops where its entries end (plus one zero block for the last)
  for (const [layer, zeros] of [[busybox, 0], [plain, 0], [oneBlock, 1]] as const) {
    const tar = layer.compression === "gzip" ? gunzipSync(layer.blob) : layer.blob;
    assert.equal(tar.length, entriesEnd(tar) + zeros * 512);
  }
  const { ref, built } = await push("no-marker", {
    // the whole busybox rootfs gzipped; a layer uncompressed; a gzipped one with one zero block
    layers: [{ built: busybox }, { built: plain }, { built: oneBlock }],
    config: { Cmd: ["/bin/sh"] },
  });
  const pulled = await env.d.client.image.pullImage({ image: { image: ref } });
  assert.equal(pulled.imageRef, built.config.digest);

  const pod = await runPod(env, "no-marker");
  const r = await runToExit(env, pod, ctrConfig("reader", ref, { command: ["/bin/sh", "-c", "cat /data/no-marker.txt /data/one-block.txt && ls /bin/busybox"] }));
  assert.equal(r.status.exitCode, 0, r.log);
  assert.deepEqual(r.stdout, ["written without the marker", "one zero block", "/bin/busybox"]);
});

test("a layer cut inside a file's body is INVALID_ARGUMENT naming the layer and the entry; nothing is recorded", async () => {
  const full = await buildTar([{ type: "dir", path: "data" }, { type: "file", path: "data/cut.bin", content: Buffer.alloc(5000, 7) }]);
  // header of data/, header of data/cut.bin, then 1000 of its 5000 bytes
  const cut = full.subarray(0, 512 * 2 + 1000);
  const layer = layerFromTar(cut);
  assert.equal(gunzipSync(layer.blob).length, cut.length);
  const { ref } = await push("cut-body", { layers: [{ built: layer }], config: { Cmd: ["/bin/sh"] } });
  await assert.rejects(env.d.client.image.pullImage({ image: { image: ref } }), (err: ServiceError) => {
    assert.equal(err.code, Grpc.INVALID_ARGUMENT, err.details);
    assert.equal(err.details, `layer ${layer.digest}: entry "data/cut.bin": tar stream ends inside the body (1000 of 5000 bytes)`);
    return true;
  });
  const st = await env.d.client.image.imageStatus({ image: { image: ref } });
  assert.equal(st.image, undefined, "no image is recorded");
});
