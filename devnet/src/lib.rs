//! A development federation in one process: dev certificates, several nodes on loopback with
//! their own data directories, each knowing the others as peers, and a gateway for any of them.
//! The demo ([`demo`]) runs on it and the integration-test harness builds on it; it is never used
//! in production.
//!
//! This crate is where the production node meets the development tooling: it depends on
//! `tracenet-node`, `tracenet-gateway` and `tracenet-certs`, and holds the `tracenet-node`
//! binary (the node's production commands plus `demo`), so that the node library itself links
//! neither the dev PKI nor the web console.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tracenet_proto::v1::node_api_client::NodeApiClient;

pub mod demo;
mod founding;
mod gateway;

pub use gateway::DevGateway;

use tracenet_node::client::{ClientError, connect_local};
use tracenet_node::clock::Clock;
use tracenet_node::config::{
    ClientCertFiles, DirectoryConfig, HubConfig, ListenerConfig, LocalCertificatesConfig,
    MetricsConfig, NodeConfig, OutboxConfig, PeerConfig, Role, SecretariatPin, TlsFiles,
    VoterConfig,
};
use tracenet_node::country::CountryCode;
use tracenet_node::ids::NodeId;
use tracenet_node::server::{Listeners, Node, NodeError};
use tracenet_node::tls::{TlsError, TlsMaterial};
use tracenet_node::trace::TraceSettings;

