import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { MediaTypes, RegistryClient } from '../../hack/images/index.js';
import { ensureTestImages, type TestImages } from './images.js';
import { startRegistry, type Registry } from './registry.js';

function sha256(b: Uint8Array): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

describe('registry harness without auth', () => {
  let registry: Registry;
  let images: TestImages;

  before(async () => {
    registry = await startRegistry();
    images = await ensureTestImages(registry);
  });
  after(async () => {
    await registry?.stop();
  });

  test('GET /v2/ answers 200 on a loopback address', async () => {
    assert.match(registry.host, /^127\.0\.0\.1:\d+$/);
    const res = await fetch(`${registry.url}/v2/`);
    assert.equal(res.status, 200);
  });

  test('an OCI image comes back with the digest the builder computed', async () => {
    const img = images['busybox:latest'];
    assert.equal(img.ref, `${registry.host}/busybox:latest`);
    const got = await new RegistryClient(registry.host, 'busybox').getManifest('latest', MediaTypes.ociManifest);
    assert.equal(got.status, 200);
    assert.equal(got.mediaType, MediaTypes.ociManifest);
    assert.equal(got.digest, img.manifestDigest);
    assert.equal(sha256(got.body), img.manifestDigest);
    const manifest = JSON.parse(got.body.toString()) as { config: { digest: string } };
    assert.equal(manifest.config.digest, img.configDigest);
  });

  test('a Docker schema 2 image keeps its media type and digest', async () => {
    const img = images['busybox-docker:latest'];
    const got = await new RegistryClient(registry.host, 'busybox-docker').getManifest('latest', MediaTypes.dockerManifest);
    assert.equal(got.status, 200);
    assert.equal(got.mediaType, MediaTypes.dockerManifest);
    assert.equal(sha256(got.body), img.manifestDigest);
    const m = JSON.parse(got.body.toString()) as { layers: { mediaType: string }[] };
    assert.deepEqual(
      m.layers.map((l) => l.mediaType),
      [MediaTypes.dockerLayerGzip],
    );
  });

  test('multiarch tags resolve to the index, whose children are fetchable by digest', async () => {
    for (const [ref, repo, indexType] of [
      ['multiarch:latest', 'multiarch', MediaTypes.ociIndex],
      ['multiarch-docker:latest', 'multiarch-docker', MediaTypes.dockerManifestList],
    ] as const) {
      const img = images[ref];
      const client = new RegistryClient(registry.host, repo);
      const idx = await client.getManifest('latest', indexType);
      assert.equal(idx.status, 200, ref);
      assert.equal(idx.mediaType, indexType, ref);
      assert.equal(sha256(idx.body), img.indexDigest, ref);
      assert.equal(img.manifests.length, 2);
      for (const m of img.manifests) {
        const child = await client.getManifest(m.manifestDigest);
        assert.equal(child.status, 200);
        assert.equal(sha256(child.body), m.manifestDigest);
      }
      assert.equal(img.manifests.find((m) => m.platform?.architecture === 'amd64')?.manifestDigest, img.manifestDigest);
    }
  });

  test('every standard image is pushed and its config blob is served', async () => {
    for (const img of Object.values(images)) {
      const repo = img.name;
      const res = await fetch(`${registry.url}/v2/${repo}/blobs/${img.configDigest}`);
      assert.equal(res.status, 200, img.ref);
      assert.equal(sha256(Buffer.from(await res.arrayBuffer())), img.configDigest, img.ref);
    }
  });

  test('a second ensureTestImages call reuses the first push', async () => {
    assert.equal(await ensureTestImages(registry), images);
  });
});

describe('registry harness with htpasswd auth', () => {
  let registry: Registry;
  const auth = { username: 'berth', password: 's3cret-pw' };

  before(async () => {
    registry = await startRegistry({ auth });
  });
  after(async () => {
    await registry?.stop();
  });

  test('GET /v2/ is 401 with a Basic challenge without credentials', async () => {
    const res = await fetch(`${registry.url}/v2/`);
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm="berth-test"/);
  });

  test('GET /v2/ is 200 with basic auth and 401 with a wrong password', async () => {
    const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
    const ok = await fetch(`${registry.url}/v2/`, { headers: { authorization: basic(auth.username, auth.password) } });
    assert.equal(ok.status, 200);
    const bad = await fetch(`${registry.url}/v2/`, { headers: { authorization: basic(auth.username, 'wrong') } });
    assert.equal(bad.status, 401);
  });

  test('images push with credentials and cannot be read without them', async () => {
    const images = await ensureTestImages(registry);
    const img = images['nonroot:latest'];
    const anon = await new RegistryClient(registry.host, 'nonroot').getManifest('latest');
    assert.equal(anon.status, 401);
    const authed = await new RegistryClient(registry.host, 'nonroot', { auth }).getManifest('latest');
    assert.equal(authed.status, 200);
    assert.equal(sha256(authed.body), img.manifestDigest);
  });
});

describe('registry lifecycle', () => {
  test('stop() kills the registry and frees the port', async () => {
    const registry = await startRegistry();
    await registry.stop();
    await registry.stop();
    await assert.rejects(fetch(`${registry.url}/v2/`));
  });
});
