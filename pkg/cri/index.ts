export { CriServer } from "./server.js";
export type { RuntimeImpls, ImageImpls } from "./impls.js";
export { CriClient, type RuntimeApi, type ImageApi, type CallOpts } from "./client.js";
export { messageTypesOf } from "./messages.js";
export type { CriDeps } from "./deps.js";
export { cgroupDriverOf } from "./runtime-config.js";
export { runtimeStatsSource } from "./stats-source.js";
