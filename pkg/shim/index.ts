export { conmonCreate, conmonReopenLog, conmonResize, findConmon, type ConmonFound, type ConmonOptions, type ConmonCreateRequest, type ConmonCreated } from "./conmon.js";
export { runtimeStart, runtimeKill, runtimeState, runtimeDelete, runtimeUpdate, type OciRuntime, type RuntimeState } from "./oci-runtime.js";
export { startCreated, type StartPath } from "./exec-fifo.js";
export { readExitFile, type ExitInfo } from "./exit-file.js";
export { execSync, EXEC_OUTPUT_CAP, type ExecSyncResult } from "./exec-sync.js";
export { processAlive, processStartTime, processPss } from "./proc.js";
export { podMonitorCgroup, podMonitorPids, stopPodMonitors, podMonitorMemory } from "./pod-monitors.js";
export { conmonAttach, type ConmonAttachIO } from "./attach.js";
