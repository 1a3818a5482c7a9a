#!/usr/bin/env bash
# Checks deploy/k8s: federation.yaml is what generate.py writes, it and the Secrets/ConfigMaps
# render.py makes (from a throwaway development PKI) pass the Kubernetes schemas
# (kubernetes-validate, offline, strict), and they match the compose topology (check.py).
# Needs the tracenet-certs release binary (or TRACENET_CERTS=path).
set -euo pipefail
cd "$(dirname "$0")"
TARGET="${CARGO_TARGET_DIR:-../../target}"
CERTS_BIN="${TRACENET_CERTS:-$TARGET/release/tracenet-certs}"
if ! python3 -c 'import kubernetes_validate, yaml' >/dev/null 2>&1; then
  echo "== installing kubernetes-validate (PyPI; bundles the Kubernetes schemas)"
  python3 -m pip install --quiet --user "kubernetes-validate>=1.30" 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages "kubernetes-validate>=1.30"
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp federation.yaml "$tmp/committed.yaml"
python3 generate.py >/dev/null
if ! cmp -s federation.yaml "$tmp/committed.yaml"; then
  cp "$tmp/committed.yaml" federation.yaml
  echo "error: deploy/k8s/federation.yaml is not what generate.py writes; run python3 deploy/k8s/generate.py"
  exit 1
fi
ids=$(awk '/^MEMBERS="/,/^"/' ../compose/federation.env | awk 'NF > 3 {print "--node " $1}')
# shellcheck disable=SC2086
"$CERTS_BIN" init --out "$tmp/certs" $ids >/dev/null
python3 render.py "$tmp/certs" > "$tmp/config.yaml"
echo "== kubernetes-validate --strict (Kubernetes 1.30)"
python3 -m kubernetes_validate -k 1.30.0 --strict --quiet federation.yaml "$tmp/config.yaml"
echo "   $(grep -c '^kind:' federation.yaml) workload objects and $(grep -c '^kind:' "$tmp/config.yaml") rendered Secrets/ConfigMaps are valid"
echo "== compose topology"
python3 check.py federation.yaml "$tmp/config.yaml"
