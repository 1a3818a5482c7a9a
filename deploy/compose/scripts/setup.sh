#!/bin/bash
# One-shot, in the tracenet image (as root, config volume at /config): makes the development PKI
# with tracenet-certs and writes every member's node.toml (and gateway.toml), policy and
# synthetic sample data. Does nothing when /config/.setup-done exists (first start only).
set -euo pipefail
# shellcheck source=../federation.env
. /deploy/federation.env
if [ -e /config/.setup-done ]; then
  echo "setup: /config already set up"
  exit 0
fi

ids=$(echo "$MEMBERS" | awk 'NF {print $1}')
args=()
for id in $ids; do args+=(--node "$id"); done
echo "setup: development PKI for $(echo $ids) (never use in production)"
tracenet-certs init --out /config/certs "${args[@]}" >/dev/null

# SHA-256 of a PEM certificate's DER (what [local_certificates] and the directory pin).
fp() { sed -n '/-BEGIN CERTIFICATE-/,/-END CERTIFICATE-/p' "$1" | sed '1d;$d' | base64 -d | sha256sum | cut -d' ' -f1; }

sec_id=$(echo "$MEMBERS" | awk '$2 == "secretariat" {print $1; exit}')
sec_fp=$(fp "/config/certs/$sec_id/node.pem")
sec_key=$(tr -d '[:space:]' < "/config/certs/$sec_id/signing.pub")

voters=""
for v in $VOTERS; do
  ip=$(echo "$MEMBERS" | awk -v id="$v" '$1 == id {print $3}')
  voters+=$'\n'"[[directory.voters]]"$'\n'"node_id = \"$v\""$'\n'"endpoint = \"$ip:7400\""$'\n'
done

echo "$MEMBERS" | while read -r id role ip region gw_ip _port; do
  [ -n "$id" ] || continue
  country=${id%%-*}
  d=/config/$id
  mkdir -p "$d"
  init=false
  [ "$id" = "$sec_id" ] && init=true
  policy_line=""
  if [ -f "/deploy/policies/$country.toml" ]; then
    cp "/deploy/policies/$country.toml" "$d/policy.toml"
    policy_line="policy = \"$d/policy.toml\""
  fi
  cat > "$d/node.toml" <<TOML
# $id in the compose federation (synthetic; written by deploy/compose/scripts/setup.sh).
node_id = "$id"
country = "$country"
role = "$role"
data_dir = "/var/lib/tracenet/node"
signing_key = "/config/certs/$id/signing.pk8"
$policy_line
regions = ["$region"]
shutdown_grace_secs = 5

[trace]
routine_days = 30
urgent_days = 7
escalation_contact = "Synthetic tracing desk of $id"

[outbox]
retry_base_ms = 500
retry_max_ms = 5000

[peer_api]
listen = "0.0.0.0:7400"

# On the private network: the gateway runs in its own container. Only the certificates pinned
# below are accepted.
[local_api]
listen = "$ip:7401"

[metrics]
listen = "0.0.0.0:9464"

[tls]
ca = "/config/certs/ca.pem"
cert = "/config/certs/$id/node.pem"
key = "/config/certs/$id/node.key"

[admin]
cert = "/config/certs/$id/admin.pem"
key = "/config/certs/$id/admin.key"

[local_certificates]
gateway_fingerprints = ["$(fp "/config/certs/$id/gateway.pem")"]
admin_fingerprints = ["$(fp "/config/certs/$id/admin.pem")"]

[directory]
initialise = $init
advertise = "$ip:7400"
heartbeat_ms = 200
election_timeout_ms = 800

[directory.secretariat]
node_id = "$sec_id"
cert_fingerprint = "$sec_fp"
signing_public_key = "$sec_key"
$voters
TOML

  cat > "$d/contacts.toml" <<TOML
[[contacts]]
function = "National firearms focal point (synthetic)"
organisation = "Synthetic agency $id"
email = "focal.point@$(echo "$id" | tr 'A-Z' 'a-z').example"
phone = "+00 000 000 000"
languages = ["en", "fr"]
working_hours = "Mon-Fri 08:00-18:00 UTC"
TOML

  if [ "$role" = national ]; then
    case "$id" in *-CUS) kind=customs ;; *) kind=police ;; esac
    cat > "$d/gateway.toml" <<TOML
# The gateway of $id in the compose federation (synthetic).
listen = "0.0.0.0:8443"
data_dir = "/var/lib/tracenet/gateway"
default_language = "en"
agency_kind = "$kind"
federated_deadline_ms = 3000

[node]
node_id = "$id"
address = "$ip:7401"
ca = "/config/certs/ca.pem"
cert = "/config/certs/$id/gateway.pem"
key = "/config/certs/$id/gateway.key"

[metrics]
listen = "0.0.0.0:9465"

# Development only: the console is served with the gateway's federation certificate (browsers
# warn). In production give it a certificate for its host name.
[tls]
cert = "/config/certs/$id/gateway.pem"
key = "/config/certs/$id/gateway.key"
TOML
    # Synthetic sample records, imported by found.sh.
    {
      echo "national_ref,date,country,region,seizing_agency,seizure_kind,criminal_context,serial_number,manufacturer,model,category,calibre,marking_condition,ammunition_calibre,ammunition_quantity,route,transport_mode,concealment_method,notes"
      for i in $(seq 1 20); do
        n=$(printf '%04d' "$i")
        printf 'SYN-%s-%s,2025-%02d-%02d,%s,Synthetic region %d,%s,seized,arms_trafficking,SYN%s-%s,Synthetic Arms,Model S%d,revolver_or_self_loading_pistol,9x19mm,intact,9x19mm,%d,TUR;BGR;%s,road,vehicle_compartment,Synthetic sample row: not real data.\n' \
          "$country" "$n" $(( (i % 12) + 1 )) $(( (i % 27) + 1 )) "$country" $(( (i % 5) + 1 )) "$kind" "$country" "$n" "$i" $(( i * 10 )) "$country"
      done
    } > "$d/seizures.csv"
  fi
done

# Every container runs as uid 10001 (development: one PKI volume for all members).
chown -R 10001:10001 /config
touch /config/.setup-done
echo "setup: configuration written for $(echo $ids)"
