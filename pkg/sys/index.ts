export { run, CommandError, type RunOptions, type RunResult } from "./exec.js";
export { writeFileAtomic, fsyncDir } from "./fs.js";
export { InstanceLock } from "./instance-lock.js";
export { detectCgroups, type CgroupInfo } from "./cgroups.js";
export { oomScoreAdjFloor } from "./oom.js";
export { runCapture, type CaptureOptions, type CaptureResult } from "./spawn-capture.js";
export { cgroupDirs, joinCgroup, cgroupPids, removeCgroup } from "./cgroupfs.js";
export { readMountInfo, isMountPoint, mountsUnder, mountOf, mount, bindMount, makePrivate, unmountAll, type MountInfo } from "./mount.js";
export { spawnDetached, childPids, namespaceOf, processAlive } from "./spawn.js";
export {
  mknod,
  makedev,
  lsetxattr,
  lgetxattr,
  llistxattr,
  syncfs,
  mountSyscall,
  umount2,
  SyscallError,
  S_IFIFO,
  S_IFCHR,
  S_IFBLK,
  MS_RDONLY,
  MS_NOSUID,
  MS_NODEV,
  MS_NOEXEC,
  MS_REMOUNT,
  MS_BIND,
  MS_REC,
  MNT_DETACH,
} from "./fs-syscalls.js";
export { umountSyscall, MS_PRIVATE } from "./syscalls.js";
