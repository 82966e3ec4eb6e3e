// Starts Debian's docker-registry (distribution 2.8) on a free loopback port
// with filesystem storage in a temp dir, optional htpasswd auth, and delete
// enabled. The registry dies with the test process (PR_SET_PDEATHSIG through
// setpriv when available, plus an exit hook).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { stringify } from 'yaml';

export const REGISTRY_BINARY = process.env['BERTH_REGISTRY_BINARY'] ?? '/usr/bin/docker-registry';

export interface RegistryAuthConfig {
  username: string;
  password: string;
  /** Default "berth-test". */
  realm?: string;
}

export interface StartRegistryOptions {
  auth?: RegistryAuthConfig;
  /** Keep blobs here instead of a temp dir (not removed by stop()). */
  storageDir?: string;
  /** Fixed port; default: a free one. */
  port?: number;
  /** How long to wait for GET /v2/ to answer (default 15 s). */
  startTimeoutMs?: number;
}

export interface Registry {
  /** "127.0.0.1:PORT", as used in image references. */
  host: string;
  /** "http://127.0.0.1:PORT". */
  url: string;
  port: number;
  storageDir: string;
  /** Credentials the registry was started with, if any. */
  auth?: { username: string; password: string };
  /** Registry output so far (for diagnosing a failed test). */
  logs(): string;
  /** Kills the registry and removes its temp dirs. Safe to call twice. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

/** A port that was free a moment ago (bind port 0 on loopback, read it, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('could not read a free port'))));
    });
  });
}

async function htpasswdLine(username: string, password: string): Promise<string> {
  const r = await execa('htpasswd', ['-Bbn', username, password], { timeout: 30_000 });
  return `${r.stdout.trim()}\n`;
}

function registryConfig(port: number, storageDir: string, htpasswdPath: string | undefined, realm: string): string {
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'info', accesslog: { disabled: true }, formatter: 'text' },
    storage: {
      filesystem: { rootdirectory: storageDir },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: `127.0.0.1:${port}`, secret: 'berth-test-registry', headers: { 'X-Content-Type-Options': ['nosniff'] } },
    health: { storagedriver: { enabled: false } },
  };
  if (htpasswdPath !== undefined) config['auth'] = { htpasswd: { realm, path: htpasswdPath } };
  return stringify(config);
}

async function waitReady(url: string, child: ChildProcess, output: () => string, timeoutMs: number): Promise<'ready' | 'exited'> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return 'exited';
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      if (res.status === 200 || res.status === 401) return 'ready';
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error(`registry at ${url} did not answer GET /v2/ within ${timeoutMs} ms; output:\n${output()}`);
}

/** Starts a registry; retries on a port taken between picking it and binding it. */
export async function startRegistry(opts: StartRegistryOptions = {}): Promise<Registry> {
  if (!existsSync(REGISTRY_BINARY)) {
    throw new Error(`cannot start registry: ${REGISTRY_BINARY} not found (install Debian's docker-registry)`);
  }
  installExitHook();
  const work = await mkdtemp(join(tmpdir(), 'berth-registry-'));
  const storageDir = opts.storageDir ?? join(work, 'storage');
  await mkdir(storageDir, { recursive: true });
  let htpasswdPath: string | undefined;
  if (opts.auth !== undefined) {
    htpasswdPath = join(work, 'htpasswd');
    await writeFile(htpasswdPath, await htpasswdLine(opts.auth.username, opts.auth.password), { mode: 0o600 });
  }
  const usePdeathsig = existsSync('/usr/bin/setpriv');
  const attempts = opts.port !== undefined ? 1 : 5;
  let lastErr: Error | undefined;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = opts.port ?? (await freePort());
    const configPath = join(work, 'config.yml');
    await writeFile(configPath, registryConfig(port, storageDir, htpasswdPath, opts.auth?.realm ?? 'berth-test'));
    const argv = [REGISTRY_BINARY, 'serve', configPath];
    const [cmd, ...args] = usePdeathsig ? ['/usr/bin/setpriv', '--pdeathsig', 'KILL', '--', ...argv] : argv;
    const child = spawn(cmd as string, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OTEL_TRACES_EXPORTER: 'none' } });
    live.add(child);
    // A test that forgets stop() must not hang its process: nothing here holds the event loop.
    child.unref();
    let out = '';
    const collect = (b: Buffer): void => {
      out += b.toString();
      if (out.length > 200_000) out = out.slice(-100_000);
    };
    for (const stream of [child.stdout, child.stderr]) {
      stream?.on('data', collect);
      (stream as unknown as { unref?: () => void } | null)?.unref?.();
    }
    child.on('exit', () => live.delete(child));
    child.on('error', (err) => {
      out += `\nspawn error: ${err.message}`;
    });
    const url = `http://127.0.0.1:${port}`;
    let state: 'ready' | 'exited';
    try {
      state = await waitReady(url, child, () => out, opts.startTimeoutMs ?? 15_000);
    } catch (err) {
      child.kill('SIGKILL');
      await rm(work, { recursive: true, force: true });
      throw err;
    }
    if (state === 'exited') {
      lastErr = new Error(`registry on port ${port} exited (code ${child.exitCode}, signal ${child.signalCode}):\n${out}`);
      if (/address already in use/i.test(out)) continue;
      break;
    }
    let stopped: Promise<void> | undefined;
    const registry: Registry = {
      host: `127.0.0.1:${port}`,
      url,
      port,
      storageDir,
      logs: () => out,
      stop: () => {
        stopped ??= (async () => {
          if (child.exitCode === null && child.signalCode === null) {
            const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
            child.kill('SIGTERM');
            const t = setTimeout(() => child.kill('SIGKILL'), 3000);
            await exited;
            clearTimeout(t);
          }
          live.delete(child);
          await rm(work, { recursive: true, force: true });
        })();
        return stopped;
      },
    };
    if (opts.auth !== undefined) registry.auth = { username: opts.auth.username, password: opts.auth.password };
    return registry;
  }
  await rm(work, { recursive: true, force: true });
  throw lastErr ?? new Error('registry did not start');
}
