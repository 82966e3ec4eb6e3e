import { accessSync, constants, statSync } from "node:fs";
import { join } from "node:path";
import { FailedPreconditionError } from "../errdefs/index.js";
import { run, CommandError } from "../sys/index.js";

export type CniCommand = "ADD" | "DEL" | "CHECK" | "VERSION";

/** The environment of one plugin call (CNI spec, "Parameters"). */
export interface CniInvocation {
  command: CniCommand;
  containerId: string;
  /** Path of the network namespace; empty when it no longer exists (DEL). */
  netns: string;
  ifName: string;
  /** CNI_ARGS as key/value pairs, joined with ';'. */
  args: Array<[string, string]>;
  binDirs: readonly string[];
  timeoutMs: number;
  signal?: AbortSignal;
}

/** An error a plugin reported (its JSON error on stdout) or a failure to run it. */
export class CniPluginError extends Error {
  constructor(
    readonly plugin: string,
    readonly command: CniCommand,
    readonly code: number | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "CniPluginError";
  }
}

/** The plugin binary for a type, searched in binDirs in order. */
export function findPlugin(type: string, binDirs: readonly string[]): string {
  if (!/^[A-Za-z0-9._-]+$/.test(type)) throw new FailedPreconditionError(`CNI plugin type "${type}" is not a valid binary name`);
  for (const dir of binDirs) {
    const file = join(dir, type);
    try {
      if (!statSync(file).isFile()) continue;
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      continue;
    }
  }
  throw new FailedPreconditionError(`CNI plugin "${type}" not found in ${binDirs.join(":") || "(no bin_dirs)"}`);
}

export function cniArgsString(args: Array<[string, string]>): string {
  return args.map(([k, v]) => `${k}=${v}`).join(";");
}

/**
 * Runs one CNI plugin with its network config on stdin and returns its parsed
 * stdout (the result for ADD, usually nothing for DEL/CHECK).
 */
export async function invokePlugin(type: string, netconf: Record<string, unknown>, inv: CniInvocation): Promise<Record<string, unknown> | undefined> {
  const file = findPlugin(type, inv.binDirs);
  const env: Record<string, string> = {
    CNI_COMMAND: inv.command,
    CNI_CONTAINERID: inv.containerId,
    CNI_NETNS: inv.netns,
    CNI_IFNAME: inv.ifName,
    CNI_ARGS: cniArgsString(inv.args),
    CNI_PATH: inv.binDirs.join(":"),
  };
  let res;
  try {
    res = await run(file, [], {
      env,
      input: JSON.stringify(netconf),
      timeoutMs: inv.timeoutMs,
      allowFailure: true,
      ...(inv.signal ? { signal: inv.signal } : {}),
    });
  } catch (err) {
    const why = err instanceof CommandError ? err.message : String(err);
    throw new CniPluginError(type, inv.command, undefined, `CNI plugin ${type} ${inv.command} for "${inv.containerId}" failed: ${why}`, { cause: err });
  }
  const out = res.stdout.trim();
  if (res.exitCode !== 0) {
    let detail = res.stderr.trim() || out || `exit code ${res.exitCode}`;
    let code: number | undefined;
    try {
      const e = JSON.parse(out) as { code?: number; msg?: string; details?: string };
      code = e.code;
      detail = [e.msg, e.details].filter(Boolean).join(": ") || detail;
    } catch {
      // not a JSON error: keep stderr/stdout
    }
    throw new CniPluginError(type, inv.command, code, `CNI plugin ${type} ${inv.command} for "${inv.containerId}" failed: ${detail}`);
  }
  if (!out) return undefined;
  try {
    return JSON.parse(out) as Record<string, unknown>;
  } catch (err) {
    throw new CniPluginError(type, inv.command, undefined, `CNI plugin ${type} ${inv.command} printed invalid JSON: ${out.slice(0, 200)}`, { cause: err });
  }
}
