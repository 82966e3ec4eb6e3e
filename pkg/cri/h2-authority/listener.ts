// A unix-socket listener for the gRPC server that puts a ClientFrameFilter
// between grpc-js and each client that sends the socket path as :authority
// (crictl, kubelet ≤ 1.26, grpc-java, gRPC core), so that they are served too.
// A client whose first call carries an acceptable :authority gets the raw socket
// (see sniff.ts): no JavaScript stream on its reads.

import type { Server as NetServer, Socket } from "node:net";
import { Duplex } from "node:stream";
import { logger } from "../../log/index.js";
import { ClientFrameFilter, type FrameFilterOptions } from "./frame-filter.js";
import { listenUnix } from "./listen-unix.js";
import { ConnectionSniffer, EMPTY_SETTINGS } from "./sniff.js";

/** How long a connection may stay without its first call before it is served through the filter. */
const SNIFF_TIMEOUT_MS = 2000;

export interface ListenerOptions extends FrameFilterOptions {
  /** Default SNIFF_TIMEOUT_MS. */
  sniffTimeoutMs?: number;
}

/** What grpc-js's Server.createConnectionInjector returns. */
export interface ConnectionInjector {
  injectConnection(connection: Duplex): void;
}

/** The client's socket seen through the filter: reads are rewritten, writes go straight through. */
class FilteredConnection extends Duplex {
  readonly #raw: Socket;

  constructor(raw: Socket, filter: ClientFrameFilter, initial?: Buffer) {
    super({ allowHalfOpen: false });
    this.#raw = raw;
    if (initial && initial.length > 0) {
      let out: Buffer | undefined;
      try {
        out = filter.push(initial);
      } catch (err) {
        logger().warn({ err }, "closing a CRI connection: its HTTP/2 header block could not be decoded");
        raw.destroy();
      }
      if (out && out.length > 0) this.push(out);
    }
    raw.on("data", (chunk: Buffer) => {
      let out: Buffer;
      try {
        out = filter.push(chunk);
      } catch (err) {
        logger().warn({ err }, "closing a CRI connection: its HTTP/2 header block could not be decoded");
        raw.destroy();
        return;
      }
      if (out.length > 0 && !this.push(out)) raw.pause();
    });
    raw.on("end", () => this.push(null));
    raw.on("close", () => this.destroy());
    // Errors of the wrapper (e.g. a session destroyed with a reason) are the session's business.
    this.on("error", (err) => logger().debug({ err }, "CRI connection error"));
  }

  override _read(): void {
    this.#raw.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#raw.write(chunk)) cb();
    else this.#raw.once("drain", () => cb());
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    const raw = this.#raw;
    raw.cork();
    let ok = true;
    for (const { chunk } of chunks) ok = raw.write(chunk);
    raw.uncork();
    if (ok) cb();
    else raw.once("drain", () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#raw.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#raw.destroy();
    cb(err);
  }
}

/** Accepts connections on a unix socket and hands each, filtered, to a gRPC connection injector. */
export class AnyAuthorityListener {
  #server: NetServer | undefined;
  readonly #sockets = new Set<Socket>();
  #accepting = true;

  private constructor() {}

  /** Listens on `path` (which must not exist) and serves every connection through `injector`. */
  static async listen(path: string, injector: ConnectionInjector, opts: ListenerOptions = {}): Promise<AnyAuthorityListener> {
    const listener = new AnyAuthorityListener();
    listener.#server = await listenUnix(path, (raw) => listener.#accept(raw, injector, opts));
    return listener;
  }

  #accept(raw: Socket, injector: ConnectionInjector, opts: ListenerOptions): void {
    raw.on("error", (err) => logger().debug({ err }, "CRI client socket error"));
    if (!this.#accepting) {
      raw.destroy();
      return;
    }
    this.#sockets.add(raw);
    raw.once("close", () => this.#sockets.delete(raw));
    // The server preface, so that clients waiting for it send their first call.
    raw.write(EMPTY_SETTINGS);
    const sniffer = new ConnectionSniffer(opts);
    const filtered = (octets: Buffer): void => {
      this.filteredConnections++;
      injector.injectConnection(new FilteredConnection(raw, new ClientFrameFilter({ ...opts, dropFirstSettingsAck: true }), octets));
    };
    const settle = (): void => {
      clearTimeout(timer);
      raw.pause();
      raw.off("data", onData);
      raw.off("close", onClose);
    };
    const onData = (chunk: Buffer): void => {
      const outcome = sniffer.push(chunk);
      if (outcome.kind === "more") return;
      settle();
      if (!this.#accepting) {
        raw.destroy();
        return;
      }
      if (outcome.kind === "filter") {
        filtered(outcome.octets);
        return;
      }
      this.rawConnections++;
      raw.unshift(outcome.octets);
      injector.injectConnection(raw);
    };
    const onClose = (): void => clearTimeout(timer);
    const timer = setTimeout(() => {
      settle();
      if (!this.#accepting) raw.destroy();
      else filtered(sniffer.octets);
    }, opts.sniffTimeoutMs ?? SNIFF_TIMEOUT_MS);
    timer.unref();
    raw.on("data", onData);
    raw.once("close", onClose);
  }

  /** Connections given to the server as they are, and through the filter (since start). */
  rawConnections = 0;
  filteredConnections = 0;

  /** Client connections currently open. */
  get connections(): number {
    return this.#sockets.size;
  }

  /** Stops accepting connections; the open ones are left to the gRPC server to drain. */
  stopAccepting(): void {
    if (!this.#accepting) return;
    this.#accepting = false;
    this.#server?.close();
  }

  /** Cuts every connection still open. */
  destroyConnections(): void {
    for (const s of this.#sockets) s.destroy();
  }
}
