//! Hostile and flaky peers over real mutual TLS: a member that streams far more than a federated
//! query asked for (a fake peer server holding that member's certificate and signing key), and
//! a member that floods a node's trace inbox with oversized requests. Every wait is on a
//! condition.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use prost::Message;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};
use tracenet_node::envelope::SigningKey;
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::peer_exchange_server::{PeerExchange, PeerExchangeServer};
use tracenet_tests::{NodeSpec, TestFederation};

const FRA: usize = 0;
const DEU: usize = 1;

/// Records the fake peer offers per query: far beyond any cap.
const FLOOD: usize = 100_000;

/// A peer that answers every query with `FLOOD` validly signed records of `notes_len` bytes of
/// notes each, produced lazily, counting how many it produced.
#[derive(Clone)]
struct Flooder {
    key: Arc<SigningKey>,
    notes_len: usize,
    produced: Arc<AtomicUsize>,
}

type Records =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::DisclosedRecord, Status>> + Send>>;

#[tonic::async_trait]
impl PeerExchange for Flooder {
    async fn ping(
        &self,
        _: Request<pb::PingRequest>,
    ) -> Result<Response<pb::PingResponse>, Status> {
        Err(Status::unimplemented("hostile"))
    }
    async fn lookup(
        &self,
        _: Request<pb::LookupRequest>,
    ) -> Result<Response<pb::LookupResponse>, Status> {
        Err(Status::unimplemented("hostile"))
    }
    type QueryRecordsStream = Records;
    async fn query_records(
        &self,
        request: Request<pb::QueryRecordsRequest>,
    ) -> Result<Response<Records>, Status> {
        let signed = request.into_inner().context.unwrap_or_default();
        let rid = pb::RequestContext::decode(signed.context.as_slice())
            .map_err(|_| Status::invalid_argument("context"))?
            .request_id;
        let (key, produced, notes) = (
            self.key.clone(),
            self.produced.clone(),
            "n".repeat(self.notes_len),
        );
        let records = (0..FLOOD).map(move |i| {
            produced.fetch_add(1, Ordering::Relaxed);
            let mut r = pb::DisclosedRecord {
                reference: Some(pb::RecordRef {
                    owner_node: "DEU-CUS".into(),
                    reference: format!("flood-{i}"),
                }),
                record: Some(pb::SeizureRecord {
                    national_ref: format!("FLOOD-{i}"),
                    notes: notes.clone(),
                    ..Default::default()
                }),
                policy_version: 1,
                policy_rule: "all".into(),
                ..Default::default()
            };
            r.signature = Some(key.sign_response(&rid, &r.encode_to_vec()));
            Ok(r)
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(records))))
    }
    async fn submit_trace_request(
        &self,
        _: Request<pb::SubmitTraceRequestMessage>,
    ) -> Result<Response<pb::DeliveryAck>, Status> {
        Err(Status::unimplemented("hostile"))
    }
    async fn submit_trace_response(
        &self,
        _: Request<pb::SubmitTraceResponseMessage>,
    ) -> Result<Response<pb::DeliveryAck>, Status> {
        Err(Status::unimplemented("hostile"))
    }
    async fn retract(
        &self,
        _: Request<pb::RetractRequest>,
    ) -> Result<Response<pb::DeliveryAck>, Status> {
        Err(Status::unimplemented("hostile"))
    }
    async fn share_forwarded(
        &self,
        _: Request<pb::ShareForwardedRequest>,
    ) -> Result<Response<pb::DeliveryAck>, Status> {
        Err(Status::unimplemented("hostile"))
    }
}

