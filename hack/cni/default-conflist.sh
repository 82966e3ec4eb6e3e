<<<<<<< HEAD
#!/bin/sh
# Writes berth's default CNI network config into DIR (default /etc/cni/net.d)
# when DIR has no network config yet: a bridge with host-local IPAM and portmap
# (hostPort) in one conflist, plus a loopback config for runtimes that want one.
# berth brings each pod's loopback up itself and uses the first conflist.
#
# usage: hack/cni/default-conflist.sh [DIR] [--bridge NAME] [--subnet CIDR] [--data-dir DIR] [--force]
set -eu

dir=/etc/cni/net.d
bridge=berth0
subnet=10.88.0.0/16
data_dir=
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bridge) bridge=$2; shift 2 ;;
    --subnet) subnet=$2; shift 2 ;;
    --data-dir) data_dir=$2; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) dir=$1; shift ;;
  esac
done

mkdir -p "$dir"
if [ "$force" = 0 ] && ls "$dir" 2>/dev/null | grep -Eq '\.(conflist|conf|json)$'; then
  echo "CNI config already present in $dir; leaving it alone"
  exit 0
fi

data_line=
if [ -n "$data_dir" ]; then data_line="\"dataDir\": \"$data_dir\","; fi

tmp=$(mktemp "$dir/.berth.XXXXXX")
cat > "$tmp" <<JSON
=======
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
>>>>>>> main
{
  "cniVersion": "1.0.0",
  "name": "berth",
  "plugins": [
    {
      "type": "bridge",
<<<<<<< HEAD
      "bridge": "$bridge",
=======
      "bridge": "berth0",
>>>>>>> main
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
<<<<<<< HEAD
        $data_line
        "ranges": [[{ "subnet": "$subnet" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
JSON
mv "$tmp" "$dir/10-berth.conflist"
cat > "$dir/99-loopback.conf" <<JSON
{ "cniVersion": "1.0.0", "name": "lo", "type": "loopback" }
JSON
echo "wrote $dir/10-berth.conflist (bridge $bridge, subnet $subnet) and $dir/99-loopback.conf"
=======
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
>>>>>>> main
