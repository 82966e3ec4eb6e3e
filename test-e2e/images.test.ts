import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { spawnSync } from "node:child_process";
import { BERTHCTL, startDaemon, removeDirs, type Daemon } from "./harness/daemon.js";
import { startRegistry, type Registry } from "./harness/registry.js";
import { ensureTestImages, type TestImages } from "./harness/images.js";
import { pushFromLayout, NONROOT } from "../hack/images/index.js";
import { RegistryProxy } from "./images-proxy.js";

function code(err: unknown): number | undefined {
  return (err as ServiceError).code;
}

function plainHttp(...hosts: string[]): string {
  return hosts.map((h) => `[image.registries."${h}"]\nplain_http = true\n`).join("\n");
}

async function layerDigests(registryUrl: string, repo: string, manifestDigest: string): Promise<string[]> {
  const res = await fetch(`${registryUrl}/v2/${repo}/manifests/${manifestDigest}`, {
    headers: { accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json" },
  });
  const m = (await res.json()) as { layers: Array<{ digest: string; size: number }> };
  return m.layers.map((l) => l.digest);
}

let reg: Registry;
let images: TestImages;

before(async () => {
  reg = await startRegistry();
  images = await ensureTestImages(reg);
});

after(async () => {
  await reg?.stop();
});

describe("pulls from a plain-HTTP registry", () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon({ configToml: plainHttp(reg.host) });
  });
  after(async () => {
    await d?.stop();
    if (d) removeDirs(d.dirs);
  });

  test("every test image pulls by tag and by digest; the image ref is the config digest", async () => {
    for (const img of Object.values(images)) {
      const byTag = await d.client.image.pullImage({ image: { image: img.ref } });
      assert.equal(byTag.imageRef, img.configDigest, `${img.ref} by tag`);
      const byDigest = await d.client.image.pullImage({ image: { image: `${reg.host}/${img.name}@${img.digest}` } });
      assert.equal(byDigest.imageRef, img.configDigest, `${img.ref} by digest`);
    }
    const list = await d.client.image.listImages({});
    const ids = new Set(list.images.map((i) => i.id));
    for (const img of Object.values(images)) assert.ok(ids.has(img.configDigest), `ListImages has ${img.ref}`);
  });

  test("the multi-platform index yields the linux/amd64 image", async () => {
    for (const img of [images["multiarch:latest"], images["multiarch-docker:latest"]]) {
      const amd64 = img.manifests.find((m) => m.platform?.architecture === "amd64");
      assert.ok(amd64);
      const r = await d.client.image.pullImage({ image: { image: img.ref } });
      assert.equal(r.imageRef, amd64.configDigest);
      const s = await d.client.image.imageStatus({ image: { image: img.ref }, verbose: true });
      const info = JSON.parse(s.info["info"] ?? "{}") as { imageSpec?: { architecture?: string } };
      assert.equal(info.imageSpec?.architecture, "amd64");
      // The OCI and Docker indexes share the amd64 config, hence one image with both repo digests.
      assert.ok(s.image?.repoDigests.includes(`${reg.host}/${img.name}@${img.indexDigest}`), `repo digest of the index: ${s.image?.repoDigests.join(",")}`);
    }
  });

  test("ImageStatus answers for every reference form and is empty for unknown images", async () => {
    const img = images["busybox:latest"];
    await d.client.image.pullImage({ image: { image: img.ref } });
    const hex = img.configDigest.slice("sha256:".length);
    const forms = [img.ref, `${reg.host}/busybox`, `${reg.host}/busybox@${img.digest}`, `${reg.host}/busybox:latest@${img.digest}`, img.configDigest, hex, hex.slice(0, 12)];
    for (const f of forms) {
      const s = await d.client.image.imageStatus({ image: { image: f } });
      assert.equal(s.image?.id, img.configDigest, `status of "${f}"`);
      assert.ok(s.image?.repoTags.includes(`${reg.host}/busybox:latest`), `repo tags via "${f}"`);
      assert.ok(s.image?.repoDigests.includes(`${reg.host}/busybox@${img.digest}`), `repo digests via "${f}"`);
      assert.ok((s.image?.size ?? 0n) > 0n);
    }
    for (const unknown of [`${reg.host}/nope:latest`, `sha256:${"0".repeat(64)}`, "doesnotexist"]) {
      const s = await d.client.image.imageStatus({ image: { image: unknown } });
      assert.equal(s.image, undefined, `unknown "${unknown}"`);
    }
    const filtered = await d.client.image.listImages({ filter: { image: { image: img.ref } } });
    assert.deepEqual(filtered.images.map((i) => i.id), [img.configDigest]);
  });

  test("image metadata: user (name and numeric), entrypoint, env", async () => {
    await d.client.image.pullImage({ image: { image: images["nonroot:latest"].ref } });
    await d.client.image.pullImage({ image: { image: images["nonroot:numeric"].ref } });
    await d.client.image.pullImage({ image: { image: images["entrypoint:latest"].ref } });
    const named = await d.client.image.imageStatus({ image: { image: images["nonroot:latest"].ref } });
    assert.equal(named.image?.username, NONROOT.user);
    assert.equal(named.image?.uid, undefined);
    const numeric = await d.client.image.imageStatus({ image: { image: images["nonroot:numeric"].ref } });
    assert.equal(numeric.image?.uid?.value, BigInt(NONROOT.uid));
    assert.equal(numeric.image?.username, "");
    const ep = await d.client.image.imageStatus({ image: { image: images["entrypoint:latest"].ref }, verbose: true });
    const spec = (JSON.parse(ep.info["info"] ?? "{}") as { imageSpec: { config: { Entrypoint: string[]; Cmd: string[]; Env: string[]; WorkingDir: string } } }).imageSpec;
    assert.deepEqual(spec.config.Entrypoint, ["/bin/sh", "-c"]);
    assert.deepEqual(spec.config.Cmd, ["echo entrypoint-ok"]);
    assert.ok(spec.config.Env.includes("FOO=bar"));
    assert.equal(spec.config.WorkingDir, "/work");
  });

  test("metrics: pull latency, bytes pulled, cache hits, content store bytes", async () => {
    const text = await (await fetch(d.metricsUrl())).text();
    // The sum over a metric's series (labelled or not).
    const value = (name: string): number =>
      text
        .split("\n")
        .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
        .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(" ") + 1)), 0) || NaN;
    assert.ok(value("berth_image_pull_duration_seconds_count") >= Object.keys(images).length, text.slice(0, 300));
    assert.ok(value("berth_image_pull_bytes_total") > 1_000_000);
    assert.ok(value("berth_image_pull_cache_hits_total") >= Object.keys(images).length, "re-pulls by digest are cache hits");
    assert.ok(value("berth_content_store_bytes") > 1_000_000);
  });

  test("malformed references are INVALID_ARGUMENT naming the reference", async () => {
    await assert.rejects(d.client.image.pullImage({ image: { image: "Bad/Name:" } }), (err) => code(err) === GrpcStatus.INVALID_ARGUMENT && /Bad\/Name:/.test(String(err)));
    await assert.rejects(d.client.image.pullImage({ image: { image: "" } }), (err) => code(err) === GrpcStatus.INVALID_ARGUMENT);
  });

  test("a registry without plain_http config is not spoken to over HTTP", async () => {
    const other = await startRegistry();
    try {
      await assert.rejects(d.client.image.pullImage({ image: { image: `${other.host}/busybox:latest` } }, { timeoutMs: 60_000 }), (err) => code(err) !== GrpcStatus.OK);
    } finally {
      await other.stop();
    }
  });

  test("RemoveImage removes all names, is idempotent and concurrent removals all succeed", async () => {
    const img = images["busybox-docker:latest"];
    await d.client.image.pullImage({ image: { image: img.ref } });
    await d.client.image.pullImage({ image: { image: `${reg.host}/${img.name}@${img.digest}` } });
    const before = await d.client.image.imageStatus({ image: { image: img.configDigest } });
    assert.ok((before.image?.repoTags.length ?? 0) >= 1 && (before.image?.repoDigests.length ?? 0) >= 1);
    await Promise.all([1, 2, 3, 4].map(() => d.client.image.removeImage({ image: { image: img.ref } })));
    for (const f of [img.ref, img.configDigest, `${reg.host}/${img.name}@${img.digest}`]) {
      assert.equal((await d.client.image.imageStatus({ image: { image: f } })).image, undefined, f);
    }
    await d.client.image.removeImage({ image: { image: img.configDigest } });
    await assert.rejects(d.client.image.removeImage({ image: { image: "" } }), (err) => code(err) === GrpcStatus.INVALID_ARGUMENT);
  });
});

