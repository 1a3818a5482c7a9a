//! Hostile and flaky peers over real mutual TLS: a member that streams far more than a federated
//! query asked for (a fake peer server holding that member's certificate and signing key), and
//! a member that floods a node's trace inbox with oversized requests. Every wait is on a
//! condition.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use prost::Message;
use tonic::{Request, Response, Status};
use tracenet_node::envelope::{SignedRequest, SigningKey};
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::peer_exchange_server::{PeerExchange, PeerExchangeServer};
use tracenet_tests::{NodeSpec, TestFederation};

const FRA: usize = 0;
const DEU: usize = 1;

/// Records the fake peer offers per query: far beyond any cap.
const FLOOD: usize = 100_000;

/// A peer that answers every query with `FLOOD` validly signed records of `notes_len` bytes of
/// notes each (settable between queries), produced lazily, counting how many it produced.
#[derive(Clone)]
struct Flooder {
    key: Arc<SigningKey>,
    notes_len: Arc<AtomicUsize>,
    /// One counter per answer stream, in the order they were asked for: a stream the requester
    /// stopped reading may still be winding down while the next is counted.
    produced: Arc<Mutex<Vec<Arc<AtomicUsize>>>>,
}

/// How many records the latest answer stream produced.
fn latest(produced: &Mutex<Vec<Arc<AtomicUsize>>>) -> usize {
    produced
        .lock()
        .unwrap()
        .last()
        .map_or(0, |c| c.load(Ordering::Relaxed))
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
        let counter = Arc::new(AtomicUsize::new(0));
        self.produced
            .lock()
            .map_err(|_| Status::internal("poisoned"))?
            .push(counter.clone());
        let (key, produced, notes) = (
            self.key.clone(),
            counter,
            "n".repeat(self.notes_len.load(Ordering::Relaxed)),
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

    async fn submit_trace_information(
        &self,
        _: Request<pb::SubmitTraceInformationMessage>,
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
    async fn statistics_tables(
        &self,
        _: Request<pb::StatisticsRequest>,
    ) -> Result<Response<pb::StatisticsResponse>, Status> {
        Err(Status::unimplemented("hostile"))
    }

    async fn aggregate_statistics(
        &self,
        _: Request<pb::AggregationRequest>,
    ) -> Result<Response<pb::AggregationResponse>, Status> {
        Err(Status::unimplemented("hostile"))
    }
}

fn query(limit_per_peer: u32) -> pb::FederatedQueryRequest {
    pb::FederatedQueryRequest {
        inquiry: Some(pb::Inquiry {
            purpose: pb::Purpose::BorderRiskAnalysis as i32,
            agency_kind: pb::AgencyKind::Police as i32,
            legal_basis: "Synthetic test basis".into(),
            case_reference: "TEST-1".into(),
            deadline_ms: 20_000,
            via_hub: false,
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
    let (notes_len, produced) = (
        Arc::new(AtomicUsize::new(10)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let stop = t
        .impersonate(
            DEU,
            PeerExchangeServer::new(Flooder {
                key,
                notes_len: notes_len.clone(),
                produced: produced.clone(),
            }),
        )
        .await
        .unwrap();

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
    assert!(latest(&produced) < FLOOD);

    // Past the byte budget: the most records allowed, each a megabyte.
    notes_len.store(1024 * 1024, Ordering::Relaxed);
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
    assert!(latest(&produced) < 1000);
    stop.cancel();
    t.shutdown().await.unwrap();
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A trace request from DEU-CUS to FRA with the given id and reason; the requester's own dates
/// are nonsense (the receiver must not keep them).
fn trace_request(id: &str, reason: String) -> pb::TraceRequest {
    pb::TraceRequest {
        id: id.into(),
        requester_node: "DEU-CUS".into(),
        requested_country: "FRA".into(),
        firearm: Some(pb::FirearmIdentification {
            serial_number: "AB-1234".into(),
            ..Default::default()
        }),
        reason,
        legal_basis: "Synthetic test basis".into(),
        urgency: pb::Urgency::Routine as i32,
        case_reference: "TEST-1".into(),
        created_at: i64::MIN,
        due_at: 1,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_trace_requests_are_refused_at_the_edge_and_the_inbox_still_lists() {
    let t = TestFederation::start_specs(&[NodeSpec::new("FRA-POL"), NodeSpec::new("DEU-CUS")])
        .await
        .unwrap();
    let key = t.signing_key(DEU).unwrap();
    let mut deu = t
        .peer_client(FRA, tracenet_tests::ClientCert::Of(DEU, "node"))
        .await
        .unwrap();
    let started = now_secs();
    let submit = |id: String, req: pb::TraceRequest| {
        let mut m = pb::SubmitTraceRequestMessage {
            context: None,
            request: Some(req),
        };
        m.sign_with(
            &key,
            pb::RequestContext {
                request_id: id,
                requester_node: "DEU-CUS".into(),
                purpose: pb::Purpose::Tracing as i32,
                issued_at: now_secs(),
                ..Default::default()
            },
        );
        m
    };
    for i in 0..2 {
        let err = deu
            .submit_trace_request(submit(
                format!("big-{i}"),
                trace_request(&format!("big-{i}"), "x".repeat(2_500_000)),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains("reason"), "{}", err.message());
        // The field comes back as a standard google.rpc.BadRequest in the status details.
        let standard = tracenet_proto::google::rpc::Status::decode(err.details()).unwrap();
        let bad = standard
            .details
            .iter()
            .find(|d| d.type_url == tracenet_proto::rpc::BAD_REQUEST_TYPE)
            .map(|d| tracenet_proto::google::rpc::BadRequest::decode(d.value.as_slice()).unwrap())
            .unwrap();
        assert_eq!(bad.field_violations[0].field, "reason");
    }
    for i in 0..3 {
        deu.submit_trace_request(submit(
            format!("ok-{i}"),
            trace_request(&format!("ok-{i}"), "Synthetic reason".into()),
        ))
        .await
        .unwrap();
    }

    // The inbox lists, a page at a time, and keeps the receiver's own dates.
    let mut fra = t.admin(FRA).await.unwrap();
    let list = |page_token: String| pb::ListTraceRequestsRequest {
        direction: "incoming".into(),
        page_size: 2,
        page_token,
    };
    let first = fra
        .list_trace_requests(list(String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.traces.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let second = fra
        .list_trace_requests(list(first.next_page_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.traces.len(), 1);
    assert!(second.next_page_token.is_empty());
    for tr in first.traces.iter().chain(&second.traces) {
        let req = tr.request.as_ref().unwrap();
        assert!(req.id.starts_with("ok-"), "{}", req.id);
        assert!(req.created_at >= started, "{req:?}");
        assert!(req.due_at > req.created_at, "{req:?}");
    }
    let bad_token = fra
        .list_trace_requests(list("not-a-token".into()))
        .await
        .unwrap_err();
    assert_eq!(bad_token.code(), tonic::Code::InvalidArgument);
    t.shutdown().await.unwrap();
}
