//! Outgoing connections: gRPC channels to peers' peer APIs (authenticated with this node's
//! certificate, checking that the server is the node we meant to reach) and to a node's local API
//! (for the CLI, the demo and the gateway).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tracenet_proto::v1::directory_raft_client::DirectoryRaftClient;
use tracenet_proto::v1::node_api_client::NodeApiClient;
use tracenet_proto::v1::peer_exchange_client::PeerExchangeClient;

use crate::config::HubConfig;
use crate::hub::channel::{Carrier, PeerChannel, SealedRoute, Sealer};
use crate::hub::routing::{Route, route};
use crate::ids::NodeId;
use crate::roster::Roster;
use crate::tls::TlsMaterial;

/// How long dialling may take before the call fails.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The address is not usable. Not retryable without fixing configuration.
    #[error("invalid endpoint '{0}'")]
    InvalidEndpoint(String),
    /// Connecting failed (refused, unreachable, TLS refused). Retrying later may help.
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        /// Where we dialled.
        endpoint: String,
        /// The cause.
        source: tonic::transport::Error,
    },
    /// No address is known for this node. Not retryable until it is configured.
    #[error("no endpoint known for node {0}")]
    UnknownPeer(NodeId),
    /// The node is reached through a hub that cannot carry the message now. Retryable once the
    /// directory lists what is missing.
    #[error("{0}")]
    Route(crate::hub::routing::RouteError),
    /// The directory says this node holds the peer's mailbox, but it runs without one (not
    /// started as a hub). Not retryable until the node runs with the hub role.
    #[error("{0} collects its messages from this node, which holds no mailbox")]
    NoMailbox(NodeId),
}

fn endpoint(addr: &str, tls: &TlsMaterial, server_dns: &str) -> Result<Endpoint, ClientError> {
    Endpoint::from_shared(format!("https://{addr}"))
        .map_err(|_| ClientError::InvalidEndpoint(addr.to_owned()))?
        .tls_config(tls.client_config(server_dns))
        .map_err(|_| ClientError::InvalidEndpoint(addr.to_owned()))
        .map(|e| {
            e.tcp_nodelay(true)
                .connect_timeout(CONNECT_TIMEOUT)
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_while_idle(true)
        })
}

/// Dials `node` at `addr` and completes the TLS handshake.
pub async fn connect(addr: &str, tls: &TlsMaterial, node: &NodeId) -> Result<Channel, ClientError> {
    endpoint(addr, tls, &node.dns_name())?
        .connect()
        .await
        .map_err(|source| ClientError::Connect {
            endpoint: addr.to_owned(),
            source,
        })
}

/// Connects to the local API of node `node` at `addr` with a gateway or admin certificate.
pub async fn connect_local(
    addr: &str,
    tls: &TlsMaterial,
    node: &NodeId,
) -> Result<NodeApiClient<Channel>, ClientError> {
    Ok(NodeApiClient::new(connect(addr, tls, node).await?))
}

/// Connects to the peer API of `node` at `addr` with a node certificate.
pub async fn connect_peer(
    addr: &str,
    tls: &TlsMaterial,
    node: &NodeId,
) -> Result<PeerExchangeClient<Channel>, ClientError> {
    Ok(PeerExchangeClient::new(connect(addr, tls, node).await?))
}

/// Connects to the directory's Raft service of `node` at `addr` with a node certificate.
pub async fn connect_directory(
    addr: &str,
    tls: &TlsMaterial,
    node: &NodeId,
) -> Result<DirectoryRaftClient<Channel>, ClientError> {
    Ok(DirectoryRaftClient::new(connect(addr, tls, node).await?))
}

/// Channels to the peers this node knows (from its [`Roster`]), created lazily and reused: one
/// HTTP/2 connection per peer carries all concurrent calls. A peer that moved gets a new channel;
/// a peer that left the roster (suspended, revoked) cannot be dialled.
#[derive(Debug)]
pub struct PeerClients {
    tls: TlsMaterial,
    roster: Arc<Roster>,
    channels: Mutex<HashMap<NodeId, (String, Channel)>>,
    hubs: Option<(Arc<Sealer>, HubConfig)>,
    own_mailbox: Option<crate::hub::mailbox::Mailbox>,
}

