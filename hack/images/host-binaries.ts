// Finds the host binaries the standard images are made of: Debian's static
// busybox (package busybox-static, /bin/busybox) and Debian's dynamic busybox
// (package busybox, fetched with `apt-get download` because it conflicts with
// busybox-static) plus the shared libraries it needs, taken from the host.

import { access, mkdir, mkdtemp, readdir, readFile, realpath, rename, rm } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';

export const STATIC_BUSYBOX_PATHS = ['/bin/busybox', '/usr/bin/busybox'];

async function exists(path: string): Promise<boolean> {
  try {
    await access(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function isStatic(path: string): Promise<boolean> {
  const r = await execa('ldd', [path], { reject: false, timeout: 10_000 });
  return r.exitCode !== 0 || /not a dynamic executable|statically linked/.test(`${r.stdout}${r.stderr}`);
}

/** Path of a statically linked busybox on the host; BERTH_BUSYBOX_STATIC overrides. */
export async function findStaticBusybox(): Promise<string> {
  const env = process.env['BERTH_BUSYBOX_STATIC'];
  const candidates = env !== undefined && env !== '' ? [env] : STATIC_BUSYBOX_PATHS;
  for (const p of candidates) {
    if ((await exists(p)) && (await isStatic(p))) return p;
  }
  throw new Error(
    `cannot build busybox image: no statically linked busybox at ${candidates.join(' or ')} (install Debian's busybox-static)`,
  );
}

/** Applet names a busybox binary provides (`busybox --list`). */
export async function busyboxApplets(busybox: string): Promise<string[]> {
  const r = await execa(busybox, ['--list'], { timeout: 10_000 });
  return r.stdout.split('\n').map((s) => s.trim()).filter((s) => s !== '' && s !== 'busybox');
}

/** Applet install paths (`busybox --list-full`, e.g. "usr/bin/awk"); entries without a directory are dropped. */
export async function busyboxAppletPaths(busybox: string): Promise<string[]> {
  const r = await execa(busybox, ['--list-full'], { timeout: 10_000 });
  return r.stdout
    .split('\n')
    .map((s) => s.trim().replace(/^\/+/, ''))
    .filter((s) => s.includes('/') && !s.endsWith('/busybox'));
}

/**
 * Path of Debian's dynamically linked busybox. Order: BERTH_BUSYBOX_DYNAMIC,
 * a dynamic /bin/busybox on the host, a copy cached under `cacheDir`, and
 * finally `apt-get download busybox` + `dpkg-deb -x` into `cacheDir`.
 */
export async function findDynamicBusybox(cacheDir: string): Promise<string> {
  const env = process.env['BERTH_BUSYBOX_DYNAMIC'];
  if (env !== undefined && env !== '') return env;
  for (const p of STATIC_BUSYBOX_PATHS) {
    if ((await exists(p)) && !(await isStatic(p))) return p;
  }
  const cached = join(cacheDir, 'busybox-deb', 'bin', 'busybox');
  if (await exists(cached)) return cached;

  await mkdir(cacheDir, { recursive: true });
  const work = await mkdtemp(join(cacheDir, 'busybox-deb.tmp-'));
  try {
    const dl = await execa('apt-get', ['download', 'busybox'], { cwd: work, reject: false, timeout: 120_000 });
    const deb = (await readdir(work)).find((f) => f.endsWith('.deb'));
    if (deb === undefined) {
      throw new Error(
        `cannot build busybox-dyn image: "apt-get download busybox" failed (exit ${dl.exitCode}): ${dl.stderr.trim()}`,
      );
    }
    const root = join(work, 'root');
    await execa('dpkg-deb', ['-x', join(work, deb), root], { timeout: 60_000 });
    try {
      await rename(root, join(cacheDir, 'busybox-deb'));
    } catch (err) {
      // Another process won the race; its copy is as good as ours.
      if (!(await exists(cached))) throw err;
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return cached;
}

export interface SharedLib {
  /** Path the binary asks for (from ldd), e.g. /lib64/ld-linux-x86-64.so.2. */
  path: string;
  /** Contents of the real file behind it. */
  content: Buffer;
}

/** The shared libraries `binary` loads, as reported by ldd, with their contents. */
export async function sharedLibs(binary: string): Promise<SharedLib[]> {
  const r = await execa('ldd', [binary], { timeout: 10_000 });
  const libs: SharedLib[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    const p = m?.[1];
    if (p === undefined) continue;
    libs.push({ path: p, content: await readFile(await realpath(p)) });
  }
  if (libs.length === 0) throw new Error(`ldd found no shared libraries for ${binary}`);
  return libs;
}
