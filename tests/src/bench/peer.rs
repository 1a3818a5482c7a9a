//! Peer round trip: `Lookup` from one node to another over mutual TLS on loopback (a fresh
//! signed request context per call, policy, audit and a signed response on the other side),
//! against a bare tonic unary call (the gRPC health `Check`) served through the same TLS
//! acceptor and rustls configuration: the limit of the stack we stand on.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Server};
use tracenet_node::config::TlsFiles;
use tracenet_node::envelope::SignedRequest;
use tracenet_node::tls::TlsMaterial;
use tracenet_node::transport;
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::peer_exchange_client::PeerExchangeClient;

use super::report::{Report, Samples};
use crate::{ClientCert, Error, TestFederation};

/// Parameters of the peer scenario.
#[derive(Debug, Clone, Copy)]
pub struct PeerParams {
    /// Sequential calls timed for latency.
    pub sequential: usize,
    /// Calls made for the throughput figure.
    pub total: usize,
    /// Calls in flight for the throughput figure.
    pub in_flight: usize,
}

fn context(n: usize) -> pb::RequestContext {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    pb::RequestContext {
        request_id: format!("bench-{n}-{}", tracenet_node::ids::new_request_id()),
        requester_node: "DEU-CUS".into(),
        agency_kind: pb::AgencyKind::Police as i32,
        purpose: pb::Purpose::Tracing as i32,
        legal_basis: "Synthetic benchmark basis".into(),
        case_reference: String::new(),
        issued_at: now,
        body_sha256: Vec::new(),
    }
}

async fn echo_server(
    t: &TestFederation,
    shutdown: CancellationToken,
) -> Result<std::net::SocketAddr, Error> {
    let n = t.node(0);
    let tls = TlsMaterial::load(&TlsFiles {
        ca: t.cert_dir().join("ca.pem"),
        cert: n.cert_dir.join("node.pem"),
        key: n.cert_dir.join("node.key"),
    })?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let incoming = transport::incoming(listener, tls.server_config()?, shutdown.clone(), "echo");
    tokio::spawn(
        Server::builder()
            .add_service(health)
            .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned()),
    );
    Ok(addr)
}

async fn echo_channel(t: &TestFederation, addr: std::net::SocketAddr) -> Result<Channel, Error> {
    let d = &t.node(1).cert_dir;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(
            t.cert_dir().join("ca.pem"),
        )?))
        .domain_name(t.node(0).id.dns_name())
        .identity(Identity::from_pem(
            std::fs::read(d.join("node.pem"))?,
            std::fs::read(d.join("node.key"))?,
        ));
    Ok(Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .tcp_nodelay(true)
        .connect()
        .await?)
}

/// Times `n` sequential calls.
pub(super) async fn timed<F, Fut>(n: usize, mut call: F) -> Result<Samples, Error>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let mut s = Samples::with_capacity(n);
    for i in 0..n {
        let t0 = Instant::now();
        call(i).await?;
        s.push(t0.elapsed());
    }
    Ok(s)
}

/// Calls per second for `total` calls with `in_flight` at a time.
pub(super) async fn throughput<F, Fut>(
    total: usize,
    in_flight: usize,
    call: F,
) -> Result<f64, Error>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let call = Arc::new(call);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let next = next.clone();
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<(), Error>(());
                }
                call(i).await?;
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

/// Runs the scenario on a fresh two-node federation.
pub async fn run(p: PeerParams) -> Result<Report, Error> {
    let t = TestFederation::start(2).await?;
    let key = Arc::new(t.signing_key(1)?);
    let lookup_client = t.peer_client(0, ClientCert::Of(1, "node")).await?;
    let shutdown = CancellationToken::new();
    let echo_addr = echo_server(&t, shutdown.clone()).await?;
    let echo = echo_channel(&t, echo_addr).await?;
    let serial = tracenet_node::sample::serial(t.node(0).config.country, 1);

    let lookup = {
        let key = key.clone();
        move |c: PeerExchangeClient<Channel>, i: usize| {
            let mut req = pb::LookupRequest {
                context: None,
                serial_number: serial.clone(),
                manufacturer: String::new(),
                ..Default::default()
            };
            req.sign_with(&key, context(i));
            async move {
                let mut c = c;
                c.lookup(req).await?;
                Ok::<(), Error>(())
            }
        }
    };
    let check = |ch: Channel| async move {
        let mut h = tonic_health::pb::health_client::HealthClient::new(ch);
        h.check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await?;
        Ok::<(), Error>(())
    };

    // Warm both paths (connections, caches) before timing.
    for i in 0..50 {
        lookup(lookup_client.clone(), usize::MAX - i).await?;
        check(echo.clone()).await?;
    }
    let lat_lookup = timed(p.sequential, |i| lookup(lookup_client.clone(), i)).await?;
    let lat_echo = timed(p.sequential, |_| check(echo.clone())).await?;
    let tput_lookup = {
        let lookup = lookup.clone();
        let c = lookup_client.clone();
        throughput(p.total, p.in_flight, move |i| {
            lookup(c.clone(), p.sequential + i)
        })
        .await?
    };
    let tput_echo = {
        let e = echo.clone();
        throughput(p.total, p.in_flight, move |_| check(e.clone())).await?
    };

    let mut r = Report::new("peer round trip: Lookup vs bare tonic unary over the same mTLS");
    r.param("sequential calls", p.sequential);
    r.param("throughput calls", p.total);
    r.param("in flight", p.in_flight);
    r.versus(
        "sequential p50",
        lat_lookup.quantile_us(0.5),
        lat_echo.quantile_us(0.5),
        "us",
    );
    r.versus(
        "sequential p99",
        lat_lookup.quantile_us(0.99),
        lat_echo.quantile_us(0.99),
        "us",
    );
    r.versus("throughput", tput_lookup, tput_echo, "calls/s");
    shutdown.cancel();
    t.shutdown().await?;
    Ok(r)
}
