//! Gateways in front of dev federation nodes, for the demo and the tests: each is a real
//! `tracenet-gateway` serving HTTP on loopback and reaching its node's local API over mutual TLS
//! with the node's dev gateway certificate.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracenet_gateway::auth::{Role, password};
use tracenet_gateway::config::{GatewayConfig, LoginConfig, NodeLink, SessionConfig};
use tracenet_gateway::i18n::Lang;
use tracenet_gateway::store::User;
use tracenet_gateway::{App, GatewayStartError, app};

use super::{DevFederation, DevnetError};

/// A running gateway.
#[derive(Debug)]
pub struct DevGateway {
    /// Its base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// Its shared state (users and tokens can be added directly).
    pub app: Arc<App>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), GatewayStartError>>,
}

fn gw_err(e: impl std::fmt::Display) -> DevnetError {
    DevnetError::Usage(format!("gateway: {e}"))
}

/// The agency kind a dev node id suggests (`…-CUS` customs, `…-BOR` border guard, else police).
fn agency_of(node_id: &str) -> &'static str {
    match node_id.rsplit('-').next() {
        Some("CUS") => "customs",
        Some("BOR") => "border_guard",
        _ => "police",
    }
}

impl DevFederation {
    /// Starts a gateway for node `i` on `listen` (port 0 picks one), keeping its store in
    /// `data_dir`, with the given clock.
    pub async fn start_gateway(
        &self,
        i: usize,
        listen: SocketAddr,
        data_dir: &Path,
        clock: app::Clock,
    ) -> Result<DevGateway, DevnetError> {
        let n = self.node(i)?;
        let listener = TcpListener::bind(listen).await.map_err(gw_err)?;
        let addr = listener.local_addr().map_err(gw_err)?;
        let cfg = GatewayConfig {
            listen: addr,
            data_dir: data_dir.to_owned(),
            node: NodeLink {
                node_id: n.id.clone(),
                address: n.local_addr.to_string(),
                ca: self.ca_path(),
                cert: n.cert_dir.join("gateway.pem"),
                key: n.cert_dir.join("gateway.key"),
            },
            tls: None,
            session: SessionConfig::default(),
            login: LoginConfig::default(),
            default_language: Lang::En,
            agency_kind: agency_of(&n.id.to_string()).into(),
            federated_deadline_ms: 3000,
            metrics: None,
        };
        cfg.check().map_err(gw_err)?;
        let app = tracenet_gateway::build(cfg, clock).map_err(gw_err)?;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(tracenet_gateway::run(
            app.clone(),
            listener,
            shutdown.clone(),
        ));
        Ok(DevGateway {
            url: format!("http://{addr}"),
            app,
            shutdown,
            task,
        })
    }
}

impl DevGateway {
    /// Adds a console user.
    pub async fn add_user(
        &self,
        username: &str,
        secret: &str,
        roles: &[Role],
    ) -> Result<(), DevnetError> {
        let pw = secret.to_owned();
        let hash = tokio::task::spawn_blocking(move || password::hash(&pw))
            .await
            .map_err(gw_err)?
            .map_err(gw_err)?;
        self.app
            .store
            .add_user(&User {
                username: username.into(),
                roles: roles.to_vec(),
                password_hash: hash,
                language: None,
                disabled: false,
                created_at: self.app.now(),
            })
            .await
            .map_err(gw_err)
    }

    /// Creates an API token with these roles and returns it.
    pub async fn add_token(&self, name: &str, roles: &[Role]) -> Result<String, DevnetError> {
        tracenet_gateway::web::create_token(&self.app, "devnet", name, roles.to_vec())
            .await
            .map_err(gw_err)
    }

    /// Stops serving and waits for the server to finish.
    pub async fn stop(self) -> Result<(), DevnetError> {
        self.shutdown.cancel();
        match self.task.await {
            Ok(r) => r.map_err(gw_err),
            Err(e) => Err(gw_err(e)),
        }
    }
}
