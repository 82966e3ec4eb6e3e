export { findNetworkConfig, type NetworkConfigList, type NetworkConfigResult } from "./config.js";
