#!/usr/bin/env python3
"""Renders the Secrets (certificates, keys) and ConfigMaps (node.toml, gateway.toml, policy,
contacts) of the Kubernetes federation from a certificate folder made by tracenet-certs:

    tracenet-certs init --out certs --node CHE-SEC --node BEL-HUB --node AUT-HUB \\
        --node FRA-POL --node DEU-CUS --node ITA-POL
    python3 deploy/k8s/render.py certs > tracenet-config.yaml      # holds private keys!
    kubectl apply -f deploy/k8s/federation.yaml -f tracenet-config.yaml

Same members, ports and paths as the compose federation (deploy/compose/scripts/setup.sh), with
Service names instead of fixed addresses."""
import base64
import hashlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
COMPOSE = os.path.join(HERE, "..", "compose")
ENV = open(os.path.join(COMPOSE, "federation.env")).read()
NS = "tracenet"


def members():
    out = []
    for line in ENV.split('MEMBERS="')[1].split('"')[0].splitlines():
        f = line.split()
        if f:
            out.append(dict(id=f[0], role=f[1], region=f[3], svc=f[0].lower(), national=len(f) > 4))
    return out


VOTERS = ENV.split('VOTERS="')[1].split('"')[0].split()


def fp(path):
    pem = open(path).read()
    body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    return hashlib.sha256(base64.b64decode("".join(body.split()))).hexdigest()


def endpoint(node_id):
    return f"{node_id.lower()}.{NS}.svc.cluster.local:7400"


def node_toml(m, certs, sec):
    i = m["id"]
    voters = "".join(f'\n[[directory.voters]]\nnode_id = "{v}"\nendpoint = "{endpoint(v)}"\n' for v in VOTERS)
    policy = f'policy = "/config/{i}/policy.toml"\n' if m["national"] else ""
    return f"""# {i} (synthetic; rendered by deploy/k8s/render.py).
node_id = "{i}"
country = "{i.split('-')[0]}"
role = "{m['role']}"
data_dir = "/var/lib/tracenet/node"
signing_key = "/config/certs/{i}/signing.pk8"
{policy}regions = ["{m['region']}"]
shutdown_grace_secs = 10

[trace]
routine_days = 30
urgent_days = 7
escalation_contact = "Synthetic tracing desk of {i}"

[peer_api]
listen = "0.0.0.0:7400"

# Reached by this node's gateway (NetworkPolicy {m['svc']}-local-api) and by kubectl exec.
[local_api]
listen = "0.0.0.0:7401"

[metrics]
listen = "0.0.0.0:9464"

[tls]
ca = "/config/certs/ca.pem"
cert = "/config/certs/{i}/node.pem"
key = "/config/certs/{i}/node.key"

[admin]
cert = "/config/certs/{i}/admin.pem"
key = "/config/certs/{i}/admin.key"

[local_certificates]
gateway_fingerprints = ["{fp(os.path.join(certs, i, 'gateway.pem'))}"]
admin_fingerprints = ["{fp(os.path.join(certs, i, 'admin.pem'))}"]

[directory]
initialise = {'true' if i == sec else 'false'}
advertise = "{endpoint(i)}"

[directory.secretariat]
node_id = "{sec}"
cert_fingerprint = "{fp(os.path.join(certs, sec, 'node.pem'))}"
signing_public_key = "{open(os.path.join(certs, sec, 'signing.pub')).read().strip()}"
{voters}"""


def gateway_toml(m):
    i = m["id"]
    kind = "customs" if i.endswith("-CUS") else "police"
    return f"""# The gateway of {i} (synthetic; rendered by deploy/k8s/render.py).
listen = "0.0.0.0:8443"
data_dir = "/var/lib/tracenet/gateway"
default_language = "en"
agency_kind = "{kind}"

[node]
node_id = "{i}"
address = "{m['svc']}.{NS}.svc.cluster.local:7401"
ca = "/config/certs/ca.pem"
cert = "/config/certs/{i}/gateway.pem"
key = "/config/certs/{i}/gateway.key"

[metrics]
listen = "0.0.0.0:9465"

# Development certificate; give the console one for its host name (or terminate TLS in front).
[tls]
cert = "/config/certs/{i}/gateway.pem"
key = "/config/certs/{i}/gateway.key"
"""


def block(text, indent="    "):
    return "|\n" + "".join(indent + l + "\n" if l else "\n" for l in text.splitlines())


def b64(path):
    return base64.b64encode(open(path, "rb").read()).decode()


def secret(name, files, comment):
    data = "".join(f"  {k}: {b64(p)}\n" for k, p in files.items())
    return f"""---
# {comment}
apiVersion: v1
kind: Secret
metadata:
  name: {name}
  namespace: {NS}
  labels: {{app.kubernetes.io/name: tracenet}}
type: Opaque
data:
{data}"""


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: render.py CERTS_DIR  (a tracenet-certs init folder)")
    certs = sys.argv[1]
    ms = members()
    sec = next(m["id"] for m in ms if m["role"] == "secretariat")
    out = ["# Rendered by deploy/k8s/render.py: holds private keys, do not commit.\n"]
    out.append(secret("federation-ca", {"ca.pem": os.path.join(certs, "ca.pem")}, "The federation CA certificate (not its key)."))
    pub = "".join(f"  {m['id']}.{f}: {block(open(os.path.join(certs, m['id'], f)).read())}"
                  for m in ms for f in ("node.pem", "signing.pub"))
    out.append(f"""---
# Every member's node certificate and signing public key, for the secretariat's admissions
# (tracenet-node directory admit --cert /config/members/ID.node.pem --signing-key ...).
apiVersion: v1
kind: ConfigMap
metadata:
  name: federation-members
  namespace: {NS}
  labels: {{app.kubernetes.io/name: tracenet}}
data:
{pub}""")
    for m in ms:
        d = os.path.join(certs, m["id"])
        files = {f: os.path.join(d, f) for f in ("node.pem", "node.key", "admin.pem", "admin.key", "signing.pk8", "signing.pub")}
        out.append(secret(f"{m['svc']}-certs", files, f"{m['id']}: node and admin certificates, signing key."))
        if m["national"]:
            out.append(secret(f"{m['svc']}-gateway-certs", {f: os.path.join(d, f) for f in ("gateway.pem", "gateway.key")},
                              f"{m['id']}'s gateway certificate."))
        data = {"node.toml": node_toml(m, certs, sec)}
        contacts = (f'[[contacts]]\nfunction = "National firearms focal point (synthetic)"\n'
                    f'organisation = "Synthetic agency {m["id"]}"\nemail = "focal.point@{m["id"].lower()}.example"\n'
                    f'languages = ["en", "fr"]\n')
        data["contacts.toml"] = contacts
        if m["national"]:
            data["gateway.toml"] = gateway_toml(m)
            data["policy.toml"] = open(os.path.join(COMPOSE, "policies", m["id"].split("-")[0] + ".toml")).read()
        items = "".join(f"  {k}: {block(v)}" for k, v in data.items())
        out.append(f"""---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {m['svc']}-config
  namespace: {NS}
  labels: {{app.kubernetes.io/name: tracenet, tracenet/node: {m['id']}}}
data:
{items}""")
    sys.stdout.write("".join(out))


if __name__ == "__main__":
    main()
