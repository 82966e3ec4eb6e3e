// Builds the Go interop programs under test-e2e/interop offline, from Debian's
// Go packages (golang-1.19-go, golang-google-grpc-dev, golang-google-protobuf-dev
// ...): GOPATH mode over /usr/share/gocode, no module proxy. Binaries are cached
// in dist/.go-bin keyed by a hash of the sources and the toolchain, so a test
// rebuilds only after a .go file changed. Also writes the protobuf descriptor
// sets those programs load instead of generated Go code.

import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import { REPO_ROOT } from "./daemon.js";

const run = promisify(execFile);

/** Where Debian's library packages put Go sources (GOPATH). */
export const DEBIAN_GOPATH = "/usr/share/gocode";
const GO_CANDIDATES = ["/usr/lib/go-1.19/bin/go", "/usr/bin/go"];
const DEBIAN_PACKAGES = "golang-1.19-go golang-google-grpc-dev golang-google-protobuf-dev golang-golang-x-net-dev golang-github-docker-spdystream-dev";

/** Cache of built binaries and descriptor sets: $BERTH_GO_BIN_DIR or dist/.go-bin. */
export function goBinDir(): string {
  const env = process.env["BERTH_GO_BIN_DIR"];
  return env !== undefined && env !== "" ? env : join(REPO_ROOT, "dist", ".go-bin");
}

/** The go command: $BERTH_GO, else Debian's golang-1.19 path, else /usr/bin/go. */
export function findGo(): string {
  const env = process.env["BERTH_GO"];
  const candidates = env !== undefined && env !== "" ? [env] : GO_CANDIDATES;
  const go = candidates.find((p) => existsSync(p));
  if (go === undefined) {
    throw new Error(`go not found (looked for ${candidates.join(", ")}): install the Debian packages ${DEBIAN_PACKAGES} (hack/install-deps.sh does), or set BERTH_GO`);
  }
  if (!existsSync(join(DEBIAN_GOPATH, "src", "google.golang.org", "grpc"))) {
    throw new Error(`${DEBIAN_GOPATH}/src/google.golang.org/grpc is missing: install the Debian packages ${DEBIAN_PACKAGES} (hack/install-deps.sh does)`);
  }
  return go;
}

async function hashFiles(h: ReturnType<typeof createHash>, dir: string, suffix: string): Promise<void> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(suffix)).sort();
  if (files.length === 0) throw new Error(`${dir}: no ${suffix} files`);
  for (const f of files) h.update(f).update("\0").update(await readFile(join(dir, f))).update("\0");
}

/** Writes to a temp name next to `out` with `produce`, then renames: concurrent builders never see half a file. */
async function atomically(out: string, produce: (tmp: string) => Promise<void>): Promise<string> {
  if (existsSync(out)) return out;
  const tmp = `${out}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    await produce(tmp);
    await rename(tmp, out);
  } finally {
    await rm(tmp, { force: true });
  }
  return out;
}

function failure(what: string, err: unknown): Error {
  const e = err as { stderr?: string; stdout?: string; message?: string };
  return new Error(`${what} failed: ${e.message ?? String(err)}\n${e.stdout ?? ""}${e.stderr ?? ""}`, { cause: err });
}

/**
 * Builds the Go main package in `srcDir` (package main, standard library plus
 * Debian's /usr/share/gocode) and returns the binary's path. Cached by a hash of
 * the .go files and `go version`.
 */
export async function goBuild(srcDir: string): Promise<string> {
  const go = findGo();
  const env = {
    ...process.env,
    GO111MODULE: "off",
    GOPATH: DEBIAN_GOPATH,
    GOCACHE: join(goBinDir(), "gocache"),
    GOFLAGS: "",
    CGO_ENABLED: "0",
  };
  const { stdout: version } = await run(go, ["version"], { env });
  const h = createHash("sha256").update(version);
  await hashFiles(h, srcDir, ".go");
  const out = join(goBinDir(), `${basename(srcDir)}-${h.digest("hex").slice(0, 16)}`);
  await mkdir(goBinDir(), { recursive: true });
  return atomically(out, async (tmp) => {
    try {
      await run(go, ["build", "-o", tmp, "."], { cwd: srcDir, env, timeout: 600_000, maxBuffer: 16 << 20 });
    } catch (err) {
      throw failure(`go build in ${srcDir}`, err);
    }
  });
}

/**
 * A FileDescriptorSet (with imports) of `proto`, a path relative to `includeDir`,
 * written by protoc and cached by a hash of the .proto files of its directory.
 */
export async function descriptorSet(includeDir: string, proto: string): Promise<string> {
  const protoc = process.env["PROTOC"] ?? "protoc";
  const h = createHash("sha256").update(proto);
  await hashFiles(h, join(includeDir, proto, ".."), ".proto");
  const out = join(goBinDir(), `${basename(proto, ".proto")}-${h.digest("hex").slice(0, 16)}.pb`);
  await mkdir(goBinDir(), { recursive: true });
  return atomically(out, async (tmp) => {
    try {
      await run(protoc, ["-I", includeDir, "--include_imports", `--descriptor_set_out=${tmp}`, join(includeDir, proto)]);
    } catch (err) {
      throw failure(`protoc ${proto} (apt-get install protobuf-compiler, or set PROTOC)`, err);
    }
  });
}
