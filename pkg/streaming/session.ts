/**
 * Runs one exec or attach once the protocol layer has its streams, and the
 * helpers both protocols share.
 */
import { finished, type Readable, type Writable } from "node:stream";
import type { Logger } from "../log/index.js";
import { exitCodeStatus, internalErrorStatus, successStatus, type Status } from "./status.js";
import type { ExecRequest, AttachRequest, StreamingBackend, TerminalSize } from "./types.js";

/** An async queue of terminal sizes (the StreamIO.resize iterable). */
export class SizeQueue implements AsyncIterable<TerminalSize> {
  #items: TerminalSize[] = [];
  #waiters: ((r: IteratorResult<TerminalSize>) => void)[] = [];
  #ended = false;

  push(size: TerminalSize): void {
    if (this.#ended) return;
    const w = this.#waiters.shift();
    if (w) w({ value: size, done: false });
    else {
      // Only the latest sizes matter; keep the queue short.
      if (this.#items.length >= 16) this.#items.shift();
      this.#items.push(size);
    }
  }

  end(): void {
    this.#ended = true;
    for (const w of this.#waiters.splice(0)) w({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<TerminalSize> {
    return {
      next: () => {
        const item = this.#items.shift();
        if (item) return Promise.resolve({ value: item, done: false });
        if (this.#ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => this.#waiters.push(resolve));
      },
      return: () => {
        this.end();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/** Parses one JSON terminal size ({"Width":W,"Height":H}); undefined if malformed. */
export function parseSize(text: string): TerminalSize | undefined {
  try {
    const v = JSON.parse(text) as { Width?: unknown; Height?: unknown };
    const width = Number(v.Width);
    const height = Number(v.Height);
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0 || width > 65535 || height > 65535) {
      return undefined;
    }
    return { width, height };
  } catch {
    return undefined;
  }
}

/** Feeds a byte stream of concatenated JSON sizes (the SPDY resize stream) into a queue. */
export function pumpSizes(stream: Readable, queue: SizeQueue, log: Logger): void {
  let buf = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    buf += chunk;
    // Objects are flat: split on each closing brace.
    let i: number;
    while ((i = buf.indexOf("}")) >= 0) {
      const text = buf.slice(0, i + 1).trim();
      buf = buf.slice(i + 1);
      const size = parseSize(text);
      if (size) queue.push(size);
      else log.debug({ text }, "ignoring malformed terminal size");
    }
    if (buf.length > 4096) buf = "";
  });
  stream.on("end", () => queue.end());
  stream.on("close", () => queue.end());
}

/** Ends a writable side and waits until it has flushed (or was destroyed). */
export function endAndFlush(w: Writable | undefined): Promise<void> {
  if (!w || w.destroyed || w.writableFinished) return Promise.resolve();
  return new Promise((resolve) => {
    finished(w, { readable: false }, () => resolve());
    if (!w.writableEnded) w.end();
  });
}

export interface SessionStreams {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  resize?: SizeQueue;
}

/**
 * Calls the backend and returns the status to report. Output streams are ended
 * and flushed before this returns, so the status is the last thing sent.
 */
export async function runRemoteCommand(
  pending: { kind: "exec"; req: ExecRequest } | { kind: "attach"; req: AttachRequest },
  streams: SessionStreams,
  backend: StreamingBackend,
  signal: AbortSignal,
  log: Logger,
): Promise<Status> {
  const io = {
    tty: pending.req.tty,
    ...(streams.stdin ? { stdin: streams.stdin } : {}),
    ...(streams.stdout ? { stdout: streams.stdout } : {}),
    ...(streams.stderr ? { stderr: streams.stderr } : {}),
    ...(streams.resize ? { resize: streams.resize } : {}),
  };
  let status: Status;
  try {
    if (pending.kind === "exec") {
      const { exitCode } = await backend.exec(pending.req.containerId, pending.req.cmd, io, signal);
      status = exitCode === 0 ? successStatus() : exitCodeStatus(exitCode);
      log.debug({ exitCode }, "exec finished");
    } else {
      await backend.attach(
        pending.req.containerId,
        { ...io, ...(pending.req.stdinOnce !== undefined ? { stdinOnce: pending.req.stdinOnce } : {}) },
        signal,
      );
      status = successStatus();
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (!signal.aborted) log.warn({ err }, `${pending.kind} failed`);
    status = internalErrorStatus(`error ${pending.kind === "exec" ? "executing command in" : "attaching to"} container: ${message}`);
  }
  streams.resize?.end();
  await Promise.all([endAndFlush(streams.stdout), endAndFlush(streams.stderr)]);
  return status;
}
