export { RuntimeCore, type RuntimeCoreOptions } from "./runtime-core.js";
export { SandboxManager, type SandboxSpec, type SandboxManagerOptions } from "./sandbox-manager.js";
export type { Sandbox, SandboxState, SandboxPidInit, RuntimeHandlerInfo, ContainerHooks } from "./sandbox.js";
export { validateSysctls, sysctlScope, normalizeSysctl } from "./sysctl.js";
export { stringifyWithBigint, parseWithBigint } from "./json.js";
export { ContainerManager, podCgroupParent, type ContainerManagerOptions, type ContainerFilterSpec } from "./container-manager.js";
export type { Container, ContainerState, ContainerImage, ContainerImages, ContainerCreateRequest, RootfsProvider } from "./container.js";
export { containerImagesOf, containerRootfsOf } from "./container-backend.js";
export { validateCgroupParent } from "./cgroup-parent.js";
