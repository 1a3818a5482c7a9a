//! What request handlers share: the node's identity, store, audit log, keys, policy, peer
//! connections and clock. Built once by [`crate::server`] and handed to each service.
//!
//! Only the drivers (services, workers, the `workflow`/`disclose`/`fanout` drivers) hold it;
//! the decisions they call take plain values (the roster view, the policy, the records read),
//! so they can be tested without any of this.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::audit::AuditLog;
use crate::client::PeerClients;
use crate::clock::Clock;
use crate::config::{RetryPolicy, Role};
use crate::country::CountryCode;
use crate::directory::replica::Directory;
use crate::envelope::{ReplayGuard, SigningKey};
use crate::ids::NodeId;
use crate::ledger::Ledger;
use crate::roster::Roster;
use crate::store::RecordStore;
use crate::trace::TraceSettings;

/// Shared state of a running node.
#[derive(Debug, Clone)]
pub struct NodeContext {
    /// This node's id.
    pub node_id: NodeId,
    /// The State it serves.
    pub country: CountryCode,
    /// Its role.
    pub role: Role,
    /// Its records.
    pub store: Arc<dyn RecordStore>,
    /// Its audit log.
    pub audit: Arc<AuditLog>,
    /// Its signing key.
    pub signing: Arc<SigningKey>,
    /// Request ids seen recently.
    pub replay: Arc<ReplayGuard>,
    /// The federation as this node knows it now: peers, their keys, regions and trace settings,
    /// and its own sharing policy in force (from the directory, or configuration before it).
    pub roster: Arc<Roster>,
    /// The directory replica, when the node is configured with one (set when serving starts).
    pub directory: Option<Arc<Directory>>,
    /// SHA-256 of this node's certificate, hex (what the directory lists for it).
    pub cert_fingerprint: String,
    /// Its connections to peers.
    pub peers: Arc<PeerClients>,
    /// How long federated calls wait for peers by default.
    pub fanout_deadline: Duration,
    /// Its clock.
    pub clock: Arc<dyn Clock>,
    /// Trace requests, outbox, received copies.
    pub ledger: Arc<Ledger>,
    /// Wakes the outbox worker when something is queued.
    pub outbox_wakeup: Arc<Notify>,
    /// Outbox back-off.
    pub retry: RetryPolicy,
    /// This node's published trace settings.
    pub trace_settings: TraceSettings,
    /// Its X25519 secret: opens what is sealed to it through hubs.
    pub sealing: Arc<crate::seal::SealingSecret>,
    /// Its `[hub]` section.
    pub hub: crate::config::HubConfig,
    /// The mailboxes it holds for outbound-only members, on a hub.
    pub mailbox: Option<crate::hub::mailbox::Mailbox>,
    /// The secure-aggregation rounds this node answered as a member.
    pub rounds: crate::peer::aggregation::RoundLog,
    /// Its officers' watch list and the alerts it raised.
    pub watches: Arc<crate::watch::WatchStore>,
}