describe("berthctl", () => {
  test("pull (with progress and --creds), images, inspecti, rmi, imagefsinfo", async () => {
    const authReg = await startRegistry({ auth: { username: "ctl", password: "ctl-pw" } });
    const d = await startDaemon({ configToml: plainHttp(authReg.host) });
    const ctl = (...args: string[]) => {
      const r = spawnSync(process.execPath, [BERTHCTL, "--socket", d.dirs.socket, ...args], { encoding: "utf8", timeout: 120_000 });
      return { code: r.status, out: r.stdout, err: r.stderr };
    };
    try {
      const imgs = await ensureTestImages(authReg);
      const img = imgs["busybox-dyn:latest"];
      const denied = ctl("pull", img.ref);
      assert.equal(denied.code, 1);
      assert.match(denied.err, /PERMISSION_DENIED/);
      const pulled = ctl("pull", "--creds", "ctl:ctl-pw", img.ref);
      assert.equal(pulled.code, 0, pulled.err);
      assert.match(pulled.out, new RegExp(`Image is up to date for ${img.configDigest}`));
      assert.match(pulled.out, /: (waiting|downloading|downloaded|extracting|complete)/, "progress lines per layer");
      const list = ctl("images");
      assert.equal(list.code, 0, list.err);
      assert.match(list.out, /IMAGE\s+TAG\s+IMAGE ID\s+SIZE/);
      assert.match(list.out, new RegExp(`${authReg.host}/busybox-dyn\\s+latest\\s+${img.configDigest.slice(7, 20)}`));
      const inspect = ctl("inspecti", img.ref);
      assert.equal(inspect.code, 0, inspect.err);
      const doc = JSON.parse(inspect.out) as { status: { id: string }; info: { info: { imageSpec: { config: { Cmd: string[] } } } } };
      assert.equal(doc.status.id, img.configDigest);
      assert.deepEqual(doc.info.info.imageSpec.config.Cmd, ["sh"]);
      const fs = ctl("imagefsinfo", "-o", "json");
      assert.equal(fs.code, 0, fs.err);
      assert.ok((JSON.parse(fs.out) as { imageFilesystems: unknown[] }).imageFilesystems.length === 1);
      const rm = ctl("rmi", img.ref);
      assert.equal(rm.code, 0, rm.err);
      assert.match(rm.out, /Deleted: /);
      assert.equal(ctl("inspecti", img.ref).code, 1);
      assert.equal(ctl("images", "-q").out.trim(), "");
      assert.ok(!d.output().includes("ctl-pw"), "credentials never reach the log");
    } finally {
      await d.stop();
      removeDirs(d.dirs);
      await authReg.stop();
    }
  });
});

