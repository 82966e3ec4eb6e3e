// Runs sha256 hashing of ingests off berthd's event loop. Messages are handled
// in order: update (chunk), file (hash a partial file's bytes), reset, digest.
import { createHash, type Hash } from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";
import { parentPort } from "node:worker_threads";

// No nice value: on a busy node a niced thread gets a small fraction of the CPU
// against every other process, not only against berthd's event loop (see apply-worker.ts).

export type HashRequest =
  | { op: "update"; id: number; chunk: Uint8Array }
  | { op: "file"; id: number; path: string; offset: number; length: number }
  | { op: "reset"; id: number }
  | { op: "digest"; id: number; seq: number }
  | { op: "drop"; id: number };

export type HashReply = { seq: number; digest: string } | { seq: number; error: string };

const hashes = new Map<number, Hash>();
let buf: Buffer | undefined;
const get = (id: number): Hash => {
  let h = hashes.get(id);
  if (!h) {
    h = createHash("sha256");
    hashes.set(id, h);
  }
  return h;
};

parentPort?.on("message", (m: HashRequest) => {
  switch (m.op) {
    case "update":
      get(m.id).update(m.chunk);
      return;
    case "file": {
      const h = get(m.id);
      const fd = openSync(m.path, "r");
      try {
        buf ??= Buffer.allocUnsafe(1 << 20);
        let left = m.length;
        let pos = m.offset;
        while (left > 0) {
          const n = readSync(fd, buf, 0, Math.min(buf.length, left), pos);
          if (n <= 0) break;
          h.update(buf.subarray(0, n));
          left -= n;
          pos += n;
        }
      } finally {
        closeSync(fd);
      }
      return;
    }
    case "reset":
      hashes.delete(m.id);
      return;
    case "drop":
      hashes.delete(m.id);
      return;
    case "digest": {
      const h = get(m.id);
      hashes.delete(m.id);
      parentPort?.postMessage({ seq: m.seq, digest: `sha256:${h.digest("hex")}` } satisfies HashReply);
      return;
    }
  }
});
