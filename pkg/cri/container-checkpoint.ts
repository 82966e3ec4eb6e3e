import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import type { CheckpointContainerRequest, CheckpointContainerResponse } from "../../api/gen/cri/v1/api.js";
import { InvalidArgumentError, UnimplementedError } from "../errdefs/index.js";
import { run } from "../sys/index.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";

/** The first executable `name` on PATH (plus the sbin dirs a daemon's PATH may lack), undefined if none. */
function onPath(name: string): string | undefined {
  const dirs = [...(process.env["PATH"] ?? "").split(":"), "/usr/local/sbin", "/usr/sbin", "/sbin"].filter((d) => d.startsWith("/"));
  for (const dir of dirs) {
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

let criuCheck: Promise<string | undefined> | undefined;

/** Runs `criu check` once per daemon: undefined when CRIU works here, else its complaint. */
function checkCriu(criu: string): Promise<string | undefined> {
  criuCheck ??= run(criu, ["check"], { timeoutMs: 30_000, allowFailure: true }).then(
    (r) => (r.exitCode === 0 ? undefined : (r.stderr.trim().split("\n")[0] || `exit code ${r.exitCode}`)),
    (err: unknown) => (err as Error).message,
  );
  return criuCheck;
}

/**
 * CheckpointContainer needs CRIU (the OCI runtime's `checkpoint` drives it).
 * berth does not checkpoint yet: UNIMPLEMENTED, saying whether CRIU is there.
 */
export function checkpointContainer(deps: CriDeps): UnaryImpl<CheckpointContainerRequest, CheckpointContainerResponse> {
  return async (req) => {
    if (!req.containerId) throw new InvalidArgumentError("CheckpointContainer: container_id is required");
    const criu = onPath("criu");
    if (!criu) throw new UnimplementedError("CheckpointContainer: CRIU is not available on this node (no criu binary found), so containers cannot be checkpointed");
    const broken = await checkCriu(criu);
    if (broken !== undefined) {
      throw new UnimplementedError(`CheckpointContainer: CRIU is installed (${criu}) but does not work on this node ("criu check": ${broken}), so containers cannot be checkpointed`);
    }
    // Resolve the container so a wrong id still says NotFound.
    const c = deps.runtime.containers.get(req.containerId);
    throw new UnimplementedError(`CheckpointContainer: checkpointing container "${c.id}" is not supported by berth yet (CRIU is installed at ${criu})`);
  };
}
