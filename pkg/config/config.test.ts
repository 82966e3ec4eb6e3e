import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, defaultConfig, loadConfig, parseConfig, renderConfig } from "./index.js";

test("an empty file gives the defaults; the rendered default parses back to them", () => {
  assert.deepEqual(parseConfig(""), defaultConfig());
  assert.deepEqual(parseConfig(renderConfig(), "default.toml"), defaultConfig());
});

test("overrides merge into defaults, including map entries", () => {
  const cfg = parseConfig(`
root = "/data/berth"
[image]
max_concurrent_downloads = 5
[image.registries."127.0.0.1:5000"]
plain_http = true
[image.registries."docker.io"]
mirrors = ["http://127.0.0.1:5000"]
[runtime.handlers.kata]
path = "/usr/bin/kata-runtime"
`);
  assert.equal(cfg.root, "/data/berth");
  assert.equal(cfg.state, "/run/berth");
  assert.equal(cfg.image.max_concurrent_downloads, 5);
  assert.equal(cfg.image.registries["127.0.0.1:5000"]?.plain_http, true);
  assert.deepEqual(cfg.image.registries["127.0.0.1:5000"]?.mirrors, []);
  assert.deepEqual(cfg.image.registries["docker.io"]?.mirrors, ["http://127.0.0.1:5000"]);
  assert.equal(cfg.runtime.handlers["kata"]?.path, "/usr/bin/kata-runtime");
  assert.equal(cfg.runtime.handlers["runc"]?.path, "/usr/sbin/runc");
  const slo = parseConfig("[slo.image_pull]\nobjective = 99.95\n[slo.cri_read_latency]\nthreshold_seconds = 0.25\nobjective = 99").slo;
  assert.equal(slo.image_pull.objective, 99.95);
  assert.equal(slo.cri_read_latency.threshold_seconds, 0.25);
  assert.equal(slo.cri_read_latency.objective, 99);
  assert.equal(slo.container_start.objective, 99.5);
});

test("errors name file, key and reason", () => {
  const cases: Array<[string, RegExp]> = [
    ["bogus = 1", /f.toml: key "bogus": unknown key/],
    ["[grpc]\nadress = 1", /key "grpc.adress": unknown key/],
    ['root = "relative"', /key "root": "relative" must be an absolute path/],
    ["root = 5", /key "root": expected a string, got number/],
    ["[image]\nmax_concurrent_downloads = 1.5", /expected an integer/],
    ["[image]\nmax_concurrent_downloads = 100", /100 is above the maximum 64/],
    ['[metrics]\naddress = "nope"', /key "metrics.address": "nope" must be "host:port"/],
    ['[runtime]\ndefault_handler = "kata"', /key "runtime.default_handler": handler "kata" is not defined/],
    ['[image.registries."x"]\nplain_http = "yes"', /key "image.registries.x.plain_http": expected true or false, got string/],
    ["[cni]\nbin_dirs = [1]", /key "cni.bin_dirs": expected an array of strings/],
    ["grpc = 3", /key "grpc": expected a table/],
    ["[runtime]\ncall_timeout_seconds = 0", /key "runtime.call_timeout_seconds": 0 is below the minimum 1/],
    ['[runtime]\ncreate_timeout_seconds = "2m"', /key "runtime.create_timeout_seconds": expected an integer/],
    ["x = [", /f.toml: invalid TOML at line 1/],
    ['[slo.container_start]\nobjective = "high"', /key "slo.container_start.objective": expected a number, got string/],
    ["[slo.container_start]\nobjective = 100", /key "slo.container_start.objective": 100 is above the maximum 99.999/],
    ["[slo.cri_read_latency]\nthreshold_seconds = 0", /key "slo.cri_read_latency.threshold_seconds": 0 is below the minimum 0.0005/],
    ["[slo]\nretention_days = 7", /key "slo.container_start.window_days": 30 days is longer than slo.retention_days \(7\)/],
  ];
  for (const [toml, re] of cases) {
    assert.throws(() => parseConfig(toml, "f.toml"), (err: unknown) => err instanceof ConfigError && re.test(err.message), toml);
  }
});

test("a missing default file is fine, a missing explicit file is not", () => {
  assert.deepEqual(loadConfig("/nonexistent/berth.toml", false), defaultConfig());
  assert.throws(() => loadConfig("/nonexistent/berth.toml", true), /cannot read config file: ENOENT/);
});

test("deploy/config.toml is the current default config", async () => {
  const { readFileSync } = await import("node:fs");
  const { fileURLToPath } = await import("node:url");
  const file = fileURLToPath(new URL("../../../deploy/config.toml", import.meta.url));
  assert.equal(readFileSync(file, "utf8"), renderConfig(), "deploy/config.toml is stale: run `node dist/cmd/berthd/main.js config default > deploy/config.toml`");
});
