import { createRequire } from "node:module";
import type * as GrpcJs from "@grpc/grpc-js";
import type { Server, ServiceDefinition, UntypedServiceImplementation } from "@grpc/grpc-js";
import { ImageServiceService, RuntimeServiceService } from "../../api/gen/cri/v1/api.js";
import { UnimplementedError } from "../errdefs/index.js";
import { logger } from "../log/index.js";
import { AnyAuthorityListener } from "./h2-authority/index.js";
import { H2GrpcServer } from "./h2grpc/server.js";
import { InflightTracker, ReadinessGate, serverStream, unary, type InstrumentOptions, type StreamImpl, type UnaryImpl } from "./instrument.js";
import { messageTypesOf, methodName } from "./messages.js";
import { EncodedMessage } from "./encoded.js";
import type { CriDeps } from "./deps.js";
import { runtimeHandlers } from "./runtime-service.js";
import { imageHandlers } from "./image-service.js";

/** Builds a full grpc-js implementation: every method of the definition is served, real or UNIMPLEMENTED. */
function implement(definition: ServiceDefinition, impls: Record<string, unknown>, opts: InstrumentOptions): UntypedServiceImplementation {
  const out: UntypedServiceImplementation = {};
  for (const [key, def] of Object.entries(definition)) {
    const name = methodName(def.path);
    const { response } = messageTypesOf(name);
    const impl = impls[key];
    const fallback = async (): Promise<never> => {
      throw new UnimplementedError(`${name} is not implemented by berth yet`);
    };
    // Handlers may return partial messages: fromPartial fills every default so encoding never sees a hole.
    if (def.responseStream) {
      const streamImpl = (impl ?? fallback) as StreamImpl<unknown, unknown>;
      out[key] = serverStream(opts, name, (req, write, ctx, drained) => streamImpl(req, (msg) => write(response.fromPartial(msg)), ctx, drained));
    } else {
      const unaryImpl = (impl ?? fallback) as UnaryImpl<unknown, unknown>;
      out[key] = unary(opts, name, async (req, ctx) => {
        const res = await unaryImpl(req, ctx);
        return res instanceof EncodedMessage ? res : response.fromPartial(res);
      });
    }
  }
  return out;
}

/**
 * The definition with serializers that send an EncodedMessage as it is, and encode
 * the rest without copying protobufjs's output.
 */
function withEncodedResponses(definition: ServiceDefinition): ServiceDefinition {
  const out: Record<string, ServiceDefinition[string]> = {};
  for (const [key, def] of Object.entries(definition)) {
    const { response } = messageTypesOf(methodName(def.path));
    out[key] = {
      ...def,
      responseSerialize: (value: unknown): Buffer => {
        if (value instanceof EncodedMessage) return value.bytes;
        const u8 = response.encode(value).finish();
        return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
      },
    };
  }
  return out;
}

/** The CRI v1 gRPC server: RuntimeService and ImageService on one unix socket. */
export class CriServer {
  /** grpc.server = "grpc-js": grpc-js over Node's http2, fed through AnyAuthorityListener. */
  readonly #grpcjs: Server | undefined;
  /** grpc.server = "berth" (default): berth's own HTTP/2 gRPC server (h2grpc). */
  readonly #h2: H2GrpcServer | undefined;
  readonly #gate = new ReadinessGate();
  readonly #inflight = new InflightTracker();
  #listener: AnyAuthorityListener | undefined;

  constructor(deps: CriDeps) {
    const ungated = new Set(["Version", "Status", "RuntimeConfig"]);
    const common = { gate: this.#gate, inflight: this.#inflight, ungated, ...(deps.onWorkDone ? { onWorkDone: deps.onWorkDone } : {}) };
    const services: Array<[ServiceDefinition, UntypedServiceImplementation]> = [
      [withEncodedResponses(RuntimeServiceService), implement(RuntimeServiceService, runtimeHandlers(deps) as Record<string, unknown>, { ...common, service: "runtime" })],
      [withEncodedResponses(ImageServiceService), implement(ImageServiceService, imageHandlers(deps) as Record<string, unknown>, { ...common, service: "image" })],
    ];
    const { grpc } = deps.config;
    if (grpc.server === "grpc-js") {
      // Loaded only here: with berth's own server, berthd never loads grpc-js (6 MB of heap).
      const grpcjs = createRequire(import.meta.url)("@grpc/grpc-js") as typeof GrpcJs;
      this.#grpcjs = new grpcjs.Server({
        "grpc.max_receive_message_length": grpc.max_recv_message_size,
        "grpc.max_send_message_length": grpc.max_send_message_size,
        // Channelz (grpc's introspection service, which berth does not serve) otherwise keeps
        // per-call counters and timestamps on every stream of the hot path.
        "grpc.enable_channelz": 0,
      });
      for (const [def, impl] of services) this.#grpcjs.addService(def, impl);
    } else {
      this.#h2 = new H2GrpcServer({ maxRecvMessage: grpc.max_recv_message_size, maxSendMessage: grpc.max_send_message_size });
      for (const [def, impl] of services) this.#h2.addService(def as never, impl);
    }
  }

  /**
   * Serves on a unix socket (the path must not exist). Every client that containerd and
   * CRI-O serve is served, including those that send the socket path as :authority:
   * berth's own server takes any authority; with grpc-js, berth owns the listener and
   * hands each connection to grpc-js through a filter that replaces such an authority.
   */
  async listen(socketPath: string): Promise<void> {
    if (this.#h2) {
      await this.#h2.listen(socketPath);
      return;
    }
    if (this.#listener) throw new Error(`the CRI server already listens`);
    const { ServerCredentials } = createRequire(import.meta.url)("@grpc/grpc-js") as typeof GrpcJs;
    const injector = (this.#grpcjs as Server).createConnectionInjector(ServerCredentials.createInsecure());
    this.#listener = await AnyAuthorityListener.listen(socketPath, injector);
  }

  /** Opens the readiness gate: calls held while state was recovered now run. */
  ready(): void {
    this.#gate.open();
  }

  /** Stops accepting calls, waits up to graceMs for in-flight ones, then cuts the rest. */
  async shutdown(graceMs: number): Promise<void> {
    const server = this.#h2 ?? (this.#grpcjs as Server);
    this.#listener?.stopAccepting();
    const drained = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    const inflight = this.#inflight.count;
    if (inflight > 0) logger().info({ inflight }, "waiting for in-flight CRI calls");
    const timer = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), graceMs).unref());
    if ((await Promise.race([drained.then(() => "done" as const), timer])) === "timeout") {
      logger().warn({ inflight: this.#inflight.count }, "grace period over: cancelling remaining calls");
      server.forceShutdown();
      // grpc-js destroys its sessions; this also cuts a connection whose session never started.
      this.#listener?.destroyConnections();
    }
  }
}
export type { RuntimeImpls, ImageImpls } from "./impls.js";
