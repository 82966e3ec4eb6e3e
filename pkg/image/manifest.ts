import { arch } from "node:process";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from "../errdefs/index.js";

export const MediaType = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  dockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
} as const;

export const MANIFEST_ACCEPT = [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerList, MediaType.dockerManifest].join(", ");

const LAYER_TYPES = new Set([
  "application/vnd.oci.image.layer.v1.tar",
  "application/vnd.oci.image.layer.v1.tar+gzip",
  "application/vnd.oci.image.layer.v1.tar+zstd",
  "application/vnd.oci.image.layer.nondistributable.v1.tar",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
  "application/vnd.docker.image.rootfs.diff.tar",
  "application/vnd.docker.image.rootfs.diff.tar.gzip",
  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
]);

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface ManifestDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
}

export interface ImageManifest {
  kind: "manifest";
  mediaType: string;
  config: ManifestDescriptor;
  layers: ManifestDescriptor[];
}

export interface ImageIndex {
  kind: "index";
  mediaType: string;
  manifests: ManifestDescriptor[];
}

/** The parts of an OCI image config berth reads. */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  config?: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
    StopSignal?: string;
    ExposedPorts?: Record<string, unknown>;
    Volumes?: Record<string, unknown>;
  };
  rootfs?: { type?: string; diff_ids?: string[] };
  history?: unknown[];
  created?: string;
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;

function descriptor(d: unknown, where: string): ManifestDescriptor {
  const o = d as Record<string, unknown> | null;
  if (!o || typeof o !== "object") throw new InvalidArgumentError(`${where}: descriptor is not an object`);
  const digest = o["digest"];
  const size = o["size"];
  if (typeof digest !== "string" || !DIGEST.test(digest)) throw new FailedPreconditionError(`${where}: unsupported or malformed digest ${JSON.stringify(digest)}`);
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) throw new FailedPreconditionError(`${where}: malformed size ${JSON.stringify(size)}`);
  const out: ManifestDescriptor = { mediaType: typeof o["mediaType"] === "string" ? o["mediaType"] : "", digest, size };
  const p = o["platform"] as Record<string, unknown> | undefined;
  if (p && typeof p === "object" && typeof p["os"] === "string" && typeof p["architecture"] === "string") {
    out.platform = { os: p["os"], architecture: p["architecture"] };
    if (typeof p["variant"] === "string" && p["variant"]) out.platform.variant = p["variant"];
  }
  return out;
}

/** Parses a manifest or index body; `mediaType` is the Content-Type the registry sent (may be empty). */
export function parseManifest(body: Buffer, contentType: string, what: string): ImageManifest | ImageIndex {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
  } catch (err) {
    throw new FailedPreconditionError(`${what}: manifest is not valid JSON`, { cause: err });
  }
  const mediaType = (typeof json["mediaType"] === "string" && json["mediaType"]) || contentType;
  if (json["schemaVersion"] === 1 || mediaType === MediaType.dockerSchema1 || mediaType === MediaType.dockerSchema1Signed) {
    throw new FailedPreconditionError(`${what}: Docker schema 1 manifests are not supported (deprecated); push the image again with a current client`);
  }
  if (mediaType === MediaType.ociIndex || mediaType === MediaType.dockerList || (!mediaType && Array.isArray(json["manifests"]))) {
    const list = json["manifests"];
    if (!Array.isArray(list)) throw new FailedPreconditionError(`${what}: index has no manifests`);
    return { kind: "index", mediaType: mediaType || MediaType.ociIndex, manifests: list.map((d, i) => descriptor(d, `${what} manifests[${i}]`)) };
  }
  if (mediaType === MediaType.ociManifest || mediaType === MediaType.dockerManifest || (!mediaType && json["config"])) {
    const layers = json["layers"];
    if (!Array.isArray(layers)) throw new FailedPreconditionError(`${what}: manifest has no layers`);
    const parsed = layers.map((d, i) => descriptor(d, `${what} layers[${i}]`));
    for (const l of parsed) {
      if (!LAYER_TYPES.has(l.mediaType)) throw new FailedPreconditionError(`${what}: layer ${l.digest} has unsupported media type "${l.mediaType}"`);
    }
    return { kind: "manifest", mediaType: mediaType || MediaType.ociManifest, config: descriptor(json["config"], `${what} config`), layers: parsed };
  }
  throw new FailedPreconditionError(`${what}: unsupported manifest media type "${mediaType}"`);
}

/** The platform this node pulls for: config `image.platform` ("os/arch[/variant]") or the host's. */
export function nodePlatform(configured: string): Platform {
  if (configured) {
    const [os, architecture, variant] = configured.split("/");
    if (!os || !architecture) throw new InvalidArgumentError(`image.platform "${configured}" must be os/arch[/variant]`);
    return variant ? { os, architecture, variant } : { os, architecture };
  }
  const map: Record<string, Platform> = {
    x64: { os: "linux", architecture: "amd64" },
    arm64: { os: "linux", architecture: "arm64", variant: "v8" },
    arm: { os: "linux", architecture: "arm", variant: "v7" },
    ia32: { os: "linux", architecture: "386" },
    ppc64: { os: "linux", architecture: "ppc64le" },
    s390x: { os: "linux", architecture: "s390x" },
    riscv64: { os: "linux", architecture: "riscv64" },
  };
  return map[arch] ?? { os: "linux", architecture: arch };
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
}

function normVariant(p: Platform): string {
  if (p.architecture === "arm64" && (p.variant === undefined || p.variant === "v8")) return "v8";
  return p.variant ?? "";
}

/** Picks the index entry for the platform: exact variant first, then any compatible entry. */
export function selectPlatform(index: ImageIndex, want: Platform, what: string): ManifestDescriptor {
  const candidates = index.manifests.filter(
    (m) => m.platform && m.platform.os === want.os && m.platform.architecture === want.architecture && (m.mediaType === "" || m.mediaType === MediaType.ociManifest || m.mediaType === MediaType.dockerManifest),
  );
  const exact = candidates.find((m) => normVariant(m.platform as Platform) === normVariant(want));
  const pick = exact ?? candidates.find((m) => !m.platform?.variant || !want.variant);
  if (!pick) {
    const have = index.manifests.map((m) => (m.platform ? formatPlatform(m.platform) : "unknown")).join(", ");
    throw new NotFoundError(`${what}: no image for platform ${formatPlatform(want)} in the index (it has: ${have || "nothing"})`);
  }
  return pick;
}

/** Parses and checks an image config (diff ids must match the layers). */
export function parseConfig(body: Buffer, layers: number, what: string): ImageConfig {
  let cfg: ImageConfig;
  try {
    cfg = JSON.parse(body.toString("utf8")) as ImageConfig;
  } catch (err) {
    throw new FailedPreconditionError(`${what}: image config is not valid JSON`, { cause: err });
  }
  const diffIds = cfg.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || diffIds.length !== layers || !diffIds.every((d) => typeof d === "string" && DIGEST.test(d))) {
    throw new FailedPreconditionError(`${what}: image config lists ${Array.isArray(diffIds) ? diffIds.length : 0} diff_ids for ${layers} layers (or malformed ones)`);
  }
  return cfg;
}
