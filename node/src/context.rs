//! What request handlers share: the node's identity, its store, its peer connections and its
//! clock. Built once by [`crate::server`] and handed to each service.

use std::sync::Arc;

use crate::client::PeerClients;
use crate::clock::Clock;
use crate::config::Role;
use crate::country::CountryCode;
use crate::ids::NodeId;
use crate::store::RecordStore;

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
    /// Its connections to peers.
    pub peers: Arc<PeerClients>,
    /// Its clock.
    pub clock: Arc<dyn Clock>,
}
