import { ContainerConfig, Signal, signalToJSON, type CreateContainerRequest, type CreateContainerResponse } from "../../api/gen/cri/v1/api.js";
import { posix } from "node:path";
import { InvalidArgumentError } from "../errdefs/index.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";

/**
 * config.log_path is relative to the pod's log_directory and must stay inside it: no NUL byte,
 * no ".." that climbs out, not the directory itself. Empty means no log file.
 */
export function validateLogPath(logPath: string): void {
  if (logPath === "") return;
  if (logPath.includes("\0")) throw new InvalidArgumentError("CreateContainer: config.log_path contains a NUL byte");
  const rel = posix.normalize(logPath.replace(/^\/+/, ""));
  if (rel === ".." || rel.startsWith("../")) throw new InvalidArgumentError(`CreateContainer: config.log_path ${JSON.stringify(logPath.slice(0, 256))} leaves the pod's log directory`);
  if (rel === "." || rel === "./" || logPath.endsWith("/")) throw new InvalidArgumentError(`CreateContainer: config.log_path ${JSON.stringify(logPath.slice(0, 256))} names a directory, not a log file`);
}

export function createContainer(deps: CriDeps): UnaryImpl<CreateContainerRequest, CreateContainerResponse> {
  return async (req) => {
    if (!req.podSandboxId) throw new InvalidArgumentError("CreateContainer: pod_sandbox_id is required");
    const config = req.config;
    if (!config) throw new InvalidArgumentError("CreateContainer: config is required");
    if (!config.metadata?.name) throw new InvalidArgumentError("CreateContainer: config.metadata.name is required");
    if (!config.image?.image) throw new InvalidArgumentError("CreateContainer: config.image.image is required");
    validateLogPath(config.logPath);
    if (config.stopSignal === Signal.UNRECOGNIZED) throw new InvalidArgumentError("CreateContainer: config.stop_signal is not a known signal");
    const c = await deps.runtime.containers.create(req.podSandboxId, {
      name: config.metadata.name,
      attempt: config.metadata.attempt,
      image: config.image.image,
      labels: { ...config.labels },
      annotations: { ...config.annotations },
      logPath: config.logPath,
      tty: config.tty,
      stdin: config.stdin,
      stdinOnce: config.stdinOnce,
      stopSignal: config.stopSignal === Signal.RUNTIME_DEFAULT ? undefined : signalToJSON(config.stopSignal),
      spec: config,
      config: ContainerConfig.toJSON(config) as Record<string, unknown>,
    });
    return { containerId: c.id };
  };
}
