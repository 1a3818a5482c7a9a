//! The node's configuration: a typed TOML file, parsed and checked completely (including reading
//! the certificate files) before any port is bound, so a mistake stops the node at start-up with
//! a message naming the field instead of half-way through serving.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::country::CountryCode;
use crate::ids::NodeId;

/// Why a configuration cannot be used. Never retryable without editing the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this structure (the message names the field).
    #[error("config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause, with line and field.
        source: Box<toml::de::Error>,
    },
    /// The values parse but contradict each other or the certificates.
    #[error("config: {0}")]
    Invalid(String),
}

/// The role of a node in the federation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A national authority's node (the default).
    #[default]
    National,
    /// A regional organisation's hub, relaying and aggregating for its members.
    Hub,
    /// The federation secretariat, which admits members.
    Secretariat,
}

impl Role {
    /// Lowercase name as in the config file.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::National => "national",
            Role::Hub => "hub",
            Role::Secretariat => "secretariat",
        }
    }
}

/// A whole node configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's id, e.g. "FRA-POL"; must equal the identity in its certificate.
    pub node_id: NodeId,
    /// ISO 3166-1 alpha-3 code of the State this node serves; must match the node id for a
    /// State's node. For an organisation's node (e.g. `ECOWAS-HUB`), the State of its seat:
    /// the owner of any record it holds and of its configured policy.
    pub country: CountryCode,
    /// national (default), hub or secretariat.
    #[serde(default)]
    pub role: Role,
    /// Directory for the node's database; created if missing.
    pub data_dir: PathBuf,
    /// The listener other nodes call (mutual TLS, federation certificates).
    #[serde(default = "ListenerConfig::peer_default")]
    pub peer_api: ListenerConfig,
    /// The listener this node's gateway and admin CLI call (mutual TLS, own identities only).
    #[serde(default = "ListenerConfig::local_default")]
    pub local_api: ListenerConfig,
    /// This node's certificates.
    pub tls: TlsFiles,
    /// The administrator certificate the CLI uses to call this node's local API (optional).
    #[serde(default)]
    pub admin: Option<ClientCertFiles>,
    /// The gateway and admin certificates this node's local API accepts, by fingerprint
    /// (default: none). Together with those the node publishes in the directory, these are the
    /// only ones accepted; with neither, every local API call is refused.
    #[serde(default)]
    pub local_certificates: LocalCertificatesConfig,
    /// Peers known before the directory exists: id and peer API address.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// Seconds in-flight requests get to finish after a shutdown signal (default 10).
    #[serde(default = "default_grace")]
    pub shutdown_grace_secs: u64,
    /// Page cache of the record store, in MiB (default 64).
    #[serde(default = "default_cache")]
    pub store_cache_mib: u64,
    /// This node's Ed25519 signing key (PKCS#8 DER); created on first start if missing.
    /// Default: `<data_dir>/signing.pk8`.
    #[serde(default)]
    pub signing_key: Option<PathBuf>,
    /// This node's sharing policy (TOML). Without one the node discloses nothing.
    #[serde(default)]
    pub policy: Option<PathBuf>,
    /// Regions this node belongs to (used by peers' policies).
    #[serde(default)]
    pub regions: Vec<String>,
    /// Milliseconds a federated lookup or query waits for peers by default (default 3000).
    #[serde(default = "default_fanout")]
    pub fanout_deadline_ms: u64,
    /// Milliseconds between two sweeps purging received copies past their owner's retention
    /// (default 60000).
    #[serde(default = "default_retention_sweep")]
    pub retention_sweep_ms: u64,
    /// Milliseconds between two runs of the watch list (each watched value looked up across the
    /// federation again, an alert for every new hit; default 900000, a quarter of an hour).
    #[serde(default = "default_watch_interval")]
    pub watch_interval_ms: u64,
    /// This node's published trace service settings (response times, escalation contact).
    #[serde(default)]
    pub trace: crate::trace::TraceSettings,
    /// Retry schedule of the delivery outbox.
    #[serde(default)]
    pub outbox: OutboxConfig,
    /// The replicated directory. Without this section the node runs from its configured peers
    /// and policy file alone.
    #[serde(default)]
    pub directory: Option<DirectoryConfig>,
    /// The Prometheus scrape endpoint (`/metrics`, `/healthz`, `/readyz`, plain HTTP). Without
    /// this section no metrics listener is opened.
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
    /// This node's regional hub and how peers reach it (default: no hub, direct connections).
    #[serde(default)]
    pub hub: HubConfig,
}

