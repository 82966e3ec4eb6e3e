import { InvalidArgumentError } from "../errdefs/index.js";

export type SysctlScope = "net" | "ipc";

const IPC_KEYS = new Set(["kernel.shm_rmid_forced", "kernel.shmmax", "kernel.shmall", "kernel.shmmni", "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem"]);

/** Canonical dotted form; "net/ipv4/ip_forward" and "net.ipv4.ip_forward" are the same key. */
export function normalizeSysctl(key: string): string {
  return key.includes("/") ? key.split("/").join(".") : key;
}

/** The namespace a sysctl belongs to, or undefined when it is not namespaced (affects the whole node). */
export function sysctlScope(key: string): SysctlScope | undefined {
  const k = normalizeSysctl(key);
  if (k.startsWith("net.")) return "net";
  if (IPC_KEYS.has(k) || k.startsWith("fs.mqueue.")) return "ipc";
  return undefined;
}

/**
 * Checks the pod's sysctls: each must be namespaced and its namespace must be
 * the pod's own (not the host's). Returns them keyed in dotted form.
 */
export function validateSysctls(sysctls: Record<string, string>, opts: { hostNetwork: boolean; hostIpc: boolean }): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [rawKey, value] of Object.entries(sysctls)) {
    const key = normalizeSysctl(rawKey);
    if (!/^[a-z0-9_]+(\.[A-Za-z0-9_:@+-]+)+$/.test(key)) throw new InvalidArgumentError(`linux.sysctls: "${rawKey}" is not a valid sysctl name`);
    if (/[\n\0]/.test(value)) throw new InvalidArgumentError(`linux.sysctls: value of "${rawKey}" contains a newline or NUL`);
    const scope = sysctlScope(key);
    if (!scope) throw new InvalidArgumentError(`linux.sysctls: "${rawKey}" is not a namespaced sysctl (it would change the whole node); only net.*, kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.* are allowed`);
    if (scope === "net" && opts.hostNetwork) throw new InvalidArgumentError(`linux.sysctls: "${rawKey}" cannot be set on a pod that uses the host network`);
    if (scope === "ipc" && opts.hostIpc) throw new InvalidArgumentError(`linux.sysctls: "${rawKey}" cannot be set on a pod that uses the host IPC namespace`);
    out[key] = value;
  }
  return out;
}
