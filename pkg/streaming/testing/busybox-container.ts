/**
 * A real container for tests: a bundle whose rootfs is the host's static
 * busybox plus applet links, started detached with `runc run -d` under a
 * private runc root. Needs root.
 */
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export interface TestContainer {
  id: string;
  runtimePath: string;
  runtimeRoot: string;
  bundle: string;
  /** Host pid of the container's init. */
  pid: number;
  remove(): void;
}

const APPLETS = ["sh", "cat", "echo", "sleep", "tty", "stty", "ls", "ps", "printf", "head", "wc", "true", "false", "kill", "nc", "httpd", "seq", "sed"];

export function canRunContainers(runtimePath = "/usr/sbin/runc", busybox = "/bin/busybox"): boolean {
  return process.getuid?.() === 0 && fs.existsSync(runtimePath) && fs.existsSync(busybox);
}

export function startBusyboxContainer(options: { runtimePath?: string; busybox?: string; args?: string[] } = {}): TestContainer {
  const runtimePath = options.runtimePath ?? "/usr/sbin/runc";
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "berth-stream-ctr-"));
  const bundle = path.join(base, "bundle");
  const rootfs = path.join(bundle, "rootfs");
  const runtimeRoot = path.join(base, "runc-root");
  fs.mkdirSync(path.join(rootfs, "bin"), { recursive: true });
  for (const d of ["proc", "dev", "sys", "tmp", "etc"]) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  fs.copyFileSync(options.busybox ?? "/bin/busybox", path.join(rootfs, "bin", "busybox"));
  fs.chmodSync(path.join(rootfs, "bin", "busybox"), 0o755);
  for (const a of APPLETS) fs.symlinkSync("busybox", path.join(rootfs, "bin", a));
  fs.writeFileSync(path.join(rootfs, "etc", "passwd"), "root:x:0:0:root:/:/bin/sh\n");
  execFileSync(runtimePath, ["spec", "--bundle", bundle]);
  const specPath = path.join(bundle, "config.json");
  const spec = JSON.parse(fs.readFileSync(specPath, "utf8")) as {
    process: { terminal: boolean; args: string[]; env: string[] };
    root: { readonly: boolean };
  };
  spec.process.terminal = false;
  spec.process.args = options.args ?? ["/bin/sleep", "100000"];
  spec.process.env = ["PATH=/bin", "TERM=xterm", "BERTH_TEST=1"];
  spec.root.readonly = false;
  fs.writeFileSync(specPath, JSON.stringify(spec));
  const id = `berth-stream-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  // The detached container inherits runc's stdio: give it a file, not a pipe we would wait on.
  const errFile = path.join(base, "run.err");
  const errFd = fs.openSync(errFile, "w");
  const r = spawnSync(runtimePath, ["--root", runtimeRoot, "run", "-d", "--bundle", bundle, id], {
    stdio: ["ignore", "ignore", errFd],
  });
  fs.closeSync(errFd);
  if (r.status !== 0) {
    const err = fs.readFileSync(errFile, "utf8");
    fs.rmSync(base, { recursive: true, force: true });
    throw new Error(`runc run failed: ${err}`);
  }
  const state = JSON.parse(execFileSync(runtimePath, ["--root", runtimeRoot, "state", id], { encoding: "utf8" })) as { pid: number };
  return {
    id,
    runtimePath,
    runtimeRoot,
    bundle,
    pid: state.pid,
    remove() {
      spawnSync(runtimePath, ["--root", runtimeRoot, "delete", "-f", id], { stdio: "ignore" });
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}
