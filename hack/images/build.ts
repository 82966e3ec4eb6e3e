// CLI: builds the standard test images as OCI layouts and optionally pushes them.
//
//   node dist/hack/images/build.js --out DIR [--only busybox,nonroot] [--cache DIR]
//        [--big-mb 300 --big-layers 6 --big-seed berth]
//        [--push HOST:PORT [--username U --password P] [--tls]] [--json]

import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pushFromLayout, type PushResult, type RegistryClientOptions } from './push.js';
import { buildStandardImages, type StandardImageOptions } from './standard-images.js';

const USAGE = `usage: build.js --out DIR [--only NAME,...] [--cache DIR]
                [--big-mb MB] [--big-layers N] [--big-seed SEED]
                [--push HOST:PORT] [--username U --password P] [--tls] [--json]`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      only: { type: 'string' },
      cache: { type: 'string' },
      'big-mb': { type: 'string' },
      'big-layers': { type: 'string' },
      'big-seed': { type: 'string' },
      push: { type: 'string' },
      username: { type: 'string' },
      password: { type: 'string' },
      tls: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help || values.out === undefined) {
    process.stderr.write(`${USAGE}\n`);
    process.exit(values.help ? 0 : 2);
  }
  const int = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} wants a non-negative integer, got "${v}"`);
    return n;
  };
  const log = (msg: string): void => void process.stderr.write(`${msg}\n`);
  const out = resolve(values.out);
  const opts: StandardImageOptions = { cacheDir: resolve(values.cache ?? join(homedir(), '.cache', 'berth-images')), log };
  const bigMb = int('big-mb', values['big-mb']);
  const bigLayers = int('big-layers', values['big-layers']);
  if (bigMb !== undefined) opts.bigMb = bigMb;
  if (bigLayers !== undefined) opts.bigLayers = bigLayers;
  if (values['big-seed'] !== undefined) opts.bigSeed = values['big-seed'];
  if (values.only !== undefined) opts.only = values.only.split(',').map((s) => s.trim()).filter(Boolean);

  const started = Date.now();
  const images = await buildStandardImages(out, opts);
  log(`built ${images.size} images into ${out} in ${Date.now() - started} ms`);

  const summary: Record<string, unknown> = {};
  for (const [ref, img] of images) {
    const b = img.built;
    summary[ref] = {
      layout: img.layoutDir,
      tag: img.tag,
      mediaType: b.kind === 'index' ? b.index.mediaType : b.manifest.mediaType,
      digest: b.kind === 'index' ? b.index.digest : b.manifest.digest,
      configDigest: b.kind === 'index' ? b.manifests[0]?.config.digest : b.config.digest,
    };
  }

  if (values.push !== undefined) {
    const popts: RegistryClientOptions = { scheme: values.tls ? 'https' : 'http' };
    if (values.username !== undefined) popts.auth = { username: values.username, password: values.password ?? '' };
    const pushStarted = Date.now();
    for (const [ref, img] of images) {
      const r: PushResult = await pushFromLayout(img.layoutDir, img.tag, values.push, img.name, img.tag, popts);
      summary[ref] = { ...(summary[ref] as object), pushed: r };
      log(`pushed ${r.ref} ${r.digest} (${r.uploadedBlobs} blobs uploaded)`);
    }
    log(`pushed ${images.size} images in ${Date.now() - pushStarted} ms`);
  }

  if (values.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  else for (const [ref, s] of Object.entries(summary)) process.stdout.write(`${ref}\t${(s as { digest: string }).digest}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`build.js: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
