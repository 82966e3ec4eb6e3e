// Where a layer's tar stream may end. Go's archive/tar (containerd) accepts a
// stream that stops at an entry boundary without the end-of-archive marker, or
// after one zero block; umoci writes such layers. A stream cut inside a header,
// a body or a body's padding is corrupt, and the error names the layer and the entry.

import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { InvalidArgumentError } from "../errdefs/index.js";
import { setRootLogger } from "../log/index.js";
import { MetadataStore } from "../store/index.js";
import { Snapshotter } from "./index.js";
import { TarFormatError, TarReader, type TarHeader } from "./tar-reader.js";
import { rawTar, sha256, tempDir, writeBlob, type Compress } from "./testing.js";

setRootLogger({ level: "silent" });

const ZERO = Buffer.alloc(512);
const GARBAGE = Buffer.from("garbage ".repeat(64));

// a: header 0-512, body 512-2512, padding to 2560; b: header 2560-3072, body 3072-3172, padding to 3584
const A = "a".repeat(2000);
const B = "b".repeat(100);
const ENTRIES = rawTar(
  [
    { header: { name: "dir/a" }, body: A },
    { header: { name: "dir/b" }, body: B },
  ],
  { end: false },
);

const accepted: ReadonlyArray<[string, Buffer]> = [
  ["no end-of-archive marker", ENTRIES],
  ["one zero block", Buffer.concat([ENTRIES, ZERO])],
  ["two zero blocks and trailing bytes", Buffer.concat([ENTRIES, ZERO, ZERO, GARBAGE])],
];

const rejected: ReadonlyArray<[string, Buffer, RegExp]> = [
  ["cut inside a header", ENTRIES.subarray(0, 2560 + 300), /^layer sha256:[0-9a-f]{64}: after entry "dir\/a": tar stream ends inside a header \(300 of 512 bytes\)$/],
  ["cut inside a body", ENTRIES.subarray(0, 3072 + 50), /^layer sha256:[0-9a-f]{64}: entry "dir\/b": tar stream ends inside the body \(50 of 100 bytes\)$/],
  ["cut inside the padding", ENTRIES.subarray(0, 3300), /^layer sha256:[0-9a-f]{64}: entry "dir\/b": tar stream ends inside the padding after the body \(284 bytes missing\)$/],
  ["cut at the end of a body, before its padding", ENTRIES.subarray(0, 3172), /^layer sha256:[0-9a-f]{64}: entry "dir\/b": tar stream ends inside the padding after the body \(412 bytes missing\)$/],
  ["cut inside the first body's padding", ENTRIES.subarray(0, 2530), /^layer sha256:[0-9a-f]{64}: entry "dir\/a": tar stream ends inside the padding after the body/],
  ["one zero block and part of another", Buffer.concat([ENTRIES, ZERO, ZERO.subarray(0, 100)]), /^layer sha256:[0-9a-f]{64}: after entry "dir\/b": tar stream ends inside the end-of-archive marker \(612 of 1024 bytes\)$/],
  ["a zero block followed by a non-zero block", Buffer.concat([ENTRIES, ZERO, GARBAGE]), /^layer sha256:[0-9a-f]{64}: after entry "dir\/b": invalid tar header: a zero block is followed by a non-zero block$/],
  ["a partial block after the last entry", Buffer.concat([ENTRIES, ZERO.subarray(0, 100)]), /^layer sha256:[0-9a-f]{64}: after entry "dir\/b": tar stream ends inside a header \(100 of 512 bytes\)$/],
];

const dir = tempDir("end");
const blobs = join(dir, "blobs");
mkdirSync(blobs);

