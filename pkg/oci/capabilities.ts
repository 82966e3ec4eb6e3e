import { InvalidArgumentError } from "../errdefs/index.js";

/** Every capability runc 1.1 knows (Linux 5.9+). */
export const ALL_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
  "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
  "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
  "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
  "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
];

/** The capabilities a container gets by default (containerd's set). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
  "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
];

/** "net_admin", "NET_ADMIN" and "CAP_NET_ADMIN" all name CAP_NET_ADMIN; "ALL" stays "ALL". */
export function normalizeCapability(name: string, field: string): string {
  const up = name.trim().toUpperCase();
  if (up === "ALL") return "ALL";
  const full = up.startsWith("CAP_") ? up : `CAP_${up}`;
  if (!ALL_CAPABILITIES.includes(full)) throw new InvalidArgumentError(`${field}: unknown capability "${name}"`);
  return full;
}

/** The capability set after CRI add/drop: ALL first (add ALL, then drop ALL), then single adds, then single drops. */
export function applyCapabilityChanges(base: readonly string[], add: readonly string[], drop: readonly string[], all: readonly string[] = ALL_CAPABILITIES): string[] {
  const adds = add.map((c) => normalizeCapability(c, "capabilities.add_capabilities"));
  const drops = drop.map((c) => normalizeCapability(c, "capabilities.drop_capabilities"));
  let caps = new Set(base);
  if (adds.includes("ALL")) caps = new Set(all);
  if (drops.includes("ALL")) caps = new Set();
  for (const c of adds) if (c !== "ALL") caps.add(c);
  for (const c of drops) if (c !== "ALL") caps.delete(c);
  return ALL_CAPABILITIES.filter((c) => caps.has(c));
}

/** The capabilities in a /proc/PID/status CapBnd-style hex mask. */
export function capabilitiesOfMask(hex: string): string[] {
  const mask = BigInt(`0x${hex}`);
  return ALL_CAPABILITIES.filter((_c, i) => (mask >> BigInt(CAP_NUMBERS[i] ?? 0)) & 1n);
}

/** Kernel numbers of ALL_CAPABILITIES, in the same order. */
const CAP_NUMBERS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40];
