// berthctl exec -i/-t and attach against berthd: the CLI runs as its own
// process; for -t its stdio is the slave of a pty the test types into.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import { BERTHCTL } from "./harness/daemon.js";
import { startRegistry, type Registry } from "./harness/registry.js";
import { ensureTestImages } from "./harness/images.js";
import { ctrConfig, runCtr, runPod, startEnv, stopEnv, waitExited, type Env } from "./containers-helpers.js";
import { PtyMaster, openPty, setWindowSize } from "../pkg/sys/index.js";

let reg: Registry;
let env: Env;
let bb: string;

before(async () => {
  reg = await startRegistry();
  const images = await ensureTestImages(reg);
  env = await startEnv(reg, images);
  bb = images["busybox:latest"].ref;
});

after(async () => {
  if (env) await stopEnv(env);
  await reg?.stop();
});

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

async function waitFor(cond: () => boolean, what: () => string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out; saw ${JSON.stringify(what())}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Runs berthctl with its stdio on a new pty; returns the user's side of the terminal. */
function ctlOnPty(args: string[], columns: number, rows: number) {
  const pty = openPty();
  const slave = fs.openSync(pty.slavePath, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
  setWindowSize(slave, columns, rows);
  const child = spawn(process.execPath, [BERTHCTL, "--socket", env.d.dirs.socket, ...args], { stdio: [slave, slave, slave] });
  fs.closeSync(slave);
  const user = new PtyMaster(pty.master);
  const screen = { text: "" };
  user.on("data", (c: Buffer) => (screen.text += c.toString("utf8")));
  return { child, user, screen, exited: exitOf(child) };
}

test("berthctl exec -it: an interactive busybox shell on a terminal, resize on SIGWINCH, exit code", async () => {
  const pod = await runPod(env, "cli-exec");
  const id = await runCtr(env, pod, ctrConfig("sleeper", bb, { command: ["sleep", "3600"] }));
  const t = ctlOnPty(["exec", "-it", id.slice(0, 16), "sh"], 90, 30);
  try {
    await waitFor(() => t.screen.text.includes("# "), () => t.screen.text);
    t.user.write("stty size\r");
    await waitFor(() => t.screen.text.includes("30 90"), () => t.screen.text);
    // The user's terminal grows: berthctl gets SIGWINCH (sent by hand: the pty is not its controlling terminal).
    setWindowSize(t.user.fd, 120, 50);
    t.child.kill("SIGWINCH");
    await new Promise((r) => setTimeout(r, 300));
    t.user.write("stty size\r");
    await waitFor(() => t.screen.text.includes("50 120"), () => t.screen.text);
    t.user.write("echo hi; exit 3\r");
    assert.equal(await t.exited, 3);
    // The user's pty keeps ONLCR in raw mode (libuv), so the remote "\r\n" shows as "\r\r\n".
    assert.match(t.screen.text, /\nhi\r+\n/);
  } finally {
    t.child.kill("SIGKILL");
    t.user.destroy();
  }
});

test("berthctl exec -i with piped stdin and no tty: stdout and stderr apart, exit code", async () => {
  const pod = await runPod(env, "cli-exec-i");
  const id = await runCtr(env, pod, ctrConfig("sleeper", bb, { command: ["sleep", "3600"] }));
  const child = spawn(process.execPath, [BERTHCTL, "--socket", env.d.dirs.socket, "exec", "-i", id, "/bin/sh", "-c", "cat; echo to-stderr >&2; test -t 0 || exit 4"], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
  const exited = exitOf(child);
  child.stdin!.end("piped line 1\npiped line 2\n");
  assert.equal(await exited, 4, err);
  assert.equal(out, "piped line 1\npiped line 2\n");
  assert.equal(err, "to-stderr\n");

  // The command exits while our stdin is still open: berthctl exits too.
  const open = spawn(process.execPath, [BERTHCTL, "--socket", env.d.dirs.socket, "exec", "-i", id, "/bin/sh", "-c", "echo bye; exit 6"], { stdio: ["pipe", "pipe", "pipe"] });
  let bye = "";
  open.stdout!.on("data", (c: Buffer) => (bye += c.toString()));
  try {
    assert.equal(await exitOf(open), 6);
    assert.equal(bye, "bye\n");
  } finally {
    open.stdin!.destroy();
    open.kill("SIGKILL");
  }

  // -t without a terminal on our side still gives the process a tty (and no stdin).
  const tchild = spawn(process.execPath, [BERTHCTL, "--socket", env.d.dirs.socket, "exec", "-t", id, "/bin/sh", "-c", "test -t 1 && echo has-tty"], { stdio: ["ignore", "pipe", "pipe"] });
  let tout = "";
  tchild.stdout!.on("data", (c: Buffer) => (tout += c.toString()));
  assert.equal(await exitOf(tchild), 0);
  assert.equal(tout, "has-tty\r\n");
});

test("berthctl attach -it: a tty container's shell", async () => {
  const pod = await runPod(env, "cli-attach");
  const id = await runCtr(env, pod, ctrConfig("tty", bb, { command: ["/bin/sh"], stdin: true, tty: true }));
  const t = ctlOnPty(["attach", "-it", id], 80, 24);
  try {
    // Attaching shows no prompt by itself: run something and see its output.
    for (let i = 0; !/\n42\r+\n/.test(t.screen.text); i++) {
      if (i > 40) assert.fail(`no output through attach: ${JSON.stringify(t.screen.text)}`);
      t.user.write("echo $((6*7))\r");
      await new Promise((r) => setTimeout(r, 250));
    }
    t.user.write("exit 7\r");
    assert.equal(await t.exited, 0, "attach ends with success when the container exits");
    assert.equal((await waitExited(env, id)).exitCode, 7);
  } finally {
    t.child.kill("SIGKILL");
    t.user.destroy();
  }
});
