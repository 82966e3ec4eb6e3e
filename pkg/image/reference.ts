import { InvalidArgumentError } from "../errdefs/index.js";

/** A normalised image reference: `domain/path[:tag][@digest]`. */
export interface Reference {
  /** "docker.io", "127.0.0.1:5000", "registry.k8s.io". */
  domain: string;
  /** "library/busybox". */
  path: string;
  /** Set when the reference names a tag (defaults to "latest" when neither tag nor digest is given). */
  tag?: string;
  /** "sha256:…" when the reference pins a digest. */
  digest?: string;
}

export const DEFAULT_DOMAIN = "docker.io";
const LEGACY_DEFAULT_DOMAIN = "index.docker.io";
const OFFICIAL_REPO_PREFIX = "library/";

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;
const DOMAIN_LABEL = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN = new RegExp(`^(?:${DOMAIN_LABEL}(?:\\.${DOMAIN_LABEL})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]{1,5})?$`);
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const MAX_NAME = 255;

/** A full image id / digest: "sha256:<64 hex>". */
export function isDigest(s: string): boolean {
  return DIGEST.test(s);
}

function invalid(ref: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid image reference "${ref}": ${why}`);
}

/**
 * Parses and normalises a reference the way docker/containerd do:
 * `busybox` → `docker.io/library/busybox:latest`.
 */
export function parseReference(input: string): Reference {
  const ref = input.trim();
  if (ref === "") throw invalid(input, "empty");
  if (ref !== input) throw invalid(input, "leading or trailing whitespace");
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) {
      if (/^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/.test(digest)) {
        throw invalid(input, `unsupported digest "${digest}" (only sha256 with 64 lowercase hex digits)`);
      }
      throw invalid(input, `malformed digest "${digest}"`);
    }
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(input, `malformed tag "${tag}"`);
  }
  if (rest === "") throw invalid(input, "missing repository name");
  const parts = rest.split("/");
  let domain = DEFAULT_DOMAIN;
  const first = parts[0] as string;
  if (parts.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost" || first !== first.toLowerCase())) {
    if (!DOMAIN.test(first)) throw invalid(input, `malformed registry host "${first}"`);
    domain = first;
    parts.shift();
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  for (const p of parts) {
    if (p !== p.toLowerCase()) throw invalid(input, "repository name must be lowercase");
    if (!COMPONENT.test(p)) throw invalid(input, `malformed path component "${p}"`);
  }
  let path = parts.join("/");
  if (domain === DEFAULT_DOMAIN && parts.length === 1) path = OFFICIAL_REPO_PREFIX + path;
  if (`${domain}/${path}`.length > MAX_NAME) throw invalid(input, `repository name longer than ${MAX_NAME} characters`);
  const out: Reference = { domain, path };
  if (tag !== undefined) out.tag = tag;
  else if (digest === undefined) out.tag = "latest";
  if (digest !== undefined) out.digest = digest;
  return out;
}

/** "docker.io/library/busybox". */
export function repoName(r: Reference): string {
  return `${r.domain}/${r.path}`;
}

/** The canonical string: "docker.io/library/busybox:latest", "host/x@sha256:…", "host/x:t@sha256:…". */
export function formatReference(r: Reference): string {
  return `${repoName(r)}${r.tag !== undefined ? `:${r.tag}` : ""}${r.digest !== undefined ? `@${r.digest}` : ""}`;
}

/** Normalises a reference string (throws InvalidArgumentError when malformed). */
export function normalizeReference(input: string): string {
  return formatReference(parseReference(input));
}