/// The `[hub]` section: sealed relay through a regional hub (ARCHITECTURE.md "Hubs").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    /// The hub this node belongs to: a member with the hub role (default none). Published in the
    /// directory with `outbound_only`, so senders know how to reach this node.
    #[serde(default)]
    pub hub: Option<NodeId>,
    /// This node accepts no inbound connections (behind NAT or a firewall): peers send to it
    /// only through `hub`, which holds messages until this node collects them over its own
    /// outbound connection (default false).
    #[serde(default)]
    pub outbound_only: bool,
    /// Send every exchange message through `hub`, sealed, even to members that accept direct
    /// connections (default false: only to outbound-only members).
    #[serde(default)]
    pub relay_all: bool,
    /// On a hub: milliseconds a relayed call to an outbound-only member waits for that member
    /// to collect it and reply; after that the sender is told it is queued (default 10000).
    #[serde(default = "default_reply_wait")]
    pub reply_wait_ms: u64,
    /// This node's X25519 sealing key (32 raw bytes); created on first start if missing.
    /// Default: `<data_dir>/sealing.key`.
    #[serde(default)]
    pub sealing_key: Option<PathBuf>,
}

fn default_watch_interval() -> u64 {
    900_000
}

fn default_reply_wait() -> u64 {
    10_000
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            hub: None,
            outbound_only: false,
            relay_all: false,
            reply_wait_ms: default_reply_wait(),
            sealing_key: None,
        }
    }
}

/// The `[metrics]` section: where the plain-HTTP scrape endpoint listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the scrape listener (default `127.0.0.1:9464`: loopback, since it is served
    /// without TLS; expose it only to the monitoring network).
    #[serde(default = "default_metrics_listen")]
    pub listen: SocketAddr,
}

fn default_metrics_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}

/// A Raft voter of the directory, as every member's configuration lists it (the seed list).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VoterConfig {
    /// The voter's node id (a secretariat or hub node).
    pub node_id: NodeId,
    /// host:port of its peer API.
    pub endpoint: String,
}

/// The founding secretariat, pinned: the only node whose self-admission may found the directory,
/// the same on every member.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretariatPin {
    /// Its node id.
    pub node_id: NodeId,
    /// SHA-256 of its node certificate (DER), 64 hex digits (either case).
    pub cert_fingerprint: String,
    /// Its Ed25519 signing public key, 64 hex digits.
    pub signing_public_key: String,
}

/// The node's part in the replicated directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// The Raft voters (secretariat and hub nodes), the same list on every member. Every other
    /// member is a learner holding a full replica once the secretariat admits it.
    pub voters: Vec<VoterConfig>,
    /// The founding secretariat (`[directory.secretariat]`).
    pub secretariat: SecretariatPin,
    /// Create the directory's Raft group with these voters on first start. Set on exactly one
    /// voter, once; ignored when the group already exists (default false).
    #[serde(default)]
    pub initialise: bool,
    /// host:port other members reach this node's peer API at (default: the peer listener's
    /// bound address).
    #[serde(default)]
    pub advertise: Option<String>,
    /// Leader heartbeat interval in ms (default 200).
    #[serde(default = "default_heartbeat")]
    pub heartbeat_ms: u64,
    /// Shortest election timeout in ms (default 800); the longest is twice this. Failover after
    /// losing the leader takes 3-4 times this (openraft's leader lease is the longest timeout).
    #[serde(default = "default_election")]
    pub election_timeout_ms: u64,
    /// Log entries between snapshots (default 1000).
    #[serde(default = "default_snapshot_every")]
    pub snapshot_every: u64,
    /// How long a directory write may wait to be committed, in ms, before it is reported as not
    /// committed (no quorum) (default 5000).
    #[serde(default = "default_write_timeout")]
    pub write_timeout_ms: u64,
    /// How often, in ms, the node signs an audit checkpoint (when anything is new) and publishes
    /// it in the directory, where a truncated audit log is then detected (default 300000). It is
    /// also published at shutdown.
    #[serde(default = "default_audit_publish")]
    pub audit_publish_ms: u64,
    /// How many published policy versions the directory keeps per member, the latest included
    /// (default 10). A rule of the replicated state: the same on every node, like the pinned
    /// secretariat, or replicas would keep different histories.
    #[serde(default = "default_policy_history")]
    pub policy_history: usize,
}

