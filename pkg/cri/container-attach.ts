import type { AttachRequest, AttachResponse } from "../../api/gen/cri/v1/api.js";
import { FailedPreconditionError, InvalidArgumentError, UnavailableError } from "../errdefs/index.js";
import { validateAttach } from "../streaming/index.js";
import type { CriDeps } from "./deps.js";
import type { UnaryImpl } from "./instrument.js";

/** Attach: the request's tty must match the container's; returns a single-use streaming URL. */
export function attach(deps: CriDeps): UnaryImpl<AttachRequest, AttachResponse> {
  return async (req) => {
    const r = { containerId: req.containerId, tty: req.tty, stdin: req.stdin, stdout: req.stdout, stderr: req.stderr };
    validateAttach(r);
    const c = deps.runtime.containers.get(req.containerId);
    if (c.state !== "running") throw new FailedPreconditionError(`cannot attach to container "${c.id}": it is ${c.state}, not running`);
    if (c.tty !== req.tty) {
      throw new InvalidArgumentError(`cannot attach to container "${c.id}": tty is ${req.tty} but the container was created with tty ${c.tty}`);
    }
    const withStdin = c.config["stdin"] === true;
    if (req.stdin && !withStdin) throw new InvalidArgumentError(`cannot attach stdin to container "${c.id}": it was created without stdin`);
    if (!deps.streaming) throw new UnavailableError("Attach: the streaming server is disabled (streaming.address is empty)");
    return deps.streaming.getAttach({ ...r, containerId: c.id, stdinOnce: c.config["stdinOnce"] === true });
  };
}
