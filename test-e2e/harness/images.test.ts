// Runs the built test images with real runc (root only): the layers are
// unpacked with GNU tar into a rootfs and started from a `runc spec` config
// that follows the image config, the way the runtime will.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { MediaTypes, OciLayout, type Descriptor } from '../../hack/images/index.js';
import { ensureTestImageLayouts, type TestImageLayout, type TestImageRef } from './images.js';

const RUNC = '/usr/sbin/runc';
const skip = process.getuid?.() !== 0 ? 'needs root' : !existsSync(RUNC) ? `needs ${RUNC}` : false;

interface ImageConfig {
  config: { Env?: string[]; Entrypoint?: string[]; Cmd?: string[]; WorkingDir?: string; User?: string };
}

async function imageOf(l: TestImageLayout): Promise<{ layout: OciLayout; layers: Descriptor[]; config: ImageConfig }> {
  const layout = await OciLayout.read(l.layoutDir);
  let desc = layout.resolve(l.tag);
  assert.ok(desc);
  if (desc.mediaType === MediaTypes.ociIndex || desc.mediaType === MediaTypes.dockerManifestList) {
    const idx = JSON.parse((await layout.readBlob(desc.digest)).toString()) as { manifests: Descriptor[] };
    desc = idx.manifests.find((m) => m.platform?.architecture === 'amd64');
    assert.ok(desc);
  }
  const manifest = JSON.parse((await layout.readBlob(desc.digest)).toString()) as { config: Descriptor; layers: Descriptor[] };
  const config = JSON.parse((await layout.readBlob(manifest.config.digest)).toString()) as ImageConfig;
  return { layout, layers: manifest.layers, config };
}

interface RunOptions {
  args?: string[];
  uid?: number;
  gid?: number;
  additionalGids?: number[];
}

describe('test images run under runc', { skip }, () => {
  let work: string;
  let layouts: Record<TestImageRef, TestImageLayout>;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-images-run-'));
    layouts = await ensureTestImageLayouts();
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  async function run(ref: TestImageRef, opts: RunOptions = {}): Promise<{ stdout: string; exitCode: number | undefined }> {
    const { layout, layers, config } = await imageOf(layouts[ref]);
    const bundle = join(work, `${ref.replace(/[:/]/g, '_')}-${randomBytes(4).toString('hex')}`);
    const rootfs = join(bundle, 'rootfs');
    await mkdir(rootfs, { recursive: true });
    for (const l of layers) {
      await execa('tar', [l.mediaType.endsWith('gzip') ? '-xzf' : '-xf', layout.blobPath(l.digest), '-C', rootfs, '--same-owner', '-p']);
    }
    await execa(RUNC, ['spec'], { cwd: bundle });
    const spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as {
      process: Record<string, unknown>;
      root: Record<string, unknown>;
    };
    const c = config.config;
    spec.process['terminal'] = false;
    spec.process['args'] = opts.args ?? [...(c.Entrypoint ?? []), ...(c.Cmd ?? [])];
    spec.process['env'] = c.Env ?? [];
    spec.process['cwd'] = c.WorkingDir ?? '/';
    const user: Record<string, unknown> = { uid: opts.uid ?? 0, gid: opts.gid ?? 0 };
    if (opts.additionalGids !== undefined) user['additionalGids'] = opts.additionalGids;
    spec.process['user'] = user;
    spec.root = { path: rootfs, readonly: false };
    await writeFile(join(bundle, 'config.json'), JSON.stringify(spec));
    const id = `berth-img-test-${randomBytes(6).toString('hex')}`;
    const r = await execa(RUNC, ['run', '--bundle', bundle, id], { reject: false, timeout: 30_000, stdin: 'ignore' });
    await execa(RUNC, ['delete', '--force', id], { reject: false });
    assert.equal(r.stderr, '', `runc stderr for ${ref}`);
    return { stdout: r.stdout, exitCode: r.exitCode };
  }

  test('busybox runs its default command and applets', async () => {
    const r = await run('busybox:latest', { args: ['sh', '-c', 'echo hello-from-busybox; cat /etc/passwd | head -1; stat -c %a /tmp'] });
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, 'hello-from-busybox\nroot:x:0:0:root:/root:/bin/sh\n1777');
  });

  test('busybox-dyn finds applets on $PATH as real hard-linked executables', async () => {
    const r = await run('busybox-dyn:latest', { args: ['sh', '-c', 'command -v ls; stat -c %h /bin/ls; ls / >/dev/null && echo ok'] });
    assert.equal(r.exitCode, 0);
    const [path, links, ok] = r.stdout.split('\n');
    assert.equal(path, '/bin/ls');
    assert.ok(Number(links) > 100, `hard link count ${links}`);
    assert.equal(ok, 'ok');
  });

  test('nonroot user and groups resolve through the image /etc files', async () => {
    const r = await run('nonroot:latest', { args: ['id'], uid: 1234, gid: 5678, additionalGids: [5678, 9000] });
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, 'uid=1234(berth) gid=5678(berthgrp) groups=5678(berthgrp),9000(extra)');
  });

  test('entrypoint image: entrypoint + cmd, env and working dir', async () => {
    assert.equal((await run('entrypoint:latest')).stdout, 'entrypoint-ok');
    const r = await run('entrypoint:latest', { args: ['/bin/sh', '-c', 'echo $FOO; pwd; cat marker'] });
    assert.equal(r.stdout, 'bar\n/work\nworkdir');
  });

  test('multiarch amd64 image has its marker', async () => {
    const r = await run('multiarch:latest', { args: ['cat', '/arch'] });
    assert.equal(r.stdout, 'amd64');
  });
});
