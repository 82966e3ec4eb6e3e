export { run, CommandError, type RunOptions, type RunResult } from "./exec.js";
export { writeFileAtomic, fsyncDir } from "./fs.js";
export { InstanceLock } from "./instance-lock.js";
export { detectCgroups, type CgroupInfo } from "./cgroups.js";
export { oomScoreAdjFloor } from "./oom.js";
export { readMountInfo, isMountPoint, mountsUnder, mountOf, mount, bindMount, makePrivate, unmountAll, type MountInfo } from "./mount.js";
export { spawnDetached, childPids, namespaceOf, processAlive } from "./spawn.js";
export { mountSyscall, umountSyscall, SyscallError, MS_BIND, MS_REC, MS_PRIVATE, MS_NOSUID, MS_NODEV, MS_NOEXEC, MNT_DETACH } from "./syscalls.js";
