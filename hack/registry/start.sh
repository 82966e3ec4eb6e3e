#!/usr/bin/env bash
# Starts a local registry (Debian's docker-registry) for humans and pushes the
# standard test images into it.
#
#   hack/registry/start.sh [--dir DIR] [--addr 127.0.0.1:5000] [--auth USER:PASS] [--no-push] [--big-mb N]
#   hack/registry/start.sh stop [--dir DIR]
#
# DIR (default /var/lib/berth-registry) holds config.yml, data/, registry.log and registry.pid.
# Images need the compiled builder: run `npx tsc -p tsconfig.json` first.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dir=/var/lib/berth-registry
addr=127.0.0.1:5000
auth=""
push=1
big_args=()
cmd=start

while [ $# -gt 0 ]; do
  case "$1" in
    stop) cmd=stop ;;
    --dir) dir="$2"; shift ;;
    --addr) addr="$2"; shift ;;
    --auth) auth="$2"; shift ;;
    --no-push) push=0 ;;
    --big-mb) big_args=(--big-mb "$2"); shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "start.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

pidfile="$dir/registry.pid"

stop_registry() {
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")"
    for _ in $(seq 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
    echo "stopped registry (pid $(cat "$pidfile"))"
  fi
  rm -f "$pidfile"
}

if [ "$cmd" = stop ]; then stop_registry; exit 0; fi

command -v docker-registry >/dev/null || { echo "start.sh: docker-registry not installed (apt-get install docker-registry)" >&2; exit 1; }
mkdir -p "$dir/data"
stop_registry

{
  echo "version: 0.1"
  echo "log: { level: info, accesslog: { disabled: true } }"
  echo "storage:"
  echo "  filesystem: { rootdirectory: \"$dir/data\" }"
  echo "  delete: { enabled: true }"
  echo "http: { addr: \"$addr\", secret: berth-local-registry }"
  echo "health: { storagedriver: { enabled: false } }"
  if [ -n "$auth" ]; then
    htpasswd -Bbn "${auth%%:*}" "${auth#*:}" > "$dir/htpasswd"
    echo "auth: { htpasswd: { realm: berth-local, path: \"$dir/htpasswd\" } }"
  fi
} > "$dir/config.yml"

nohup docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
echo $! > "$pidfile"

for _ in $(seq 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/v2/" || true)
  if [ "$code" = 200 ] || [ "$code" = 401 ]; then break; fi
  if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "start.sh: registry exited; log:" >&2; cat "$dir/registry.log" >&2; exit 1
  fi
  sleep 0.1
done
echo "registry on http://$addr (pid $(cat "$pidfile"), data in $dir/data, log $dir/registry.log)"

if [ "$push" = 1 ]; then
  builder="$repo/dist/hack/images/build.js"
  [ -f "$builder" ] || { echo "start.sh: $builder missing: run 'npx tsc -p tsconfig.json' in $repo" >&2; exit 1; }
  cred_args=()
  if [ -n "$auth" ]; then cred_args=(--username "${auth%%:*}" --password "${auth#*:}"); fi
  node "$builder" --out "$dir/layouts" --push "$addr" "${cred_args[@]}" "${big_args[@]}"
fi
