import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import type { CriClient } from "../../pkg/cri/index.js";

export const DEFAULT_SOCKET = "/run/berth/berth.sock";

/** What every command gets: its own arguments, global options and a lazily connected client. */
export interface CommandContext {
  args: string[];
  socket: string;
  timeoutMs: number;
  output: "table" | "json" | "yaml";
  client(): CriClient;
  out(text: string): void;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(ctx: CommandContext): Promise<number | void>;
}

export class UsageError extends Error {}

/** Turns a gRPC failure into a message an operator can act on. */
export function describeError(err: unknown, socket: string): string {
  const e = err as Partial<ServiceError>;
  if (typeof e.code === "number") {
    if (e.code === GrpcStatus.UNAVAILABLE && /ENOENT|ECONNREFUSED|No connection established|connect/i.test(e.details ?? e.message ?? "")) {
      return `cannot reach the runtime at ${socket}: is berthd running? (${e.details ?? e.message})`;
    }
    if (e.code === GrpcStatus.DEADLINE_EXCEEDED && /Waiting for LB pick|connect|No connection established/i.test(e.details ?? "")) {
      return `cannot reach the runtime at ${socket}: is berthd running? (${e.details})`;
    }
    const name = GrpcStatus[e.code] ?? String(e.code);
    return `${name}: ${e.details ?? e.message ?? "no details"}`;
  }
  return err instanceof Error ? err.message : String(err);
}