/// Problems starting a dev federation.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// Generating or writing dev certificates failed.
    #[error("dev certificates: {0}")]
    Certs(#[from] tracenet_certs::CertError),
    /// A node failed to start or stop.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// A bad node id was given.
    #[error(transparent)]
    Id(#[from] tracenet_node::ids::IdError),
    /// TLS material could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A client could not connect.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A node index out of range or a node not running.
    #[error("{0}")]
    Usage(String),
}

/// One node of a dev federation.
#[derive(Debug)]
pub struct DevNode {
    /// Its id.
    pub id: NodeId,
    /// Its configuration.
    pub config: NodeConfig,
    /// Where its peer API listens.
    pub peer_addr: SocketAddr,
    /// Where its local API listens.
    pub local_addr: SocketAddr,
    /// Where its metrics endpoint (`/metrics`, `/healthz`, `/readyz`) listens, if its spec
    /// asked for one.
    pub metrics_addr: Option<SocketAddr>,
    /// Its certificate folder.
    pub cert_dir: PathBuf,
    running: Option<(CancellationToken, JoinHandle<Result<(), NodeError>>)>,
}

impl DevNode {
    /// Whether the node is serving.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Writes this node's configuration as a TOML file (for the CLI).
    pub fn write_config(&self, path: &Path) -> std::io::Result<()> {
        let c = &self.config;
        let q = |p: &Path| toml_string(&p.display().to_string());
        let mut text = format!(
            "# Development configuration of {id} (synthetic demo federation).\n\
             node_id = {id_q}\ncountry = \"{country}\"\nrole = \"{role}\"\ndata_dir = {data}\n{extra}\n\
             [peer_api]\nlisten = \"{peer}\"\n\n[local_api]\nlisten = \"{local}\"\n\n\
             [tls]\nca = {ca}\ncert = {cert}\nkey = {key}\n",
            id = c.node_id,
            id_q = toml_string(c.node_id.as_str()),
            country = c.country,
            role = c.role.as_str(),
            data = q(&c.data_dir),
            peer = c.peer_api.listen,
            local = c.local_api.listen,
            ca = q(&c.tls.ca),
            cert = q(&c.tls.cert),
            key = q(&c.tls.key),
            extra = [
                c.signing_key
                    .as_ref()
                    .map(|p| format!("signing_key = {}\n", q(p))),
                c.policy.as_ref().map(|p| format!("policy = {}\n", q(p))),
            ]
            .into_iter()
            .flatten()
            .collect::<String>(),
        );
        if let Some(a) = &c.admin {
            text.push_str(&format!(
                "\n[admin]\ncert = {}\nkey = {}\n",
                q(&a.cert),
                q(&a.key)
            ));
        }
        let l = &c.local_certificates;
        if !l.is_empty() {
            let list = |v: &[String]| {
                v.iter()
                    .map(|f| toml_string(f))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            text.push_str(&format!(
                "\n[local_certificates]\ngateway_fingerprints = [{}]\nadmin_fingerprints = [{}]\n",
                list(&l.gateway_fingerprints),
                list(&l.admin_fingerprints)
            ));
        }
        if let Some(h) = &c.hub.hub {
            text.push_str(&format!(
                "\n[hub]\nhub = {}\noutbound_only = {}\nrelay_all = {}\n",
                toml_string(h.as_str()),
                c.hub.outbound_only,
                c.hub.relay_all
            ));
        }
        if let Some(d) = &c.directory {
            text.push_str(&format!(
                "\n[directory]\ninitialise = {}\nheartbeat_ms = {}\nelection_timeout_ms = {}\nsnapshot_every = {}\nwrite_timeout_ms = {}\naudit_publish_ms = {}\n",
                d.initialise,
                d.heartbeat_ms,
                d.election_timeout_ms,
                d.snapshot_every,
                d.write_timeout_ms,
                d.audit_publish_ms
            ));
            text.push_str(&format!(
                "\n[directory.secretariat]\nnode_id = {}\ncert_fingerprint = {}\nsigning_public_key = {}\n",
                toml_string(d.secretariat.node_id.as_str()),
                toml_string(&d.secretariat.cert_fingerprint),
                toml_string(&d.secretariat.signing_public_key)
            ));
            for v in &d.voters {
                text.push_str(&format!(
                    "\n[[directory.voters]]\nnode_id = {}\nendpoint = {}\n",
                    toml_string(v.node_id.as_str()),
                    toml_string(&v.endpoint)
                ));
            }
        }
        for p in &c.peers {
            text.push_str(&format!(
                "\n[[peers]]\nnode_id = {}\nendpoint = {}\n",
                toml_string(p.node_id.as_str()),
                toml_string(&p.endpoint)
            ));
            if let Some(k) = &p.signing_public_key {
                text.push_str(&format!("signing_public_key = {}\n", toml_string(k)));
            }
        }
        std::fs::write(path, text)
    }
}

/// A TOML basic string with the characters TOML requires escaped.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// How to start one dev node.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Node id, e.g. "FRA-POL".
    pub id: String,
    /// Its sharing policy as TOML; `None` discloses nothing.
    pub policy: Option<String>,
    /// Regions it belongs to.
    pub regions: Vec<String>,
    /// Whether it answers trace requests automatically from its records.
    pub auto_answer: bool,
    /// Its role in the federation.
    pub role: Role,
    /// Whether it is a voter of the directory. When any node of a federation is, every node
    /// runs a directory replica; the first voter initialises the group.
    pub voter: bool,
    /// Directory log entries between snapshots.
    pub snapshot_every: u64,
    /// Its clock; the system clock when `None` (tests inject one to move time).
    pub clock: Option<Arc<dyn Clock>>,
    /// Whether it serves the metrics endpoint (on a loopback port of its own).
    pub metrics: bool,
    /// Its `[hub]` section (default: no hub).
    pub hub: HubConfig,
    /// Its member kind in the directory; `None`: a national agency (a State's node id), which
    /// an organisation's node id must not leave unset.
    pub kind: Option<tracenet_proto::v1::MemberKind>,
    /// A regional organisation's member States (ISO alpha-3).
    pub member_states: Vec<String>,
    /// For an organisation's node, the State of its seat (its configuration's `country`).
    pub seat: Option<String>,
    /// Whether it is its State's designated tracing node. A State with one node in the
    /// federation designates it anyway; a State with several designates none unless one spec
    /// says so.
    pub tracing_point: bool,
}

impl NodeSpec {
    /// A node without policy or regions.
    pub fn new(id: &str) -> NodeSpec {
        NodeSpec {
            id: id.to_owned(),
            policy: None,
            regions: Vec::new(),
            auto_answer: false,
            role: Role::National,
            voter: false,
            snapshot_every: 1000,
            clock: None,
            metrics: false,
            hub: HubConfig::default(),
            kind: None,
            member_states: Vec::new(),
            seat: None,
            tracing_point: false,
        }
    }

    /// An organisation's node (`ECOWAS-HUB`) of this kind, seated in `seat`, with these member
    /// States (a regional organisation's).
    pub fn organisation(
        mut self,
        kind: tracenet_proto::v1::MemberKind,
        seat: &str,
        member_states: &[&str],
    ) -> NodeSpec {
        self.kind = Some(kind);
        self.seat = Some(seat.to_owned());
        self.member_states = member_states.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Its State's designated tracing node.
    pub fn tracing_point(mut self) -> NodeSpec {
        self.tracing_point = true;
        self
    }

    /// A hub that is not a directory voter.
    pub fn as_hub(mut self) -> NodeSpec {
        self.role = Role::Hub;
        self
    }

    /// A member of `hub`; `outbound_only`: accepting no inbound connection (its messages wait in
    /// the hub's mailbox until it collects them).
    pub fn member_of_hub(mut self, hub: &str, outbound_only: bool) -> NodeSpec {
        self.hub.hub = NodeId::parse(hub).ok();
        self.hub.outbound_only = outbound_only;
        self
    }

    /// Sending every exchange message through its hub.
    pub fn relaying_all(mut self) -> NodeSpec {
        self.hub.relay_all = true;
        self
    }

    /// With this clock instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> NodeSpec {
        self.clock = Some(clock);
        self
    }

    /// Serving `/metrics`, `/healthz` and `/readyz` on a loopback port of its own.
    pub fn with_metrics(mut self) -> NodeSpec {
        self.metrics = true;
        self
    }

    /// A directory voter with this role (secretariat or hub).
    pub fn voter(mut self, role: Role) -> NodeSpec {
        self.role = role;
        self.voter = true;
        self
    }

    /// In these regions.
    pub fn in_regions(mut self, regions: &[&str]) -> NodeSpec {
        self.regions = regions.iter().map(|r| (*r).to_owned()).collect();
        self
    }

    /// Snapshotting the directory every `n` entries.
    pub fn snapshot_every(mut self, n: u64) -> NodeSpec {
        self.snapshot_every = n;
        self
    }

    /// Answering trace requests automatically from its records.
    pub fn auto_answering(mut self) -> NodeSpec {
        self.auto_answer = true;
        self
    }

    /// With a sharing policy.
    pub fn with_policy(mut self, toml: impl Into<String>) -> NodeSpec {
        self.policy = Some(toml.into());
        self
    }
}

/// The country in a node's configuration: its State, or an organisation's seat.
fn seat_of(id: &NodeId, spec: &NodeSpec) -> Result<CountryCode, DevnetError> {
    if let Some(c) = id.state() {
        return Ok(c);
    }
    let seat = spec.seat.as_deref().ok_or_else(|| {
        DevnetError::Usage(format!("{id} is an organisation's node: give its seat"))
    })?;
    CountryCode::parse(seat).map_err(|e| DevnetError::Usage(format!("seat of {id}: {e}")))
}

/// Whether `id` is its State's designated tracing node in a dev federation of `specs`: its spec
/// says so, or it is the only node of its State and no spec of that State says otherwise.
pub fn is_tracing_point(ids: &[NodeId], specs: &[NodeSpec], id: &NodeId) -> bool {
    let Some(state) = id.state() else {
        return false;
    };
    let of_state: Vec<usize> = (0..ids.len())
        .filter(|&i| ids[i].is_of_state(state))
        .collect();
    let marked: Vec<usize> = of_state
        .iter()
        .copied()
        .filter(|&i| specs.get(i).is_some_and(|s| s.tracing_point))
        .collect();
    match marked.as_slice() {
        [] => of_state.len() == 1,
        m => m.iter().any(|&i| ids[i] == *id),
    }
}

/// Nodes started in this process from freshly generated dev certificates.
#[derive(Debug)]
pub struct DevFederation {
    /// The folder holding certificates and data.
    pub dir: PathBuf,
    /// The nodes, in the order given.
    pub nodes: Vec<DevNode>,
    specs: Vec<NodeSpec>,
}

async fn bind_loopback() -> Result<TcpListener, NodeError> {
    TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|source| NodeError::Listen {
            addr: "127.0.0.1:0".into(),
            source,
        })
}

