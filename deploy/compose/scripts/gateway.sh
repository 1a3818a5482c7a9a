#!/bin/bash
# Gateway container entry point: on first start adds the console user 'demo' (all roles, random
# password) and an API token for scripts, both kept in the gateway's data volume, then serves.
set -euo pipefail
config=$1
state=/var/lib/tracenet
if [ ! -e "$state/api-token" ]; then
  umask 077
  head -c 18 /dev/urandom | base64 | tr -d '/+=\n' > "$state/demo-password"
  tracenet-gateway user add --config "$config" --username demo --role officer \
    --role tracing_officer --role analyst --role administrator --password-file "$state/demo-password" >/dev/null
  tracenet-gateway token add --config "$config" --name compose-tests --role officer \
    --role tracing_officer --role analyst --role administrator > "$state/api-token.new"
  mv "$state/api-token.new" "$state/api-token"
  echo "gateway: console user 'demo' created (password in $state/demo-password)"
fi
exec tracenet-gateway run --config "$config"
