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
export { SpdyPortForwardClient, spdyRemoteCommand, spdyUpgrade, StreamingHttpError, type RemoteCommandOptions } from "./client-spdy.js";
export { wsRemoteCommand, wsPortForward, type WsRemoteCommandOptions } from "./client-ws.js";
export { SizeQueue } from "./session.js";
export { runcExec, ExecStartError, type RuncExecOptions } from "./backends/runc-exec.js";
export { forwardToPort, type ForwardOptions } from "./backends/port-forward.js";
export { RuncStreamingBackend, type RuncBackendOptions } from "./backends/runc-backend.js";
