/**
 * pkg/streaming: the CRI streaming server (exec, attach, port forward over
 * SPDY/3.1 and WebSocket), the backend contract the runtime implements, and
 * clients for berthctl and tests.
 */
export { StreamingServer, type StreamingServerOptions, type StreamingConfig } from "./server.js";
export type {
  StreamingBackend,
  StreamIO,
  AttachIO,
  TerminalSize,
  ExecRequest,
  AttachRequest,
  PortForwardRequest,
} from "./types.js";
export { validateExec, validateAttach, validatePortForward } from "./validate.js";
export { successStatus, exitCodeStatus, decodeStatus, type Status } from "./status.js";
