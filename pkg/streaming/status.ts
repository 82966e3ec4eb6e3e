/**
 * The metav1.Status documents written on the error stream (remote command v4+),
 * and their plain-text form for older protocol versions.
 */

export interface Status {
  metadata: Record<string, never>;
  status: "Success" | "Failure";
  message?: string;
  reason?: string;
  details?: { causes: { reason?: string; message: string }[] };
  code?: number;
}

export const NON_ZERO_EXIT_REASON = "NonZeroExitCode";
export const EXIT_CODE_CAUSE = "ExitCode";

export function successStatus(): Status {
  return { metadata: {}, status: "Success" };
}

export function exitCodeStatus(exitCode: number): Status {
  return {
    metadata: {},
    status: "Failure",
    message: `command terminated with non-zero exit code: exit status ${exitCode}`,
    reason: NON_ZERO_EXIT_REASON,
    details: { causes: [{ reason: EXIT_CODE_CAUSE, message: String(exitCode) }] },
  };
}

export function internalErrorStatus(message: string): Status {
  return {
    metadata: {},
    status: "Failure",
    message: `Internal error occurred: ${message}`,
    reason: "InternalError",
    details: { causes: [{ message }] },
    code: 500,
  };
}

/** The error stream bytes for a status: JSON for v4+, text (empty on success) before. */
export function encodeStatus(status: Status, jsonStatus: boolean): Buffer {
  if (jsonStatus) return Buffer.from(JSON.stringify(status) + "\n");
  return Buffer.from(status.status === "Success" ? "" : (status.message ?? "error"));
}

/**
 * Reads the error stream content the way client-go does: empty or Success → exit
 * 0; NonZeroExitCode → its exit code; anything else → an error with the message.
 */
export function decodeStatus(text: string, jsonStatus: boolean): { exitCode: number } | { error: string } {
  const t = text.trim();
  if (t === "") return { exitCode: 0 };
  if (!jsonStatus) return { error: t };
  let s: Status;
  try {
    s = JSON.parse(t) as Status;
  } catch {
    return { error: `error stream protocol error: ${t}` };
  }
  if (s.status === "Success") return { exitCode: 0 };
  if (s.reason === NON_ZERO_EXIT_REASON) {
    const cause = s.details?.causes.find((c) => c.reason === EXIT_CODE_CAUSE);
    const code = cause ? Number.parseInt(cause.message, 10) : NaN;
    if (Number.isInteger(code) && code >= 0 && code <= 255) return { exitCode: code };
  }
  return { error: s.message ?? t };
}
