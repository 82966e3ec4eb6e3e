// Builds the standard test images once (cached on disk, keyed by a hash of
// the builder's code and the host busybox) and pushes them to a registry
// once per registry per process.

import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildStandardImages,
  pushFromLayout,
  STANDARD_IMAGE_REFS,
  type PushedPlatformManifest,
  type RegistryClientOptions,
  type StandardImageRef,
} from '../../hack/images/index.js';

export type TestImageRef = Exclude<StandardImageRef, 'big:latest'>;

export interface TestImageLayout {
  name: string;
  tag: string;
  /** OCI layout directory (the image is tagged `tag` in its index.json). */
  layoutDir: string;
}

export interface TestImage extends TestImageLayout {
  /** "127.0.0.1:PORT/busybox:latest". */
  ref: string;
  /** What the tag points at: the index for multiarch images, else the manifest. */
  digest: string;
  mediaType: string;
  /** Image manifest digest (for an index: the linux/amd64 child). */
  manifestDigest: string;
  /** Config digest = image ID. */
  configDigest: string;
  /** Set for multiarch images. */
  indexDigest?: string;
  manifests: PushedPlatformManifest[];
}

export type TestImages = Record<TestImageRef, TestImage>;

export interface RegistryTarget {
  host: string;
  auth?: { username: string; password: string };
}

/** Where built layouts are kept between runs: $BERTH_TEST_IMAGES_DIR or $TMPDIR/berth-test-images. */
export function imageCacheRoot(): string {
  const env = process.env['BERTH_TEST_IMAGES_DIR'];
  return env !== undefined && env !== '' ? env : join(tmpdir(), 'berth-test-images');
}

const builderDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'hack', 'images');

async function builderHash(): Promise<string> {
  const h = createHash('sha256');
  const files = (await readdir(builderDir)).filter((f) => f.endsWith('.js') && !f.endsWith('.test.js')).sort();
  for (const f of files) h.update(f).update(await readFile(join(builderDir, f)));
  for (const bb of ['/bin/busybox', '/usr/bin/busybox']) {
    const st = await stat(bb).catch(() => undefined);
    if (st !== undefined) h.update(`${bb}:${st.size}:${st.mtimeMs}`);
  }
  return h.digest('hex').slice(0, 16);
}

const SUMMARY = 'berth-images.json';

async function readSummary(dir: string): Promise<Record<TestImageRef, TestImageLayout> | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, SUMMARY), 'utf8')) as Record<TestImageRef, TestImageLayout>;
  } catch {
    return undefined;
  }
}

async function buildLayouts(): Promise<Record<TestImageRef, TestImageLayout>> {
  const root = imageCacheRoot();
  const dir = join(root, await builderHash());
  const cached = await readSummary(dir);
  if (cached !== undefined) return cached;

  // Build beside the final dir and rename, so concurrent test processes never see half a build.
  const tmp = `${dir}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    const images = await buildStandardImages(tmp, { cacheDir: join(root, 'host-cache') });
    const summary: Partial<Record<TestImageRef, TestImageLayout>> = {};
    for (const ref of STANDARD_IMAGE_REFS) {
      const img = images.get(ref);
      if (img === undefined) throw new Error(`builder did not produce ${ref}`);
      summary[ref] = { name: img.name, tag: img.tag, layoutDir: join(dir, img.name) };
    }
    await writeFile(join(tmp, SUMMARY), JSON.stringify(summary, null, 2));
    try {
      await rename(tmp, dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const built = await readSummary(dir);
  if (built === undefined) throw new Error(`test image cache ${dir} has no ${SUMMARY}`);
  return built;
}

let layoutsOnce: Promise<Record<TestImageRef, TestImageLayout>> | undefined;

/** Builds (or finds in the cache) the OCI layouts of every standard test image. */
export function ensureTestImageLayouts(): Promise<Record<TestImageRef, TestImageLayout>> {
  layoutsOnce ??= buildLayouts().catch((err: unknown) => {
    layoutsOnce = undefined;
    throw err;
  });
  return layoutsOnce;
}

const pushed = new Map<string, Promise<TestImages>>();

async function pushAll(registry: RegistryTarget): Promise<TestImages> {
  const layouts = await ensureTestImageLayouts();
  const opts: RegistryClientOptions = {};
  if (registry.auth !== undefined) opts.auth = registry.auth;
  // One image after the other: the images share layers, and parallel pushes of them to one
  // docker-registry 2.8 sporadically failed on the loaded test machines (HTTP 500 on HEAD
  // blob, HTTP 400 on PUT manifest, both for the nonroot repository).
  const entries: Array<[TestImageRef, TestImage]> = [];
  for (const ref of STANDARD_IMAGE_REFS) {
    const l = layouts[ref];
    const r = await pushFromLayout(l.layoutDir, l.tag, registry.host, l.name, l.tag, opts);
    const img: TestImage = {
      ...l,
      ref: r.ref,
      digest: r.digest,
      mediaType: r.mediaType,
      manifestDigest: r.manifestDigest,
      configDigest: r.configDigest,
      manifests: r.manifests,
    };
    if (r.indexDigest !== undefined) img.indexDigest = r.indexDigest;
    entries.push([ref, img]);
  }
  return Object.fromEntries(entries) as TestImages;
}

/**
 * Builds the standard test images (once per process, cached on disk) and
 * pushes them to `registry` (once per registry host), returning each
 * image's reference and digests keyed by "name:tag".
 */
export function ensureTestImages(registry: RegistryTarget): Promise<TestImages> {
  let p = pushed.get(registry.host);
  if (p === undefined) {
    p = pushAll(registry).catch((err: unknown) => {
      pushed.delete(registry.host);
      throw err;
    });
    pushed.set(registry.host, p);
  }
  return p;
}