fn default_heartbeat() -> u64 {
    200
}
fn default_election() -> u64 {
    800
}
fn default_snapshot_every() -> u64 {
    1000
}
fn default_write_timeout() -> u64 {
    5000
}
fn default_audit_publish() -> u64 {
    300_000
}
fn default_policy_history() -> usize {
    crate::directory::state::DEFAULT_POLICY_HISTORY
}

impl DirectoryConfig {
    /// Whether `node` is a configured voter.
    pub fn is_voter(&self, node: &NodeId) -> bool {
        self.voters.iter().any(|v| &v.node_id == node)
    }

    /// The pinned genesis every replica applies the directory's commands against.
    pub fn genesis(&self) -> Result<crate::directory::state::Genesis, ConfigError> {
        let s = &self.secretariat;
        let bad = |m: &str| ConfigError::Invalid(format!("directory.secretariat: {m}"));
        let fp = s.cert_fingerprint.trim().to_ascii_lowercase();
        if fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("cert_fingerprint must be a SHA-256 in hex (64 digits)"));
        }
        let key = crate::envelope::parse_public_key(&s.signing_public_key)
            .ok_or_else(|| bad("signing_public_key must be 64 hex digits"))?;
        Ok(crate::directory::state::Genesis {
            node_id: s.node_id.clone(),
            cert_fingerprint: fp,
            signing_key: key,
            policy_history: self.policy_history,
        })
    }

    fn check(&self, own: &NodeId) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(format!("directory: {m}")));
        if self.voters.is_empty() {
            return bad("voters must list at least one node".into());
        }
        let mut seen = std::collections::HashSet::new();
        for v in &self.voters {
            if !seen.insert(&v.node_id) {
                return bad(format!("voter {} is listed twice", v.node_id));
            }
            if v.endpoint.trim().is_empty() {
                return bad(format!("voter {} has no endpoint", v.node_id));
            }
        }
        self.genesis()?;
        if self.initialise && !self.is_voter(own) {
            return bad("only a voter may initialise the directory".into());
        }
        if self.heartbeat_ms == 0 || self.election_timeout_ms <= 2 * self.heartbeat_ms {
            return bad("election_timeout_ms must exceed twice heartbeat_ms".into());
        }
        if self.snapshot_every == 0
            || self.write_timeout_ms == 0
            || self.audit_publish_ms == 0
            || self.policy_history == 0
        {
            return bad(
                "snapshot_every, write_timeout_ms, audit_publish_ms and policy_history must be positive"
                    .into(),
            );
        }
        Ok(())
    }
}

/// `[local_certificates]`: the certificates of this node's own gateways and admin tools, by
/// SHA-256 fingerprint of the certificate (DER) in hex
/// (`openssl x509 -in cert.pem -outform der | sha256sum`).
/// A certificate the federation CA issued for this node's gateway or admin identity is accepted
/// on the local API only if its fingerprint is listed here or in this node's
/// `PublishLocalCertificates` entry of the directory, and is not revoked. Deny by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalCertificatesConfig {
    /// Fingerprints of this node's gateway certificates (default: none).
    #[serde(default)]
    pub gateway_fingerprints: Vec<String>,
    /// Fingerprints of this node's admin (CLI) certificates (default: none).
    #[serde(default)]
    pub admin_fingerprints: Vec<String>,
}

impl LocalCertificatesConfig {
    /// Whether no certificate is listed at all.
    pub fn is_empty(&self) -> bool {
        self.gateway_fingerprints.is_empty() && self.admin_fingerprints.is_empty()
    }
}

/// Retry schedule of the delivery outbox.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// Delay after the first failed attempt, in ms (default 1000); doubles on each failure.
    #[serde(default = "default_retry_base")]
    pub retry_base_ms: u64,
    /// Longest delay between attempts, in ms (default 300000).
    #[serde(default = "default_retry_max")]
    pub retry_max_ms: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            retry_base_ms: default_retry_base(),
            retry_max_ms: default_retry_max(),
        }
    }
}

fn default_retry_base() -> u64 {
    1000
}
fn default_retry_max() -> u64 {
    300_000
}

/// Back-off between delivery attempts, as the outbox worker applies it (from [`OutboxConfig`]).
/// Here rather than in `delivery` so the node context can hold it without importing the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failure, in ms.
    pub base_ms: u64,
    /// Longest delay, in ms.
    pub max_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_ms: default_retry_base(),
            max_ms: default_retry_max(),
        }
    }
}

