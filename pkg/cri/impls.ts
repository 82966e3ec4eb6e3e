import type { UntypedServiceImplementation, handleServerStreamingCall, handleUnaryCall } from "@grpc/grpc-js";
import type { DeepPartial, ImageServiceServer, RuntimeServiceServer } from "../../api/gen/cri/v1/api.js";
import type { StreamImpl, UnaryImpl } from "./instrument.js";
import type { EncodedMessage } from "./encoded.js";

type ImplOf<H> = H extends handleUnaryCall<infer Req, infer Res>
  ? UnaryImpl<Req, DeepPartial<Res> | EncodedMessage>
  : H extends handleServerStreamingCall<infer Req, infer Res>
    ? StreamImpl<Req, DeepPartial<Res>>
    : never;

/** Implementations keyed like the generated server interface; missing ones answer UNIMPLEMENTED. */
export type Impls<S> = { [K in keyof S as K extends string ? K : never]?: ImplOf<S[K]> };
export type RuntimeImpls = Impls<Omit<RuntimeServiceServer, keyof UntypedServiceImplementation>>;
export type ImageImpls = Impls<Omit<ImageServiceServer, keyof UntypedServiceImplementation>>;

