//! Peer round trip: `Lookup` from one node to another over mutual TLS on loopback (a fresh
//! signed request context per call, policy, audit and a signed response on the other side),
//! against a bare tonic unary call (the gRPC health `Check`) served through the same TLS
//! acceptor and rustls configuration: the limit of the stack we stand on.
//!
//! A second baseline, the "floor", is what a lookup cannot avoid: the same `Lookup` call served
//! by a stub `PeerExchange` that verifies the signed context (signature, body digest, replay
//! memory), appends one audit entry carrying the envelope to an [`AuditLog`] (hash chain, group
//! commit, flushed before answering), signs one disclosure statement per hit and the response,
//! and returns a copy of a real answer. No policy, no store read, no ledger write.
//!
//! Both are measured twice: for a serial the answering node holds (one sample record, which its
//! policy lets the requester look up by serial for tracing: one hit per lookup) and for one it
//! does not hold (no hit). Each floor serves a copy of the real answer of its variant, so the
//! hit floor signs the hit's disclosure statement too. Every answer is checked to carry the
//! variant's number of hits.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use prost::Message;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Server};
use tonic::{Request, Response, Status};
use tracenet_node::audit::{AuditLog, Event, EventKind};
use tracenet_node::config::TlsFiles;
use tracenet_node::envelope::{self, PeerKeys, ReplayGuard, SignedRequest, SigningKey};
use tracenet_node::ids::NodeId;
use tracenet_node::tls::TlsMaterial;
use tracenet_node::transport;
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::peer_exchange_client::PeerExchangeClient;
use tracenet_proto::v1::peer_exchange_server::{PeerExchange, PeerExchangeServer};

use super::report::{Report, Samples};
use crate::{ClientCert, Error, NODE_IDS, NodeSpec, TestFederation};

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

/// The answering node's (node 0's) server certificate, which the echo and floor servers present
/// so that every baseline runs over the same mutual TLS as the real lookup.
fn answering_tls(t: &TestFederation) -> Result<TlsMaterial, Error> {
    let n = t.node(0);
    Ok(TlsMaterial::load(&TlsFiles {
        ca: t.cert_dir().join("ca.pem"),
        cert: n.cert_dir.join("node.pem"),
        key: n.cert_dir.join("node.key"),
    })?)
}

