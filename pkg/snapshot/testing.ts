// Helpers shared by the snapshot tests and the apply benchmark (not part of the public surface).

import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { gzipSync } from "node:zlib";

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `berth-snap-${prefix}-`));
}

export function sha256(data: Uint8Array): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

export type Compress = "none" | "gzip" | "zstd";

export const MEDIA: Record<Compress, string> = {
  none: "application/vnd.oci.image.layer.v1.tar",
  gzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  zstd: "application/vnd.oci.image.layer.v1.tar+zstd",
};

export function compress(tar: Uint8Array, how: Compress): Buffer {
  switch (how) {
    case "none":
      return Buffer.from(tar);
    case "gzip":
      return gzipSync(tar, { level: 1 });
    case "zstd": {
      const r = spawnSync("zstd", ["-q", "-c", "-1"], { input: tar, maxBuffer: 1 << 30 });
      if (r.status !== 0) throw new Error(`zstd failed: ${r.stderr.toString()}`);
      return r.stdout;
    }
  }
}

/** Writes the blob of a tar into dir and returns what applyLayer needs. */
export function writeBlob(dir: string, tar: Uint8Array, how: Compress = "gzip"): { blobPath: string; diffId: string; mediaType: string; digest: string } {
  const blob = compress(tar, how);
  const digest = sha256(blob);
  const blobPath = join(dir, digest.slice(7));
  writeFileSync(blobPath, blob);
  return { blobPath, diffId: sha256(tar), mediaType: MEDIA[how], digest };
}

// A minimal tar writer for what the image builder cannot express (binary PAX values).

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, "0") + "\0";
}

export interface RawHeader {
  name: string;
  type?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
}

export function tarHeader(h: RawHeader): Buffer {
  const b = Buffer.alloc(512);
  b.write(h.name, 0, 100, "utf8");
  b.write(octal(h.mode ?? 0o644, 8), 100, "latin1");
  b.write(octal(h.uid ?? 0, 8), 108, "latin1");
  b.write(octal(h.gid ?? 0, 8), 116, "latin1");
  b.write(octal(h.size ?? 0, 12), 124, "latin1");
  b.write(octal(h.mtime ?? 1577836800, 12), 136, "latin1");
  b.write("        ", 148, "latin1");
  b.write(h.type ?? "0", 156, "latin1");
  b.write(h.linkname ?? "", 157, 100, "utf8");
  b.write("ustar\0", 257, "latin1");
  b.write("00", 263, "latin1");
  b.write(octal(h.devmajor ?? 0, 8), 329, "latin1");
  b.write(octal(h.devminor ?? 0, 8), 337, "latin1");
  let sum = 0;
  for (const x of b) sum += x;
  b.write(octal(sum, 7) + " ", 148, "latin1");
  return b;
}

function padded(body: Buffer): Buffer {
  const pad = (512 - (body.length % 512)) % 512;
  return Buffer.concat([body, Buffer.alloc(pad)]);
}

export function paxRecords(records: ReadonlyArray<[string, Buffer | string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of records) {
    const val = typeof v === "string" ? Buffer.from(v) : v;
    const rest = Buffer.concat([Buffer.from(` ${k}=`), val, Buffer.from("\n")]);
    let len = rest.length + 1;
    while (String(len).length + rest.length !== len) len = String(len).length + rest.length;
    parts.push(Buffer.concat([Buffer.from(String(len)), rest]));
  }
  return Buffer.concat(parts);
}

export interface RawTarEntry {
  header: RawHeader;
  body?: Buffer | string;
  pax?: ReadonlyArray<[string, Buffer | string]>;
}

/** A tar of the given entries, ended by two zero blocks. */
export function rawTar(entries: readonly RawTarEntry[], opts: { end?: boolean } = {}): Buffer {
  const out: Buffer[] = [];
  for (const e of entries) {
    const pax: Array<[string, Buffer | string]> = [...(e.pax ?? [])];
    if (Buffer.byteLength(e.header.name) > 99) pax.push(["path", e.header.name]);
    if (Buffer.byteLength(e.header.linkname ?? "") > 99) pax.push(["linkpath", e.header.linkname ?? ""]);
    if (pax.length > 0) {
      const body = paxRecords(pax);
      out.push(tarHeader({ name: "PaxHeader", type: "x", size: body.length }), padded(body));
    }
    const body = e.body === undefined ? Buffer.alloc(0) : Buffer.from(e.body);
    out.push(tarHeader({ ...e.header, size: body.length }));
    if (body.length > 0) out.push(padded(body));
  }
  if (opts.end ?? true) out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}
