// A small OCI distribution client: pushes an image or index from an OCI
// layout byte for byte (monolithic blob uploads, manifest PUT), so the
// digests in the registry are the digests the builder computed.

import { isIndexMediaType, ALL_MANIFEST_TYPES } from './media-types.js';
import { OciLayout, type Descriptor, type Platform } from './oci-layout.js';

export interface RegistryAuth {
  username: string;
  password: string;
}

export interface RegistryClientOptions {
  auth?: RegistryAuth;
  /** Default "http" (test registries listen on loopback without TLS). */
  scheme?: 'http' | 'https';
  signal?: AbortSignal;
}

export interface PushedPlatformManifest {
  platform: Platform | undefined;
  manifestDigest: string;
  configDigest: string;
}

export interface PushResult {
  /** "HOST/REPO:TAG". */
  ref: string;
  /** Media type of what the tag points at. */
  mediaType: string;
  /** Digest the tag points at (the index digest for an index). */
  digest: string;
  /** Image manifest digest; for an index, the linux/amd64 child (or the first one). */
  manifestDigest: string;
  /** Config digest (image ID) of that manifest. */
  configDigest: string;
  /** Set when the tag points at an index / manifest list. */
  indexDigest?: string;
  /** Every image manifest pushed (one for a plain image). */
  manifests: PushedPlatformManifest[];
  /** Number of blobs uploaded (blobs already present are skipped). */
  uploadedBlobs: number;
}

export class RegistryError extends Error {
  constructor(
    message: string,
    readonly status: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'RegistryError';
  }
}

interface ManifestJson {
  mediaType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
}

/** Talks to one repository of one registry. */
export class RegistryClient {
  private readonly base: string;
  private readonly headers: Record<string, string> = {};
  uploadedBlobs = 0;

  constructor(
    readonly host: string,
    readonly repo: string,
    private readonly opts: RegistryClientOptions = {},
  ) {
    this.base = `${opts.scheme ?? 'http'}://${host}`;
    if (opts.auth !== undefined) {
      const token = Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64');
      this.headers['authorization'] = `Basic ${token}`;
    }
  }

  private async request(method: string, url: string, init: { headers?: Record<string, string>; body?: Uint8Array } = {}): Promise<Response> {
    const req: RequestInit = { method, headers: { ...this.headers, ...init.headers }, redirect: 'follow' };
    if (init.body !== undefined) req.body = init.body;
    if (this.opts.signal !== undefined) req.signal = this.opts.signal;
    return fetch(url.startsWith('http') ? url : `${this.base}${url}`, req);
  }

  private async fail(what: string, res: Response): Promise<never> {
    const body = (await res.text().catch(() => '')).slice(0, 500);
    throw new RegistryError(`${what} on ${this.host}/${this.repo}: HTTP ${res.status} ${body.trim()}`, res.status);
  }

  async hasBlob(digest: string): Promise<boolean> {
    const res = await this.request('HEAD', `/v2/${this.repo}/blobs/${digest}`);
    await res.body?.cancel();
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    return this.fail(`HEAD blob ${digest}`, res);
  }

  /** Uploads a blob in one request (POST to open the upload, PUT with ?digest=). */
  async putBlob(digest: string, data: Uint8Array): Promise<void> {
    if (await this.hasBlob(digest)) return;
    const start = await this.request('POST', `/v2/${this.repo}/blobs/uploads/`);
    if (start.status !== 202) return this.fail(`starting upload of ${digest}`, start);
    await start.body?.cancel();
    const location = start.headers.get('location');
    if (location === null) throw new RegistryError(`registry ${this.host} gave no Location for upload of ${digest}`, 202);
    const url = new URL(location, this.base);
    url.searchParams.set('digest', digest);
    const put = await this.request('PUT', url.toString(), {
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(data.byteLength) },
      body: data,
    });
    if (put.status !== 201) return this.fail(`uploading blob ${digest}`, put);
    await put.body?.cancel();
    this.uploadedBlobs++;
  }

  /** PUTs a manifest under `reference` (tag or digest); checks the registry computed the same digest. */
  async putManifest(reference: string, mediaType: string, bytes: Uint8Array, digest: string): Promise<void> {
    const res = await this.request('PUT', `/v2/${this.repo}/manifests/${reference}`, {
      headers: { 'content-type': mediaType },
      body: bytes,
    });
    if (res.status !== 201) return this.fail(`PUT manifest ${reference} (${mediaType})`, res);
    await res.body?.cancel();
    const got = res.headers.get('docker-content-digest');
    if (got !== null && got !== digest) {
      throw new RegistryError(`registry ${this.host} stored manifest ${reference} as ${got}, expected ${digest}`, res.status);
    }
  }

  /** GETs a manifest; `accept` defaults to every manifest and index type. */
  async getManifest(reference: string, accept = ALL_MANIFEST_TYPES): Promise<{ status: number; mediaType: string | null; digest: string | null; body: Buffer }> {
    const res = await this.request('GET', `/v2/${this.repo}/manifests/${reference}`, { headers: { accept } });
    const body = Buffer.from(await res.arrayBuffer());
    return { status: res.status, mediaType: res.headers.get('content-type'), digest: res.headers.get('docker-content-digest'), body };
  }
}

function isHostPlatform(p: Platform | undefined): boolean {
  return p?.os === 'linux' && p.architecture === 'amd64';
}

/**
 * Pushes what `layoutTag` names in the OCI layout at `layoutDir` (an image,
 * or an index with all its manifests) to `host/repo:tag`.
 */
export async function pushFromLayout(
  layoutDir: string,
  layoutTag: string,
  host: string,
  repo: string,
  tag: string = layoutTag,
  opts: RegistryClientOptions = {},
): Promise<PushResult> {
  const layout = await OciLayout.read(layoutDir);
  const top = layout.resolve(layoutTag);
  if (top === undefined) throw new Error(`OCI layout "${layoutDir}" has no image tagged "${layoutTag}"`);
  const client = new RegistryClient(host, repo, opts);
  const manifests: PushedPlatformManifest[] = [];

  const pushManifest = async (desc: Descriptor, reference: string): Promise<void> => {
    const bytes = await layout.readBlob(desc.digest);
    const json = JSON.parse(bytes.toString('utf8')) as ManifestJson;
    const mediaType = json.mediaType ?? desc.mediaType;
    if (isIndexMediaType(mediaType)) {
      for (const child of json.manifests ?? []) await pushManifest(child, child.digest);
    } else {
      if (json.config === undefined) throw new Error(`manifest ${desc.digest} in "${layoutDir}" has no config`);
      await client.putBlob(json.config.digest, await layout.readBlob(json.config.digest));
      for (const l of json.layers ?? []) await client.putBlob(l.digest, await layout.readBlob(l.digest));
      manifests.push({ platform: desc.platform, manifestDigest: desc.digest, configDigest: json.config.digest });
    }
    await client.putManifest(reference, mediaType, bytes, desc.digest);
  };
  await pushManifest(top, tag);

  const main = manifests.find((m) => isHostPlatform(m.platform)) ?? manifests[0];
  if (main === undefined) throw new Error(`"${layoutTag}" in "${layoutDir}" holds no image manifest`);
  const result: PushResult = {
    ref: `${host}/${repo}:${tag}`,
    mediaType: top.mediaType,
    digest: top.digest,
    manifestDigest: main.manifestDigest,
    configDigest: main.configDigest,
    manifests,
    uploadedBlobs: client.uploadedBlobs,
  };
  if (isIndexMediaType(top.mediaType)) result.indexDigest = top.digest;
  return result;
}
