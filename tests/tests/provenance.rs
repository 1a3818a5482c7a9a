//! Provenance and originator control across four nodes over real mutual TLS: a received copy is
//! kept only under its owner's signature (a forged fan-out answer or a forged passed-on copy is
//! refused and never replaces the owner's copy), onward transmission needs the owner's explicit
//! permission (checked by the forwarder and by the receiver), a retraction follows the copy to
//! the node it was passed on to, and copies are purged when the owner's retention ends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tonic::{Request, Response, Status};
use tracenet_node::clock::OffsetClock;
use tracenet_node::country::CountryCode;
use tracenet_node::envelope::{SignedRequest, SigningKey};
use tracenet_node::sample;
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::peer_exchange_server::{PeerExchange, PeerExchangeServer};
use tracenet_tests::{ClientCert, NodeSpec, TestFederation, wait_for};

/// FRA shares with DEU for tracing with permission to pass on to ITA only, with DEU for
/// investigations without any onward permission, and with ITA for one day.
const FRA_POLICY: &str = r#"
owner_country = "FRA"
version = 3
legal_basis = "Synthetic law"

[[rules]]
id = "deu-onward-ita"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["DEU"] }
handling = { allow_onward = true, onward_countries = ["ITA"], retention_days = 30 }
fields = [
  { field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "firearms.manufacturer", treatment = "FIELD_TREATMENT_ALLOW" },
]

