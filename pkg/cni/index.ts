export { findNetworkConfig, type NetworkConfigList, type NetworkConfigResult } from "./config.js";
export { CniManager, resultIps, type CniOptions, type CniPortMapping, type CniBandwidth, type PodNetworkRequest, type PodNetworkStatus } from "./network.js";
export { findPlugin, invokePlugin, cniArgsString, CniPluginError, type CniCommand, type CniInvocation } from "./plugin.js";
export { parseBandwidth } from "./bandwidth.js";
export { renderCniTemplate, type CniTemplateValues } from "./template.js";
