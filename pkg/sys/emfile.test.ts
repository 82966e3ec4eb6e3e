import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

// Runs in a child node under a low RLIMIT_NOFILE, with every fd used up: a spawn then fails
// with EMFILE before Node creates the pipes. It must come back as an error, never as an
// unhandled 'error' event that ends the process, and a live process must not look dead.
const script = `
import { openSync, closeSync } from "node:fs";
import { run, runCapture, processAlive } from ${JSON.stringify(fileURLToPath(new URL("./index.js", import.meta.url)))};
const fds = [];
try { for (;;) fds.push(openSync("/dev/null", "r")); } catch {}
const out = {};
try { await run("/bin/true", [], { timeoutMs: 5000 }); out.run = "ran"; } catch (e) { out.run = e.cause?.code ?? e.message; }
try { await run("/bin/true", [], { timeoutMs: 5000, killProcessGroup: true }); out.group = "ran"; } catch (e) { out.group = e.cause?.code ?? e.message; }
try { await runCapture("/bin/true", [], { maxBytes: 10 }); out.capture = "ran"; } catch (e) { out.capture = e.code ?? e.message; }
out.selfAlive = processAlive(process.pid);
for (const fd of fds.splice(0, 16)) closeSync(fd);
out.after = (await run("/bin/echo", ["ok"])).stdout;
console.log(JSON.stringify(out));
`;

test("with no fd left, run() and runCapture() fail with EMFILE instead of crashing, and processAlive stays true", () => {
  const r = spawnSync("prlimit", ["--nofile=64:", process.execPath, "--input-type=module", "-e", script], { encoding: "utf8", timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { run: "EMFILE", group: "EMFILE", capture: "EMFILE", selfAlive: true, after: "ok\n" });
});