/// Settings of one gRPC listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Largest accepted request message in bytes (default 4 MiB).
    #[serde(default = "default_max_message")]
    pub max_message_bytes: usize,
    /// Longest a request may run, in seconds, before it is cancelled (default 30).
    #[serde(default = "default_timeout")]
    pub request_timeout_secs: u64,
    /// Most concurrent requests on one connection (default 64).
    #[serde(default = "default_streams")]
    pub max_concurrent_per_connection: usize,
}

impl ListenerConfig {
    fn with_addr(listen: &str) -> ListenerConfig {
        ListenerConfig {
            listen: listen
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0))),
            max_message_bytes: default_max_message(),
            request_timeout_secs: default_timeout(),
            max_concurrent_per_connection: default_streams(),
        }
    }
    fn peer_default() -> ListenerConfig {
        Self::with_addr("0.0.0.0:7400")
    }
    fn local_default() -> ListenerConfig {
        Self::with_addr("127.0.0.1:7401")
    }
    /// A listener on `addr` with default limits.
    pub fn on(addr: SocketAddr) -> ListenerConfig {
        ListenerConfig {
            listen: addr,
            ..Self::peer_default()
        }
    }
    /// The request timeout as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

/// The node's own certificate files (PEM).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The federation CA certificate that every peer certificate must chain to.
    pub ca: PathBuf,
    /// This node's certificate.
    pub cert: PathBuf,
    /// This node's private key.
    pub key: PathBuf,
}

/// A client certificate and key (PEM).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCertFiles {
    /// The certificate.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// A peer known from configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The peer's node id.
    pub node_id: NodeId,
    /// host:port of the peer's peer API.
    pub endpoint: String,
    /// The peer's Ed25519 public signing key, hex. Without it the peer's requests are refused.
    #[serde(default)]
    pub signing_public_key: Option<String>,
    /// Regions the peer belongs to.
    #[serde(default)]
    pub regions: Vec<String>,
    /// The peer's published trace service settings (used for due dates of requests to it).
    #[serde(default)]
    pub trace: crate::trace::TraceSettings,
    /// Whether the peer is its State's designated tracing node (receives the trace requests
    /// sent to that State), until the directory holds members and its designations apply. At
    /// most one peer per State; never an organisation's node.
    #[serde(default)]
    pub tracing_point: bool,
}

fn default_fanout() -> u64 {
    3000
}
fn default_retention_sweep() -> u64 {
    60_000
}
fn default_grace() -> u64 {
    10
}
fn default_cache() -> u64 {
    64
}
fn default_max_message() -> usize {
    4 * 1024 * 1024
}
fn default_timeout() -> u64 {
    30
}
fn default_streams() -> usize {
    64
}