async fn echo_server(
    t: &TestFederation,
    shutdown: CancellationToken,
) -> Result<std::net::SocketAddr, Error> {
    let tls = answering_tls(t)?;
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

/// The floor: a `PeerExchange` whose `Lookup` does only the unavoidable work (see the module
/// documentation). Every other method is unimplemented.
struct Floor {
    guard: ReplayGuard,
    keys: PeerKeys,
    asker: NodeId,
    key: Arc<SigningKey>,
    log: Arc<AuditLog>,
    /// A real answer with its signatures removed, re-signed per call.
    answer: pb::LookupResponse,
    _db: sled::Db,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[tonic::async_trait]
impl PeerExchange for Floor {
    async fn lookup(
        &self,
        request: Request<pb::LookupRequest>,
    ) -> Result<Response<pb::LookupResponse>, Status> {
        let mut req = request.into_inner();
        let now = now_secs();
        let (signed, body) = req.split();
        let ctx = self
            .guard
            .verify_context(&self.keys, signed.as_ref(), &self.asker, now)
            .and_then(|c| envelope::check_body(&c, pb::LookupRequest::METHOD, &body).map(|()| c))
            .map_err(|e| Status::permission_denied(e.to_string()))?;
        let event = Event {
            kind: EventKind::Disclosure,
            peer: self.asker.to_string(),
            request_id: ctx.request_id.clone(),
            purpose: "PURPOSE_TRACING".into(),
            detail: format!("lookup serial {}", req.serial_number),
            policy_version: 1,
            policy_rule: "r1".into(),
            record_refs: self
                .answer
                .hits
                .iter()
                .filter_map(|h| h.reference.as_ref().map(|r| r.reference.clone()))
                .collect(),
            envelope: signed,
        };
        // The flush blocks: one trip to the blocking pool, as a node must make.
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || log.append(vec![event], now))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::internal(e.to_string()))?;
        let mut resp = self.answer.clone();
        for h in &mut resp.hits {
            let st = tracenet_node::provenance::statement(
                self.key.node(),
                &h.reference.clone().unwrap_or_default().reference,
                (h.disclosed.clone(), h.handling.clone()),
                (h.policy_version, &h.policy_rule),
                h.redacted_fields.clone(),
                (&self.asker, &ctx.request_id, now),
            );
            h.owner_disclosure = Some(self.key.sign_disclosure(&st));
        }
        resp.signature = Some(
            self.key
                .sign_response(&ctx.request_id, &resp.encode_to_vec()),
        );
        Ok(Response::new(resp))
    }

    async fn ping(
        &self,
        _: Request<pb::PingRequest>,
    ) -> Result<Response<pb::PingResponse>, Status> {
        Err(Status::unimplemented("floor"))
    }

    type QueryRecordsStream =
        tokio_stream::Iter<std::vec::IntoIter<Result<pb::DisclosedRecord, Status>>>;

    async fn query_records(
        &self,
        _: Request<pb::QueryRecordsRequest>,
    ) -> Result<Response<Self::QueryRecordsStream>, Status> {
        Err(Status::unimplemented("floor"))
    }

    async fn submit_trace_request(
        &self,
        _: Request<pb::SubmitTraceRequestMessage>,
    ) -> Result<Response<pb::DeliveryAck>, Status> {
        Err(Status::unimplemented("floor"))
    }

    async fn submit_trace_response(
        &self,
        _: Request<pb::SubmitTraceResponseMessage>,
    ) -> Result<Response<pb::DeliveryAck>, Status> {
        Err(Status::unimplemented("floor"))
    }

    async fn submit_trace_information(
        &self,
        _: Request<pb::SubmitTraceInformationMessage>,
    ) -> Result<Response<pb::DeliveryAck>, Status> {
        Err(Status::unimplemented("floor"))
    }

    async fn retract(
        &self,
        _: Request<pb::RetractRequest>,
    ) -> Result<Response<pb::DeliveryAck>, Status> {
        Err(Status::unimplemented("floor"))
    }

    async fn share_forwarded(
        &self,
        _: Request<pb::ShareForwardedRequest>,
    ) -> Result<Response<pb::DeliveryAck>, Status> {
        Err(Status::unimplemented("floor"))
    }

    async fn statistics_tables(
        &self,
        _: Request<pb::StatisticsRequest>,
    ) -> Result<Response<pb::StatisticsResponse>, Status> {
        Err(Status::unimplemented("floor"))
    }

    async fn aggregate_statistics(
        &self,
        _: Request<pb::AggregationRequest>,
    ) -> Result<Response<pb::AggregationResponse>, Status> {
        Err(Status::unimplemented("floor"))
    }
}

