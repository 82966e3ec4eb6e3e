import { test } from "node:test";
import assert from "node:assert/strict";
import { Container, ContainerState, ListContainersResponse, ListPodSandboxResponse, PodSandbox, PodSandboxState } from "../../api/gen/cri/v1/api.js";
import { EncodedCache, encodeRepeated } from "./encoded.js";

const container = (i: number, labels: number) =>
  Container.fromPartial({
    id: `c${i}`.repeat(20),
    podSandboxId: `p${i}`,
    metadata: { name: "app", attempt: i },
    image: { image: "busybox", annotations: { a: "b" } },
    imageRef: "sha256:" + "a".repeat(64),
    state: ContainerState.CONTAINER_RUNNING,
    createdAt: 1_700_000_000_000_000_000n + BigInt(i),
    // Up to a few KB per entry: lengths of one, two and three varint octets.
    labels: Object.fromEntries(Array.from({ length: labels }, (_, k) => [`label-${k}`, "v".repeat(40)])),
  });

test("encoded: a repeated field built from its elements' octets decodes as the message (0, 1 and many elements; long elements)", () => {
  for (const n of [0, 1, 2, 50]) {
    const items = Array.from({ length: n }, (_, i) => container(i, i % 4 === 0 ? 300 : i % 3));
    const bytes = encodeRepeated(1, items.map((c) => Container.encode(c).finish()));
    assert.deepEqual(ListContainersResponse.decode(bytes), ListContainersResponse.fromPartial({ containers: items }));
    assert.deepEqual(bytes, Buffer.from(ListContainersResponse.encode(ListContainersResponse.fromPartial({ containers: items })).finish()), "the same octets as protobufjs");
  }
  const pods = [PodSandbox.fromPartial({ id: "a", state: PodSandboxState.SANDBOX_READY }), PodSandbox.fromPartial({ id: "b" })];
  assert.deepEqual(ListPodSandboxResponse.decode(encodeRepeated(1, pods.map((p) => PodSandbox.encode(p).finish()))).items, pods);
});

test("encoded: the cache encodes again when a key value changes, and only then", () => {
  let encodes = 0;
  const cache = new EncodedCache<{ state: string }>((o) => (encodes++, Buffer.from(o.state)));
  const obj = { state: "created" };
  assert.equal(Buffer.from(cache.get(obj, [obj.state])).toString(), "created");
  assert.equal(Buffer.from(cache.get(obj, [obj.state])).toString(), "created");
  assert.equal(encodes, 1);
  obj.state = "running";
  assert.equal(Buffer.from(cache.get(obj, [obj.state])).toString(), "running");
  assert.equal(encodes, 2);
});