fn metrics_addr(l: &Listeners) -> Result<Option<SocketAddr>, NodeError> {
    l.metrics.as_ref().map(local_addr).transpose()
}

fn local_addr(l: &TcpListener) -> Result<SocketAddr, NodeError> {
    l.local_addr().map_err(|source| NodeError::Listen {
        addr: "127.0.0.1:0".into(),
        source,
    })
}

impl DevFederation {
    /// Generates certificates under `dir/certs` and starts one node per id on loopback ports,
    /// none with a sharing policy (they disclose nothing).
    pub async fn start(dir: &Path, ids: &[&str]) -> Result<DevFederation, DevnetError> {
        let specs: Vec<NodeSpec> = ids.iter().map(|id| NodeSpec::new(id)).collect();
        Self::start_specs(dir, &specs).await
    }

    /// Starts one node per spec, each with its policy and regions.
    pub async fn start_specs(dir: &Path, specs: &[NodeSpec]) -> Result<DevFederation, DevnetError> {
        let ids: Vec<NodeId> = specs
            .iter()
            .map(|s| NodeId::parse(&s.id))
            .collect::<Result<_, _>>()?;
        let cert_root = dir.join("certs");
        tracenet_certs::write_dev_federation(
            &cert_root,
            &ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
        )?;
        let mut listeners = Vec::new();
        for spec in specs {
            let peer = bind_loopback().await?;
            let local = bind_loopback().await?;
            let metrics = match spec.metrics {
                true => Some(bind_loopback().await?),
                false => None,
            };
            listeners.push((
                local_addr(&peer)?,
                local_addr(&local)?,
                Listeners {
                    peer,
                    local,
                    metrics,
                },
            ));
        }
        let voters: Vec<VoterConfig> = ids
            .iter()
            .zip(specs)
            .zip(&listeners)
            .filter(|((_, spec), _)| spec.voter)
            .map(|((id, _), (peer_addr, _, _))| VoterConfig {
                node_id: id.clone(),
                endpoint: peer_addr.to_string(),
            })
            .collect();
        // The founding secretariat, pinned on every node: the first secretariat voter (else the
        // first voter), with its dev certificate and signing key.
        let pin = match specs
            .iter()
            .position(|s| s.voter && s.role == Role::Secretariat)
            .or_else(|| specs.iter().position(|s| s.voter))
        {
            None => None,
            Some(i) => {
                let id = &ids[i];
                let pub_path = cert_root.join(id.as_str()).join("signing.pub");
                let key = std::fs::read_to_string(&pub_path)
                    .map_err(|e| DevnetError::Usage(format!("{}: {e}", pub_path.display())))?;
                Some(SecretariatPin {
                    node_id: id.clone(),
                    cert_fingerprint: tracenet_node::tls::fingerprint_of_pem_file(
                        &cert_root.join(id.as_str()).join("node.pem"),
                    )?,
                    signing_public_key: key.trim().to_owned(),
                })
            }
        };
        let mut nodes = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let cert_dir = cert_root.join(id.as_str());
            let mut peers = Vec::new();
            for ((other, (peer_addr, _, _)), spec) in ids.iter().zip(&listeners).zip(specs) {
                if other == id {
                    continue;
                }
                let pub_path = cert_root.join(other.as_str()).join("signing.pub");
                let key = std::fs::read_to_string(&pub_path)
                    .map_err(|e| DevnetError::Usage(format!("{}: {e}", pub_path.display())))?;
                peers.push(PeerConfig {
                    tracing_point: is_tracing_point(&ids, specs, other),
                    node_id: other.clone(),
                    endpoint: peer_addr.to_string(),
                    signing_public_key: Some(key.trim().to_owned()),
                    regions: spec.regions.clone(),
                    trace: TraceSettings {
                        routine_days: 30,
                        urgent_days: 7,
                        escalation_contact: format!("duty desk of {other} (synthetic)"),
                        auto_answer_from_records: false,
                    },
                });
            }
            let node_dir = dir.join(id.as_str());
            std::fs::create_dir_all(&node_dir)
                .map_err(|e| DevnetError::Usage(format!("{}: {e}", node_dir.display())))?;
            let policy = match &specs[i].policy {
                None => None,
                Some(text) => {
                    let path = node_dir.join("policy.toml");
                    std::fs::write(&path, text)
                        .map_err(|e| DevnetError::Usage(format!("{}: {e}", path.display())))?;
                    Some(path)
                }
            };
            let config = NodeConfig {
                node_id: id.clone(),
                country: seat_of(id, &specs[i])?,
                role: specs[i].role,
                data_dir: dir.join(id.as_str()).join("data"),
                peer_api: ListenerConfig::on(listeners[i].0),
                local_api: ListenerConfig::on(listeners[i].1),
                metrics: metrics_addr(&listeners[i].2)?.map(|listen| MetricsConfig { listen }),
                hub: HubConfig {
                    // Short, so tests of queued messages see the sender told soon.
                    reply_wait_ms: 2000,
                    ..specs[i].hub.clone()
                },
                tls: TlsFiles {
                    ca: cert_root.join("ca.pem"),
                    cert: cert_dir.join("node.pem"),
                    key: cert_dir.join("node.key"),
                },
                admin: Some(ClientCertFiles {
                    cert: cert_dir.join("admin.pem"),
                    key: cert_dir.join("admin.key"),
                }),
                // The dev gateway and admin certificates, the only ones its local API accepts.
                local_certificates: LocalCertificatesConfig {
                    gateway_fingerprints: vec![tracenet_node::tls::fingerprint_of_pem_file(
                        &cert_dir.join("gateway.pem"),
                    )?],
                    admin_fingerprints: vec![tracenet_node::tls::fingerprint_of_pem_file(
                        &cert_dir.join("admin.pem"),
                    )?],
                },
                peers,
                shutdown_grace_secs: 5,
                store_cache_mib: 16,
                signing_key: Some(cert_dir.join("signing.pk8")),
                policy,
                regions: specs[i].regions.clone(),
                fanout_deadline_ms: 3000,
                // Short, so retention tests see a purge soon after moving a node's clock.
                retention_sweep_ms: 200,
                // Short, so a watched serial recorded by a peer raises its alert within a second.
                watch_interval_ms: 500,
                trace: TraceSettings {
                    routine_days: 30,
                    urgent_days: 7,
                    escalation_contact: format!("duty desk of {id} (synthetic)"),
                    auto_answer_from_records: specs[i].auto_answer,
                },
                // Short back-off: dev federations restart nodes within seconds.
                outbox: OutboxConfig {
                    retry_base_ms: 50,
                    retry_max_ms: 500,
                },
                directory: pin.clone().map(|secretariat| DirectoryConfig {
                    voters: voters.clone(),
                    secretariat,
                    initialise: voters.first().is_some_and(|v| &v.node_id == id),
                    advertise: None,
                    // Loopback: short timers, so failover is quick.
                    heartbeat_ms: 100,
                    election_timeout_ms: 500,
                    snapshot_every: specs[i].snapshot_every,
                    write_timeout_ms: 3000,
                    audit_publish_ms: 60_000,
                    policy_history: 10,
                }),
            };
            config
                .check()
                .map_err(|e| DevnetError::Usage(e.to_string()))?;
            nodes.push(DevNode {
                id: id.clone(),
                peer_addr: listeners[i].0,
                local_addr: listeners[i].1,
                metrics_addr: metrics_addr(&listeners[i].2)?,
                config,
                cert_dir,
                running: None,
            });
        }
        let mut fed = DevFederation {
            dir: dir.to_owned(),
            nodes,
            specs: specs.to_vec(),
        };
        for (i, (_, _, l)) in listeners.into_iter().enumerate() {
            fed.serve(i, l)?;
        }
        Ok(fed)
    }

    fn node(&self, i: usize) -> Result<&DevNode, DevnetError> {
        self.nodes
            .get(i)
            .ok_or_else(|| DevnetError::Usage(format!("no node {i}")))
    }

    fn serve(&mut self, i: usize, listeners: Listeners) -> Result<(), DevnetError> {
        let node = self
            .nodes
            .get_mut(i)
            .ok_or_else(|| DevnetError::Usage(format!("no node {i}")))?;
        let prepared = match self.specs.get(i).and_then(|s| s.clock.clone()) {
            Some(clock) => Node::prepare_with_clock(node.config.clone(), clock)?,
            None => Node::prepare(node.config.clone())?,
        };
        let token = CancellationToken::new();
        let task = tokio::spawn(prepared.serve(listeners, token.clone()));
        node.running = Some((token, task));
        Ok(())
    }

    /// Stops node `i` gracefully and waits until its store is flushed and closed.
    pub async fn stop(&mut self, i: usize) -> Result<(), DevnetError> {
        let node = self
            .nodes
            .get_mut(i)
            .ok_or_else(|| DevnetError::Usage(format!("no node {i}")))?;
        let Some((token, task)) = node.running.take() else {
            return Err(DevnetError::Usage(format!(
                "node {} is not running",
                node.id
            )));
        };
        token.cancel();
        match task.await {
            Ok(r) => r?,
            Err(_) => return Err(DevnetError::Usage(format!("node {} task failed", node.id))),
        }
        Ok(())
    }

    /// Starts node `i` again on the same ports and data directory.
    pub async fn restart(&mut self, i: usize) -> Result<(), DevnetError> {
        let (peer, local, metrics) = {
            let n = self.node(i)?;
            if n.is_running() {
                return Err(DevnetError::Usage(format!("node {} is running", n.id)));
            }
            (n.peer_addr, n.local_addr, n.metrics_addr)
        };
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| NodeError::Listen {
                    addr: addr.to_string(),
                    source,
                })
        };
        let listeners = Listeners {
            peer: bind(peer).await?,
            local: bind(local).await?,
            metrics: match metrics {
                Some(addr) => Some(bind(addr).await?),
                None => None,
            },
        };
        self.serve(i, listeners)
    }

    /// The CA certificate path.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("certs").join("ca.pem")
    }

    /// TLS material for a certificate of node `i`: `"node"`, `"gateway"` or `"admin"`.
    pub fn material(&self, i: usize, kind: &str) -> Result<TlsMaterial, DevnetError> {
        let n = self.node(i)?;
        Ok(TlsMaterial::load_client(
            &self.ca_path(),
            &ClientCertFiles {
                cert: n.cert_dir.join(format!("{kind}.pem")),
                key: n.cert_dir.join(format!("{kind}.key")),
            },
        )?)
    }

    /// A local-API client for node `i`, authenticated as that node's administrator.
    pub async fn admin_client(&self, i: usize) -> Result<NodeApiClient<Channel>, DevnetError> {
        let n = self.node(i)?;
        let tls = self.material(i, "admin")?;
        Ok(connect_local(&n.local_addr.to_string(), &tls, &n.id).await?)
    }

    /// Stops every running node.
    pub async fn shutdown(mut self) -> Result<(), DevnetError> {
        let mut first_error = None;
        for i in 0..self.nodes.len() {
            if self.nodes[i].is_running()
                && let Err(e) = self.stop(i).await
            {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
