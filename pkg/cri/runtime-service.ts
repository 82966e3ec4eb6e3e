import type { CriDeps } from "./deps.js";
import type { RuntimeImpls } from "./impls.js";
import { version } from "./runtime-version.js";
import { status } from "./runtime-status.js";
import { runtimeConfig } from "./runtime-config.js";

/** The RuntimeService methods berth implements; the rest answer UNIMPLEMENTED. */
export function runtimeHandlers(deps: CriDeps): RuntimeImpls {
  return {
    version: version(),
    status: status(deps),
    runtimeConfig: runtimeConfig(deps),
  };
}
