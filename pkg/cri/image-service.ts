import type { CriDeps } from "./deps.js";
import type { ImageImpls } from "./impls.js";

/** The ImageService methods berth implements; the rest answer UNIMPLEMENTED. */
export function imageHandlers(_deps: CriDeps): ImageImpls {
  return {};
}