impl PeerClients {
    /// Peers reachable with this node's TLS material at the addresses the roster gives.
    pub fn new(tls: TlsMaterial, roster: Arc<Roster>) -> PeerClients {
        PeerClients {
            tls,
            roster,
            channels: Mutex::new(HashMap::new()),
            hubs: None,
            own_mailbox: None,
        }
    }

    /// On a hub: calls to its own outbound-only members are held in `mailbox` for them to
    /// collect (see [`crate::hub::routing::Route::OwnMailbox`]).
    pub fn with_mailbox(mut self, mailbox: Option<crate::hub::mailbox::Mailbox>) -> PeerClients {
        self.own_mailbox = mailbox;
        self
    }

    /// Reaches peers through hubs where the directory or `cfg` says so (see
    /// [`crate::hub::routing`]), sealing with `sealer`.
    pub fn with_hubs(mut self, sealer: Arc<Sealer>, cfg: HubConfig) -> PeerClients {
        self.hubs = Some((sealer, cfg));
        self
    }

    /// The ids of the active peers, sorted.
    pub fn known(&self) -> Vec<NodeId> {
        self.roster.view().peer_ids()
    }

    /// The active peers a federated lookup or query asks, sorted: every one but hubs, which
    /// hold no records of their own (asking one would only tell it what is looked for).
    pub fn record_holders(&self) -> Vec<NodeId> {
        let view = self.roster.view();
        view.peer_ids()
            .into_iter()
            .filter(|p| !view.hubs.hubs.contains(p))
            .collect()
    }

    /// A channel to `node` at `addr`, reused while the address stays the same.
    pub fn channel(&self, node: &NodeId, addr: &str) -> Result<Channel, ClientError> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, ch)) = channels.get(node)
            && at == addr
        {
            return Ok(ch.clone());
        }
        let ch = endpoint(addr, &self.tls, &node.dns_name())?.connect_lazy();
        channels.insert(node.clone(), (addr.to_owned(), ch.clone()));
        Ok(ch)
    }

    /// What this node seals with, when it reaches peers through hubs.
    pub fn sealer(&self) -> Option<&Arc<Sealer>> {
        self.hubs.as_ref().map(|(s, _)| s)
    }

    /// A client for `peer`, direct or through a hub; the connection is made on first use.
    pub fn get(&self, peer: &NodeId) -> Result<PeerExchangeClient<PeerChannel>, ClientError> {
        let addr = |n: &NodeId| {
            self.roster
                .endpoint(n)
                .ok_or_else(|| ClientError::UnknownPeer(n.clone()))
        };
        let Some((sealer, cfg)) = &self.hubs else {
            return Ok(PeerExchangeClient::new(PeerChannel::Direct(
                self.channel(peer, &addr(peer)?)?,
            )));
        };
        let view = self.roster.view();
        match route(&view, sealer.own(), cfg, peer).map_err(ClientError::Route)? {
            Route::Direct => Ok(PeerExchangeClient::new(PeerChannel::Direct(
                self.channel(peer, &addr(peer)?)?,
            ))),
            Route::ViaHub { hub, recipient_key } => {
                let hub_channel = self.channel(&hub, &addr(&hub)?)?;
                Ok(PeerExchangeClient::new(PeerChannel::Sealed(Arc::new(
                    SealedRoute {
                        sealer: sealer.clone(),
                        carrier: Carrier::Hub(hub_channel),
                        recipient: peer.clone(),
                        recipient_key,
                    },
                ))))
            }
            Route::OwnMailbox { recipient_key } => {
                let mailbox = self
                    .own_mailbox
                    .clone()
                    .ok_or_else(|| ClientError::NoMailbox(peer.clone()))?;
                Ok(PeerExchangeClient::new(PeerChannel::Sealed(Arc::new(
                    SealedRoute {
                        sealer: sealer.clone(),
                        carrier: Carrier::OwnMailbox {
                            mailbox,
                            wait: std::time::Duration::from_millis(cfg.reply_wait_ms),
                        },
                        recipient: peer.clone(),
                        recipient_key,
                    },
                ))))
            }
        }
    }
}
