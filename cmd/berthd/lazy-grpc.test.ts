import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

// berthd serves the CRI socket with its own HTTP/2 server (pkg/cri/h2grpc): grpc-js, 6 MB of
// heap plus Node's http2, must not be loaded by the daemon's modules (issue 9, idle memory); nor
// @opentelemetry/api, which prom-client's index loads for exemplars berth does not use (2 MB).
test("the daemon's modules load neither grpc-js nor @opentelemetry/api (prom-client's CPU collector); a CRI client loads grpc-js", () => {
  const daemon = fileURLToPath(new URL("./daemon.js", import.meta.url));
  const client = fileURLToPath(new URL("../../pkg/cri/client.js", import.meta.url));
  const script = `
    const { createRequire } = await import("node:module");
    const loaded = (m = "@grpc/grpc-js") => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes(m));
    await import(${JSON.stringify(daemon)});
    const afterDaemon = loaded();
    const otel = loaded("@opentelemetry/api");
    const { CriClient } = await import(${JSON.stringify(client)});
    new CriClient("/nonexistent.sock").close();
    console.log(JSON.stringify({ afterDaemon, otel, afterClient: loaded() }));`;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  assert.deepEqual(JSON.parse(out.trim().split("\n").pop() as string), { afterDaemon: false, otel: false, afterClient: true });
});
