import assert from "node:assert/strict";
import { openSync, closeSync } from "node:fs";
import { test } from "node:test";
import { run } from "./exec.js";
import { fastSpawn } from "./fast-spawn.js";

test("run: exit code, stdout and stderr apart, stdin to EOF", async () => {
  const r = await run("sh", ["-c", "cat; echo err >&2; exit 3"], { input: "IN", allowFailure: true });
  assert.deepEqual([r.exitCode, r.stdout, r.stderr], [3, "IN", "err\n"]);
  await assert.rejects(run("sh", ["-c", "echo why >&2; exit 4"]), /failed \(exit 4\): why/);
});

test("run: environment, working directory, PATH lookup and a missing command", async () => {
  const r = await run("sh", ["-c", 'printf "%s %s" "$BERTH_T" "$(pwd)"'], { env: { BERTH_T: "x1" }, cwd: "/tmp" });
  assert.equal(r.stdout, "x1 /tmp");
  const only = await run("/usr/bin/env", [], { env: { A: "1" }, extendEnv: false });
  assert.equal(only.stdout, "A=1\n");
  await assert.rejects(run("/nonexistent/cmd", []), /could not run: spawn \/nonexistent\/cmd ENOENT/);
  await assert.rejects(run("berth-no-such-command", []), /ENOENT/);
});

test("run: timeout and cancellation end the command; a signal death is an error", async () => {
  const t0 = performance.now();
  await assert.rejects(run("sleep", ["10"], { timeoutMs: 100 }), /timed out after 100 ms/);
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 50);
  await assert.rejects(run("sleep", ["10"], { signal: ac.signal }), /was cancelled/);
  assert.ok(performance.now() - t0 < 5000);
  await assert.rejects(run("sh", ["-c", "kill -9 $$"], { allowFailure: true }), /killed by SIGKILL/);
});

test("run: the child starts with default signal dispositions, an empty mask and none of the daemon's fds", async () => {
  const mine = openSync("/dev/null", "r");
  const r = await run("sh", ["-c", "grep -E '^Sig(Blk|Ign)' /proc/self/status; ls /proc/self/fd"]);
  const blk = /SigBlk:\s+([0-9a-f]+)/.exec(r.stdout)?.[1] ?? "";
  const ign = BigInt(`0x${/SigIgn:\s+([0-9a-f]+)/.exec(r.stdout)?.[1] ?? "0"}`);
  assert.equal(BigInt(`0x${blk}`), 0n);
  // SIGPIPE (13) is ignored by Node; the child must not inherit that.
  assert.equal((ign >> 12n) & 1n, 0n);
  const fds = r.stdout.split("\n").filter((l) => /^\d+$/.test(l)).map(Number);
  closeSync(mine);
  for (const fd of [0, 1, 2]) assert.ok(fds.includes(fd));
  assert.ok(!fds.includes(mine), `the daemon's fd ${mine} leaked into the child (${fds.join(",")})`);
});

test("run: large output and many commands at once", async () => {
  const big = await run("head", ["-c", "5000000", "/dev/zero"]);
  assert.equal(big.stdout.length, 5_000_000);
  await assert.rejects(run("head", ["-c", "2000000", "/dev/zero"], { maxBuffer: 1000 }), /more than 1000 bytes/);
  const all = await Promise.all(Array.from({ length: 40 }, (_, i) => run("sh", ["-c", `echo ${i}; exit ${i % 3}`], { allowFailure: true })));
  all.forEach((r, i) => assert.deepEqual([r.stdout, r.exitCode], [`${i}\n`, i % 3]));
});

test("fastSpawn: a parent fd as the child's stdout, extra socket fds, a new session", async () => {
  const file = `/tmp/berth-fast-spawn-${process.pid}`;
  const fd = openSync(file, "w");
  const c = await fastSpawn("sh", ["-c", 'echo to-file; echo "$(ps -o sid= -p $$)" >&3; read x <&3; echo "got $x" >&3'], { stdio: ["ignore", fd, "ignore", "pipe"], setsid: true });
  closeSync(fd);
  const sock = c.stdio[3];
  assert.ok(sock);
  let text = "";
  sock.on("data", (b: Buffer) => {
    text += b.toString();
    if (!text.includes("got") && text.includes("\n")) sock.write("hello\n");
  });
  // Both directions are open on an extra fd: the socket closes once this side ends too.
  sock.once("end", () => sock.end());
  const closed = new Promise((r) => sock.once("close", r));
  const st = await c.exited;
  await closed;
  assert.deepEqual(st, { code: 0, signal: null });
  const [sid, got] = text.trim().split("\n");
  assert.equal(Number(sid), c.pid);
  assert.equal(got, "got hello");
  assert.equal(c.kill(), false);
  const { readFileSync, rmSync } = await import("node:fs");
  assert.equal(readFileSync(file, "utf8"), "to-file\n");
  rmSync(file);
});