describe("disk usage", () => {
  test("RemoveImage + GC return ImageFsInfo usage and the content store to where they were", async () => {
    const d = await startDaemon({ configToml: plainHttp(reg.host) });
    try {
      const fs0 = await d.client.image.imageFsInfo({});
      const u0 = fs0.imageFilesystems[0];
      assert.ok(u0?.fsId?.mountpoint.startsWith(d.dirs.root), `mount point ${u0?.fsId?.mountpoint}`);
      assert.ok(fs0.containerFilesystems.length > 0);
      const refs = [images["busybox-dyn:latest"].ref, images["whiteout:latest"].ref, images["nonroot:latest"].ref];
      for (const r of refs) await d.client.image.pullImage({ image: { image: r } });
      const u1 = (await d.client.image.imageFsInfo({})).imageFilesystems[0];
      assert.ok((u1?.usedBytes?.value ?? 0n) > (u0?.usedBytes?.value ?? 0n) + 1_000_000n, `usage grew: ${u0?.usedBytes?.value} -> ${u1?.usedBytes?.value}`);
      for (const r of refs) await d.client.image.removeImage({ image: { image: r } });
      assert.deepEqual((await d.client.image.listImages({})).images, []);
      const u2 = (await d.client.image.imageFsInfo({})).imageFilesystems[0];
      assert.equal(u2?.usedBytes?.value, u0?.usedBytes?.value);
      assert.equal(u2?.inodesUsed?.value, u0?.inodesUsed?.value);
      assert.deepEqual(readdirSync(join(d.dirs.root, "content", "blobs", "sha256")), []);
    } finally {
      await d.stop();
      removeDirs(d.dirs);
    }
  });
});

