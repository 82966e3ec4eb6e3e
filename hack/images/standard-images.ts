// The standard test images, built into one OCI layout directory per image
// name (OUT/<name>/, tags as org.opencontainers.image.ref.name).

import { createCipheriv, createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { buildImage, buildIndex, type Built, type ImageRuntimeConfig, type ImageSpec, type LayerSpec } from './image-builder.js';
import { busyboxApplets, busyboxAppletPaths, findDynamicBusybox, findStaticBusybox, sharedLibs } from './host-binaries.js';
import { OciLayout } from './oci-layout.js';
import { buildLayer, withParentDirs, type BuiltLayer, type LayerEntry } from './tar-layer.js';

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** uid/gid of the nonroot image's user "berth" (group "berthgrp", supplementary group "extra" 9000). */
export const NONROOT = { user: 'berth', uid: 1234, gid: 5678, group: 'berthgrp', extraGroup: 'extra', extraGid: 9000 } as const;

export const STANDARD_PASSWD = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
export const STANDARD_GROUP = 'root:x:0:\nnobody:x:65534:\n';

/** Directories and /etc files every standard image has. */
export function skeletonEntries(passwd = STANDARD_PASSWD, group = STANDARD_GROUP): LayerEntry[] {
  const dirs: [string, number][] = [
    ['bin', 0o755], ['dev', 0o755], ['etc', 0o755], ['home', 0o755], ['proc', 0o555], ['root', 0o700],
    ['sbin', 0o755], ['sys', 0o555], ['tmp', 0o1777], ['usr', 0o755], ['usr/bin', 0o755], ['usr/sbin', 0o755],
    ['var', 0o755], ['var/tmp', 0o1777],
  ];
  return [
    ...dirs.map(([path, mode]): LayerEntry => ({ type: 'dir', path, mode })),
    { type: 'file', path: 'etc/passwd', content: passwd },
    { type: 'file', path: 'etc/group', content: group },
    { type: 'file', path: 'etc/nsswitch.conf', content: 'passwd: files\ngroup: files\nhosts: files dns\n' },
  ];
}

export interface StandardImageOptions {
  /** Where the dynamic busybox .deb is unpacked and kept between runs. */
  cacheDir: string;
  /** Build big:latest with this many MiB of random data (0 = don't). */
  bigMb?: number;
  /** Number of data layers of big:latest (default 6). */
  bigLayers?: number;
  /** Seed of big:latest's data (default "berth"). */
  bigSeed?: string;
  /** Only build images whose name is in this list. */
  only?: readonly string[];
  log?: (msg: string) => void;
}

export interface StandardImage {
  /** Repository name, e.g. "busybox". */
  name: string;
  tag: string;
  /** OCI layout directory holding this image (tag = ref name in its index.json). */
  layoutDir: string;
  built: Built;
}

/** Names of every standard image ("name:tag"), big:latest excluded. */
export const STANDARD_IMAGE_REFS = [
  'busybox:latest',
  'busybox-docker:latest',
  'busybox-uncompressed:latest',
  'nonroot:latest',
  'nonroot:numeric',
  'entrypoint:latest',
  'whiteout:latest',
  'multiarch:latest',
  'multiarch-docker:latest',
  'busybox-dyn:latest',
] as const;

export type StandardImageRef = (typeof STANDARD_IMAGE_REFS)[number] | 'big:latest';

/** busybox-static at /bin/busybox and every applet hard-linked beside it in /bin (like the official image). */
export async function staticBusyboxEntries(): Promise<LayerEntry[]> {
  const bin = await findStaticBusybox();
  const content = await readFile(bin);
  const applets = [...new Set(await busyboxApplets(bin))].sort();
  return [
    ...skeletonEntries(),
    { type: 'file', path: 'bin/busybox', content, mode: 0o755 },
    ...applets.map((a): LayerEntry => ({ type: 'hardlink', path: `bin/${a}`, target: 'bin/busybox' })),
    { type: 'hardlink', path: 'usr/bin/env', target: 'bin/busybox' },
  ];
}

/** Debian's dynamic busybox, applets hard-linked where Debian would install them, plus its libraries. */
async function dynamicBusyboxEntries(cacheDir: string): Promise<LayerEntry[]> {
  const bin = await findDynamicBusybox(cacheDir);
  const content = await readFile(bin);
  const libs = await sharedLibs(bin);
  const libc = libs.find((l) => posix.basename(l.path).startsWith('libc.so'));
  const libDir = libc !== undefined ? posix.dirname(libc.path) : '/lib/x86_64-linux-gnu';
  const entries: LayerEntry[] = [...skeletonEntries(), { type: 'file', path: 'bin/busybox', content, mode: 0o755 }];
  const seen = new Set(['bin/busybox']);
  for (const p of (await busyboxAppletPaths(bin)).sort()) {
    if (seen.has(p)) continue;
    seen.add(p);
    entries.push({ type: 'hardlink', path: p, target: 'bin/busybox' });
  }
  const libEntries: LayerEntry[] = [];
  for (const lib of libs) {
    const base = posix.basename(lib.path);
    const dir = posix.dirname(lib.path);
    const real = posix.join(libDir, base);
    if (dir === libDir) {
      libEntries.push({ type: 'file', path: real, content: lib.content, mode: 0o755 });
    } else {
      // e.g. the ELF interpreter /lib64/ld-linux-x86-64.so.2: real file in libDir, symlink where it's asked for.
      if (!libs.some((l) => l.path === real)) libEntries.push({ type: 'file', path: real, content: lib.content, mode: 0o755 });
      libEntries.push({ type: 'symlink', path: lib.path, target: real });
    }
  }
  return withParentDirs([...entries, ...libEntries]);
}

/** Deterministic pseudo-random bytes (AES-256-CTR keystream keyed by sha256(seed)). */
export function deterministicBytes(seed: string, size: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
}

const FILE_CHUNK = 8 << 20;

function bigLayerEntries(seed: string, index: number, bytes: number): LayerEntry[] {
  const entries: LayerEntry[] = [{ type: 'dir', path: 'big' }, { type: 'dir', path: `big/layer${index}` }];
  for (let off = 0, n = 0; off < bytes; off += FILE_CHUNK, n++) {
    const size = Math.min(FILE_CHUNK, bytes - off);
    entries.push({ type: 'file', path: `big/layer${index}/blob${n}`, content: deterministicBytes(`${seed}/${index}/${n}`, size) });
  }
  return entries;
}

function imageSpec(layers: LayerSpec[], config: ImageRuntimeConfig, extra: Partial<ImageSpec> = {}): ImageSpec {
  return { layers, config, ...extra };
}

/** Builds the standard images into `outDir/<name>/` and returns them keyed by "name:tag". */
export async function buildStandardImages(outDir: string, opts: StandardImageOptions): Promise<Map<StandardImageRef, StandardImage>> {
  const log = opts.log ?? ((): void => {});
  const want = (name: string): boolean => opts.only === undefined || opts.only.includes(name);
  const result = new Map<StandardImageRef, StandardImage>();
  const layouts = new Map<string, OciLayout>();
  const record = async (name: string, tag: string, build: (l: OciLayout) => Promise<Built>): Promise<void> => {
    const started = Date.now();
    let layout = layouts.get(name);
    if (layout === undefined) {
      layout = await OciLayout.open(join(outDir, name));
      layouts.set(name, layout);
    }
    const built = await build(layout);
    layout.tag(built.kind === 'index' ? built.index : built.manifest, tag);
    await layout.save();
    result.set(`${name}:${tag}` as StandardImageRef, { name, tag, layoutDir: layout.dir, built });
    const digest = built.kind === 'index' ? built.index.digest : built.manifest.digest;
    log(`built ${name}:${tag} ${digest} in ${Date.now() - started} ms`);
  };

  const needsBusybox = ['busybox', 'busybox-docker', 'busybox-uncompressed', 'nonroot', 'entrypoint', 'whiteout', 'multiarch', 'multiarch-docker', 'big'].some(
    (n) => want(n) && (n !== 'big' || (opts.bigMb ?? 0) > 0),
  );
  let bbEntries: LayerEntry[] = [];
  let bbLayer: BuiltLayer | undefined;
  if (needsBusybox) {
    bbEntries = await staticBusyboxEntries();
    bbLayer = await buildLayer(bbEntries);
  }
  const base = (): LayerSpec => {
    if (bbLayer === undefined) throw new Error('busybox layer not built');
    return { built: bbLayer, createdBy: 'COPY busybox-static /bin/busybox + applet hard links' };
  };
  const shConfig: ImageRuntimeConfig = { Env: [DEFAULT_PATH], Cmd: ['sh'] };

  if (want('busybox')) await record('busybox', 'latest', (l) => buildImage(l, imageSpec([base()], shConfig)));
  if (want('busybox-docker')) {
    await record('busybox-docker', 'latest', (l) => buildImage(l, imageSpec([base()], shConfig, { format: 'docker' })));
  }
  if (want('busybox-uncompressed')) {
    await record('busybox-uncompressed', 'latest', (l) =>
      buildImage(l, imageSpec([{ entries: bbEntries, compression: 'none', createdBy: 'COPY busybox (uncompressed)' }], shConfig)),
    );
  }

  if (want('nonroot')) {
    const { user, uid, gid, group, extraGroup, extraGid } = NONROOT;
    const users: LayerSpec = {
      createdBy: `RUN adduser ${user}`,
      entries: [
        { type: 'dir', path: 'etc' },
        { type: 'file', path: 'etc/passwd', content: `${STANDARD_PASSWD}${user}:x:${uid}:${gid}:berth test user:/home/${user}:/bin/sh\n` },
        { type: 'file', path: 'etc/group', content: `${STANDARD_GROUP}${group}:x:${gid}:\n${extraGroup}:x:${extraGid}:${user}\n` },
        { type: 'dir', path: 'home' },
        { type: 'dir', path: `home/${user}`, uid, gid, mode: 0o755 },
        { type: 'file', path: `home/${user}/hello`, content: 'hello from berth\n', uid, gid },
      ],
    };
    await record('nonroot', 'latest', (l) => buildImage(l, imageSpec([base(), users], { ...shConfig, User: user })));
    await record('nonroot', 'numeric', (l) => buildImage(l, imageSpec([base(), users], { ...shConfig, User: `${uid}:${gid}` })));
  }

  if (want('entrypoint')) {
    await record('entrypoint', 'latest', (l) =>
      buildImage(
        l,
        imageSpec(
          [base(), { createdBy: 'WORKDIR /work', entries: [{ type: 'dir', path: 'work' }, { type: 'file', path: 'work/marker', content: 'workdir\n' }] }],
          {
            Env: [DEFAULT_PATH, 'FOO=bar'],
            Entrypoint: ['/bin/sh', '-c'],
            Cmd: ['echo entrypoint-ok'],
            WorkingDir: '/work',
            StopSignal: 'SIGUSR1',
            Labels: { 'io.berth.test': 'entrypoint', 'org.opencontainers.image.title': 'berth entrypoint test image' },
            ExposedPorts: { '8080/tcp': {}, '5353/udp': {} },
          },
          { emptyLayerHistory: ['ENTRYPOINT ["/bin/sh","-c"]', 'CMD ["echo entrypoint-ok"]'] },
        ),
      ),
    );
  }

  if (want('whiteout')) {
    const l1: LayerSpec = {
      createdBy: 'ADD data opq',
      entries: [
        { type: 'dir', path: 'data' },
        { type: 'file', path: 'data/keep', content: 'keep\n' },
        { type: 'file', path: 'data/gone', content: 'gone\n' },
        { type: 'dir', path: 'opq' },
        { type: 'file', path: 'opq/a', content: 'a\n' },
        { type: 'file', path: 'opq/b', content: 'b\n' },
      ],
    };
    const l2: LayerSpec = {
      createdBy: 'RUN rm /data/gone && rm -rf /opq/* && echo c > /opq/c',
      entries: [
        { type: 'dir', path: 'data' },
        { type: 'whiteout', path: 'data/gone' },
        { type: 'dir', path: 'opq' },
        { type: 'opaque', path: 'opq' },
        { type: 'file', path: 'opq/c', content: 'c\n' },
      ],
    };
    const l3: LayerSpec = {
      createdBy: 'RUN ln /data/keep /data/keep-hardlink && ln -s keep /data/keep-symlink',
      entries: [
        { type: 'dir', path: 'data' },
        { type: 'file', path: 'data/linked', content: 'linked\n' },
        { type: 'hardlink', path: 'data/linked-hardlink', target: 'data/linked' },
        { type: 'symlink', path: 'data/keep-symlink', target: 'keep' },
        { type: 'symlink', path: 'data/abs-symlink', target: '/data/keep' },
      ],
    };
    await record('whiteout', 'latest', (l) => buildImage(l, imageSpec([base(), l1, l2, l3], shConfig)));
  }

  const marker = (arch: string): LayerSpec => ({ createdBy: `ADD arch ${arch}`, entries: [{ type: 'file', path: 'arch', content: `${arch}\n` }] });
  const multiarch = (format: 'oci' | 'docker') => (l: OciLayout) =>
    buildIndex(l, {
      format,
      manifests: [
        imageSpec([base(), marker('amd64')], shConfig, { platform: { architecture: 'amd64', os: 'linux' } }),
        imageSpec([marker('arm64')], shConfig, { platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } }),
      ],
    });
  if (want('multiarch')) await record('multiarch', 'latest', multiarch('oci'));
  if (want('multiarch-docker')) await record('multiarch-docker', 'latest', multiarch('docker'));

  if (want('busybox-dyn')) {
    const entries = await dynamicBusyboxEntries(opts.cacheDir);
    await record('busybox-dyn', 'latest', (l) =>
      buildImage(l, imageSpec([{ entries, createdBy: 'COPY debian busybox (dynamic) + libc, hard-linked applets' }], shConfig)),
    );
  }

  const bigMb = opts.bigMb ?? 0;
  if (bigMb > 0 && want('big')) {
    const n = Math.max(1, opts.bigLayers ?? 6);
    const seed = opts.bigSeed ?? 'berth';
    const total = bigMb * 1024 * 1024;
    await record('big', 'latest', async (l) => {
      const layers: LayerSpec[] = [base()];
      for (let i = 0; i < n; i++) {
        const bytes = Math.floor(total / n) + (i === n - 1 ? total % n : 0);
        layers.push({ build: () => buildLayer(bigLayerEntries(seed, i, bytes), { gzipLevel: 1 }), createdBy: `ADD big data layer ${i} (${bytes} bytes)` });
      }
      return buildImage(l, imageSpec(layers, shConfig));
    });
  }
  return result;
}
