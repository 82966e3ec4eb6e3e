export { KeyedMutex } from "./keyed-mutex.js";
export { NameRegistrar } from "./name-registrar.js";
export { CleanupStack } from "./cleanup-stack.js";
export { SingleFlight } from "./single-flight.js";
export { Semaphore } from "./semaphore.js";