/// Serves `svc` on node `i`'s peer address (the node stopped) with its node certificate,
/// requiring federation client certificates, until the returned token is cancelled.
async fn serve_as(t: &TestFederation, i: usize, svc: Flooder) -> CancellationToken {
    let node = t.node(i);
    let (addr, dir) = (node.peer_addr, node.cert_dir.clone());
    let read = |p: std::path::PathBuf| std::fs::read(p).unwrap();
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(
            read(dir.join("node.pem")),
            read(dir.join("node.key")),
        ))
        .client_ca_root(Certificate::from_pem(read(t.cert_dir().join("ca.pem"))));
    // A server stopped just before lets go of the port once its shutdown completes.
    let listener = tracenet_tests::wait_for("the peer port free", || async {
        tokio::net::TcpListener::bind(addr).await.ok()
    })
    .await
    .unwrap();
    let stop = CancellationToken::new();
    let until = stop.clone();
    tokio::spawn(async move {
        let _ = Server::builder()
            .tls_config(tls)
            .unwrap()
            .add_service(PeerExchangeServer::new(svc))
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), until.cancelled_owned())
            .await;
    });
    stop
}

fn query(limit_per_peer: u32) -> pb::FederatedQueryRequest {
    pb::FederatedQueryRequest {
        inquiry: Some(pb::Inquiry {
            purpose: pb::Purpose::BorderRiskAnalysis as i32,
            agency_kind: pb::AgencyKind::Police as i32,
            legal_basis: "Synthetic test basis".into(),
            case_reference: "TEST-1".into(),
            deadline_ms: 20_000,
        }),
        filter: Some(pb::RecordFilter {
            route_country: "DEU".into(),
            ..Default::default()
        }),
        limit_per_peer,
        include_local: false,
    }
}

async fn copies_from(t: &TestFederation, i: usize, owner: &str) -> usize {
    t.admin(i)
        .await
        .unwrap()
        .list_received(pb::ListReceivedRequest::default())
        .await
        .unwrap()
        .into_inner()
        .records
        .iter()
        .filter(|c| c.reference.as_ref().is_some_and(|r| r.owner_node == owner))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_streaming_past_the_cap_is_a_named_failure_and_nothing_of_it_is_kept() {
    let mut t = TestFederation::start_specs(&[NodeSpec::new("FRA-POL"), NodeSpec::new("DEU-CUS")])
        .await
        .unwrap();
    let key = Arc::new(t.signing_key(DEU).unwrap());
    let produced = Arc::new(AtomicUsize::new(0));
    t.stop(DEU).await.unwrap();
    let flooder = |notes_len, produced: &Arc<AtomicUsize>| Flooder {
        key: key.clone(),
        notes_len,
        produced: produced.clone(),
    };
    let stop = serve_as(&t, DEU, flooder(10, &produced)).await;

    // Past the record cap: 10 asked, 100 000 offered.
    let out = t
        .admin(FRA)
        .await
        .unwrap()
        .federated_query(query(10))
        .await
        .unwrap()
        .into_inner();
    assert!(
        out.answers.iter().all(|a| a.node_id != "DEU-CUS"),
        "{:?}",
        out.answers.len()
    );
    let failure = out.failed.iter().find(|f| f.node_id == "DEU-CUS").unwrap();
    assert!(
        failure.reason.contains("answer dropped") && failure.reason.contains("10 records"),
        "{failure:?}"
    );
    assert_eq!(copies_from(&t, FRA, "DEU-CUS").await, 0);
    // Reading stopped: the flooder never got to produce its whole answer.
    assert!(produced.load(Ordering::Relaxed) < FLOOD);
    stop.cancel();

    // Past the byte budget: the most records allowed, each a megabyte.
    let produced = Arc::new(AtomicUsize::new(0));
    let stop = serve_as(&t, DEU, flooder(1024 * 1024, &produced)).await;
    let out = t
        .admin(FRA)
        .await
        .unwrap()
        .federated_query(query(1000))
        .await
        .unwrap()
        .into_inner();
    let failure = out.failed.iter().find(|f| f.node_id == "DEU-CUS").unwrap();
    assert!(failure.reason.contains("bytes"), "{failure:?}");
    assert_eq!(copies_from(&t, FRA, "DEU-CUS").await, 0);
    assert!(produced.load(Ordering::Relaxed) < 1000);
    stop.cancel();
    t.shutdown().await.unwrap();
}
