import { test } from "node:test";
import assert from "node:assert/strict";
import { ContainerConfig, ContainerState, MountPropagation } from "../../api/gen/cri/v1/api.js";
import type { Container } from "../runtime/index.js";
import { containerStatusOf, criContainerOf, rtStateOf } from "./container-convert.js";

function container(over: Partial<Container> = {}): Container {
  const config = ContainerConfig.fromPartial({
    metadata: { name: "web", attempt: 2 },
    image: { image: "busybox", userSpecifiedImage: "docker.io/library/busybox" },
    mounts: [{ containerPath: "/data", hostPath: "/srv", readonly: true, propagation: MountPropagation.PROPAGATION_HOST_TO_CONTAINER }],
    linux: { resources: { memoryLimitInBytes: 1024n, cpuShares: 2n } },
  });
  return {
    id: "c".repeat(64),
    podSandboxId: "p".repeat(64),
    name: "web",
    attempt: 2,
    reservedName: "web_pod_ns_uid_2",
    state: "exited",
    createdAt: 1n,
    startedAt: 2n,
    finishedAt: 3n,
    exitCode: 137,
    reason: "OOMKilled",
    message: "",
    image: "busybox",
    imageId: "sha256:abc",
    labels: { a: "b" },
    annotations: {},
    logPath: "/logs/web.log",
    bundle: "/b",
    snapshotKey: "k",
    handler: { name: "runc", path: "/usr/sbin/runc", root: "/r" },
    exitDir: "/e",
    persistDir: "/p",
    launch: "launched",
    pid: 10,
    conmonPid: 9,
    conmonStartTime: "1",
    stopSignal: "SIGTERM",
    user: { uid: 1000, gid: 2000, additionalGids: [2000, 3000] },
    config: ContainerConfig.toJSON(config) as Record<string, unknown>,
    tty: false,
    privileged: false,
    ...over,
  };
}

test("ContainerStatus carries state, times, exit, reason, image ref = image id, mounts, resources, user", () => {
  const s = containerStatusOf(container());
  assert.equal(s.state, ContainerState.CONTAINER_EXITED);
  assert.deepEqual([s.createdAt, s.startedAt, s.finishedAt, s.exitCode, s.reason], [1n, 2n, 3n, 137, "OOMKilled"]);
  assert.equal(s.imageRef, "sha256:abc");
  assert.equal(s.image?.image, "busybox");
  assert.equal(s.image?.userSpecifiedImage, "docker.io/library/busybox");
  assert.equal(s.mounts?.[0]?.containerPath, "/data");
  assert.equal(s.mounts?.[0]?.propagation, MountPropagation.PROPAGATION_HOST_TO_CONTAINER);
  assert.equal(s.resources?.linux?.memoryLimitInBytes, 1024n);
  assert.deepEqual(s.user?.linux, { uid: 1000n, gid: 2000n, supplementalGroups: [2000n, 3000n] });
  assert.equal(s.logPath, "/logs/web.log");
  assert.deepEqual(s.metadata, { name: "web", attempt: 2 });
});

test("states map both ways; a container still being created is never CREATED", () => {
  assert.equal(criContainerOf(container({ state: "running" })).state, ContainerState.CONTAINER_RUNNING);
  assert.equal(criContainerOf(container({ state: "created" })).state, ContainerState.CONTAINER_CREATED);
  assert.equal(criContainerOf(container({ state: "creating" })).state, ContainerState.CONTAINER_UNKNOWN);
  assert.equal(rtStateOf(ContainerState.CONTAINER_EXITED), "exited");
  assert.equal(rtStateOf(ContainerState.CONTAINER_UNKNOWN), undefined);
});
