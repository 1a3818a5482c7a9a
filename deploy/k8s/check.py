#!/usr/bin/env python3
"""Checks the Kubernetes manifests against the compose federation: the same services (a
StatefulSet per node, a Deployment per gateway, a Service each, named as in docker-compose.yml),
the same ports (those the rendered configurations listen on), the same volumes (the data volume
at /var/lib/tracenet, persistent; configuration under /config), the same commands, and health
probes on /healthz and /readyz. Usage: check.py federation.yaml rendered-config.yaml"""
import re
import sys

import yaml

HERE = sys.path[0]
compose = yaml.safe_load(open(f"{HERE}/../compose/docker-compose.yml"))
docs = [d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]
by = {}
for d in docs:
    by.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
problems = []


def need(cond, msg):
    if not cond:
        problems.append(msg)


def listen_ports(toml_text):
    return sorted(int(p) for p in re.findall(r'^listen = "[^"]*:(\d+)"', toml_text, re.M))


services = {k: v for k, v in compose["services"].items() if k not in ("setup", "admin")}
workloads = set(by.get("StatefulSet", {})) | set(by.get("Deployment", {}))
need(set(services) == workloads, f"compose services {sorted(services)} != k8s workloads {sorted(workloads)}")
for name, svc in services.items():
    is_gw = name.endswith("-gw")
    kind = "Deployment" if is_gw else "StatefulSet"
    w = by.get(kind, {}).get(name)
    if not w:
        need(False, f"{name}: no {kind}")
        continue
    need(name in by.get("Service", {}), f"{name}: no Service")
    spec = w["spec"]["template"]["spec"]
    c = spec["containers"][0]
    # Same configuration file as in compose.
    cfg = [a for a in svc["command"] if a.startswith("/config/")][0]
    need(cfg in (c.get("args") or []), f"{name}: compose runs {cfg}, k8s args {c.get('args')}")
    node_id = cfg.split("/")[2]
    cm = by.get("ConfigMap", {}).get(f"{node_id.lower()}-config")
    need(cm is not None, f"{name}: no ConfigMap {node_id.lower()}-config")
    file = "gateway.toml" if is_gw else "node.toml"
    ports = sorted(p["containerPort"] for p in c["ports"])
    if cm:
        need(listen_ports(cm["data"][file]) == ports, f"{name}: {file} listens on {listen_ports(cm['data'][file])}, containerPorts {ports}")
        need('data_dir = "/var/lib/tracenet/' in cm["data"][file], f"{name}: data_dir outside the data volume")
    if is_gw:
        published = [int(str(p).split(":")[-1]) for p in svc.get("ports", [])]
        need(all(p in ports for p in published), f"{name}: compose publishes {published}, k8s ports {ports}")
    svc_ports = sorted(p["port"] for p in by["Service"][name]["spec"]["ports"]) if name in by.get("Service", {}) else []
    need(svc_ports == ports, f"{name}: Service ports {svc_ports} != containerPorts {ports}")
    # Volumes: compose's data volume at /var/lib/tracenet is persistent in k8s too.
    compose_mounts = {v.split(":")[1]: v.split(":")[0] for v in svc["volumes"]}
    k8s_mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    need("/var/lib/tracenet" in compose_mounts and "/var/lib/tracenet" in k8s_mounts, f"{name}: data volume missing")
    data = k8s_mounts.get("/var/lib/tracenet")
    if is_gw:
        vol = [v for v in spec["volumes"] if v["name"] == data]
        need(vol and "persistentVolumeClaim" in vol[0], f"{name}: data volume not a PVC")
    else:
        need(any(t["metadata"]["name"] == data for t in w["spec"].get("volumeClaimTemplates", [])), f"{name}: no volumeClaimTemplate for data")
    need(all(p.startswith("/config") for p in k8s_mounts if p not in ("/var/lib/tracenet", "/tmp")), f"{name}: mounts {sorted(k8s_mounts)}")
    need(svc.get("read_only") is True and c["securityContext"].get("readOnlyRootFilesystem") is True, f"{name}: root filesystem not read-only in both")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        need(c.get(probe, {}).get("httpGet", {}).get("path") == path, f"{name}: {probe} not on {path}")
    for secret_vol in (v for v in spec["volumes"] if "secret" in v):
        need(secret_vol["secret"]["secretName"] in by.get("Secret", {}), f"{name}: Secret {secret_vol['secret']['secretName']} not rendered")

# The node NetworkPolicy allows only the peer port between nodes.
np = by.get("NetworkPolicy", {}).get("nodes-peer-port-only")
need(np is not None, "no NetworkPolicy nodes-peer-port-only")
if np:
    from_nodes = [r for r in np["spec"]["ingress"] if any("podSelector" in f for f in r.get("from", []))]
    need([p["port"] for r in from_nodes for p in r["ports"]] == [7400], f"node-to-node ports: {from_nodes}")

if problems:
    print("k8s manifests do not match the compose federation:\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"k8s manifests match the compose federation: {len(services)} services, their ports, volumes and probes")
