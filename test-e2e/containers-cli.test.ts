import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { BERTHCTL } from "./harness/daemon.js";
import { startRegistry, type Registry } from "./harness/registry.js";
import { ensureTestImages } from "./harness/images.js";
import { podConfig, startEnv, stopEnv, type Env } from "./containers-helpers.js";

const run = promisify(execFile);
let reg: Registry;
let env: Env;

before(async () => {
  reg = await startRegistry();
  env = await startEnv(reg, await ensureTestImages(reg));
});

after(async () => {
  if (env) await stopEnv(env);
  await reg?.stop();
});

async function ctl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [BERTHCTL, "--socket", env.d.dirs.socket, ...args], { encoding: "utf8" });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test("berthctl run/ps/exec/logs -f/inspect/stop/rm and create/start with crictl-style config files", async () => {
  const bb = env.images["busybox:latest"].ref;
  const pod = podConfig(env, "cli");
  const podFile = join(env.d.dirs.base, "pod.json");
  // crictl files use the proto's snake_case names.
  writeFileSync(podFile, JSON.stringify({ metadata: pod.metadata, hostname: "cli", log_directory: pod.logDirectory }));
  const ctrFile = join(env.d.dirs.base, "ctr.yaml");
  writeFileSync(ctrFile, `metadata:\n  name: web\nimage:\n  image: ${bb}\ncommand: ["/bin/sh", "-c", "echo started; i=0; while [ $i -lt 3 ]; do echo tick$i; i=$((i+1)); sleep 0.3; done; sleep 600"]\nlog_path: web.log\nlabels:\n  tier: cli\n`);

  const r = await ctl("run", ctrFile, podFile);
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/);

  const ps = await ctl("ps");
  assert.match(ps.stdout, /web\s+0/);
  assert.match(ps.stdout, /Running/);
  assert.equal((await ctl("ps", "-q", "--label", "tier=cli")).stdout.trim(), id);

  const ex = await ctl("exec", id.slice(0, 12), "/bin/sh", "-c", "echo from-exec; exit 3");
  assert.equal(ex.code, 3);
  assert.equal(ex.stdout, "from-exec\n");

  await new Promise((res) => setTimeout(res, 1200));
  const logs = await ctl("logs", id);
  assert.equal(logs.stdout, "started\ntick0\ntick1\ntick2\n");

  const insp = JSON.parse((await ctl("inspect", id)).stdout) as { status: { state: string; logPath: string }; info: { info: { pid: number } } };
  assert.equal(insp.status.state, "CONTAINER_RUNNING");
  assert.ok(insp.info.info.pid > 0);

  const stop = await ctl("stop", "-t", "0", id);
  assert.equal(stop.code, 0, stop.stderr);
  assert.match((await ctl("ps", "-a")).stdout, /Exited/);
  assert.equal((await ctl("rm", id)).code, 0);
  assert.equal((await ctl("ps", "-a", "-q")).stdout.trim(), "");

  // create + start into the existing pod, logs -f follows until the container exits.
  const podId = (await ctl("pods", "-q")).stdout.trim();
  const ctr2 = join(env.d.dirs.base, "ctr2.json");
  writeFileSync(ctr2, JSON.stringify({ metadata: { name: "short" }, image: { image: bb }, command: ["/bin/sh", "-c", "sleep 1; echo one; echo two >&2; sleep 0.5; echo three"], log_path: "short.log" }));
  const created = await ctl("create", podId, ctr2, podFile);
  assert.equal(created.code, 0, created.stderr);
  const cid = created.stdout.trim();
  assert.equal((await ctl("start", cid)).code, 0);
  const follow = await ctl("logs", "-f", cid);
  assert.equal(follow.stdout, "one\nthree\n");
  assert.equal(follow.stderr, "two\n");
  assert.equal((await ctl("rmp", podId)).code, 0);
  assert.equal((await ctl("ps", "-a", "-q")).stdout.trim(), "");
});
