#!/usr/bin/env bash
# Generate TypeScript (ts-proto, grpc-js flavour) for every .proto under api/
# (api/gen excluded) into api/gen, or into the directory given as $1.
#
#   hack/generate.sh            # rewrite api/gen (what `make generate` runs)
#   hack/generate.sh OUT_DIR    # write somewhere else (used by the staleness check)
#
# Needs: protoc on PATH (Debian protobuf-compiler) or $PROTOC, and `npm install`
# done (for node_modules/.bin/protoc-gen-ts_proto). Output depends only on the
# .proto files and the ts-proto version: no timestamps, no tool versions.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/api/gen}"
protoc="${PROTOC:-protoc}"
plugin="$root/node_modules/.bin/protoc-gen-ts_proto"

die() { echo "generate: $*" >&2; exit 2; }

command -v "$protoc" >/dev/null 2>&1 ||
  die "protoc not found (apt-get install protobuf-compiler, or set PROTOC=/path/to/protoc)"
[[ -x "$plugin" ]] || die "$plugin not found: run npm install"

# Keep in step with the types the rest of the tree expects (see api/README.md).
ts_proto_opts=(
  outputServices=grpc-js   # *Service definitions, *Server interfaces, *Client classes
  forceLong=bigint         # int64/uint64 are bigint end to end
  esModuleInterop=true
  env=node                 # bytes are Buffer
  importSuffix=.js         # ESM / NodeNext relative imports
  annotateFilesWithVersion=false # no protoc/ts-proto versions in the header
)
opt_string="$(IFS=,; echo "${ts_proto_opts[*]}")"

# Every proto under api/, relative to api/ (the include root), in a stable order.
mapfile -t protos < <(
  cd "$root/api" && find . -path ./gen -prune -o -type f -name '*.proto' -print |
    sed 's|^\./||' | LC_ALL=C sort
)
(( ${#protos[@]} > 0 )) || die "no .proto files under $root/api"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

(
  cd "$root/api"
  "$protoc" \
    --plugin=protoc-gen-ts_proto="$plugin" \
    -I . \
    --ts_proto_out="$tmp" \
    --ts_proto_opt="$opt_string" \
    "${protos[@]}"
) || die "protoc failed"

# Replace the output only once generation succeeded. The directory is emptied
# first, so refuse anything that is obviously not a generated-code directory.
mkdir -p "$out"
out="$(cd "$out" && pwd)"
case "$out" in
  / | "$root" | "$root/api" | "$HOME") die "refusing to empty $out" ;;
esac
# grpc-js is loaded lazily: the client constructor comes from api/grpc-lazy.ts, and
# Client is only a type (berthd constructs no client and never loads grpc-js).
for f in "$tmp"/cri/v1/api.ts; do
  [[ -f "$f" ]] || continue
  grep -q '^  makeGenericClientConstructor,$' "$f" || die "$f: the grpc-js import changed shape; update the rewrite in hack/generate.sh"
  # Every name left in the grpc-js import is a type: one `import type` (an `import {}` of
  # inline type specifiers would still load the module).
  perl -0pi -e 's/^import \{\n((?:  [^\n]*,\n)+)\} from "\@grpc\/grpc-js";\n/my $n = $1; $n =~ s{^  makeGenericClientConstructor,\n}{}m; $n =~ s{^  type }{  }mg; "import type {\n$n} from \"\@grpc\/grpc-js\";\nimport { makeGenericClientConstructor } from \"..\/..\/..\/grpc-lazy.js\";\n"/me' "$f"
done
find "$out" -mindepth 1 -delete
cp -R "$tmp/." "$out/"
echo "generate: ${#protos[@]} proto file(s) -> ${out#"$root/"}" >&2
