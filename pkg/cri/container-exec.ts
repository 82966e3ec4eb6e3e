import type { ExecRequest, ExecResponse } from "../../api/gen/cri/v1/api.js";
import { FailedPreconditionError, UnavailableError } from "../errdefs/index.js";
import { validateExec } from "../streaming/index.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";

/** Exec: checks the request and the container, returns a single-use streaming URL. */
export function exec(deps: CriDeps): UnaryImpl<ExecRequest, ExecResponse> {
  return async (req) => {
    const r = { containerId: req.containerId, cmd: req.cmd, tty: req.tty, stdin: req.stdin, stdout: req.stdout, stderr: req.stderr };
    validateExec(r);
    const c = deps.runtime.containers.get(req.containerId);
    if (c.state !== "running") throw new FailedPreconditionError(`cannot exec in container "${c.id}": it is ${c.state}, not running`);
    if (!deps.streaming) throw new UnavailableError("Exec: the streaming server is disabled (streaming.address is empty)");
    return deps.streaming.getExec({ ...r, containerId: c.id });
  };
}
