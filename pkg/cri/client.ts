import { createRequire } from "node:module";
import type * as GrpcJs from "@grpc/grpc-js";
import type { Metadata, CallOptions, ClientReadableStream, ClientUnaryCall, ServiceError } from "@grpc/grpc-js";
/** grpc-js, loaded when the first client is made (berthd imports this module but makes no client). */
const grpcjs = (): typeof GrpcJs => createRequire(import.meta.url)("@grpc/grpc-js") as typeof GrpcJs;

import { ImageServiceClient, ImageServiceService, RuntimeServiceClient, RuntimeServiceService, type DeepPartial } from "../../api/gen/cri/v1/api.js";
import { messageTypesOf, methodName } from "./messages.js";

type UnaryOf<F> = F extends (req: infer Req, md: Metadata, opts: Partial<CallOptions>, cb: (err: ServiceError | null, res: infer Res) => void) => ClientUnaryCall
  ? (req?: DeepPartial<Req>, opts?: CallOpts) => Promise<Res>
  : never;
type StreamOf<F> = F extends (req: infer Req, md?: Metadata, opts?: Partial<CallOptions>) => ClientReadableStream<infer Res> ? (req?: DeepPartial<Req>, opts?: CallOpts) => ClientReadableStream<Res> : never;

export interface CallOpts {
  /** Deadline for the call, ms from now. */
  timeoutMs?: number;
}

type Methods<C, D> = { [K in keyof D]: K extends keyof C ? (D[K] extends { responseStream: true } ? StreamOf<C[K]> : UnaryOf<C[K]>) : never };

export type RuntimeApi = Methods<InstanceType<typeof RuntimeServiceClient>, typeof RuntimeServiceService>;
export type ImageApi = Methods<InstanceType<typeof ImageServiceClient>, typeof ImageServiceService>;

function promisify<D extends Record<string, { path: string; responseStream: boolean }>>(client: Record<string, unknown>, definition: D, defaultTimeoutMs: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, def] of Object.entries(definition)) {
    const types = messageTypesOf(methodName(def.path));
    const fn = (client[key] as (...args: unknown[]) => unknown).bind(client);
    const options = (opts?: CallOpts): Partial<CallOptions> => {
      const ms = opts?.timeoutMs ?? defaultTimeoutMs;
      return ms > 0 ? { deadline: Date.now() + ms } : {};
    };
    if (def.responseStream) {
      out[key] = (req?: unknown, opts?: CallOpts) => fn(types.request.fromPartial(req ?? {}), new (grpcjs().Metadata)(), options(opts));
    } else {
      out[key] = (req?: unknown, opts?: CallOpts) =>
        new Promise((resolve, reject) => {
          fn(types.request.fromPartial(req ?? {}), new (grpcjs().Metadata)(), options(opts), (err: ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res)));
        });
    }
  }
  return out;
}

/** A promise-based CRI v1 client over a unix socket (berthctl, tests, benchmarks). */
export class CriClient {
  readonly runtime: RuntimeApi;
  readonly image: ImageApi;
  readonly #raw: { close(): void }[];

  /**
   * `authority` is the HTTP/2 :authority sent with every call (grpc-js sends
   * "localhost" by default); tests set it to the socket path, as the kubelet does.
   */
  constructor(socketPath: string, opts: { defaultTimeoutMs?: number; authority?: string } = {}) {
    const target = socketPath.startsWith("unix:") ? socketPath : `unix://${socketPath}`;
    const channelOpts: Record<string, number | string> = { "grpc.max_receive_message_length": 64 * 1024 * 1024, "grpc.max_send_message_length": 64 * 1024 * 1024 };
    if (opts.authority !== undefined) channelOpts["grpc.default_authority"] = opts.authority;
    const rt = new RuntimeServiceClient(target, grpcjs().credentials.createInsecure(), channelOpts);
    const im = new ImageServiceClient(target, grpcjs().credentials.createInsecure(), channelOpts);
    const timeout = opts.defaultTimeoutMs ?? 0;
    this.runtime = promisify(rt as unknown as Record<string, unknown>, RuntimeServiceService, timeout) as unknown as RuntimeApi;
    this.image = promisify(im as unknown as Record<string, unknown>, ImageServiceService, timeout) as unknown as ImageApi;
    this.#raw = [rt, im];
  }

  close(): void {
    for (const c of this.#raw) c.close();
  }
}