for (const how of ["none", "gzip", "zstd"] as const satisfies readonly Compress[]) {
  describe(`layers compressed with ${how}`, () => {
    // one snapshotter per compression: the same tar has the same diff ID whatever its compression
    const root = join(dir, `snapshots-${how}`);
    let store: MetadataStore;
    let snap: Snapshotter;
    before(async () => {
      store = MetadataStore.open(join(dir, `metadata-${how}.db`));
      snap = await Snapshotter.open({ root, store, sync: false });
    });
    after(() => {
      snap.close();
      store.close();
    });
    const fsOf = (chainId: string): string => {
      const info = snap.list().find((s) => s.key === chainId);
      assert.ok(info, `snapshot ${chainId} exists`);
      return join(root, String(info.id), "fs");
    };

    for (const [name, tar] of accepted) {
      test(`${name} is a complete layer`, async () => {
        const b = writeBlob(blobs, tar, how);
        assert.equal(b.diffId, sha256(tar), "the diff ID covers exactly the bytes present");
        await snap.applyLayer({ chainId: b.diffId, parent: undefined, blobPath: b.blobPath, mediaType: b.mediaType, diffId: b.diffId, layerDigest: b.digest });
        const fs = fsOf(b.diffId);
        assert.equal(readFileSync(join(fs, "dir/a"), "utf8"), A);
        assert.equal(readFileSync(join(fs, "dir/b"), "utf8"), B);
      });
    }

    test("a layer without the marker is still checked against its diff ID", async () => {
      const b = writeBlob(blobs, ENTRIES, how);
      const withMarker = sha256(Buffer.concat([ENTRIES, ZERO, ZERO]));
      await assert.rejects(
        snap.applyLayer({ chainId: withMarker, parent: undefined, blobPath: b.blobPath, mediaType: b.mediaType, diffId: withMarker, layerDigest: b.digest }),
        (err: Error) => err instanceof InvalidArgumentError && err.message === `layer ${b.digest}: uncompressed digest ${b.diffId} does not match diff_id ${withMarker}`,
      );
      assert.equal(snap.has(withMarker), false);
    });

    test("an empty stream is an empty layer", async () => {
      const b = writeBlob(blobs, Buffer.alloc(0), how);
      await snap.applyLayer({ chainId: b.diffId, parent: undefined, blobPath: b.blobPath, mediaType: b.mediaType, diffId: b.diffId, layerDigest: b.digest });
      assert.deepEqual(readdirSync(fsOf(b.diffId)), []);
    });

    for (const [name, tar, why] of rejected) {
      test(`${name} is InvalidArgument naming the layer and the entry, and commits nothing`, async () => {
        const b = writeBlob(blobs, tar, how);
        const before = readdirSync(root).sort();
        await assert.rejects(
          snap.applyLayer({ chainId: b.diffId, parent: undefined, blobPath: b.blobPath, mediaType: b.mediaType, diffId: b.diffId, layerDigest: b.digest }),
          (err: Error) => {
            assert.ok(err instanceof InvalidArgumentError, `${err.name}: ${err.message}`);
            assert.match(err.message, why);
            assert.ok(err.message.startsWith(`layer ${b.digest}: `), err.message);
            return true;
          },
        );
        assert.equal(snap.has(b.diffId), false);
        assert.deepEqual(readdirSync(root).sort(), before);
      });
    }
  });
}

after(() => rmSync(dir, { recursive: true, force: true }));

describe("the tar reader on its own", () => {
  const LAYER = `sha256:${"f".repeat(64)}`;
  function read(chunks: readonly Buffer[]): string[] {
    const names: string[] = [];
    const reader = new TarReader(
      {
        entry: (h: TarHeader) => names.push(h.name),
        data: () => undefined,
        end: () => undefined,
      },
      { layer: LAYER },
    );
    for (const c of chunks) reader.push(c);
    reader.finish();
    return names;
  }

  test("the outcome does not depend on how the stream is split", () => {
    for (const [, tar] of accepted) {
      for (const size of [1, 7, 511, 512, 513, 4096]) {
        const chunks: Buffer[] = [];
        for (let off = 0; off < tar.length; off += size) chunks.push(tar.subarray(off, off + size));
        assert.deepEqual(read(chunks), ["dir/a", "dir/b"]);
      }
    }
    for (const [, tar, why] of rejected) {
      for (const size of [1, 512, 1000]) {
        const chunks: Buffer[] = [];
        for (let off = 0; off < tar.length; off += size) chunks.push(tar.subarray(off, off + size));
        assert.throws(
          () => read(chunks),
          (err: Error) => err instanceof TarFormatError && why.test(err.message),
        );
      }
    }
  });

  test("a header error names the entry; a bad first header says the data is not a tar", () => {
    const badMode = rawTar([{ header: { name: "x/y" } }]);
    badMode.write("9", 100, "latin1"); // mode is octal
    // fix the checksum so the mode field is what fails
    badMode.write("        ", 148, "latin1");
    let sum = 0;
    for (const x of badMode.subarray(0, 512)) sum += x;
    badMode.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
    assert.throws(() => read([badMode]), { message: `layer ${LAYER}: entry "x/y": tar header field mode is not an octal number: "9000644"` });
    assert.throws(() => read([GARBAGE]), { message: `layer ${LAYER}: before the first entry: not a tar archive (invalid header checksum)` });
  });
});
