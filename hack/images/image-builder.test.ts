import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import type { Header } from 'tar-stream';
import {
  buildImage,
  buildIndex,
  buildLayer,
  entriesEnd,
  withTarEnd,
  buildStandardImages,
  MediaTypes,
  MemoryBlobs,
  NONROOT,
  OciLayout,
  REF_NAME_ANNOTATION,
  type Descriptor,
  type StandardImage,
  type StandardImageRef,
} from './index.js';

const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface TarItem {
  header: Header;
  body: Buffer;
}

async function readTar(data: Uint8Array): Promise<TarItem[]> {
  const extract = tar.extract();
  const items: TarItem[] = [];
  const done = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      items.push({ header: entry.header, body: Buffer.concat(chunks) });
    }
  })();
  extract.end(Buffer.from(data));
  await done;
  return items;
}

interface Manifest {
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}
interface Config {
  architecture: string;
  os: string;
  config: Record<string, unknown>;
  rootfs: { diff_ids: string[] };
  history: { created_by: string; empty_layer?: boolean }[];
}

const NO_DYN = ['busybox', 'busybox-docker', 'busybox-uncompressed', 'nonroot', 'entrypoint', 'whiteout', 'multiarch', 'multiarch-docker'];

describe('tar layers', () => {
  test('entries become the expected tar headers', async () => {
    const layer = await buildLayer([
      { type: 'dir', path: '/etc', mode: 0o755 },
      { type: 'file', path: '/etc/hello', content: 'hi\n', uid: 7, gid: 8 },
      { type: 'file', path: 'bin/tool', content: 'x', mode: 0o755 },
      { type: 'hardlink', path: 'bin/tool2', target: '/bin/tool' },
      { type: 'symlink', path: 'lnk', target: '/etc/hello' },
      { type: 'whiteout', path: 'etc/gone' },
      { type: 'opaque', path: 'var/cache' },
      { type: 'fifo', path: 'pipe' },
      { type: 'raw', header: { name: '../../escape', type: 'file' }, content: 'evil' },
      { type: 'raw', header: { name: '/abs/path', type: 'symlink', linkname: '../../../../etc/shadow' } },
    ]);
    assert.equal(layer.compression, 'gzip');
    assert.equal(layer.digest, sha256(layer.blob));
    const tarBytes = gunzipSync(layer.blob);
    assert.equal(layer.diffId, sha256(tarBytes));
    assert.equal(layer.tarSize, tarBytes.byteLength);
    const items = await readTar(tarBytes);
    const byName = new Map(items.map((i) => [i.header.name, i]));
    assert.deepEqual(
      items.map((i) => [i.header.name, i.header.type]),
      [
        ['etc/', 'directory'],
        ['etc/hello', 'file'],
        ['bin/tool', 'file'],
        ['bin/tool2', 'link'],
        ['lnk', 'symlink'],
        ['etc/.wh.gone', 'file'],
        ['var/cache/.wh..wh..opq', 'file'],
        ['pipe', 'fifo'],
        ['../../escape', 'file'],
        ['/abs/path', 'symlink'],
      ],
    );
    assert.equal(byName.get('etc/hello')?.body.toString(), 'hi\n');
    assert.equal(byName.get('etc/hello')?.header.uid, 7);
    assert.equal(byName.get('bin/tool2')?.header.linkname, 'bin/tool');
    assert.equal(byName.get('bin/tool2')?.header.mode, 0o755, 'a hard link carries its target mode');
    assert.equal(byName.get('lnk')?.header.linkname, '/etc/hello');
    assert.equal(byName.get('../../escape')?.body.toString(), 'evil');
    assert.equal(byName.get('/abs/path')?.header.linkname, '../../../../etc/shadow');
    for (const i of items) assert.equal(i.header.mtime?.toISOString(), '2020-01-01T00:00:00.000Z');
  });

  test('the same entries give the same digests; a changed byte changes them', async () => {
    const entries = [{ type: 'file', path: 'a', content: 'one' }] as const;
    const a = await buildLayer(entries);
    const b = await buildLayer(entries);
    assert.equal(a.digest, b.digest);
    const c = await buildLayer([{ type: 'file', path: 'a', content: 'two' }]);
    assert.notEqual(a.diffId, c.diffId);
  });

  test('an uncompressed layer has digest == diff_id', async () => {
    const l = await buildLayer([{ type: 'file', path: 'a', content: 'one' }], { compression: 'none' });
    assert.equal(l.digest, l.diffId);
    assert.equal((await readTar(l.blob))[0]?.header.name, 'a');
  });
});

