/**
 * An AbortController for one streaming session: aborted when the client's
 * connection (SPDY session or WebSocket) closes, or when the server stops.
 */
export function abortOnClose(conn: { once(event: "close", fn: () => void): unknown }, serverSignal: AbortSignal): AbortController {
  const ac = new AbortController();
  const abort = (): void => ac.abort(new Error("streaming client went away"));
  conn.once("close", () => {
    serverSignal.removeEventListener("abort", abort);
    abort();
  });
  if (serverSignal.aborted) abort();
  else serverSignal.addEventListener("abort", abort, { once: true });
  return ac;
}
