#!/usr/bin/env bash
# Installs what berth needs on Debian 12 (as root), only what is missing:
# system packages for running containers and for the tests, then npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  runc crun conmon containernetworking-plugins iptables iproute2 util-linux
  protobuf-compiler docker-registry busybox-static skopeo umoci apache2-utils
  ca-certificates procps kmod jq
  prometheus  # promtool: make test-rules checks and unit-tests deploy/prometheus-rules.yaml
  gcc libc6-dev  # the NoNewPrivs test compiles a static setuid helper
  # the Go CRI interop client (test-e2e/interop), built offline in GOPATH mode from these
  golang-1.19-go golang-google-grpc-dev golang-google-protobuf-dev golang-goprotobuf-dev
  golang-github-docker-spdystream-dev golang-golang-x-net-dev  # x/net: http2 framer and hpack for the header capture
)
# Only for hack/bench (side-by-side with containerd); never needed to run berth.
[ "${BERTH_BENCH_DEPS:-0}" = 1 ] && PACKAGES+=(containerd)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing Debian packages (${missing[*]}); run as root" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's kubectl 1.20 (package kubernetes-client: the real client-go SPDY client) for the
# e2e test that drives the streaming server with it. Unpacked under .tmp/, not installed:
# it would collide with other kubectl packages that own /usr/bin/kubectl.
KUBECTL_DIR=.tmp/kubernetes-client
if [ ! -x "$KUBECTL_DIR/usr/bin/kubectl" ] && [ "$(id -u)" = 0 ]; then
  dl=$(mktemp -d)
  chmod 777 "$dl"
  if ! (cd "$dl" && apt-get download -qq kubernetes-client >/dev/null 2>&1); then
    apt-get update -qq
    (cd "$dl" && apt-get download -qq kubernetes-client >/dev/null)
  fi
  mkdir -p "$KUBECTL_DIR"
  dpkg-deb -x "$dl"/kubernetes-client_*.deb "$KUBECTL_DIR"
  rm -rf "$dl"
  echo "install-deps: kubectl $("$KUBECTL_DIR/usr/bin/kubectl" version --client --short 2>/dev/null | head -1) in $KUBECTL_DIR"
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "install-deps: Node.js 20 or newer is required (found $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# npm packages: reinstall when the lockfile changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "install-deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