describe("authentication", () => {
  test("basic-auth registry: no credentials is a clear error, credentials succeed", async () => {
    const authReg = await startRegistry({ auth: { username: "berth", password: "s3cret-pw" } });
    const d = await startDaemon({ configToml: plainHttp(authReg.host) });
    try {
      const imgs = await ensureTestImages(authReg);
      const ref = imgs["busybox:latest"].ref;
      await assert.rejects(d.client.image.pullImage({ image: { image: ref } }), (err) => {
        assert.equal(code(err), GrpcStatus.PERMISSION_DENIED, String(err));
        assert.match(String(err), /credentials|denied/);
        return true;
      });
      await assert.rejects(d.client.image.pullImage({ image: { image: ref }, auth: { username: "berth", password: "wrong" } }), (err) => code(err) === GrpcStatus.PERMISSION_DENIED);
      const ok = await d.client.image.pullImage({ image: { image: ref }, auth: { username: "berth", password: "s3cret-pw" } });
      assert.equal(ok.imageRef, imgs["busybox:latest"].configDigest);
      const viaAuth = await d.client.image.pullImage({ image: { image: imgs["nonroot:latest"].ref }, auth: { auth: Buffer.from("berth:s3cret-pw").toString("base64") } });
      assert.equal(viaAuth.imageRef, imgs["nonroot:latest"].configDigest);
      assert.ok(!d.output().includes("s3cret-pw"), "credentials never reach the log");
    } finally {
      await d.stop();
      removeDirs(d.dirs);
      await authReg.stop();
    }
  });
});

describe("mirrors", () => {
  test("a pull of docker.io/library/busybox is served by the configured mirror", async () => {
    const mirror = await startRegistry();
    const d = await startDaemon({
      configToml: `[image.registries."docker.io"]\nmirrors = ["http://${mirror.host}"]\n`,
    });
    try {
      const bb = images["busybox:latest"];
      const pushed = await pushFromLayout(bb.layoutDir, bb.tag, mirror.host, "library/busybox", "latest");
      const r = await d.client.image.pullImage({ image: { image: "busybox" } });
      assert.equal(r.imageRef, pushed.configDigest);
      const s = await d.client.image.imageStatus({ image: { image: "docker.io/library/busybox:latest" } });
      assert.deepEqual(s.image?.repoTags, ["docker.io/library/busybox:latest"]);
      assert.equal((await d.client.image.imageStatus({ image: { image: "busybox:latest" } })).image?.id, pushed.configDigest);
    } finally {
      await d.stop();
      removeDirs(d.dirs);
      await mirror.stop();
    }
  });
});

