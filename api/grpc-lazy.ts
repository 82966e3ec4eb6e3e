// grpc-js's makeGenericClientConstructor for the generated code (hack/generate.sh points
// its import here): the client classes are made at import time, but grpc-js (6 MB of heap
// and Node's http2) is loaded only when a client is constructed. berthd, which serves
// with its own HTTP/2 server and constructs no client, never loads it.

import { createRequire } from "node:module";
import type * as grpc from "@grpc/grpc-js";

export type { Client } from "@grpc/grpc-js";

const require = createRequire(import.meta.url);

export function makeGenericClientConstructor(methods: grpc.ServiceDefinition, serviceName: string, classOptions?: object): grpc.ServiceClientConstructor {
  let real: grpc.ServiceClientConstructor | undefined;
  // A constructor that returns the real client: `new LazyClient(...)` is a grpc-js client.
  function LazyClient(...args: ConstructorParameters<grpc.ServiceClientConstructor>): grpc.Client {
    real ??= (require("@grpc/grpc-js") as typeof grpc).makeGenericClientConstructor(methods, serviceName, classOptions as never);
    return new real(...args);
  }
  LazyClient.service = methods;
  LazyClient.serviceName = serviceName;
  return LazyClient as unknown as grpc.ServiceClientConstructor;
}
