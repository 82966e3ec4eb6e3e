// The server's HTTP/2 layer (nghttp2) accepts an :authority or host value only if
// every octet may appear in an RFC 3986 authority: unreserved, sub-delims, ':',
// '@', '[', ']' and '%' (percent-encoding). gRPC clients that dial a unix socket
// often send the socket path instead, e.g. "/run/berth/berth.sock".

/** The authority put in place of one the server would refuse. */
export const FALLBACK_AUTHORITY = "localhost";

const VALID = ((): Uint8Array => {
  const t = new Uint8Array(256);
  for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@[]%") t[c.charCodeAt(0)] = 1;
  return t;
})();

/** True when every octet of the (latin1) value is one nghttp2 accepts in :authority / host. */
export function isValidAuthority(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    if (VALID[value.charCodeAt(i)] !== 1) return false;
  }
  return true;
}

/** The value as is when valid (including a %-encoded socket path), else FALLBACK_AUTHORITY. */
export function normaliseAuthority(value: string): string {
  return isValidAuthority(value) ? value : FALLBACK_AUTHORITY;
}
