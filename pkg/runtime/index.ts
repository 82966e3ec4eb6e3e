export { RuntimeCore, type RuntimeCoreOptions } from "./runtime-core.js";
export { SandboxManager, type SandboxSpec, type SandboxManagerOptions } from "./sandbox-manager.js";
export type { Sandbox, SandboxState, SandboxPidInit, RuntimeHandlerInfo, ContainerHooks } from "./sandbox.js";
export { validateSysctls, sysctlScope, normalizeSysctl } from "./sysctl.js";
export { stringifyWithBigint, parseWithBigint } from "./json.js";
export { validateCgroupParent } from "./cgroup-parent.js";
