#!/bin/bash
# Founds the directory and imports the synthetic sample data, the way a real federation is
# founded: the secretariat admits itself, then every other member from its certificate, signing
# key and endpoint; each member publishes its trace settings, contacts, local certificates and
# sharing policy through its own node's local API with its own admin certificate. Runs in the
# `admin` container (config volume at /config). Idempotent: members already admitted are skipped,
# the sample data is imported once (/config/.founded).
set -euo pipefail
# shellcheck source=../federation.env
. /deploy/federation.env
cfg() { echo "/config/$1/node.toml"; }
sec=$(echo "$MEMBERS" | awk '$2 == "secretariat" {print $1; exit}')

# wait_for WHAT SECONDS CMD...: retries CMD every second until it succeeds.
wait_for() {
  local what=$1 secs=$2; shift 2
  local end=$((SECONDS + secs)) out
  until out=$("$@" 2>&1); do
    if [ "$SECONDS" -ge "$end" ]; then echo "found: timed out after ${secs}s waiting for $what: $out" >&2; return 1; fi
    sleep 1
  done
}
has_leader() { tracenet-node directory show --config "$(cfg "$1")" | grep -q '^leader: [A-Z]'; }

echo "found: waiting for a directory leader at $sec"
wait_for "a leader at $sec" 90 has_leader "$sec"

members=$(tracenet-node directory members --config "$(cfg "$sec")" | awk 'NR > 1 {print $1}')
if ! echo "$members" | grep -qx "$sec"; then
  echo "found: $sec admits itself (founding)"
  tracenet-node directory admit --config "$(cfg "$sec")" --self --role secretariat --organisation "Synthetic federation secretariat" --region SYN-CENTRAL >/dev/null
fi
echo "$MEMBERS" | while read -r id role ip region _rest; do
  [ -n "$id" ] && [ "$id" != "$sec" ] || continue
  if echo "$members" | grep -qx "$id"; then continue; fi
  case "$id" in *-POL) kind=police ;; *-CUS) kind=customs ;; *) kind="" ;; esac
  echo "found: admitting $id ($role, $ip:7400)"
  tracenet-node directory admit --config "$(cfg "$sec")" --cert "/config/certs/$id/node.pem" \
    --signing-key "/config/certs/$id/signing.pub" --endpoint "$ip:7400" --role "$role" \
    --region "$region" --organisation "Synthetic agency $id" --agency-kind "$kind" >/dev/null
done

echo "$MEMBERS" | while read -r id role _ip _region _rest; do
  [ -n "$id" ] || continue
  c=$(cfg "$id")
  # A new learner needs a moment to receive the log before its writes are forwarded.
  wait_for "$id's replica to know a leader" 60 has_leader "$id"
  tracenet-node directory publish-trace --config "$c" >/dev/null
  tracenet-node directory publish-contacts --config "$c" "/config/$id/contacts.toml" >/dev/null
  tracenet-node directory publish-local-certs --config "$c" >/dev/null
  if [ -f "/config/$id/policy.toml" ]; then
    tracenet-node directory publish-policy --config "$c" "/config/$id/policy.toml" >/dev/null
  fi
  # Each State here runs one node: it is its State's designated tracing node (trace requests
  # are routed only to a designated node, never to the first of a State's nodes).
  if [ "$role" = "national" ]; then
    tracenet-node directory designate-tracing --config "$c" >/dev/null
  fi
  echo "found: $id published its trace settings, contacts, local certificates"
done

if [ ! -e /config/.founded ]; then
  echo "$MEMBERS" | while read -r id _role _ip _region gw _port; do
    [ -n "${gw:-}" ] || continue
    echo "found: importing synthetic sample records into $id"
    tracenet-node import --config "$(cfg "$id")" "/config/$id/seizures.csv"
  done
  touch /config/.founded
fi
echo "found: directory founded"
tracenet-node directory show --config "$(cfg "$sec")"
