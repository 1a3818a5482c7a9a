#!/usr/bin/env bash
# Builds the tracenet image from the locally made Debian base, without any registry:
#   deploy/image/build.sh            # image tracenet:dev (TRACENET_IMAGE to change)
# Uses the release binaries in $CARGO_TARGET_DIR/release (default target/release) and builds
# them first if one is missing: cargo build --release -p tracenet-devnet -p tracenet-gateway
# -p tracenet-certs --bins.
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE="${TRACENET_IMAGE:-tracenet:dev}"
BASE_IMAGE="${TRACENET_BASE_IMAGE:-tracenet-base:bookworm}"
export TRACENET_BASE_IMAGE="$BASE_IMAGE"
TARGET="${CARGO_TARGET_DIR:-target}"
BINS=(tracenet-node tracenet-gateway tracenet-certs)

missing=0
for b in "${BINS[@]}"; do [ -x "$TARGET/release/$b" ] || missing=1; done
if [ "$missing" = 1 ]; then
  echo "== building the release binaries"
  cargo build --release -p tracenet-devnet -p tracenet-gateway -p tracenet-certs --bins
fi

bash deploy/image/base.sh

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
for b in "${BINS[@]}"; do
  cp "$TARGET/release/$b" "$ctx/$b"
  strip "$ctx/$b" 2>/dev/null || true
done
cp deploy/image/tracenet-healthcheck "$ctx/"
chmod 0755 "$ctx"/*
cp deploy/image/Dockerfile "$ctx/"

echo "== building $IMAGE on $BASE_IMAGE"
# The classic builder resolves FROM against local images only when nothing can be pulled.
if docker buildx version >/dev/null 2>&1; then
  docker build -q --build-arg "BASE=$BASE_IMAGE" -t "$IMAGE" "$ctx" >/dev/null
else
  DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE=$BASE_IMAGE" -t "$IMAGE" "$ctx" >/dev/null
fi
size="$(docker image inspect -f '{{.Size}}' "$IMAGE")"
echo "== $IMAGE: $((size / 1000000)) MB ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" | awk '{printf "%d", $1/1e6}') MB base)"
# Dangling layers of earlier builds of this tag.
docker image prune -f --filter label=org.tracenet.build >/dev/null 2>&1 || true
