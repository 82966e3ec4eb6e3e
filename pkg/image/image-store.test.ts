import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { MetadataStore } from "../store/index.js";
import { ImageStore } from "./image-store.js";

const hex = (c: string): string => c.repeat(64);

function record(id: string) {
  return { id: `sha256:${id}`, config: {}, chainId: `sha256:${hex("c")}`, chainIds: [`sha256:${hex("c")}`], size: 1, manifestDigest: `sha256:${hex("d")}`, targetDigest: `sha256:${hex("d")}`, layers: [] };
}

test("find answers from what it answered before, and forgets it when an image or name changes", () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-images-"));
  try {
    const store = new ImageStore(MetadataStore.open(join(dir, "meta.db")));
    assert.equal(store.find("docker.io/library/busybox:latest"), undefined);
    store.put(record(hex("a")), { tags: ["docker.io/library/busybox:latest"], digests: [] });
    // The same strings again: the answers follow the write, cached or not.
    for (let i = 0; i < 2; i++) {
      assert.equal(store.find("docker.io/library/busybox:latest")?.id, `sha256:${hex("a")}`);
      assert.equal(store.find("busybox")?.id, `sha256:${hex("a")}`);
      assert.equal(store.find("aaaa")?.id, `sha256:${hex("a")}`);
      assert.equal(store.find("docker.io/library/nginx:latest"), undefined);
    }
    // The tag moves to another image.
    store.put(record(hex("b")), { tags: ["docker.io/library/busybox:latest"], digests: [] });
    assert.equal(store.find("busybox")?.id, `sha256:${hex("b")}`);
    assert.equal(store.find("aaaa"), undefined, "the untagged image was dropped");
    store.put(record(hex("e")), { tags: ["docker.io/library/nginx:latest"], digests: [] });
    assert.equal(store.find("docker.io/library/nginx:latest")?.id, `sha256:${hex("e")}`, "a miss is not remembered past a write");
    assert.equal(store.delete(`sha256:${hex("b")}`), true);
    assert.equal(store.find("busybox"), undefined);
    assert.equal(store.find("docker.io/library/busybox:latest"), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
