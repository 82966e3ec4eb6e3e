/**
 * A StreamingBackend over plain host processes and loopback sockets, for the
 * protocol tests: real processes and sockets, no container. Exec runs cmd on
 * the host; a container id of "sizes" instead echoes terminal sizes; attach
 * echoes stdin to stdout after a greeting; port forward dials 127.0.0.1.
 */
import { spawn, type ChildProcess } from "node:child_process";
import type { Duplex } from "node:stream";
import { forwardToPort } from "../backends/port-forward.js";
import type { AttachIO, StreamIO, StreamingBackend } from "../types.js";

export class HostBackend implements StreamingBackend {
  readonly children: ChildProcess[] = [];
  readonly aborted: string[] = [];

  async exec(containerId: string, cmd: string[], io: StreamIO, signal: AbortSignal): Promise<{ exitCode: number }> {
    signal.addEventListener("abort", () => this.aborted.push(containerId), { once: true });
    if (containerId === "sizes") {
      signal.addEventListener("abort", () => (io.resize as { end?: () => void } | undefined)?.end?.(), { once: true });
      for await (const s of io.resize ?? []) io.stdout?.write(`size ${s.width}x${s.height}\n`);
      return { exitCode: 0 };
    }
    const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
    this.children.push(child);
    const onAbort = () => child.kill("SIGKILL");
    signal.addEventListener("abort", onAbort, { once: true });
    child.stdin.on("error", () => undefined);
    if (io.stdin) io.stdin.pipe(child.stdin);
    else child.stdin.end();
    if (io.stdout) child.stdout.pipe(io.stdout, { end: false });
    else child.stdout.resume();
    if (io.stderr) child.stderr.pipe(io.stderr, { end: false });
    else child.stderr.resume();
    return await new Promise((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (code, sig) => {
        signal.removeEventListener("abort", onAbort);
        resolve({ exitCode: code ?? 128 + (sig === "SIGKILL" ? 9 : 15) });
      });
    });
  }

  async attach(_containerId: string, io: AttachIO, signal: AbortSignal): Promise<void> {
    io.stdout?.write("attached\n");
    if (!io.stdin) return;
    await new Promise<void>((resolve) => {
      io.stdin!.on("data", (c: Buffer) => io.stdout?.write(c));
      io.stdin!.on("end", () => resolve());
      signal.addEventListener("abort", () => resolve(), { once: true });
    });
  }

  portForward(_podSandboxId: string, port: number, stream: Duplex, signal: AbortSignal): Promise<void> {
    return forwardToPort({ port, stream, signal });
  }
}
