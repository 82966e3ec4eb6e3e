export {
  ensurePrivateDir,
  pinNamespaces,
  unpinNamespaces,
  isPinned,
  pinnedInode,
  startPidInit,
  stopPidInit,
  pidInitAlive,
  runInNamespaces,
  type PinnedKind,
  type PidInit,
} from "./pin.js";
