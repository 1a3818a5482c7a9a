#!/usr/bin/env bash
# Makes the local Debian base image (no registry needed): mmdebstrap of Debian's packages,
# variant minbase (dpkg, apt, coreutils; no compilers), imported with `docker import`.
# Reused when the tag exists; TRACENET_REBUILD_BASE=1 remakes it.
#   env: TRACENET_BASE_IMAGE (default tracenet-base:bookworm), TRACENET_DEBIAN_SUITE (bookworm),
#        TRACENET_DEBIAN_MIRROR (http://deb.debian.org/debian)
set -euo pipefail

BASE_IMAGE="${TRACENET_BASE_IMAGE:-tracenet-base:bookworm}"
SUITE="${TRACENET_DEBIAN_SUITE:-bookworm}"
MIRROR="${TRACENET_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [ "${TRACENET_REBUILD_BASE:-0}" != "1" ] && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  echo "== base image $BASE_IMAGE exists, reusing it"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
if ! command -v mmdebstrap >/dev/null 2>&1; then
  echo "== installing mmdebstrap"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq mmdebstrap >/dev/null
fi

echo "== making $BASE_IMAGE: mmdebstrap --variant=minbase $SUITE from $MIRROR"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# No documentation, no apt lists, no caches; no ca-certificates (it pulls openssl and perl, 50 MB;
# tracenet trusts only its federation CA, given in its configuration).
# The merged-/usr hook instead of the usrmerge package, which pulls perl (another 50 MB).
hooks=()
if [ -d /usr/share/mmdebstrap/hooks/maybe-merged-usr ]; then
  hooks=(--hook-dir=/usr/share/mmdebstrap/hooks/maybe-merged-usr)
fi
$SUDO mmdebstrap --variant=minbase "${hooks[@]}" \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  "$SUITE" "$tmp/rootfs.tar" "$MIRROR"
old="$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)"
docker import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' \
  "$tmp/rootfs.tar" "$BASE_IMAGE" >/dev/null
if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE")" ]; then
  docker image rm "$old" >/dev/null 2>&1 || true
fi
echo "== $BASE_IMAGE: $(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
