export {
  ensurePrivateDir,
  pinNamespaces,
  unpinNamespaces,
  isPinned,
  pinnedInode,
  startPidInit,
  stopPidInit,
  pidInitAlive,
  pidInitRunning,
  runInNamespaces,
  type PinnedKind,
  type PidInit,
} from "./pin.js";
