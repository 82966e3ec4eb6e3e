import { test } from "node:test";
import assert from "node:assert/strict";
import { Container, ContainerState, ContainerStatus, ContainerStatusResponse, ListContainersResponse, ListPodSandboxResponse, PodSandbox, PodSandboxState, PodSandboxStatus, PodSandboxStatusResponse } from "../../api/gen/cri/v1/api.js";
import { EncodedCache, encodeInt64, encodeRepeated } from "./encoded.js";

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

test("encoded: status responses (one embedded message, an int64 timestamp) are protobufjs's octets", () => {
  const cs = ContainerStatus.fromPartial({ id: "c1", state: ContainerState.CONTAINER_EXITED, exitCode: 137, reason: "OOMKilled", finishedAt: 1_700_000_000_123_456_789n, labels: { a: "b" } });
  assert.deepEqual(encodeRepeated(1, [ContainerStatus.encode(cs).finish()]), Buffer.from(ContainerStatusResponse.encode(ContainerStatusResponse.fromPartial({ status: cs })).finish()));
  const ps = PodSandboxStatus.fromPartial({ id: "p1", state: PodSandboxState.SANDBOX_READY, network: { ip: "10.88.0.2" } });
  for (const timestamp of [0n, 1n, 127n, 128n, 1_764_900_000_000_000_000n, 2n ** 63n - 1n]) {
    const ours = Buffer.concat([encodeRepeated(1, [PodSandboxStatus.encode(ps).finish()]), encodeInt64(4, timestamp)]);
    assert.deepEqual(ours, Buffer.from(PodSandboxStatusResponse.encode(PodSandboxStatusResponse.fromPartial({ status: ps, timestamp })).finish()), String(timestamp));
    assert.equal(PodSandboxStatusResponse.decode(ours).timestamp, timestamp);
  }
});