describe('images and indexes', () => {
  test('docker format uses schema 2 media types, manifest list for an index', async () => {
    const blobs = new MemoryBlobs();
    const idx = await buildIndex(blobs, {
      format: 'docker',
      manifests: [
        { layers: [{ entries: [{ type: 'file', path: 'arch', content: 'amd64' }] }] },
        { layers: [{ entries: [{ type: 'file', path: 'arch', content: 'arm64' }], compression: 'none' }], platform: { architecture: 'arm64', os: 'linux' } },
      ],
    });
    assert.equal(idx.index.mediaType, MediaTypes.dockerManifestList);
    const list = JSON.parse(blobs.blobs.get(idx.index.digest)?.toString() ?? '') as { mediaType: string; manifests: Descriptor[] };
    assert.equal(list.mediaType, MediaTypes.dockerManifestList);
    assert.deepEqual(list.manifests.map((m) => m.platform?.architecture), ['amd64', 'arm64']);
    const [amd, arm] = idx.manifests;
    assert.equal(amd?.manifest.mediaType, MediaTypes.dockerManifest);
    assert.equal(amd?.config.mediaType, MediaTypes.dockerConfig);
    assert.equal(amd?.layers[0]?.mediaType, MediaTypes.dockerLayerGzip);
    assert.equal(arm?.layers[0]?.mediaType, MediaTypes.dockerLayer);
    const cfg = JSON.parse(arm?.configBytes.toString() ?? '') as Config;
    assert.equal(cfg.architecture, 'arm64');
  });

  test('config records diff_ids, history and the runtime config', async () => {
    const blobs = new MemoryBlobs();
    const img = await buildImage(blobs, {
      layers: [{ entries: [{ type: 'file', path: 'a', content: '1' }], createdBy: 'ADD a' }],
      config: { User: '1:2', Cmd: ['x'] },
      emptyLayerHistory: ['CMD ["x"]'],
    });
    const cfg = JSON.parse(img.configBytes.toString()) as Config;
    assert.deepEqual(cfg.rootfs.diff_ids, img.layers.map((l) => l.diffId));
    assert.deepEqual(cfg.history, [
      { created: '2020-01-01T00:00:00Z', created_by: 'ADD a' },
      { created: '2020-01-01T00:00:00Z', created_by: 'CMD ["x"]', empty_layer: true },
    ]);
    assert.deepEqual(cfg.config, { User: '1:2', Cmd: ['x'] });
    assert.equal(img.config.digest, sha256(img.configBytes));
    assert.equal(img.manifest.digest, sha256(img.manifestBytes));
  });
});

