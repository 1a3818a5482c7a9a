#!/usr/bin/env python3
"""Writes deploy/k8s/federation.yaml, the workloads of the compose federation as plain Kubernetes
manifests (namespace tracenet): one StatefulSet per directory voter and per national node (each
with its persistent volume claim), a Deployment per gateway, headless Services, NetworkPolicies.
The members come from deploy/compose/federation.env, so both describe the same topology.
Certificates and configurations are rendered separately by render.py (Secrets, ConfigMaps)."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ENV = open(os.path.join(HERE, "..", "compose", "federation.env")).read()
NS = "tracenet"
IMAGE = "tracenet:dev"


def members():
    out = []
    for line in ENV.split('MEMBERS="')[1].split('"')[0].splitlines():
        f = line.split()
        if f:
            out.append(dict(id=f[0], role=f[1], svc=f[0].lower(), gw=(f[0].split("-")[0].lower() + "-gw") if len(f) > 4 else None))
    return out


SECURITY = """      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        fsGroup: 10001
        seccompProfile: {type: RuntimeDefault}"""
CONTAINER_SECURITY = """          securityContext:
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}"""


def probes(port):
    return f"""          readinessProbe:
            httpGet: {{path: /readyz, port: {port}}}
            periodSeconds: 5
            failureThreshold: 3
          livenessProbe:
            httpGet: {{path: /healthz, port: {port}}}
            initialDelaySeconds: 20
            periodSeconds: 10
            failureThreshold: 6"""


def node(m):
    tier = "voter" if m["role"] != "national" else "national"
    return f"""---
# {m['id']}: {m['role']} node ({'directory voter' if tier == 'voter' else 'directory learner'}).
apiVersion: v1
kind: Service
metadata:
  name: {m['svc']}
  namespace: {NS}
  labels: {{app.kubernetes.io/name: tracenet, app.kubernetes.io/component: {tier}, tracenet/node: {m['id']}}}