[[rules]]
id = "deu-closed"
purposes = ["PURPOSE_CRIMINAL_INVESTIGATION"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["DEU"] }
fields = [{ field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" }]

[[rules]]
id = "ita-one-day"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["ITA"] }
handling = { retention_days = 1 }
fields = [{ field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" }]
"#;

const FRA: usize = 0;
const DEU: usize = 1;
const ITA: usize = 2;
const ESP: usize = 3;

struct Fed {
    t: TestFederation,
    /// ITA's clock, to move past a retention period.
    ita_clock: Arc<OffsetClock>,
}

async fn federation() -> Fed {
    let ita_clock = Arc::new(OffsetClock::default());
    let t = TestFederation::start_specs(&[
        NodeSpec::new("FRA-POL").with_policy(FRA_POLICY),
        NodeSpec::new("DEU-CUS"),
        NodeSpec::new("ITA-POL").with_clock(ita_clock.clone()),
        NodeSpec::new("ESP-GCV"),
    ])
    .await
    .unwrap();
    let mut admin = t.admin(FRA).await.unwrap();
    admin
        .import_batch(pb::ImportBatchRequest {
            records: (0..3).map(|n| sample::record(fra(), n)).collect(),
            source_lines: vec![],
            ..Default::default()
        })
        .await
        .unwrap();
    Fed { t, ita_clock }
}

fn fra() -> CountryCode {
    CountryCode::parse("FRA").unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn lookup(purpose: pb::Purpose, n: u64) -> pb::FederatedLookupRequest {
    pb::FederatedLookupRequest {
        inquiry: Some(pb::Inquiry {
            purpose: purpose as i32,
            agency_kind: pb::AgencyKind::Police as i32,
            ..Default::default()
        }),
        serial_number: sample::serial(fra(), n),
        manufacturer: String::new(),
        ..Default::default()
    }
}

async fn received(t: &TestFederation, i: usize) -> Vec<pb::ReceivedRecord> {
    let mut c = t.admin(i).await.unwrap();
    c.list_received(pb::ListReceivedRequest::default())
        .await
        .unwrap()
        .into_inner()
        .records
}

async fn audit(t: &TestFederation, i: usize, kind: &str) -> Vec<pb::AuditEntry> {
    let mut c = t.admin(i).await.unwrap();
    c.list_audit(pb::ListAuditRequest {
        kind: kind.into(),
        limit: 1000,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .entries
}

/// A fresh envelope for a hand-made peer request from `node`.
fn envelope(node: &str, id: &str) -> pb::RequestContext {
    pb::RequestContext {
        request_id: id.into(),
        requester_node: node.into(),
        purpose: pb::Purpose::CriminalInvestigation as i32,
        issued_at: now(),
        ..Default::default()
    }
}

/// `from` (signing with `key`) passes `copy` on to node `to` through its own peer client.
async fn share(
    t: &TestFederation,
    (from, key, node): (usize, &SigningKey, &str),
    to: usize,
    id: &str,
    copy: pb::ReceivedRecord,
) -> Result<pb::DeliveryAck, Status> {
    let mut c = t
        .peer_client(to, ClientCert::Of(from, "node"))
        .await
        .unwrap();
    let mut msg = pb::ShareForwardedRequest {
        context: None,
        record: Some(copy),
    };
    msg.sign_with(key, envelope(node, id));
    c.share_forwarded(msg).await.map(Response::into_inner)
}

#[tokio::test]
async fn a_forged_passed_on_copy_is_refused_and_never_replaces_the_owners_copy() {
    let Fed { t, .. } = federation().await;
    // ITA holds FRA's record 1 as FRA disclosed it; DEU holds record 1 under the closed rule.
    t.admin(ITA)
        .await
        .unwrap()
        .federated_lookup(lookup(pb::Purpose::Tracing, 1))
        .await
        .unwrap();
    t.admin(DEU)
        .await
        .unwrap()
        .federated_lookup(lookup(pb::Purpose::CriminalInvestigation, 1))
        .await
        .unwrap();
    let genuine = received(&t, ITA).await;
    assert_eq!(genuine.len(), 1);
    assert!(genuine[0].owner_disclosure.is_some());
    let reference = genuine[0].reference.clone().unwrap();
    let deu_copy = received(&t, DEU).await.remove(0);

    let deu_key = t.signing_key(DEU).unwrap();
    let hostile = (DEU, &deu_key, "DEU-CUS");
    let fabricated = pb::SeizureRecord {
        notes: "Fabricated by a hostile node (synthetic)".into(),
        ..Default::default()
    };
    // 1. The attack of finding M1: content and handling from the forwarder, no statement.
    let bare = pb::ReceivedRecord {
        reference: Some(reference.clone()),
        record: Some(fabricated.clone()),
        handling: Some(pb::Handling {
            allow_onward: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = share(&t, hostile, ITA, "forge-1", bare).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    // 2. A statement in FRA's name signed with DEU's key.
    let forged = deu_key.sign_disclosure(&pb::DisclosureStatement {
        reference: Some(reference.clone()),
        record: Some(fabricated.clone()),
        handling: Some(pb::Handling {
            allow_onward: true,
            ..Default::default()
        }),
        recipient_node: "DEU-CUS".into(),
        ..Default::default()
    });
    let err = share(
        &t,
        hostile,
        ITA,
        "forge-2",
        pb::ReceivedRecord {
            owner_disclosure: Some(forged),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    // 3. FRA's genuine statement to DEU, whose handling grants no onward transmission.
    let err = share(&t, hostile, ITA, "forge-3", deu_copy.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");

    // ITA's copy is unchanged, still the one received from FRA itself.
    assert_eq!(received(&t, ITA).await, genuine);
    assert_eq!(audit(&t, ITA, "refusal").await.len(), 3);

    // 4. DEU gets the record under the rule that allows passing it on to ITA and does so: ITA
    // still keeps the copy it received from the owner.
    t.admin(DEU)
        .await
        .unwrap()
        .federated_lookup(lookup(pb::Purpose::Tracing, 1))
        .await
        .unwrap();
    let allowed = received(&t, DEU).await.remove(0);
    assert_eq!(allowed.policy_rule, "deu-onward-ita");
    let ack = share(&t, hostile, ITA, "forward-4", allowed).await.unwrap();
    assert!(ack.duplicate, "a forwarded copy replaced the owner's");
    assert_eq!(received(&t, ITA).await, genuine);
    t.shutdown().await.unwrap();
}

/// A peer that answers every lookup with a hit in another node's name: the answer is signed
/// with its own key, the hit carries a statement it made up in the owner's name.
struct HostilePeer {
    key: SigningKey,
    fake: pb::RecordRef,
}

#[tonic::async_trait]
impl PeerExchange for HostilePeer {
    async fn ping(
        &self,
        _: Request<pb::PingRequest>,
    ) -> Result<Response<pb::PingResponse>, Status> {
        Err(Status::unimplemented("hostile"))
    }

    async fn lookup(
        &self,
        request: Request<pb::LookupRequest>,
    ) -> Result<Response<pb::LookupResponse>, Status> {
        let ctx = request.into_inner().context.unwrap_or_default();
        let rc = pb::RequestContext::decode(ctx.context.as_slice()).unwrap_or_default();
        let record = pb::SeizureRecord {
            notes: "Fabricated in FRA-POL's name (synthetic)".into(),
            ..Default::default()
        };
        let statement = self.key.sign_disclosure(&pb::DisclosureStatement {
            reference: Some(self.fake.clone()),
            record: Some(record.clone()),
            recipient_node: rc.requester_node.clone(),
            request_id: rc.request_id.clone(),
            ..Default::default()
        });
        let mut resp = pb::LookupResponse {
            hit: true,
            hits: vec![pb::LookupHit {
                reference: Some(self.fake.clone()),
                disclosed: Some(record),
                owner_disclosure: Some(statement),
                ..Default::default()
            }],
            signature: None,
        };
        resp.signature = Some(
            self.key
                .sign_response(&rc.request_id, &resp.encode_to_vec()),
        );
        Ok(Response::new(resp))
    }

    type QueryRecordsStream = tonic::codegen::BoxStream<pb::DisclosedRecord>;

    async fn query_records(
        &self,
        _: Request<pb::QueryRecordsRequest>,
    ) -> Result<Response<Self::QueryRecordsStream>, Status> {
        Err(Status::unimplemented("hostile"))
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

#[tokio::test]
async fn a_fanout_answer_naming_another_owner_is_not_stored() {
    let Fed { mut t, .. } = federation().await;
    t.admin(DEU)
        .await
        .unwrap()
        .federated_lookup(lookup(pb::Purpose::Tracing, 2))
        .await
        .unwrap();
    let genuine = received(&t, DEU).await;
    assert_eq!(genuine.len(), 1);
    let reference = genuine[0].reference.clone().unwrap();

    // ITA is replaced by a hostile server on its address, with its certificate and key.
    let hostile = HostilePeer {
        key: t.signing_key(ITA).unwrap(),
        fake: reference.clone(),
    };
    let stop = t
        .impersonate(ITA, PeerExchangeServer::new(hostile))
        .await
        .unwrap();

    // Until DEU's channel to ITA's address has reconnected, ITA may be reported unavailable.
    let answer = wait_for("the hostile answer is refused", || async {
        let mut deu = t.admin(DEU).await.ok()?;
        let answer = deu
            .federated_lookup(lookup(pb::Purpose::Tracing, 2))
            .await
            .ok()?
            .into_inner();
        answer
            .failed
            .iter()
            .any(|f| f.node_id == "ITA-POL" && f.reason.contains("response refused"))
            .then_some(answer)
    })
    .await
    .unwrap();
    assert!(answer.answers.iter().all(|a| a.node_id != "ITA-POL"));
    // DEU keeps FRA's own copy, fresh from this lookup, and nothing of ITA's fabrication.
    let held = received(&t, DEU).await;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].reference.as_ref(), Some(&reference));
    assert!(held[0].forwarded_by.is_empty());
    assert!(
        !held[0]
            .record
            .as_ref()
            .is_some_and(|r| r.notes.contains("Fabricated")),
        "{:?}",
        held[0]
    );
    stop.cancel();
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn onward_transmission_needs_permission_and_a_retraction_follows_the_copy() {
    let Fed { t, .. } = federation().await;
    let mut deu = t.admin(DEU).await.unwrap();
    // Received under a rule that says nothing about onward transmission: DEU may not pass it on.
    deu.federated_lookup(lookup(pb::Purpose::CriminalInvestigation, 0))
        .await
        .unwrap();
    let closed = received(&t, DEU).await.remove(0);
    let reference = closed.reference.clone().unwrap();
    let forward = |to: &str| pb::ForwardReceivedRequest {
        reference: Some(reference.clone()),
        to_node: to.into(),
    };
    let err = deu.forward_received(forward("ITA-POL")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    // Nor is it accepted by a receiver when a node passes it on regardless.
    let deu_key = t.signing_key(DEU).unwrap();
    let err = share(&t, (DEU, &deu_key, "DEU-CUS"), ESP, "rogue-1", closed)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");

    // Received again under the rule allowing onward transmission to ITA only.
    deu.federated_lookup(lookup(pb::Purpose::Tracing, 0))
        .await
        .unwrap();
    let open = received(&t, DEU).await.remove(0);
    assert!(open.handling.as_ref().unwrap().allow_onward);
    let err = deu.forward_received(forward("ESP-GCV")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    let err = share(&t, (DEU, &deu_key, "DEU-CUS"), ESP, "rogue-2", open)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    deu.forward_received(forward("ITA-POL")).await.unwrap();
    let at_ita = wait_for("ITA receives the passed-on copy", || async {
        received(&t, ITA).await.into_iter().next()
    })
    .await
    .unwrap();
    assert_eq!(at_ita.forwarded_by, "DEU-CUS");
    assert_eq!(at_ita.policy_rule, "deu-onward-ita");
    assert!(received(&t, ESP).await.is_empty());

    // FRA withdraws the record: DEU deletes its copy and relays the retraction to ITA.
    let notified = t
        .admin(FRA)
        .await
        .unwrap()
        .retract_record(pb::RetractRecordRequest {
            id: reference.reference.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .notified;
    assert_eq!(notified, vec!["DEU-CUS"]);
    wait_for("the retraction reaches DEU and ITA", || async {
        (received(&t, DEU).await.is_empty() && received(&t, ITA).await.is_empty()).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(audit(&t, ITA, "retraction_applied").await.len(), 1);
    let at_deu = audit(&t, DEU, "retraction_applied").await;
    assert!(
        at_deu[0].detail.ends_with("retraction relayed to ITA-POL"),
        "{at_deu:?}"
    );
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_copy_is_purged_when_its_owners_retention_ends() {
    let Fed { t, ita_clock } = federation().await;
    t.admin(ITA)
        .await
        .unwrap()
        .federated_lookup(lookup(pb::Purpose::Tracing, 1))
        .await
        .unwrap();
    let copy = received(&t, ITA).await.remove(0);
    // One day of retention: the expiry is shown with the copy.
    let days = copy.handling.as_ref().unwrap().retention_days;
    assert_eq!(days, 1);
    assert!(copy.expires_at > copy.received_at - 10, "{copy:?}");
    assert!(copy.expires_at <= copy.received_at + 86_400, "{copy:?}");

    // ITA's clock moves past the expiry; the next sweep purges the copy and audits it.
    ita_clock.advance(Duration::from_secs(2 * 86_400));
    wait_for("ITA purges the expired copy", || async {
        received(&t, ITA).await.is_empty().then_some(())
    })
    .await
    .unwrap();
    let purges = audit(&t, ITA, "retention_purge").await;
    assert_eq!(purges.len(), 1);
    assert_eq!(purges[0].peer, "FRA-POL");
    assert_eq!(
        purges[0].record_refs,
        vec![copy.reference.unwrap().reference]
    );
    t.shutdown().await.unwrap();
}
