import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findNetworkConfig } from "./index.js";

test("no dir, empty dir and broken files are reported with a reason", () => {
  const missing = findNetworkConfig("/nonexistent/cni");
  assert.equal(missing.ok, false);
  const dir = mkdtempSync(join(tmpdir(), "berth-cni-"));
  const empty = findNetworkConfig(dir);
  assert.ok(!empty.ok && /no CNI network config found/.test(empty.reason));
  writeFileSync(join(dir, "10-bad.conflist"), "{not json");
  const bad = findNetworkConfig(dir);
  assert.ok(!bad.ok && /10-bad.conflist/.test(bad.reason));
});

test("the first usable file in lexical order wins; a .conf becomes a one-plugin list", () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-cni-"));
  writeFileSync(join(dir, "20-b.conflist"), JSON.stringify({ cniVersion: "1.0.0", name: "b", plugins: [{ type: "bridge" }] }));
  writeFileSync(join(dir, "10-a.conf"), JSON.stringify({ cniVersion: "0.4.0", name: "a", type: "ptp", ipam: {} }));
  writeFileSync(join(dir, "05-ignored.txt"), "x");
  const r = findNetworkConfig(dir);
  assert.ok(r.ok);
  assert.equal(r.config.name, "a");
  assert.equal(r.config.plugins[0]?.type, "ptp");
  assert.deepEqual(Object.keys(r.config.raw).sort(), ["cniVersion", "name", "plugins"]);
});