/// Serves the floor with node 0's certificate and signing key, its audit log in its own sled
/// database (opened as the node opens its own) under `dir`.
async fn floor_server(
    t: &TestFederation,
    answer: pb::LookupResponse,
    dir: &std::path::Path,
    shutdown: CancellationToken,
) -> Result<std::net::SocketAddr, Error> {
    let tls = answering_tls(t)?;
    let key = Arc::new(t.signing_key(0)?);
    let asker = t.node(1).id.clone();
    let keys = PeerKeys::new(std::collections::HashMap::from([(
        asker.clone(),
        t.signing_key(1)?.public_key(),
    )]));
    let db = tracenet_node::store::open::open_db(dir, None)?;
    let log = Arc::new(AuditLog::open(&db, key.clone())?);
    let floor = Floor {
        guard: ReplayGuard::new(300, 1_000_000),
        keys,
        asker,
        key,
        log,
        answer,
        _db: db,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let incoming = transport::incoming(listener, tls.server_config()?, shutdown.clone(), "floor");
    tokio::spawn(
        Server::builder()
            .add_service(PeerExchangeServer::new(floor))
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

/// Node 0's sharing policy: node 1's country (DEU) may look its seizures up by serial for
/// tracing. Without a rule node 0 would disclose nothing and every lookup would be a no-hit.
const POLICY: &str = r#"
owner_country = "FRA"
version = 1
legal_basis = "Synthetic benchmark basis"

[[rules]]
id = "deu-tracing"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["DEU"] }
fields = [{ field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" }]
"#;

/// A signed `Lookup` of `serial` by node 1, numbered `n` (its request id).
fn lookup_request(key: &SigningKey, serial: &str, n: usize) -> pb::LookupRequest {
    let mut req = pb::LookupRequest {
        context: None,
        serial_number: serial.to_owned(),
        manufacturer: String::new(),
        ..Default::default()
    };
    req.sign_with(key, context(n));
    req
}

/// What one variant (a serial node 0 holds, or one it does not) measured.
struct Variant {
    hits: usize,
    lat_lookup: Samples,
    lat_floor: Samples,
    tput_lookup: f64,
    tput_floor: f64,
}

/// Times the real lookup of `serial` and its floor (serving a copy of the real answer), each
/// answer checked to carry `want_hits` hits.
async fn variant(
    t: &TestFederation,
    p: PeerParams,
    key: &Arc<SigningKey>,
    lookup_client: &PeerExchangeClient<Channel>,
    (serial, want_hits): (&str, usize),
    shutdown: &CancellationToken,
) -> Result<Variant, Error> {
    let lookup = {
        let key = key.clone();
        let serial = serial.to_owned();
        move |c: PeerExchangeClient<Channel>, i: usize| {
            let req = lookup_request(&key, &serial, i);
            async move {
                let mut c = c;
                let hits = c.lookup(req).await?.into_inner().hits.len();
                if hits != want_hits {
                    return Err(format!("{hits} hits in a lookup, not {want_hits}").into());
                }
                Ok::<(), Error>(())
            }
        }
    };

    // A real answer, its signatures removed, is what the floor sends back (same size, same hits).
    let answer = {
        let mut c = lookup_client.clone();
        let req = lookup_request(key, serial, usize::MAX - 1000);
        let mut a = c.lookup(req).await?.into_inner();
        a.signature = None;
        for h in &mut a.hits {
            h.owner_disclosure = None;
        }
        a
    };
    let hits = answer.hits.len();
    if hits != want_hits {
        return Err(format!("lookup of {serial}: {hits} hits, not {want_hits}").into());
    }
    let floor_dir = tempfile::tempdir()?;
    let floor_addr = floor_server(t, answer, floor_dir.path(), shutdown.clone()).await?;
    let floor_client = PeerExchangeClient::new(echo_channel(t, floor_addr).await?);

    // Warm both paths (connections, caches) before timing.
    for i in 0..50 {
        lookup(lookup_client.clone(), usize::MAX - i).await?;
        lookup(floor_client.clone(), usize::MAX - i).await?;
    }
    let lat_lookup = timed(p.sequential, |i| lookup(lookup_client.clone(), i)).await?;
    let lat_floor = timed(p.sequential, |i| lookup(floor_client.clone(), i)).await?;
    let tput_lookup = {
        let lookup = lookup.clone();
        let c = lookup_client.clone();
        throughput(p.total, p.in_flight, move |i| {
            lookup(c.clone(), p.sequential + i)
        })
        .await?
    };
    let tput_floor = {
        let lookup = lookup.clone();
        let c = floor_client.clone();
        throughput(p.total, p.in_flight, move |i| {
            lookup(c.clone(), p.sequential + i)
        })
        .await?
    };
    Ok(Variant {
        hits,
        lat_lookup,
        lat_floor,
        tput_lookup,
        tput_floor,
    })
}

/// Runs the scenario on a fresh two-node federation: node 0 holds one sample record (serial
/// 1 of its country) and lets node 1 look it up by serial; node 1 looks up that serial (one
/// hit per lookup) and serial 2, which node 0 does not hold (no hit).
pub async fn run(p: PeerParams) -> Result<Report, Error> {
    let t = TestFederation::start_specs(&[
        NodeSpec::new(NODE_IDS[0]).with_policy(POLICY),
        NodeSpec::new(NODE_IDS[1]),
    ])
    .await?;
    let country = t.node(0).config.country;
    t.admin(0)
        .await?
        .import_batch(pb::ImportBatchRequest {
            records: vec![tracenet_node::sample::record(country, 1)],
            source_lines: Vec::new(),
            ..Default::default()
        })
        .await?;
    let hit_serial = tracenet_node::sample::serial(country, 1);
    let miss_serial = tracenet_node::sample::serial(country, 2);

    let key = Arc::new(t.signing_key(1)?);
    let lookup_client = t.peer_client(0, ClientCert::Of(1, "node")).await?;
    let shutdown = CancellationToken::new();
    let echo_addr = echo_server(&t, shutdown.clone()).await?;
    let echo = echo_channel(&t, echo_addr).await?;
    let check = |ch: Channel| async move {
        let mut h = tonic_health::pb::health_client::HealthClient::new(ch);
        h.check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await?;
        Ok::<(), Error>(())
    };
    for _ in 0..50 {
        check(echo.clone()).await?;
    }
    let lat_echo = timed(p.sequential, |_| check(echo.clone())).await?;
    let tput_echo = {
        let e = echo.clone();
        throughput(p.total, p.in_flight, move |_| check(e.clone())).await?
    };
    let hit = variant(&t, p, &key, &lookup_client, (&hit_serial, 1), &shutdown).await?;
    let miss = variant(&t, p, &key, &lookup_client, (&miss_serial, 0), &shutdown).await?;

    let mut r = Report::new("peer round trip: Lookup vs bare tonic unary over the same mTLS");
    r.param("sequential calls", p.sequential);
    r.param("throughput calls", p.total);
    r.param("in flight", p.in_flight);
    r.param(
        "hits per lookup (hit / no hit)",
        format!("{} / {}", hit.hits, miss.hits),
    );
    for (kind, v) in [("hit", &hit), ("no hit", &miss)] {
        let (lookup, floor) = (&v.lat_lookup, &v.lat_floor);
        r.versus(
            &format!("{kind}: sequential p50 (vs bare unary)"),
            lookup.quantile_us(0.5),
            lat_echo.quantile_us(0.5),
            "us",
        );
        r.versus(
            &format!("{kind}: sequential p99 (vs bare unary)"),
            lookup.quantile_us(0.99),
            lat_echo.quantile_us(0.99),
            "us",
        );
        r.versus(
            &format!("{kind}: throughput (vs bare unary)"),
            v.tput_lookup,
            tput_echo,
            "calls/s",
        );
        r.versus(
            &format!("{kind}: sequential p50 (vs floor)"),
            lookup.quantile_us(0.5),
            floor.quantile_us(0.5),
            "us",
        );
        r.versus(
            &format!("{kind}: sequential p99 (vs floor)"),
            lookup.quantile_us(0.99),
            floor.quantile_us(0.99),
            "us",
        );
        r.versus(
            &format!("{kind}: throughput (vs floor)"),
            v.tput_lookup,
            v.tput_floor,
            "calls/s",
        );
        r.versus(
            &format!("{kind}: floor sequential p50 (vs bare unary)"),
            floor.quantile_us(0.5),
            lat_echo.quantile_us(0.5),
            "us",
        );
    }
    shutdown.cancel();
    t.shutdown().await?;
    Ok(r)
}