impl NodeConfig {
    /// Reads, parses and checks a config file. Relative paths are taken from the file's folder.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut cfg: NodeConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.resolve_paths(base);
        cfg.check()?;
        Ok(cfg)
    }

    /// Makes relative paths relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.data_dir);
        fix(&mut self.tls.ca);
        fix(&mut self.tls.cert);
        fix(&mut self.tls.key);
        if let Some(p) = self.signing_key.as_mut() {
            fix(p);
        }
        if let Some(p) = self.policy.as_mut() {
            fix(p);
        }
        if let Some(a) = self.admin.as_mut() {
            fix(&mut a.cert);
            fix(&mut a.key);
        }
    }

    /// Where the sealing key lives (configured or default).
    pub fn sealing_key_path(&self) -> PathBuf {
        self.hub
            .sealing_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join("sealing.key"))
    }

    /// Where the signing key is (configured or default).
    pub fn signing_key_path(&self) -> PathBuf {
        self.signing_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join("signing.pk8"))
    }

    /// Checks what the types cannot: consistency between fields.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.hub.hub.as_ref() == Some(&self.node_id) {
            return Err(ConfigError::Invalid(
                "hub: a node cannot be its own hub".into(),
            ));
        }
        if (self.hub.outbound_only || self.hub.relay_all) && self.hub.hub.is_none() {
            return Err(ConfigError::Invalid(
                "hub: outbound_only and relay_all need a hub".into(),
            ));
        }
        // A State's node belongs to its State; an organisation's node names the State whose
        // law its local records and default policy fall under (its seat) in `country`.
        if let Some(state) = self.node_id.state()
            && state != self.country
        {
            return Err(ConfigError::Invalid(format!(
                "node_id {} does not belong to country {}",
                self.node_id, self.country
            )));
        }
        for l in [&self.peer_api, &self.local_api] {
            if l.max_message_bytes < 1024 {
                return Err(ConfigError::Invalid(
                    "max_message_bytes must be at least 1024".into(),
                ));
            }
            if self.outbox.retry_base_ms == 0
                || self.outbox.retry_max_ms < self.outbox.retry_base_ms
            {
                return Err(ConfigError::Invalid(
                    "outbox: retry_base_ms must be positive and at most retry_max_ms".into(),
                ));
            }
            if l.request_timeout_secs == 0 || l.max_concurrent_per_connection == 0 {
                return Err(ConfigError::Invalid(
                    "request_timeout_secs and max_concurrent_per_connection must be positive"
                        .into(),
                ));
            }
        }
        if self.watch_interval_ms == 0 {
            // Zero would re-run every watched lookup back to back against every peer.
            return Err(ConfigError::Invalid(
                "watch_interval_ms must be positive".into(),
            ));
        }
        if let Some(d) = &self.directory {
            d.check(&self.node_id)?;
        }
        let l = &self.local_certificates;
        for f in l.gateway_fingerprints.iter().chain(&l.admin_fingerprints) {
            if f.len() != 64 || !f.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::Invalid(format!(
                    "local_certificates: {f:?} is not a SHA-256 fingerprint (64 hexadecimal digits)"
                )));
            }
        }
        let mut tracing_points = std::collections::HashSet::new();
        for p in &self.peers {
            if p.tracing_point {
                let Some(state) = p.node_id.state() else {
                    return Err(ConfigError::Invalid(format!(
                        "peers: {} is an organisation's node; only a State's node is a tracing point",
                        p.node_id
                    )));
                };
                if !tracing_points.insert(state) {
                    return Err(ConfigError::Invalid(format!(
                        "peers: more than one tracing_point for {state}"
                    )));
                }
            }
            if let Some(k) = &p.signing_public_key
                && crate::envelope::parse_public_key(k).is_none()
            {
                return Err(ConfigError::Invalid(format!(
                    "peers: signing_public_key of {} is not 64 hexadecimal digits",
                    p.node_id
                )));
            }
            if p.node_id == self.node_id {
                return Err(ConfigError::Invalid(format!(
                    "peers lists this node itself ({})",
                    p.node_id
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
node_id = "FRA-POL"
country = "FRA"
data_dir = "data"
[tls]
ca = "certs/ca.pem"
cert = "certs/FRA-POL/node.pem"
key = "certs/FRA-POL/node.key"
"#;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn minimal_config_gets_defaults_and_resolved_paths() {
        let (dir, path) = write(MINIMAL);
        let cfg = NodeConfig::load(&path).unwrap();
        assert_eq!(cfg.role, Role::National);
        assert_eq!(cfg.peer_api.listen.port(), 7400);
        assert_eq!(cfg.local_api.listen.to_string(), "127.0.0.1:7401");
        assert_eq!(cfg.peer_api.max_message_bytes, 4 * 1024 * 1024);
        assert_eq!(cfg.data_dir, dir.path().join("data"));
        assert_eq!(cfg.tls.ca, dir.path().join("certs/ca.pem"));
        assert!(
            cfg.metrics.is_none(),
            "no metrics listener unless configured"
        );
    }

    #[test]
    fn the_watch_interval_defaults_to_a_quarter_of_an_hour_and_is_positive() {
        let (_dir, path) = write(MINIMAL);
        assert_eq!(NodeConfig::load(&path).unwrap().watch_interval_ms, 900_000);
        let (_dir, path) = write(&format!("watch_interval_ms = 60000\n{MINIMAL}"));
        assert_eq!(NodeConfig::load(&path).unwrap().watch_interval_ms, 60_000);
        let (_dir, path) = write(&format!("watch_interval_ms = 0\n{MINIMAL}"));
        assert!(NodeConfig::load(&path).is_err());
    }

    #[test]
    fn metrics_listen_defaults_to_loopback_and_is_checked() {
        let (_dir, path) = write(&format!("{MINIMAL}\n[metrics]\n"));
        let cfg = NodeConfig::load(&path).unwrap();
        assert_eq!(cfg.metrics.unwrap().listen.to_string(), "127.0.0.1:9464");
        let (_dir, path) = write(&format!("{MINIMAL}\n[metrics]\nlisten = \"127.0.0.1:0\"\n"));
        assert_eq!(
            NodeConfig::load(&path)
                .unwrap()
                .metrics
                .unwrap()
                .listen
                .port(),
            0
        );
        let (_dir, path) = write(&format!("{MINIMAL}\n[metrics]\nlisten = \"nowhere\"\n"));
        assert!(NodeConfig::load(&path).is_err());
        let (_dir, path) = write(&format!("{MINIMAL}\n[metrics]\nport = 1\n"));
        assert!(NodeConfig::load(&path).is_err());
    }

    #[test]
    fn the_example_config_parses() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/examples/node.toml"
        ));
        let cfg = NodeConfig::load(path).unwrap();
        assert_eq!(cfg.node_id.as_str(), "FRA-POL");
        assert_eq!(cfg.peers.len(), 2);
        assert_eq!(cfg.peers[0].trace.urgent_days, 5);
        assert_eq!(cfg.trace.routine_days, 30);
        assert_eq!(cfg.regions, vec!["SYN-WEST".to_string()]);
        let d = cfg.directory.unwrap();
        assert_eq!(d.voters.len(), 3);
        assert!(!d.initialise);
        assert_eq!(d.heartbeat_ms, 200);
        assert_eq!(cfg.local_certificates.gateway_fingerprints.len(), 1);
        assert_eq!(cfg.local_certificates.admin_fingerprints.len(), 1);
        assert_eq!(cfg.metrics.unwrap().listen.to_string(), "127.0.0.1:9464");
    }

    #[test]
    fn local_certificates_default_to_none_and_must_be_fingerprints() {
        let (_dir, path) = write(MINIMAL);
        let cfg = NodeConfig::load(&path).unwrap();
        assert!(cfg.local_certificates.is_empty(), "deny by default");
        let bad = format!("{MINIMAL}\n[local_certificates]\ngateway_fingerprints = [\"abc\"]\n");
        let (_dir, path) = write(&bad);
        let err = NodeConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("local_certificates"), "{err}");
    }

    #[test]
    fn directory_settings_are_checked() {
        let own = NodeId::parse("FRA-POL").unwrap();
        let voter = |id: &str| VoterConfig {
            node_id: NodeId::parse(id).unwrap(),
            endpoint: "x.example.test:1".into(),
        };
        let mut d = DirectoryConfig {
            voters: vec![voter("CHE-SEC")],
            secretariat: SecretariatPin {
                node_id: NodeId::parse("CHE-SEC").unwrap(),
                cert_fingerprint: "AB".repeat(32),
                signing_public_key: "07".repeat(32),
            },
            initialise: false,
            advertise: None,
            heartbeat_ms: 100,
            election_timeout_ms: 500,
            snapshot_every: 10,
            write_timeout_ms: 1000,
            audit_publish_ms: 60_000,
            policy_history: 10,
        };
        assert!(d.check(&own).is_ok());
        d.initialise = true;
        assert!(d.check(&own).is_err(), "only a voter initialises");
        d.initialise = false;
        d.voters.push(voter("CHE-SEC"));
        assert!(d.check(&own).is_err(), "duplicate voter");
        d.voters.pop();
        d.election_timeout_ms = 150;
        assert!(d.check(&own).is_err(), "election timeout too short");
        d.election_timeout_ms = 500;
        assert_eq!(d.genesis().unwrap().cert_fingerprint, "ab".repeat(32));
        d.secretariat.cert_fingerprint = "ab".into();
        assert!(d.check(&own).is_err(), "bad pinned fingerprint");
        d.secretariat.cert_fingerprint = "ab".repeat(32);
        d.secretariat.signing_public_key = "zz".into();
        assert!(d.check(&own).is_err(), "bad pinned key");
        d.secretariat.signing_public_key = "07".repeat(32);
        d.voters.clear();
        assert!(d.check(&own).is_err(), "no voters");
    }

    #[test]
    fn mistakes_name_the_field() {
        let (_d, path) = write(&MINIMAL.replace("FRA-POL\"", "fra-pol\""));
        let err = NodeConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("node_id") || err.contains("fra-pol"), "{err}");

        let (_d, path) = write(&format!("{MINIMAL}\nlisten_everywhere = true\n"));
        let err = NodeConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("listen_everywhere"), "{err}");

        let (_d, path) = write(&MINIMAL.replace("country = \"FRA\"", "country = \"DEU\""));
        let err = NodeConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("does not belong"), "{err}");

        let err = NodeConfig::load(Path::new("/nonexistent/node.toml")).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
    }
}
