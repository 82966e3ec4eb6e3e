#!/usr/bin/env bash
# Proves hack/check-generated.sh tells a fresh api/gen from a stale one.
# Works on copies in a temporary directory; the tree is never modified.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
check="$root/hack/check-generated.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
ok() { echo "ok   - $1"; passed=$((passed + 1)); }
not_ok() { echo "FAIL - $1"; sed 's/^/       /' "$tmp/out"; failed=$((failed + 1)); }

# run_check DIR: runs the check on DIR, output to $tmp/out, echoes the exit code.
run_check() {
  local rc=0
  "$check" "$1" >"$tmp/out" 2>&1 || rc=$?
  echo "$rc"
}

fresh_copy() {
  rm -rf "$tmp/$1"
  cp -R "$root/api/gen" "$tmp/$1"
  echo "$tmp/$1"
}

first_ts_file() {
  find "$1" -type f -name '*.ts' | LC_ALL=C sort | head -n 1
}

# 1. An untouched copy of the committed output passes.
dir="$(fresh_copy clean)"
rc="$(run_check "$dir")"
if [[ "$rc" == 0 ]]; then ok "unmodified copy of api/gen passes"
else not_ok "unmodified copy of api/gen should pass (exit $rc; is api/gen itself stale?)"; fi

# 2. One changed line is caught, with the promised message.
dir="$(fresh_copy edited)"
file="$(first_ts_file "$dir")"
sed -i '0,/protobufPackage = "/s//protobufPackage = "edited./' "$file"
if cmp -s "$file" "$(first_ts_file "$root/api/gen")"; then
  not_ok "test setup: the edit did not change $file"
else
  rc="$(run_check "$dir")"
  if [[ "$rc" == 1 ]] && grep -q "api/gen is stale: run make generate" "$tmp/out"; then
    ok "one modified line is reported as stale"
  else not_ok "one modified line should exit 1 with the stale message (exit $rc)"; fi
fi

# 3. A deleted generated file is caught.
dir="$(fresh_copy deleted)"
rm -f "$(first_ts_file "$dir")"
rc="$(run_check "$dir")"
if [[ "$rc" == 1 ]]; then ok "a missing generated file is reported as stale"
else not_ok "a missing generated file should exit 1 (exit $rc)"; fi

# 4. A leftover file (e.g. from a removed .proto) is caught.
dir="$(fresh_copy extra)"
echo 'export {};' >"$dir/leftover.ts"
rc="$(run_check "$dir")"
if [[ "$rc" == 1 ]]; then ok "an extra file in api/gen is reported as stale"
else not_ok "an extra file should exit 1 (exit $rc)"; fi

echo "$passed passed, $failed failed"
[[ "$failed" == 0 ]]
