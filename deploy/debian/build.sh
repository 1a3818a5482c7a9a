#!/usr/bin/env bash
# Builds the Debian package tracenet_<version>_<arch>.deb with dpkg-deb (Debian's own tool):
# the three release binaries, a systemd unit per role (tracenet-node, tracenet-gateway), example
# configurations in /etc/tracenet, and a system user made by the postinst.
#   deploy/debian/build.sh [OUT_DIR]     (default: $CARGO_TARGET_DIR/debian or target/debian)
# Uses the release binaries in $CARGO_TARGET_DIR/release, building them when one is missing.
# Without dpkg-deb on the host it runs dpkg-deb in the local base image (deploy/image/base.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET="${CARGO_TARGET_DIR:-target}"
OUT="${1:-$TARGET/debian}"
BINS=(tracenet-node tracenet-gateway tracenet-certs)
for b in "${BINS[@]}"; do
  if [ ! -x "$TARGET/release/$b" ]; then
    echo "== building the release binaries"
    cargo build --release -p tracenet-devnet -p tracenet-gateway -p tracenet-certs --bins
    break
  fi
done
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' node/Cargo.toml | head -1)
[ -n "$VERSION" ] || VERSION=$(sed -n '/\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
pkg="$root/tracenet"
install -d "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/lib/systemd/system" "$pkg/etc/tracenet" \
  "$pkg/usr/share/doc/tracenet/examples"
for b in "${BINS[@]}"; do
  install -m 0755 "$TARGET/release/$b" "$pkg/usr/bin/$b"
  strip "$pkg/usr/bin/$b" 2>/dev/null || true
done
install -m 0644 deploy/debian/tracenet-node.service deploy/debian/tracenet-gateway.service "$pkg/lib/systemd/system/"
# Example configurations, with the packaged paths (state under /var/lib, keys in /etc/tracenet).
sed -e 's#^data_dir = .*#data_dir = "/var/lib/tracenet"#' deploy/examples/node.toml > "$pkg/etc/tracenet/node.toml.example"
sed -e 's#^data_dir = .*#data_dir = "/var/lib/tracenet-gateway"#' \
    -e 's#"../../certs/ca.pem"#"/etc/tracenet/ca.pem"#' \
    -e 's#"../../certs/FRA-POL/gateway.pem"#"/etc/tracenet/gateway.pem"#' \
    -e 's#"../../certs/FRA-POL/gateway.key"#"/etc/tracenet/gateway.key"#' \
    deploy/examples/gateway.toml > "$pkg/etc/tracenet/gateway.toml.example"
cp deploy/examples/policy-FRA.toml "$pkg/etc/tracenet/policy.toml.example"
cp deploy/examples/contacts.toml deploy/examples/marking.toml deploy/examples/seizures.csv "$pkg/usr/share/doc/tracenet/examples/"
cp deploy/README.md "$pkg/usr/share/doc/tracenet/README.md"
chmod 0644 "$pkg"/etc/tracenet/* "$pkg"/usr/share/doc/tracenet/examples/* "$pkg/usr/share/doc/tracenet/README.md"
size_kb=$(du -sk "$pkg" | cut -f1)
cat > "$pkg/DEBIAN/control" <<CTRL
Package: tracenet
Version: $VERSION
Architecture: $ARCH
Maintainer: tracenet maintainers <tracenet@example.test>
Section: net
Priority: optional
Installed-Size: $size_kb
Depends: libc6 (>= 2.34), libgcc-s1, passwd
Description: federated information exchange on illicit firearms (node, gateway)
 tracenet-node serves a national node (peer API over mutual TLS, local API, replicated
 directory); tracenet-gateway its web console and JSON API; tracenet-certs a development
 PKI (never for production). systemd units: tracenet-node.service, tracenet-gateway.service.
 Configure /etc/tracenet/node.toml (see node.toml.example) before starting them.
CTRL
cat > "$pkg/DEBIAN/postinst" <<'POST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if ! getent passwd tracenet >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/tracenet --no-create-home \
      --shell /usr/sbin/nologin --comment "tracenet node" tracenet
  fi
  if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
fi
exit 0
POST
cat > "$pkg/DEBIAN/postrm" <<'POST'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
exit 0
POST
cat > "$pkg/DEBIAN/prerm" <<'POST'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  systemctl stop tracenet-gateway.service tracenet-node.service || true
fi
exit 0
POST
chmod 0755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/postrm" "$pkg/DEBIAN/prerm"
mkdir -p "$OUT"
deb="tracenet_${VERSION}_${ARCH}.deb"
if command -v dpkg-deb >/dev/null 2>&1; then
  dpkg-deb --root-owner-group -Zgzip --build "$pkg" "$OUT/$deb" >/dev/null
else
  bash deploy/image/base.sh
  docker run --rm -v "$root:/pkg" -v "$(cd "$OUT" && pwd):/out" "${TRACENET_BASE_IMAGE:-tracenet-base:bookworm}" \
    dpkg-deb --root-owner-group -Zgzip --build /pkg/tracenet "/out/$deb" >/dev/null
fi
echo "== $OUT/$deb ($(du -h "$OUT/$deb" | cut -f1))"
