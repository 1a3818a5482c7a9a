#!/usr/bin/env bash
# Installs the .deb in the local Debian base (a fresh container, no systemd inside) and starts the
# node with its unit's ExecStart line, as the unit's User, with no new privileges; checks
# /healthz and /readyz, then a clean stop on SIGTERM. Checks the units with systemd-analyze when
# the host has it.
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET="${CARGO_TARGET_DIR:-target}"
BASE_IMAGE="${TRACENET_BASE_IMAGE:-tracenet-base:bookworm}"
NAME=tracenet-deb-test
out="$(mktemp -d)"
trap 'docker rm -f "$NAME" >/dev/null 2>&1 || true; rm -rf "$out"' EXIT

echo "== building the package"
bash deploy/debian/build.sh "$out"
deb=$(ls "$out"/*.deb)
echo "== contents: $(dpkg-deb -c "$deb" 2>/dev/null | awk '{print $6}' | grep -E 'bin/|systemd|etc/' | tr '\n' ' ')"

if command -v systemd-analyze >/dev/null 2>&1; then
  echo "== systemd-analyze verify (unit syntax and options)"
  tmp="$out/units"; mkdir -p "$tmp"
  cp deploy/debian/*.service "$tmp/"
  # verify checks that ExecStart's binary exists: point it at one that does.
  sed -i 's#/usr/bin/tracenet-[a-z]*#/bin/true#' "$tmp"/*.service
  SYSTEMD_LOG_LEVEL=err systemd-analyze verify --man=no "$tmp"/*.service 2>&1 | grep -v "Unknown key\|Failed to load\|tracenet.*\.service: Command" || true
fi

bash deploy/image/base.sh
echo "== installing in a fresh $BASE_IMAGE container"
docker run -d --name "$NAME" --network none -v "$deb:/tmp/tracenet.deb:ro" "$BASE_IMAGE" sleep infinity >/dev/null
docker exec "$NAME" dpkg -i /tmp/tracenet.deb
docker exec "$NAME" bash -euo pipefail -c '
  unit=/lib/systemd/system/tracenet-node.service
  exec_start=$(sed -n "s/^ExecStart=//p" "$unit")
  user=$(sed -n "s/^User=//p" "$unit")
  state=/var/lib/$(sed -n "s/^StateDirectory=//p" "$unit")
  echo "unit: User=$user ExecStart=$exec_start StateDirectory=$state"
  getent passwd "$user" >/dev/null
  # What systemd does for StateDirectory= and ConfigurationDirectory=.
  install -d -o "$user" -g "$user" -m 0700 "$state"
  cd /etc/tracenet
  tracenet-certs init --out /etc/tracenet/pki --node FRA-POL >/dev/null
  for f in ca.pem FRA-POL/node.pem FRA-POL/node.key FRA-POL/admin.pem FRA-POL/admin.key FRA-POL/signing.pk8; do
    install -o root -g "$user" -m 0640 "pki/$f" "/etc/tracenet/$(basename "$f")"
  done
  cp policy.toml.example policy.toml
  # The packaged example, standalone: no peers, no directory, metrics on loopback.
  sed -e "/^\[\[peers\]\]/,\$d" -e "/^\[local_certificates\]/,/^admin_fingerprints/d" node.toml.example > node.toml
  chmod 0644 node.toml
  # The unit'"'"'s User= and NoNewPrivileges=, then its ExecStart= line as written.
  # shellcheck disable=SC2086
  setpriv --reuid="$user" --regid="$user" --init-groups --no-new-privs $exec_start > /tmp/node.log 2>&1 &
  pid=$!
  get() { exec 3<>/dev/tcp/127.0.0.1/9464 && printf "GET %s HTTP/1.0\r\n\r\n" "$1" >&3 && head -1 <&3; }
  for i in $(seq 1 100); do
    if out=$(get /readyz 2>/dev/null) && [[ "$out" == *" 200"* ]]; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then echo "the node exited:"; cat /tmp/node.log; exit 1; fi
    sleep 0.2
  done
  echo "healthz: $(get /healthz) readyz: $(get /readyz)"
  [[ "$(get /healthz)" == *" 200"* ]] || { cat /tmp/node.log; exit 1; }
  echo "state directory $state: $(ls "$state" | tr "\n" " ")(owner $(stat -c %U "$state"))"
  [ "$(stat -c %U "$state")" = "$user" ]
  uid=$(awk "/^Uid:/ {print \$2}" "/proc/$pid/status")
  echo "node process $(tr "\0" " " < "/proc/$pid/cmdline")runs as uid $uid ($user is $(id -u "$user"))"
  [ "$uid" = "$(id -u "$user")" ]
  grep -q "^NoNewPrivs:[[:space:]]*1" "/proc/$pid/status"
  kill -TERM "$pid"
  rc=0; wait "$pid" || rc=$?
  echo "node stopped on SIGTERM with exit code $rc; last log lines:"
  tail -3 /tmp/node.log
  [ "$rc" = 0 ]
'
echo "== the package installs and its node unit runs in $BASE_IMAGE"