describe("faults", () => {
  let proxy: RegistryProxy;
  let d: Daemon;
  before(async () => {
    proxy = await new RegistryProxy(reg.host).start();
    d = await startDaemon({ configToml: `${plainHttp(reg.host, proxy.host)}\n[image]\nmax_concurrent_downloads = 3\n` });
  });
  after(async () => {
    await d?.stop();
    if (d) removeDirs(d.dirs);
    await proxy?.stop();
  });

  test("corrupted bytes: the pull fails with a digest error and nothing is committed", async () => {
    const img = images["busybox-uncompressed:latest"];
    const [layer] = await layerDigests(reg.url, img.name, img.manifestDigest);
    assert.ok(layer);
    proxy.rules.set(layer, { flip: true });
    try {
      await assert.rejects(d.client.image.pullImage({ image: { image: `${proxy.host}/${img.name}:latest` } }), (err) => {
        assert.equal(code(err), GrpcStatus.FAILED_PRECONDITION, String(err));
        assert.match(String(err), /digest mismatch/);
        return true;
      });
    } finally {
      proxy.rules.delete(layer);
    }
    assert.equal((await d.client.image.imageStatus({ image: { image: img.configDigest } })).image, undefined);
    assert.equal(existsSync(join(d.dirs.root, "content", "blobs", "sha256", layer.slice(7))), false, "corrupt layer not committed");
    assert.deepEqual(readdirSync(join(d.dirs.root, "content", "ingest")), [], "corrupt partial data discarded");
    // The same pull succeeds once the bytes are right.
    const ok = await d.client.image.pullImage({ image: { image: `${proxy.host}/${img.name}:latest` } });
    assert.equal(ok.imageRef, img.configDigest);
  });

  test("a connection cut mid-blob resumes with a Range request and completes", async () => {
    const img = images["busybox-dyn:latest"];
    const [layer] = await layerDigests(reg.url, img.name, img.manifestDigest);
    assert.ok(layer);
    proxy.rules.set(layer, { cutAt: 0.5 });
    try {
      const r = await d.client.image.pullImage({ image: { image: `${proxy.host}/${img.name}:latest` } });
      assert.equal(r.imageRef, img.configDigest);
    } finally {
      proxy.rules.delete(layer);
    }
    const resumed = proxy.ranges.filter((x) => x.path.endsWith(layer));
    assert.equal(resumed.length, 1, "one Range request");
    assert.match(resumed[0]?.range ?? "", /^bytes=[1-9]\d*-$/);
    assert.equal(proxy.blobGets(layer), 2);
  });

  test("two concurrent pulls of one image download each layer once", async () => {
    const img = images["whiteout:latest"];
    const layers = await layerDigests(reg.url, img.name, img.manifestDigest);
    const ref = `${proxy.host}/${img.name}:latest`;
    const [a, b] = await Promise.all([d.client.image.pullImage({ image: { image: ref } }), d.client.image.pullImage({ image: { image: ref } })]);
    assert.equal(a.imageRef, img.configDigest);
    assert.equal(b.imageRef, img.configDigest);
    // The base layer may already be here from earlier tests; every other layer is new.
    for (const l of layers) assert.ok(proxy.blobGets(l) <= 1, `layer ${l} fetched at most once`);
    for (const l of layers.slice(1)) assert.equal(proxy.blobGets(l), 1, `layer ${l} fetched once`);
  });

  test("a download that receives no bytes for image.stall_timeout_seconds is aborted", async () => {
    const p2 = await new RegistryProxy(reg.host).start();
    const d2 = await startDaemon({ configToml: `${plainHttp(p2.host)}\n[image]\nstall_timeout_seconds = 1\n` });
    try {
      const img = images["nonroot:numeric"];
      const layers = await layerDigests(reg.url, img.name, img.manifestDigest);
      const last = layers[layers.length - 1] as string;
      p2.rules.set(last, { holdAt: 0.01 });
      const t0 = Date.now();
      await assert.rejects(d2.client.image.pullImage({ image: { image: `${p2.host}/${img.name}:numeric` } }).then((r) => { throw new Error(`pulled ${r.imageRef}; ${JSON.stringify([...p2.gets])}\n${d2.output().split("\n").filter((l) => /resum|retry|blob/.test(l)).join("\n")}`); }), (err) => {
        assert.equal(code(err), GrpcStatus.DEADLINE_EXCEEDED, String(err));
        assert.match(String(err), /received no bytes for 1 s/, d2.output().split("\n").filter((l) => /resum|retry|blob/.test(l)).join("\n"));
        return true;
      });
      assert.ok(Date.now() - t0 < 30_000);
      assert.equal((await d2.client.image.imageStatus({ image: { image: img.configDigest } })).image, undefined);
    } finally {
      p2.release();
      await d2.stop();
      removeDirs(d2.dirs);
      await p2.stop();
    }
  });

  test("the registry killed mid-pull and restarted: the pull retries and completes", async () => {
    const storage = join(d.dirs.base, "registry-storage");
    let r2 = await startRegistry({ storageDir: storage });
    const port = r2.port;
    const imgs = await ensureTestImages(r2);
    const img = imgs["entrypoint:latest"];
    const [first] = await layerDigests(r2.url, img.name, img.manifestDigest);
    assert.ok(first);
    const p2 = await new RegistryProxy(r2.host).start();
    const d2 = await startDaemon({ configToml: plainHttp(p2.host) });
    try {
      p2.rules.set(first, { holdAt: 0.5 });
      // The proxy holds the layer half sent; the registry dies; on release the proxy cuts the stream.
      const held = p2.held();
      const pull = d2.client.image.pullImage({ image: { image: `${p2.host}/${img.name}:latest` } });
      await held;
      await r2.stop();
      p2.release();
      await new Promise((r) => setTimeout(r, 1000));
      r2 = await startRegistry({ storageDir: storage, port });
      const res = await pull;
      assert.equal(res.imageRef, img.configDigest);
      assert.ok(p2.blobGets(first) >= 2, "the layer was requested again after the registry came back");
    } finally {
      await d2.stop();
      removeDirs(d2.dirs);
      await p2.stop();
      await r2.stop();
    }
  });
});

