#!/usr/bin/env bash
# Brings the compose federation up from nothing and prints the console addresses:
#   deploy/compose/up.sh             (project "tracenet"; COMPOSE_PROJECT_NAME to change)
# Builds the image first when it is missing (deploy/image/build.sh). First start: development
# PKI and configurations (setup), nodes, directory founding and sample data (admin: found.sh),
# gateways. Later starts reuse the volumes. Stop with `docker-compose -p tracenet down`
# (add -v to delete the volumes: certificates and data).
set -euo pipefail
cd "$(dirname "$0")"
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-tracenet}"
export TRACENET_IMAGE="${TRACENET_IMAGE:-tracenet:dev}"
. ./federation.env
if docker compose version >/dev/null 2>&1; then dc() { docker compose "$@"; }
else dc() { docker-compose "$@"; }; fi

if ! docker image inspect "$TRACENET_IMAGE" >/dev/null 2>&1; then
  echo "== image $TRACENET_IMAGE missing: building it"
  bash ../image/build.sh
fi

echo "== [$COMPOSE_PROJECT_NAME] certificates and configuration (one-shot setup container)"
dc run --rm setup
echo "== [$COMPOSE_PROJECT_NAME] starting the voters, the national nodes and the admin container"
dc up -d --no-recreate admin che-sec bel-hub aut-hub fra-pol deu-cus ita-pol
echo "== [$COMPOSE_PROJECT_NAME] founding the directory, importing sample data"
timeout 300 docker exec "$(dc ps -q admin)" bash /deploy/scripts/found.sh
echo "== [$COMPOSE_PROJECT_NAME] starting the gateways"
dc up -d --no-recreate fra-gw deu-gw ita-gw

echo "== waiting for the gateways to be healthy"
end=$((SECONDS + 120))
for g in fra-gw deu-gw ita-gw; do
  id=$(dc ps -q "$g")
  until [ "$(docker inspect -f '{{.State.Health.Status}}' "$id")" = healthy ]; do
    if [ "$SECONDS" -ge "$end" ]; then echo "error: $g not healthy after 120 s"; docker logs --tail 20 "$id"; exit 1; fi
    sleep 1
  done
done

echo
echo "Web consoles (English/French; JSON API under /api/v1; development certificate, the browser warns):"
echo "$MEMBERS" | while read -r id _role _ip _region gw port; do
  [ -n "${gw:-}" ] || continue
  svc=$(echo "${id%%-*}" | tr 'A-Z' 'a-z')-gw
  pw=$(docker exec "$(dc ps -q "$svc")" cat /var/lib/tracenet/demo-password)
  printf '  %s  https://127.0.0.1:%s  (on the federation network: https://%s:8443)  login: demo / %s\n' "$id" "$port" "$gw" "$pw"
done
echo "Directory: docker exec $(dc ps -q admin | cut -c1-12) tracenet-node directory show --config /config/CHE-SEC/node.toml"
