// The reliability harness (hack/chaos) in a short, bounded form: each part on
// its own daemon, sharing one registry and one CNI network. The long form is
// `make chaos`.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { makeWorld, type World } from "../hack/chaos/env.js";
import { runRetries } from "../hack/chaos/retry.js";

let world: World;
const log = (l: string): void => console.log(l);

before(async () => {
  world = await makeWorld();
});

after(async () => {
  await world?.close();
});

test("kubelet retry: the same RunPodSandbox/CreateContainer sent again while the first still runs gets the first call's result; exactly one whole object exists", async () => {
  const r = await runRetries(world, 2, log);
  assert.deepEqual(r.failures, []);
  assert.equal(r.outcomes["RunPodSandbox:first-result"], 4);
  assert.equal(r.outcomes["CreateContainer:first-result"], 4);
});
