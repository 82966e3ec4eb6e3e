#!/bin/sh
# Writes berth's default CNI network config into DIR (default /etc/cni/net.d)
# when DIR has no network config yet: one conflist with a bridge (host-local
# IPAM), portmap (hostPort) and loopback (chained; berth also brings lo up).
# Used by `make run`. The subnet defaults to $BERTH_POD_SUBNET or 10.88.0.0/16.
#
# usage: hack/cni/default-conflist.sh [DIR] [--bridge NAME] [--subnet CIDR] [--data-dir DIR] [--force]
set -eu

dir=/etc/cni/net.d
bridge=berth0
subnet=${BERTH_POD_SUBNET:-10.88.0.0/16}
data_dir=
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bridge) bridge=$2; shift 2 ;;
    --subnet) subnet=$2; shift 2 ;;
    --data-dir) data_dir=$2; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
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
{
  "cniVersion": "1.0.0",
  "name": "berth",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        $data_line
        "ranges": [[{ "subnet": "$subnet" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "loopback" }
  ]
}
JSON
mv "$tmp" "$dir/10-berth.conflist"
echo "cni: wrote $dir/10-berth.conflist (bridge $bridge, $subnet)"
