import assert from "node:assert/strict";
import zlib from "node:zlib";
import { describe, it } from "node:test";
import { SPDY3_DICTIONARY, adler32 } from "./dictionary.js";
import {
  FrameParser,
  HeaderCompressor,
  HeaderDecompressor,
  encodeData,
  encodeGoAway,
  encodeRstStream,
  encodeSynStream,
  encodeWindowUpdate,
  RstStatus,
} from "./framer.js";

describe("SPDY framing", () => {
  it("has the SPDY/3 dictionary (1423 bytes, the id zlib computes)", () => {
    assert.equal(SPDY3_DICTIONARY.length, 1423);
    assert.equal(SPDY3_DICTIONARY.subarray(0, 11).toString("latin1"), "\0\0\0\x07options");
    assert.ok(SPDY3_DICTIONARY.toString("latin1").endsWith("utf-,*,enq=0."));
    // zlib writes the dictionary's Adler-32 into the stream header.
    const z = zlib.deflateSync(Buffer.from("x"), { dictionary: SPDY3_DICTIONARY });
    assert.equal(z.readUInt32BE(2), adler32(SPDY3_DICTIONARY));
  });

  it("round-trips header blocks through one compression context per direction", async () => {
    const c = new HeaderCompressor();
    const d = new HeaderDecompressor();
    const blocks = [{ streamtype: "error" }, { streamtype: "data", port: "8080", requestid: "0" }, {}, { big: "x".repeat(200_000) }];
    for (const h of blocks) assert.deepEqual(await d.decompress(c.compress(h)), h);
    d.close();
  });

  it("ends every header block at a flush point, as a zlib sync flush does (Go's inflater needs it)", () => {
    // Go's compress/flate hands out a non-empty stored block only after reading the next block
    // header; spdystream limits its reader to one frame, so a block must end with an empty stored
    // block or the next frame fails ("compressed payload size was incorrect").
    const c = new HeaderCompressor();
    for (const h of [{ ":status": "200", ":version": "HTTP/1.1" }, { streamtype: "error" }, {}]) {
      const block = c.compress(h);
      assert.deepEqual([...block.subarray(block.length - 5)], [0x00, 0x00, 0x00, 0xff, 0xff]);
    }
  });

  it("reads header blocks a real zlib deflater wrote with sync flushes (as Go's framer does)", async () => {
    const deflate = zlib.createDeflate({ dictionary: SPDY3_DICTIONARY });
    const out: Buffer[] = [];
    deflate.on("data", (b: Buffer) => out.push(b));
    const block = async (raw: Buffer) => {
      deflate.write(raw);
      await new Promise<void>((r) => deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => r()));
      await new Promise((r) => setImmediate(r));
      return Buffer.concat(out.splice(0));
    };
    const raw = (pairs: [string, string][]) => {
      const parts = [Buffer.alloc(4)];
      parts[0]!.writeUInt32BE(pairs.length);
      for (const [k, v] of pairs)
        for (const s of [k, v]) {
          const l = Buffer.alloc(4);
          l.writeUInt32BE(Buffer.byteLength(s));
          parts.push(l, Buffer.from(s));
        }
      return Buffer.concat(parts);
    };
    const d = new HeaderDecompressor();
    assert.deepEqual(await d.decompress(await block(raw([["streamtype", "error"]]))), { streamtype: "error" });
    assert.deepEqual(await d.decompress(await block(raw([["streamtype", "stdout"]]))), { streamtype: "stdout" });
    d.close();
    deflate.destroy();
  });

  it("parses frames split at any byte boundary", () => {
    const c = new HeaderCompressor();
    const wire = Buffer.concat([
      encodeSynStream(1, c.compress({ streamtype: "stdin" }), 0),
      ...encodeData(1, Buffer.from("hello"), false),
      ...encodeData(1, Buffer.alloc(0), true),
      encodeRstStream(3, RstStatus.Cancel),
      encodeWindowUpdate(0, 1000),
      encodeGoAway(7),
    ]);
    for (const step of [1, 3, 7, wire.length]) {
      const p = new FrameParser();
      const kinds: string[] = [];
      for (let off = 0; off < wire.length; off += step) {
        p.push(wire.subarray(off, off + step));
        for (let f = p.next(); f; f = p.next()) {
          kinds.push(f.kind);
          if (f.kind === "data" && f.data.length > 0) assert.equal(f.data.toString(), "hello");
          if (f.kind === "goaway") assert.equal(f.lastGoodStreamId, 7);
        }
      }
      assert.deepEqual(kinds, ["syn-stream", "data", "data", "rst-stream", "window-update", "goaway"]);
    }
  });
});
