import { VersionResponse, type VersionRequest } from "../../api/gen/cri/v1/api.js";
import { CRI_VERSION, RUNTIME_API_VERSION, RUNTIME_NAME, runtimeVersion } from "../version/index.js";
import type { UnaryImpl } from "./instrument.js";

export function version(): UnaryImpl<VersionRequest, VersionResponse> {
  return async () =>
    VersionResponse.fromPartial({
      version: CRI_VERSION,
      runtimeName: RUNTIME_NAME,
      runtimeVersion: runtimeVersion(),
      runtimeApiVersion: RUNTIME_API_VERSION,
    });
}
