//! `TestFederation`: the integration-test harness. Starts N real nodes in this process on
//! loopback port 0, with temporary data directories and freshly generated development
//! certificates, and offers clients with any certificate (including the wrong ones) so tests can
//! exercise real mutual TLS on real sockets. Waiting is on conditions (health checks), never on
//! fixed sleeps.

#![forbid(unsafe_code)]

pub mod bench;
pub mod gateway;
pub mod webdriver;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tempfile::TempDir;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{
    Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig,
};
pub use tracenet_devnet::NodeSpec;
use tracenet_devnet::{DevFederation, DevNode};
use tracenet_node::envelope::SigningKey;
use tracenet_proto::v1::hub_relay_client::HubRelayClient;
use tracenet_proto::v1::node_api_client::NodeApiClient;
use tracenet_proto::v1::peer_exchange_client::PeerExchangeClient;
use tracenet_proto::v1::peer_exchange_server::{PeerExchange, PeerExchangeServer};

/// Node ids used by the harness, in order (synthetic agencies).
pub const NODE_IDS: &[&str] = &[
    "FRA-POL", "DEU-CUS", "ITA-POL", "ESP-GCV", "NLD-KMR", "BEL-FPJ", "AUT-BKA", "POL-SG",
];

/// Longest any `wait_for_*` waits before failing the test.
pub const WAIT_LIMIT: Duration = Duration::from_secs(20);

