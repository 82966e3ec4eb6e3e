export type { Spec, SpecMount, SpecProcess, LinuxDevice, LinuxSeccomp, LinuxNamespace, LinuxResources } from "./spec-types.js";
export { imageRuntimeConfig, type ImageRuntimeConfig, type ImageConfigFile } from "./image-config.js";
export { resolveInRoot, readFileInRoot } from "./rootfs-path.js";
export { resolveUser, parsePasswd, parseGroup, type ResolvedUser, type UserRequest } from "./user.js";
export { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, applyCapabilityChanges, normalizeCapability } from "./capabilities.js";
export { defaultSeccompProfile } from "./seccomp-default.js";
export { hostDevices, devicesFor } from "./devices.js";
export {
  buildSpec,
  resourceLimits,
  processArgs,
  mergeEnv,
  DEFAULT_MASKED_PATHS,
  DEFAULT_READONLY_PATHS,
  type BuildSpecInput,
  type BuiltSpec,
  type ContainerSpecRequest,
  type SandboxSpecView,
  type HostFeatures,
  type SecurityProfileInput,
} from "./spec-builder.js";
export { detectHostFeatures } from "./host-features.js";
