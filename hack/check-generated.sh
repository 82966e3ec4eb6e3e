#!/usr/bin/env bash
# Fail when the committed generated code does not match the .proto files.
#
#   hack/check-generated.sh [GEN_DIR]   # GEN_DIR defaults to api/gen
#
# Regenerates into a temporary directory with hack/generate.sh and compares it
# with GEN_DIR. Exit 0: up to date. Exit 1: stale (diff summary on stderr).
# Exit 2: generation itself failed (missing protoc, npm install not done...).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${1:-$root/api/gen}"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if ! "$root/hack/generate.sh" "$tmp/gen" 2>"$tmp/generate.log"; then
  cat "$tmp/generate.log" >&2
  echo "check-generated: could not regenerate, so cannot tell whether api/gen is stale" >&2
  exit 2
fi

if [[ -d "$target" ]] && diff -r -q "$target" "$tmp/gen" >/dev/null 2>&1; then
  echo "check-generated: ${target#"$root/"} is up to date"
  exit 0
fi

{
  echo "api/gen is stale: run make generate"
  echo "  compared: $target"
  if [[ ! -d "$target" ]]; then
    echo "  (directory does not exist)"
  else
    echo "  files that differ (left: committed, right: regenerated):"
    diff -r -q "$target" "$tmp/gen" | sed "s|$tmp/gen|<regenerated>|g; s|^|    |" || true
    echo "  first lines of the diff:"
    diff -r -u "$target" "$tmp/gen" | sed "s|$tmp/gen|<regenerated>|g" | head -n 40 | sed 's|^|    |' || true
  fi
  plugin_version="$(node -p 'require(process.argv[1]).version' \
    "$root/node_modules/ts-proto/package.json" 2>/dev/null || echo unknown)"
  echo "  tools: $(${PROTOC:-protoc} --version 2>/dev/null || echo 'protoc ?'), ts-proto $plugin_version"
} >&2
exit 1