/// Which certificate a test client presents.
#[derive(Debug, Clone)]
pub enum ClientCert {
    /// No client certificate at all.
    None,
    /// Node `i`'s own certificate of a kind: "node", "gateway" or "admin".
    Of(usize, &'static str),
    /// A certificate from `certs/negative/`: "rogue-node" or "expired-node".
    Negative(&'static str),
}

/// A running federation for one test.
#[derive(Debug)]
pub struct TestFederation {
    /// The nodes (stop/restart through it).
    pub fed: DevFederation,
    _dir: TempDir,
}

/// A certificate and its key, PEM.
type PemPair = (Vec<u8>, Vec<u8>);

/// Harness failures; tests unwrap them.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

impl TestFederation {
    /// Starts `n` nodes without sharing policies and waits until each is ready.
    pub async fn start(n: usize) -> Result<TestFederation, Error> {
        let ids = NODE_IDS.get(..n).ok_or("too many nodes")?;
        let specs: Vec<NodeSpec> = ids.iter().map(|id| NodeSpec::new(id)).collect();
        Self::start_specs(&specs).await
    }

    /// Starts one node per spec and waits until each answers its health check.
    pub async fn start_specs(specs: &[NodeSpec]) -> Result<TestFederation, Error> {
        tracenet_node::tls::install_crypto_provider();
        let dir = tempfile::Builder::new()
            .prefix("tracenet-test-")
            .tempdir()?;
        let fed = DevFederation::start_specs(dir.path(), specs).await?;
        let t = TestFederation { fed, _dir: dir };
        for i in 0..specs.len() {
            t.wait_for_ready(i).await?;
        }
        Ok(t)
    }

    /// Node `i`'s Ed25519 signing key (to forge or replay requests in tests).
    pub fn signing_key(&self, i: usize) -> Result<SigningKey, Error> {
        let n = self.node(i);
        Ok(SigningKey::load(
            &n.cert_dir.join("signing.pk8"),
            n.id.clone(),
        )?)
    }

    /// Node `i`'s public signing key.
    pub fn public_key(&self, i: usize) -> Result<Vec<u8>, Error> {
        Ok(self.signing_key(i)?.public_key())
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &DevNode {
        &self.fed.nodes[i]
    }

    /// The certificates folder.
    pub fn cert_dir(&self) -> PathBuf {
        self.fed.dir.join("certs")
    }

    fn pem(&self, cert: &ClientCert) -> Result<Option<PemPair>, Error> {
        let (c, k) = match cert {
            ClientCert::None => return Ok(None),
            ClientCert::Of(i, kind) => {
                let d = &self.node(*i).cert_dir;
                (d.join(format!("{kind}.pem")), d.join(format!("{kind}.key")))
            }
            ClientCert::Negative(name) => {
                let d = self.cert_dir().join("negative");
                (d.join(format!("{name}.pem")), d.join(format!("{name}.key")))
            }
        };
        Ok(Some((std::fs::read(c)?, std::fs::read(k)?)))
    }

    /// A channel to `addr` of node `target` presenting `cert`. Connecting may itself fail when
    /// the server refuses the certificate; with TLS 1.3 the refusal may also only show on the
    /// first call.
    pub async fn channel(
        &self,
        target: usize,
        local_api: bool,
        cert: ClientCert,
    ) -> Result<Channel, Error> {
        let node = self.node(target);
        let addr = if local_api {
            node.local_addr
        } else {
            node.peer_addr
        };
        let ca = std::fs::read(self.cert_dir().join("ca.pem"))?;
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .domain_name(node.id.dns_name());
        if let Some((c, k)) = self.pem(&cert)? {
            tls = tls.identity(Identity::from_pem(c, k));
        }
        let channel = Endpoint::from_shared(format!("https://{addr}"))?
            .tls_config(tls)?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .connect()
            .await?;
        Ok(channel)
    }

    /// A peer-API client to node `target` presenting `cert`.
    pub async fn peer_client(
        &self,
        target: usize,
        cert: ClientCert,
    ) -> Result<PeerExchangeClient<Channel>, Error> {
        Ok(PeerExchangeClient::new(
            self.channel(target, false, cert).await?,
        ))
    }

    /// A `HubRelay` client to node `target`'s peer API presenting `cert` (a member handing
    /// sealed messages to its hub, or a test acting as a hostile one).
    pub async fn hub_client(
        &self,
        target: usize,
        cert: ClientCert,
    ) -> Result<HubRelayClient<Channel>, Error> {
        Ok(HubRelayClient::new(
            self.channel(target, false, cert).await?,
        ))
    }

    /// A local-API client to node `target` presenting `cert`.
    pub async fn local_client(
        &self,
        target: usize,
        cert: ClientCert,
    ) -> Result<NodeApiClient<Channel>, Error> {
        Ok(NodeApiClient::new(self.channel(target, true, cert).await?))
    }

    /// The local-API client of node `i`'s administrator.
    pub async fn admin(&self, i: usize) -> Result<NodeApiClient<Channel>, Error> {
        self.local_client(i, ClientCert::Of(i, "admin")).await
    }

    /// Waits until node `i` reports SERVING on its peer API health check.
    pub async fn wait_for_ready(&self, i: usize) -> Result<(), Error> {
        wait_for(&format!("node {i} ready"), || async move {
            let channel = self
                .channel(i, false, ClientCert::Of(i, "node"))
                .await
                .ok()?;
            let mut health = tonic_health_client(channel);
            let resp = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .ok()?;
            (resp.into_inner().status
                == tonic_health::pb::health_check_response::ServingStatus::Serving as i32)
                .then_some(())
        })
        .await
    }

    /// Stops node `i` gracefully.
    pub async fn stop(&mut self, i: usize) -> Result<(), Error> {
        Ok(self.fed.stop(i).await?)
    }

    /// Restarts node `i` on its ports and data, and waits until it is ready.
    pub async fn restart(&mut self, i: usize) -> Result<(), Error> {
        self.fed.restart(i).await?;
        self.wait_for_ready(i).await
    }

    /// Stops every node.
    pub async fn shutdown(self) -> Result<(), Error> {
        Ok(self.fed.shutdown().await?)
    }

    /// Waits until node `i`'s directory replica lists `member` with `status`.
    pub async fn wait_for_member_status(
        &self,
        i: usize,
        member: &str,
        status: tracenet_proto::v1::MemberStatus,
    ) -> Result<(), Error> {
        let what = format!("{member} {}", status.as_str_name());
        self.fed
            .wait_for_directory(i, &what, WAIT_LIMIT, |v| {
                v.state.as_ref().is_some_and(|s| {
                    s.members
                        .get(member)
                        .is_some_and(|m| m.status == status as i32)
                })
            })
            .await?;
        Ok(())
    }

    /// Stops node `i` and serves `svc` in its place: on its peer address, with its node
    /// certificate, requiring federation client certificates. The impostor (a hostile member
    /// holding that node's certificate and key) runs until the returned token is cancelled.
    pub async fn impersonate<S>(
        &mut self,
        i: usize,
        svc: PeerExchangeServer<S>,
    ) -> Result<CancellationToken, Error>
    where
        S: PeerExchange,
    {
        self.fed.stop(i).await?;
        let node = self.node(i);
        let (addr, dir) = (node.peer_addr, node.cert_dir.clone());
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(
                std::fs::read(dir.join("node.pem"))?,
                std::fs::read(dir.join("node.key"))?,
            ))
            .client_ca_root(Certificate::from_pem(std::fs::read(
                self.cert_dir().join("ca.pem"),
            )?));
        // A server stopped just before lets go of the port once its shutdown completes.
        let listener = wait_for("the peer port free", || async {
            tokio::net::TcpListener::bind(addr).await.ok()
        })
        .await?;
        let server = Server::builder().tls_config(tls)?.add_service(svc);
        let stop = CancellationToken::new();
        let until = stop.clone();
        tokio::spawn(async move {
            let _ = server
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), until.cancelled_owned())
                .await;
        });
        Ok(stop)
    }
}

fn tonic_health_client(channel: Channel) -> tonic_health::pb::health_client::HealthClient<Channel> {
    tonic_health::pb::health_client::HealthClient::new(channel)
}

/// Polls `probe` with a short back-off until it yields a value or [`WAIT_LIMIT`] passes.
pub async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(v) = probe().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}
