// Builds the Go streaming client in test-e2e/interop/stream with Debian's Go 1.19 in
// GOPATH mode (moby/spdystream from golang-github-docker-spdystream-dev). Self-contained on
// purpose; a shared Go build helper can replace it later.

import { execFile } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const here = fileURLToPath(new URL(".", import.meta.url));
/** The Go source, found from dist/test-e2e/interop (compiled) or test-e2e/interop (source). */
const SOURCE_DIR = [resolve(here, "..", "..", "..", "test-e2e", "interop", "stream"), resolve(here, "stream")].find((d) =>
  existsSync(join(d, "main.go")),
);

export const GO = process.env["BERTH_GO"] ?? "/usr/lib/go-1.19/bin/go";
export const GOPATH = process.env["BERTH_GOPATH"] ?? "/usr/share/gocode";

/** Whether the Go toolchain and the spdystream package are installed. */
export function goClientAvailable(): boolean {
  return existsSync(GO) && existsSync(join(GOPATH, "src", "github.com", "moby", "spdystream", "connection.go"));
}

/** Compiles the client into a fresh temp dir and returns the binary's path. */
export async function buildStreamClient(): Promise<string> {
  if (!SOURCE_DIR) throw new Error(`the Go stream client's source is missing (looked beside ${here})`);
  const out = mkdtempSync(join(tmpdir(), "berth-stream-client-"));
  const bin = join(out, "stream");
  try {
    await run(GO, ["build", "-o", bin, "."], {
      cwd: SOURCE_DIR,
      env: { ...process.env, GO111MODULE: "off", GOPATH, GOCACHE: join(out, "cache"), GOFLAGS: "" },
      timeout: 300_000,
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`building the Go stream client failed: ${e.stderr ?? e.message}`, { cause: err });
  }
  return bin;
}
