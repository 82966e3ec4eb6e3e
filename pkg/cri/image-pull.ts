import { PullImageResponse, type AuthConfig, type PullImageRequest } from "../../api/gen/cri/v1/api.js";
import { InvalidArgumentError } from "../errdefs/index.js";
import type { Credentials, ImageService } from "../image/index.js";
import type { UnaryImpl } from "./instrument.js";

/** Credentials a PullImageRequest carries: username/password, `auth` (base64 user:pass), identity or registry token. */
export function credentialsOf(auth: AuthConfig | undefined): Credentials | undefined {
  if (!auth) return undefined;
  const c: Credentials = {};
  if (auth.username || auth.password) {
    c.username = auth.username;
    c.password = auth.password;
  } else if (auth.auth) {
    const decoded = Buffer.from(auth.auth, "base64").toString("utf8");
    const i = decoded.indexOf(":");
    if (i < 0) throw new InvalidArgumentError("auth.auth must be base64 of \"username:password\"");
    c.username = decoded.slice(0, i);
    c.password = decoded.slice(i + 1);
  }
  if (auth.identityToken) c.identityToken = auth.identityToken;
  if (auth.registryToken) c.registryToken = auth.registryToken;
  return Object.keys(c).length > 0 ? c : undefined;
}

export function pullImage(images: ImageService): UnaryImpl<PullImageRequest, PullImageResponse> {
  return async (req, ctx) => {
    const ref = req.image?.image ?? "";
    if (!ref) throw new InvalidArgumentError("image.image is empty: name the image to pull");
    const creds = credentialsOf(req.auth);
    const rec = await images.pull(ref, { ...(creds ? { creds } : {}), signal: ctx.signal });
    return PullImageResponse.fromPartial({ imageRef: rec.id });
  };
}
