import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { DeadlineExceededError } from "../errdefs/index.js";
import { killGroup, runCapture } from "../sys/index.js";
import { logger } from "../log/index.js";
import { DEFAULT_CALL_TIMEOUT_MS, type OciRuntime } from "./oci-runtime.js";

export const EXEC_OUTPUT_CAP = 16 * 1024 * 1024;

export interface ExecSyncResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
  timedOut: boolean;
}

/**
 * Runs a command in a running container with `<runtime> exec` and the
 * container's process settings (user, env, caps, cwd) with the given argv.
 * stdout and stderr are captured up to 16 MiB each. On timeout the exec'd
 * process is killed (SIGKILL) and a non-zero exit code comes back. The runtime
 * runs in its own process group: one that has not started the command (no pid
 * file) within the runtime's call timeout is hung and its whole group is killed,
 * whatever the exec's own timeout (0 = none) says.
 */
export async function execSync(rt: OciRuntime, id: string, bundle: string, process_: Record<string, unknown>, cmd: readonly string[], timeoutMs: number): Promise<ExecSyncResult> {
  const tag = randomBytes(6).toString("hex");
  const procFile = join(bundle, `exec-${tag}.json`);
  const pidFile = join(bundle, `exec-${tag}.pid`);
  writeFileSync(procFile, JSON.stringify({ ...process_, args: [...cmd], terminal: false }));
  const callTimeoutMs = rt.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  let hungTimer: NodeJS.Timeout | undefined;
  let hung = false;
  try {
    const res = await runCapture(rt.path, [`--root=${rt.root}`, "exec", "--process", procFile, "--pid-file", pidFile, id], {
      maxBytes: EXEC_OUTPUT_CAP,
      timeoutMs,
      ownProcessGroup: true,
      onSpawn: (runtimePid) => {
        hungTimer = setTimeout(() => {
          if (existsSync(pidFile)) return;
          hung = true;
          killGroup(runtimePid);
        }, callTimeoutMs);
      },
      onTimeout: (runtimePid) => {
        try {
          const pid = Number(readFileSync(pidFile, "utf8").trim());
          if (pid > 0) process.kill(pid, "SIGKILL");
        } catch (err) {
          logger().warn({ containerId: id, err }, "exec timed out but its pid is unknown; killing the runtime");
          killGroup(runtimePid);
        }
      },
    });
    if (hung) throw new DeadlineExceededError(`${rt.name} exec in container "${id}": the runtime did not start the command within ${callTimeoutMs / 1000} s and was killed`);
    const exitCode = res.timedOut && res.exitCode === 0 ? 137 : res.exitCode;
    return { stdout: res.stdout, stderr: res.stderr, exitCode, timedOut: res.timedOut };
  } finally {
    if (hungTimer) clearTimeout(hungTimer);
    rmSync(procFile, { force: true });
    rmSync(pidFile, { force: true });
  }
}
