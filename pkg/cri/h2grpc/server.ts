// berth's gRPC server for the CRI socket: routes by :path to grpc-js-shaped handlers
// (the ServiceDefinition/implementation pairs grpc-js's Server.addService takes), and
// serves every connection with H2GrpcConnection. Unlike grpc-js over Node's http2, it
// accepts any :authority (crictl and older kubelets send the socket path) and answers
// a call with a fraction of the CPU (issue 9: ~35 µs against ~165 µs per empty call).

import type { Server as NetServer, Socket } from "node:net";
import { logger } from "../../log/index.js";
import { listenUnix } from "../h2-authority/listen-unix.js";
import { H2GrpcConnection, type Route } from "./connection.js";

export interface H2GrpcServerOptions {
  maxRecvMessage: number;
  maxSendMessage: number;
  /** Concurrent calls per connection. Default 1000. */
  maxStreams?: number;
}

/** One method of a service definition as grpc-js describes it. */
interface MethodDefinition {
  path: string;
  responseStream: boolean;
  requestDeserialize(bytes: Buffer): unknown;
  responseSerialize(value: unknown): Buffer;
}

export class H2GrpcServer {
  readonly #routes = new Map<string, Route>();
  readonly #conns = new Set<H2GrpcConnection>();
  readonly #sockets = new Set<Socket>();
  readonly #opts: H2GrpcServerOptions;
  #net: NetServer | undefined;
  #accepting = true;
  #idleWaiters: Array<() => void> = [];
  /** Connections closed for a protocol error (since start). */
  protocolErrors = 0;

  constructor(opts: H2GrpcServerOptions) {
    this.#opts = opts;
  }

  /** Same contract as grpc-js's Server.addService. */
  addService(definition: Record<string, MethodDefinition>, impl: Record<string, unknown>): void {
    for (const [key, def] of Object.entries(definition)) {
      const handler = impl[key];
      if (typeof handler !== "function") throw new Error(`no handler for ${def.path}`);
      this.#routes.set(def.path, {
        path: def.path,
        serverStream: def.responseStream,
        deserialize: (b) => def.requestDeserialize(b),
        serialize: (v) => def.responseSerialize(v),
        handler: handler as Route["handler"],
      });
    }
  }

  /** Listens on a unix socket path (which must not exist). */
  async listen(path: string): Promise<void> {
    this.#net = await listenUnix(path, (socket) => this.serve(socket));
  }

  /** Serves one accepted connection. */
  serve(socket: Socket): void {
    socket.on("error", (err) => logger().debug({ err }, "CRI client socket error"));
    if (!this.#accepting) {
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
    const conn = new H2GrpcConnection(socket, {
      routes: this.#routes,
      maxRecvMessage: this.#opts.maxRecvMessage,
      maxSendMessage: this.#opts.maxSendMessage,
      maxStreams: this.#opts.maxStreams ?? 1000,
      onClose: (c) => {
        this.#conns.delete(c);
        if (this.#conns.size === 0) {
          for (const w of this.#idleWaiters) w();
          this.#idleWaiters = [];
        }
      },
      onProtocolError: (_c, reason) => {
        this.protocolErrors++;
        logger().debug({ reason }, "closing a CRI connection: HTTP/2 protocol error");
      },
    });
    this.#conns.add(conn);
  }

  get connections(): number {
    return this.#conns.size;
  }

  /** Stops accepting connections. */
  stopAccepting(): void {
    if (!this.#accepting) return;
    this.#accepting = false;
    this.#net?.close();
  }

  /** Stops accepting, tells every client to go away, and calls back once their calls are done. */
  tryShutdown(cb: () => void): void {
    this.stopAccepting();
    if (this.#conns.size === 0) {
      cb();
      return;
    }
    this.#idleWaiters.push(cb);
    for (const c of this.#conns) c.drain();
  }

  /** Cuts every connection (their calls see a cancel). */
  forceShutdown(): void {
    this.stopAccepting();
    for (const s of this.#sockets) s.destroy();
  }
}
