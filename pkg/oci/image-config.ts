/** The parts of an OCI image configuration (application/vnd.oci.image.config.v1+json) a container uses. */
export interface ImageRuntimeConfig {
  User?: string;
  Env?: string[] | null;
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  StopSignal?: string;
  Labels?: Record<string, string> | null;
  Volumes?: Record<string, unknown> | null;
  ExposedPorts?: Record<string, unknown> | null;
}

export interface ImageConfigFile {
  architecture?: string;
  os?: string;
  config?: ImageRuntimeConfig;
}

/** Reads the runtime part of an image config given as a parsed object or a JSON string. */
export function imageRuntimeConfig(config: ImageConfigFile | string | undefined): ImageRuntimeConfig {
  if (config === undefined) return {};
  const parsed: ImageConfigFile = typeof config === "string" ? (JSON.parse(config) as ImageConfigFile) : config;
  return parsed.config ?? {};
}
