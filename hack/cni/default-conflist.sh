#!/usr/bin/env bash
# Writes a default CNI network (bridge + host-local + portmap + loopback) into
# DIR (default /etc/cni/net.d) unless DIR already holds a network config.
set -euo pipefail
dir="${1:-/etc/cni/net.d}"
subnet="${BERTH_POD_SUBNET:-10.88.0.0/16}"
mkdir -p "$dir"
if compgen -G "$dir/*.conflist" >/dev/null || compgen -G "$dir/*.conf" >/dev/null || compgen -G "$dir/*.json" >/dev/null; then
  echo "cni: $dir already has a network config; leaving it alone"
  exit 0
fi
cat > "$dir/10-berth.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "berth",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "berth0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "routes": [{ "dst": "0.0.0.0/0" }],
        "ranges": [[{ "subnet": "$subnet" }]]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "loopback" }
  ]
}
JSON
echo "cni: wrote $dir/10-berth.conflist (bridge berth0, $subnet)"
