// Writes images and indexes into an OCI image layout directory
// (oci-layout, index.json, blobs/sha256/...). Blob writes are atomic
// (temp file + rename), so two builders sharing a directory cannot leave a
// half-written blob behind.

import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Digest } from './tar-layer.js';

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

/** Where built blobs go. */
export interface BlobSink {
  putBlob(data: Uint8Array): Promise<Pick<Descriptor, 'digest' | 'size'>>;
}

/** Keeps blobs in memory, keyed by digest. */
export class MemoryBlobs implements BlobSink {
  readonly blobs = new Map<string, Buffer>();

  putBlob(data: Uint8Array): Promise<Pick<Descriptor, 'digest' | 'size'>> {
    const digest = sha256Digest(data);
    if (!this.blobs.has(digest)) this.blobs.set(digest, Buffer.from(data));
    return Promise.resolve({ digest, size: data.byteLength });
  }
}

interface IndexJson {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
}

/** An OCI image layout directory. Call save() to write index.json. */
export class OciLayout implements BlobSink {
  private constructor(
    readonly dir: string,
    private manifests: Descriptor[],
  ) {}

  /** Opens `dir` as a layout, creating it (and an empty index) if needed. */
  static async open(dir: string): Promise<OciLayout> {
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    let manifests: Descriptor[] = [];
    try {
      const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as IndexJson;
      manifests = index.manifests;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return new OciLayout(dir, manifests);
  }

  /** Opens an existing layout without writing anything. */
  static async read(dir: string): Promise<OciLayout> {
    const raw = await readFile(join(dir, 'index.json'), 'utf8').catch((err: unknown) => {
      throw new Error(`cannot read OCI layout "${dir}": ${(err as Error).message}`, { cause: err });
    });
    return new OciLayout(dir, (JSON.parse(raw) as IndexJson).manifests);
  }

  blobPath(digest: string): string {
    const [alg, hex] = digest.split(':');
    if (alg !== 'sha256' || hex === undefined || !/^[0-9a-f]{64}$/.test(hex)) {
      throw new Error(`invalid digest "${digest}"`);
    }
    return join(this.dir, 'blobs', alg, hex);
  }

  async putBlob(data: Uint8Array): Promise<Pick<Descriptor, 'digest' | 'size'>> {
    const digest = sha256Digest(data);
    const path = this.blobPath(digest);
    const existing = await stat(path).catch(() => undefined);
    if (existing?.size !== data.byteLength) {
      const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
      try {
        await writeFile(tmp, data);
        await rename(tmp, path);
      } finally {
        await rm(tmp, { force: true });
      }
    }
    return { digest, size: data.byteLength };
  }

  async readBlob(digest: string): Promise<Buffer> {
    return readFile(this.blobPath(digest));
  }

  /** Entries of index.json. */
  get refs(): readonly Descriptor[] {
    return this.manifests;
  }

  /** Points `refName` (e.g. "latest") at `desc`, replacing an older entry of that name. */
  tag(desc: Descriptor, refName: string): void {
    this.manifests = this.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== refName);
    const entry: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
    if (desc.platform !== undefined) entry.platform = desc.platform;
    entry.annotations = { ...desc.annotations, [REF_NAME_ANNOTATION]: refName };
    this.manifests.push(entry);
  }

  /** Finds the descriptor tagged `refName`. */
  resolve(refName: string): Descriptor | undefined {
    return this.manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === refName);
  }

  async save(): Promise<void> {
    const index: IndexJson = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: this.manifests,
    };
    const path = join(this.dir, 'index.json');
    const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
    await writeFile(tmp, `${JSON.stringify(index, null, 2)}\n`);
    await rename(tmp, path);
  }
}