spec:
  clusterIP: None
  selector: {{app.kubernetes.io/name: tracenet, tracenet/node: {m['id']}, tracenet/kind: node}}
  ports:
    - {{name: peer, port: 7400}}
    - {{name: local, port: 7401}}
    - {{name: metrics, port: 9464}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {m['svc']}
  namespace: {NS}
  labels: {{app.kubernetes.io/name: tracenet, app.kubernetes.io/component: {tier}, tracenet/node: {m['id']}}}
spec:
  serviceName: {m['svc']}
  replicas: 1
  podManagementPolicy: Parallel
  selector:
    matchLabels: {{app.kubernetes.io/name: tracenet, tracenet/node: {m['id']}, tracenet/kind: node}}
  template:
    metadata:
      labels: {{app.kubernetes.io/name: tracenet, app.kubernetes.io/component: {tier}, tracenet/node: {m['id']}, tracenet/kind: node}}
    spec:
      terminationGracePeriodSeconds: 30
      automountServiceAccountToken: false
{SECURITY}
      containers:
        - name: node
          image: {IMAGE}
          imagePullPolicy: IfNotPresent
          args: [run, --config, /config/{m['id']}/node.toml, --log-format, json]
          ports:
            - {{name: peer, containerPort: 7400}}
            - {{name: local, containerPort: 7401}}
            - {{name: metrics, containerPort: 9464}}
{probes('metrics')}
          resources:
            requests: {{cpu: 100m, memory: 128Mi}}
            limits: {{memory: 1Gi}}
{CONTAINER_SECURITY}
          volumeMounts:
            - {{name: data, mountPath: /var/lib/tracenet}}
            - {{name: config, mountPath: /config/{m['id']}, readOnly: true}}
            - {{name: certs, mountPath: /config/certs/{m['id']}, readOnly: true}}
            - {{name: ca, mountPath: /config/certs/ca.pem, subPath: ca.pem, readOnly: true}}
            - {{name: members, mountPath: /config/members, readOnly: true}}
            - {{name: tmp, mountPath: /tmp}}
      volumes:
        - name: config
          configMap: {{name: {m['svc']}-config}}
        - name: members
          configMap: {{name: federation-members, optional: true}}
        - name: certs
          secret: {{secretName: {m['svc']}-certs, defaultMode: 0440}}
        - name: ca
          secret: {{secretName: federation-ca}}
        - name: tmp
          emptyDir: {{medium: Memory, sizeLimit: 16Mi}}
  volumeClaimTemplates:
    - metadata:
        name: data
      spec:
        accessModes: [ReadWriteOnce]
        resources:
          requests: {{storage: 10Gi}}
"""


def gateway(m):
    return f"""---
# The gateway of {m['id']}: web console and JSON API, in front of {m['svc']}'s local API.
apiVersion: v1
kind: Service
metadata:
  name: {m['gw']}
  namespace: {NS}
  labels: {{app.kubernetes.io/name: tracenet, app.kubernetes.io/component: gateway, tracenet/node: {m['id']}}}
spec:
  selector: {{app.kubernetes.io/name: tracenet, tracenet/node: {m['id']}, tracenet/kind: gateway}}
  ports:
    - {{name: console, port: 8443}}
    - {{name: metrics, port: 9465}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {m['gw']}-data
  namespace: {NS}
  labels: {{app.kubernetes.io/name: tracenet, app.kubernetes.io/component: gateway, tracenet/node: {m['id']}}}
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests: {{storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {m['gw']}
  namespace: {NS}
  labels: {{app.kubernetes.io/name: tracenet, app.kubernetes.io/component: gateway, tracenet/node: {m['id']}}}
spec:
  replicas: 1
  # One writer of the gateway's store at a time.
  strategy: {{type: Recreate}}
  selector:
    matchLabels: {{app.kubernetes.io/name: tracenet, tracenet/node: {m['id']}, tracenet/kind: gateway}}
  template:
    metadata:
      labels: {{app.kubernetes.io/name: tracenet, app.kubernetes.io/component: gateway, tracenet/node: {m['id']}, tracenet/kind: gateway}}
    spec:
      automountServiceAccountToken: false
{SECURITY}
      initContainers:
        # First start only: the console user 'demo' (random password) and an API token, kept in
        # the data volume (read them with kubectl exec ... cat /var/lib/tracenet/demo-password).
        - name: first-user
          image: {IMAGE}
          imagePullPolicy: IfNotPresent
          command: [bash, -c]
          args:
            - |
              set -euo pipefail
              s=/var/lib/tracenet; c=/config/{m['id']}/gateway.toml
              [ -e $s/api-token ] && exit 0
              umask 077
              head -c 18 /dev/urandom | base64 | tr -d '/+=\\n' > $s/demo-password
              tracenet-gateway user add --config $c --username demo --role officer --role tracing_officer --role analyst --role administrator --password-file $s/demo-password
              tracenet-gateway token add --config $c --name scripts --role officer --role tracing_officer --role analyst --role administrator > $s/api-token
{CONTAINER_SECURITY.replace('          ', '          ')}
          volumeMounts: &gwmounts
            - {{name: data, mountPath: /var/lib/tracenet}}
            - {{name: config, mountPath: /config/{m['id']}, readOnly: true}}
            - {{name: certs, mountPath: /config/certs/{m['id']}, readOnly: true}}
            - {{name: ca, mountPath: /config/certs/ca.pem, subPath: ca.pem, readOnly: true}}
            - {{name: tmp, mountPath: /tmp}}
      containers:
        - name: gateway
          image: {IMAGE}
          imagePullPolicy: IfNotPresent
          command: [tracenet-gateway]
          args: [run, --config, /config/{m['id']}/gateway.toml]
          ports:
            - {{name: console, containerPort: 8443}}
            - {{name: metrics, containerPort: 9465}}
{probes('metrics')}
          resources:
            requests: {{cpu: 50m, memory: 64Mi}}
            limits: {{memory: 512Mi}}
{CONTAINER_SECURITY}
          volumeMounts: *gwmounts
      volumes:
        - name: data
          persistentVolumeClaim: {{claimName: {m['gw']}-data}}
        - name: config
          configMap: {{name: {m['svc']}-config}}
        - name: certs
          secret: {{secretName: {m['svc']}-gateway-certs, defaultMode: 0440}}
        - name: ca
          secret: {{secretName: federation-ca}}
        - name: tmp
          emptyDir: {{medium: Memory, sizeLimit: 16Mi}}
"""


POLICIES = f"""---
# Nodes: only the peer API from other nodes (mutual TLS), the local API from this node's own
# gateway, and metrics scrapes from the monitoring namespace. Nothing else.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: nodes-peer-port-only
  namespace: {NS}
spec:
  podSelector:
    matchLabels: {{app.kubernetes.io/name: tracenet, tracenet/kind: node}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - podSelector:
            matchLabels: {{app.kubernetes.io/name: tracenet, tracenet/kind: node}}
      ports:
        - {{protocol: TCP, port: 7400}}
    - from:
        - namespaceSelector:
            matchLabels: {{kubernetes.io/metadata.name: monitoring}}
      ports:
        - {{protocol: TCP, port: 9464}}
"""


def local_policy(m):
    return f"""---
# {m['id']}'s local API: its own gateway only.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {m['svc']}-local-api
  namespace: {NS}
spec:
  podSelector:
    matchLabels: {{app.kubernetes.io/name: tracenet, tracenet/kind: node, tracenet/node: {m['id']}}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - podSelector:
            matchLabels: {{app.kubernetes.io/name: tracenet, tracenet/kind: gateway, tracenet/node: {m['id']}}}
      ports:
        - {{protocol: TCP, port: 7401}}
"""


GW_POLICY = f"""---
# Gateways: the console from anywhere (put an ingress or load balancer in front), metrics from
# the monitoring namespace.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: gateways-console
  namespace: {NS}
spec:
  podSelector:
    matchLabels: {{app.kubernetes.io/name: tracenet, tracenet/kind: gateway}}
  policyTypes: [Ingress]
  ingress:
    - ports:
        - {{protocol: TCP, port: 8443}}
    - from:
        - namespaceSelector:
            matchLabels: {{kubernetes.io/metadata.name: monitoring}}
      ports:
        - {{protocol: TCP, port: 9465}}
"""

doc = [f"""# Generated by deploy/k8s/generate.py from deploy/compose/federation.env: the compose
# federation as plain Kubernetes manifests. Apply after the Secrets and ConfigMaps that
# deploy/k8s/render.py writes. Not yet run on a live cluster (see deploy/README.md).
apiVersion: v1
kind: Namespace
metadata:
  name: {NS}
  labels: {{app.kubernetes.io/name: tracenet}}
"""]
for m in members():
    doc.append(node(m))
for m in members():
    if m["gw"]:
        doc.append(gateway(m))
doc.append(POLICIES)
for m in members():
    if m["gw"]:
        doc.append(local_policy(m))
doc.append(GW_POLICY)
open(os.path.join(HERE, "federation.yaml"), "w").write("".join(doc))
print("wrote deploy/k8s/federation.yaml")