describe('standard images', () => {
  let dir: string;
  let images: Map<StandardImageRef, StandardImage>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-images-test-'));
    images = await buildStandardImages(join(dir, 'a'), { cacheDir: join(dir, 'cache'), only: NO_DYN });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function manifestOf(ref: StandardImageRef): Promise<{ layout: OciLayout; manifest: Manifest; config: Config }> {
    const img = images.get(ref);
    assert.ok(img, ref);
    const layout = await OciLayout.read(img.layoutDir);
    let desc = layout.resolve(img.tag);
    assert.ok(desc, `${ref} tagged in its layout`);
    if (desc.mediaType === MediaTypes.ociIndex || desc.mediaType === MediaTypes.dockerManifestList) {
      const idx = JSON.parse((await layout.readBlob(desc.digest)).toString()) as { manifests: Descriptor[] };
      desc = idx.manifests.find((m) => m.platform?.architecture === 'amd64');
      assert.ok(desc);
    }
    const manifest = JSON.parse((await layout.readBlob(desc.digest)).toString()) as Manifest;
    const config = JSON.parse((await layout.readBlob(manifest.config.digest)).toString()) as Config;
    return { layout, manifest, config };
  }

  async function layerItems(layout: OciLayout, d: Descriptor): Promise<TarItem[]> {
    const blob = await layout.readBlob(d.digest);
    return readTar(d.mediaType.endsWith('gzip') ? gunzipSync(blob) : blob);
  }

  test('every blob of every layout is named by its sha256 and index refs carry tags', async () => {
    const dirs = new Set([...images.values()].map((i) => i.layoutDir));
    for (const d of dirs) {
      const blobDir = join(d, 'blobs', 'sha256');
      for (const f of await readdir(blobDir)) assert.equal(sha256(await readFile(join(blobDir, f))), `sha256:${f}`, `${d} ${f}`);
      const index = JSON.parse(await readFile(join(d, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
      for (const m of index.manifests) {
        assert.ok(m.annotations?.[REF_NAME_ANNOTATION]);
        assert.equal((await readFile(join(blobDir, m.digest.slice(7)))).byteLength, m.size);
      }
      assert.deepEqual(JSON.parse(await readFile(join(d, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
    }
  });

  test('diff_ids are the sha256 of the uncompressed layers, sizes match', async () => {
    for (const ref of images.keys()) {
      const { layout, manifest, config } = await manifestOf(ref);
      assert.equal(config.rootfs.diff_ids.length, manifest.layers.length, ref);
      assert.equal(config.history.filter((h) => h.empty_layer !== true).length, manifest.layers.length, ref);
      for (const [i, l] of manifest.layers.entries()) {
        const blob = await layout.readBlob(l.digest);
        assert.equal(blob.byteLength, l.size);
        const raw = l.mediaType.endsWith('gzip') ? gunzipSync(blob) : blob;
        assert.equal(sha256(raw), config.rootfs.diff_ids[i], `${ref} layer ${i}`);
      }
    }
  });

  test('a rebuild gives identical digests', async () => {
    const again = await buildStandardImages(join(dir, 'b'), { cacheDir: join(dir, 'cache'), only: NO_DYN });
    for (const [ref, img] of images) {
      const other = again.get(ref);
      const top = (i: StandardImage | undefined): string | undefined => (i?.built.kind === 'index' ? i.built.index.digest : i?.built.manifest.digest);
      assert.equal(top(other), top(img), ref);
    }
    assert.equal(await readFile(join(dir, 'b', 'busybox', 'index.json'), 'utf8'), await readFile(join(dir, 'a', 'busybox', 'index.json'), 'utf8'));
  });

  test('busybox: static busybox with hard-linked applets, passwd, sticky /tmp, Cmd sh', async () => {
    const { layout, manifest, config } = await manifestOf('busybox:latest');
    assert.deepEqual(config.config['Cmd'], ['sh']);
    assert.equal(manifest.layers.length, 1);
    const items = await layerItems(layout, manifest.layers[0] as Descriptor);
    const byName = new Map(items.map((i) => [i.header.name, i.header]));
    assert.equal(byName.get('bin/busybox')?.type, 'file');
    for (const applet of ['sh', 'ls', 'cat', 'echo', 'sleep', 'id', 'env', 'wget', 'httpd', 'nc', 'ip', 'top', 'ps', 'kill', 'awk', 'nslookup']) {
      const h = byName.get(`bin/${applet}`);
      assert.equal(h?.type, 'link', applet);
      assert.equal(h?.linkname, 'bin/busybox');
    }
    assert.equal(byName.get('tmp/')?.mode, 0o1777);
    const passwd = items.find((i) => i.header.name === 'etc/passwd')?.body.toString() ?? '';
    assert.match(passwd, /^root:x:0:0:/m);
    assert.match(passwd, /^nobody:x:65534:65534:/m);
  });

  test('nonroot: named user with a supplementary group, and a numeric tag', async () => {
    const named = await manifestOf('nonroot:latest');
    assert.equal(named.config.config['User'], NONROOT.user);
    const numeric = await manifestOf('nonroot:numeric');
    assert.equal(numeric.config.config['User'], `${NONROOT.uid}:${NONROOT.gid}`);
    const items = await layerItems(named.layout, named.manifest.layers[1] as Descriptor);
    const file = (n: string): string => items.find((i) => i.header.name === n)?.body.toString() ?? '';
    assert.match(file('etc/passwd'), /^berth:x:1234:5678:/m);
    assert.match(file('etc/group'), /^berthgrp:x:5678:$/m);
    assert.match(file('etc/group'), /^extra:x:9000:berth$/m);
  });

  test('entrypoint: entrypoint, cmd, env, workdir, stop signal, labels, ports', async () => {
    const { layout, manifest, config } = await manifestOf('entrypoint:latest');
    const c = config.config;
    assert.deepEqual(c['Entrypoint'], ['/bin/sh', '-c']);
    assert.deepEqual(c['Cmd'], ['echo entrypoint-ok']);
    assert.ok((c['Env'] as string[]).includes('FOO=bar'));
    assert.ok((c['Env'] as string[]).some((e) => e.startsWith('PATH=')));
    assert.equal(c['WorkingDir'], '/work');
    assert.equal(c['StopSignal'], 'SIGUSR1');
    assert.deepEqual(Object.keys(c['ExposedPorts'] as object), ['8080/tcp', '5353/udp']);
    assert.equal((c['Labels'] as Record<string, string>)['io.berth.test'], 'entrypoint');
    const items = await layerItems(layout, manifest.layers[1] as Descriptor);
    assert.ok(items.some((i) => i.header.name === 'work/' && i.header.type === 'directory'));
  });

  test('whiteout: a whiteout, an opaque dir, then a hard link and symlinks', async () => {
    const { layout, manifest } = await manifestOf('whiteout:latest');
    assert.equal(manifest.layers.length, 4, 'busybox base + 3 layers');
    const names = async (i: number): Promise<string[]> => (await layerItems(layout, manifest.layers[i] as Descriptor)).map((x) => x.header.name);
    assert.deepEqual(await names(1), ['data/', 'data/keep', 'data/gone', 'opq/', 'opq/a', 'opq/b']);
    assert.deepEqual(await names(2), ['data/', 'data/.wh.gone', 'opq/', 'opq/.wh..wh..opq', 'opq/c']);
    const l3 = await layerItems(layout, manifest.layers[3] as Descriptor);
    assert.deepEqual(
      l3.map((x) => [x.header.name, x.header.type, x.header.linkname ?? null]),
      [
        ['data/', 'directory', null],
        ['data/linked', 'file', null],
        ['data/linked-hardlink', 'link', 'data/linked'],
        ['data/keep-symlink', 'symlink', 'keep'],
        ['data/abs-symlink', 'symlink', '/data/keep'],
      ],
    );
  });

  test('multiarch: an index with amd64 (runnable) and arm64 marker images', async () => {
    const img = images.get('multiarch:latest');
    assert.equal(img?.built.kind, 'index');
    if (img?.built.kind !== 'index') return;
    assert.equal(img.built.index.mediaType, MediaTypes.ociIndex);
    const [amd, arm] = img.built.manifests;
    assert.deepEqual(amd?.manifest.platform, { architecture: 'amd64', os: 'linux' });
    assert.deepEqual(arm?.manifest.platform, { architecture: 'arm64', os: 'linux', variant: 'v8' });
    const layout = await OciLayout.read(img.layoutDir);
    const marker = async (layers: Descriptor[] | undefined): Promise<string | undefined> => {
      const last = layers?.[layers.length - 1];
      assert.ok(last);
      return (await layerItems(layout, last)).find((i) => i.header.name === 'arch')?.body.toString();
    };
    assert.equal(await marker(amd?.layers), 'amd64\n');
    assert.equal(await marker(arm?.layers), 'arm64\n');
    assert.equal(amd?.layers.length, 2);
    assert.equal(arm?.layers.length, 1);
    assert.equal(images.get('multiarch-docker:latest')?.built.kind, 'index');
  });
});

describe('how a layer tar ends', () => {
  test('the marker can be one zero block or none; entries whose bodies end in zeros are kept whole', async () => {
    // the last body is all zeros and fills whole blocks: only a parser knows where the entries end
    const entries = [
      { type: 'file' as const, path: 'etc/hello', content: 'hello\n' },
      { type: 'file' as const, path: 'zeros', content: new Uint8Array(1024) },
    ];
    const full = (await buildLayer(entries, { compression: 'none' })).blob;
    const end = entriesEnd(full);
    assert.equal(end, 512 + 512 + 512 + 1024, 'two headers, one padded body, a 1024-byte body');
    assert.ok(full.subarray(end, end + 1024).every((b) => b === 0));
    for (const [how, zeros] of [['none', 0], ['one-zero-block', 1], ['two-zero-blocks', 2]] as const) {
      const layer = await buildLayer(entries, { compression: 'none', end: how });
      assert.equal(layer.blob.length, end + zeros * 512, how);
      assert.deepEqual(layer.blob.subarray(0, end), full.subarray(0, end));
      assert.equal(layer.diffId, sha256(layer.blob), 'the diff ID covers the bytes as written');
      assert.deepEqual(withTarEnd(full, how), layer.blob);
    }
    const gz = await buildLayer(entries, { end: 'none' });
    assert.equal(gunzipSync(gz.blob).length, end);
  });
});
