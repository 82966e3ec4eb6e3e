export { CriServer, type RuntimeImpls, type ImageImpls } from "./server.js";
export { CriClient, type RuntimeApi, type ImageApi, type CallOpts } from "./client.js";
export { messageTypesOf } from "./messages.js";
export type { CriDeps } from "./deps.js";
export { cgroupDriverOf } from "./runtime-config.js";