describe("crash", () => {
  test("kill -9 mid-pull: after a restart GC leaves no partial or unreferenced data, and the pull then succeeds", async () => {
    const proxy = await new RegistryProxy(reg.host).start();
    const toml = plainHttp(proxy.host);
    let d = await startDaemon({ configToml: toml });
    const dirs = d.dirs;
    try {
      const img = images["whiteout:latest"];
      const layers = await layerDigests(reg.url, img.name, img.manifestDigest);
      const big = layers[0] as string;
      proxy.rules.set(big, { holdAt: 0.5 });
      const held = proxy.held();
      const pull = d.client.image.pullImage({ image: { image: `${proxy.host}/${img.name}:latest` } });
      pull.catch(() => undefined);
      await held;
      // Let the other layers land (committed blobs, maybe snapshots) before the crash.
      await new Promise((r) => setTimeout(r, 500));
      await d.kill();
      proxy.release();
      const ingest = join(dirs.root, "content", "ingest");
      assert.ok(readdirSync(ingest).length > 0, "a partial download was on disk at the crash");
      d = await startDaemon({ configToml: toml, dirs });
      // RemoveImage of an unknown image succeeds and runs a GC (after the start-up one).
      await d.client.image.removeImage({ image: { image: `${proxy.host}/${img.name}:latest` } });
      assert.deepEqual(readdirSync(ingest), [], "partial downloads collected");
      assert.deepEqual(readdirSync(join(dirs.root, "content", "blobs", "sha256")), [], "unreferenced blobs collected");
      const u = (await d.client.image.imageFsInfo({})).imageFilesystems[0];
      assert.equal(u?.usedBytes?.value, 0n, "no snapshot or content left");
      const ok = await d.client.image.pullImage({ image: { image: `${proxy.host}/${img.name}:latest` } });
      assert.equal(ok.imageRef, img.configDigest);
    } finally {
      await d.stop();
      removeDirs(dirs);
      await proxy.stop();
    }
  });
});
