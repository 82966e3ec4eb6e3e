/**
 * The contract between the streaming server and the runtime. The server speaks
 * the wire protocols (SPDY, WebSocket) and hands the runtime plain Node
 * streams; the runtime runs the process or opens the socket.
 */
import type { Duplex, Readable, Writable } from "node:stream";

export interface TerminalSize {
  width: number;
  height: number;
}

/**
 * The client's streams for one exec or attach. Only the streams the CRI request
 * asked for are present. The backend writes the process output to stdout and
 * stderr (it may end them; the server ends them when the call returns) and
 * reads stdin until it ends (the client closed its input).
 */
export interface StreamIO {
  stdin?: Readable;
  stdout?: Writable;
  /** Absent with tty: a terminal merges stderr into stdout. */
  stderr?: Writable;
  tty: boolean;
  /** Terminal sizes from the client (tty only); the first one comes at once. Ends with the session. */
  resize?: AsyncIterable<TerminalSize>;
}

export interface AttachIO extends StreamIO {
  /** The container closes its stdin when this attach's stdin ends (CRI stdin_once). */
  stdinOnce?: boolean;
}

/**
 * What the runtime implements. Every method gets an AbortSignal that fires when
 * the client goes away, the session is idle too long or the server stops: the
 * backend must then kill the exec process / close the socket and return.
 */
export interface StreamingBackend {
  /**
   * Runs cmd in the container with the given streams and resolves with its exit
   * code once the process has exited and all its output was written to io.
   * Rejects (e.g. NotFoundError) if the process could not be started.
   */
  exec(containerId: string, cmd: string[], io: StreamIO, signal: AbortSignal): Promise<{ exitCode: number }>;
  /**
   * Connects io to the running container's stdio and resolves when the container
   * exits or the signal fires (the client detached). Several attaches may run at once.
   */
  attach(containerId: string, io: AttachIO, signal: AbortSignal): Promise<void>;
  /**
   * Connects stream to TCP port inside the pod's network namespace and copies
   * both ways; resolves once the target connection is closed (its data written
   * to stream). Rejects if the connection cannot be made.
   */
  portForward(podSandboxId: string, port: number, stream: Duplex, signal: AbortSignal): Promise<void>;
}

/** The parts of CRI ExecRequest the server needs (the CRI layer maps the message). */
export interface ExecRequest {
  containerId: string;
  cmd: string[];
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

export interface AttachRequest {
  containerId: string;
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  /** The container's own stdin_once setting (the CRI layer fills it from the container config). */
  stdinOnce?: boolean;
}

export interface PortForwardRequest {
  podSandboxId: string;
  /** Ports the client asked for; used by WebSocket port forwarding (SPDY names the port per stream). */
  port: number[];
}
