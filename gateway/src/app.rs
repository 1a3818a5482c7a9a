//! The gateway's shared state: configuration, the node link, the store, login throttling and
//! running import jobs. One `App` is built by `run` and shared (behind an `Arc`) by every
//! handler of the console and the API.

use std::sync::{Arc, Mutex};

use crate::auth::throttle::Throttle;
use crate::config::GatewayConfig;
use crate::jobs::Jobs;
use crate::node::NodeLink;
use crate::store::GatewayStore;

/// Where the current time comes from (tests inject a fixed or stepped clock).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock, in Unix seconds.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    })
}

/// State shared by all handlers.
pub struct App {
    /// The configuration in force.
    pub cfg: GatewayConfig,
    /// The node's local API.
    pub node: NodeLink,
    /// Users, sessions, tokens, access log.
    pub store: GatewayStore,
    /// Failed-login bookkeeping.
    pub throttle: Mutex<Throttle>,
    /// Bounds the password verifications running at once (each takes ~19 MiB and a core).
    pub login_gate: crate::auth::LoginGate,
    /// Import jobs in progress or finished.
    pub jobs: Jobs,
    /// Whether cookies get the `Secure` attribute (served over HTTPS).
    pub secure_cookies: bool,
    /// The current time.
    pub clock: Clock,
    /// Requests counted per route and status (served on `[metrics] listen`).
    pub metrics: Arc<crate::metrics::GatewayMetrics>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("node", &self.cfg.node.node_id)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Unix seconds now.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// The node's id (e.g. `FRA-POL`).
    pub fn node_id(&self) -> &str {
        self.cfg.node.node_id.as_str()
    }

    /// The node's State (ISO 3166 alpha-3); empty for an organisation's node.
    pub fn country(&self) -> String {
        self.cfg
            .node
            .node_id
            .state()
            .map(|c| c.to_string())
            .unwrap_or_default()
    }
}
