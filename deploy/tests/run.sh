#!/usr/bin/env bash
# The container stage of CI: release binaries, local base and image, the compose federation and
# the tests across containers, the Debian package and the Kubernetes manifests. Always removes
# the containers, networks and volumes it made (the base image is kept: it is reused).
#   deploy/tests/run.sh                 everything
#   deploy/tests/run.sh image|k8s|compose|deb   some parts only
# Needs docker (with docker-compose or the compose plugin), python3, and root or sudo for apt.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PARTS="${*:-image k8s compose deb}"
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-tracenet-ci}"
export TRACENET_IMAGE="${TRACENET_IMAGE:-tracenet:ci}"
T0=$SECONDS
step() { echo "== [container stage +$((SECONDS - T0))s] $*"; }

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
if docker compose version >/dev/null 2>&1; then dc() { docker compose -f "$ROOT/deploy/compose/docker-compose.yml" "$@"; }
elif command -v docker-compose >/dev/null 2>&1; then dc() { docker-compose -f "$ROOT/deploy/compose/docker-compose.yml" "$@"; }
else
  step "installing docker-compose"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq docker-compose >/dev/null
  dc() { docker-compose -f "$ROOT/deploy/compose/docker-compose.yml" "$@"; }
fi

cleanup() {
  local rc=$?
  step "cleaning up (exit $rc)"
  if [ "$rc" != 0 ] && [ -n "$(dc ps -q 2>/dev/null)" ]; then
    echo "-- last log lines of every container"
    for c in $(dc ps -q 2>/dev/null); do
      echo "--- $(docker inspect -f '{{.Name}}' "$c")"; docker logs --tail 15 "$c" 2>&1 | sed 's/^/    /'
    done
  fi
  dc down -v --remove-orphans -t 5 >/dev/null 2>&1 || true
  docker rm -f tracenet-deb-test >/dev/null 2>&1 || true
  docker image rm -f "$TRACENET_IMAGE" tracenet-deb-test:ci >/dev/null 2>&1 || true
  docker image prune -f --filter label=org.tracenet.build >/dev/null 2>&1 || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

has() { case " $PARTS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

step "release binaries"
cargo build --release -p tracenet-devnet -p tracenet-gateway -p tracenet-certs --bins

if has image || has compose; then
  step "image"
  bash deploy/image/build.sh
fi

if has k8s; then
  step "Kubernetes manifests: schemas and compose topology"
  bash deploy/k8s/check.sh
fi

if has compose; then
  step "compose federation up"
  dc down -v --remove-orphans -t 5 >/dev/null 2>&1 || true
  timeout 600 bash deploy/compose/up.sh
  step "tests across containers"
  timeout 900 python3 deploy/tests/federation.py
  step "compose federation down"
  dc down -v --remove-orphans -t 5 >/dev/null
fi

if has deb; then
  step "Debian package"
  timeout 900 bash deploy/debian/test.sh
fi
step "container stage passed in $((SECONDS - T0)) s"
