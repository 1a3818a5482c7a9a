//! The trace workflow and retraction across nodes, through the durable outbox: delivery to a
//! stopped node after it restarts, once despite repeats, answers travelling back, and copies
//! deleted on retraction.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tracenet_node::country::CountryCode;
use tracenet_node::envelope::SignedRequest;
use tracenet_node::sample;
use tracenet_proto::v1 as pb;
use tracenet_tests::{ClientCert, NodeSpec, TestFederation, wait_for};

const FRA: usize = 0;
const DEU: usize = 1;
const ITA_NODE: usize = 2;

/// DEU shares trace results with FRA; FRA shares seizures with DEU for tracing.
const DEU_POLICY: &str = r#"
owner_country = "DEU"
version = 2
legal_basis = "Synthetic law"
[[rules]]
id = "fra-trace-results"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_TRACE_RESULT"]
audience = { countries = ["FRA"] }
handling = { no_onward_without_consent = true, reliability = "SOURCE_RELIABILITY_A" }
"#;

/// DEU_POLICY plus a seizure rule: what FRA may learn of DEU's records when tracing (serial,
/// date, place), which is what an automatic answer may tell it.
const DEU_AUTO_POLICY: &str = r#"
owner_country = "DEU"
version = 2
legal_basis = "Synthetic law"
[[rules]]
id = "fra-trace-results"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_TRACE_RESULT"]
audience = { countries = ["FRA"] }
handling = { no_onward_without_consent = true, reliability = "SOURCE_RELIABILITY_A" }
[[rules]]
id = "fra-seizures"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["FRA"] }
handling = { no_onward_without_consent = true }
fields = [
  { field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "event.date", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "event.place", treatment = "FIELD_TREATMENT_ALLOW" },
]
"#;

const FRA_POLICY: &str = r#"
owner_country = "FRA"
version = 1
legal_basis = "Synthetic law"
[[rules]]
id = "deu-tracing"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["DEU"] }
handling = { no_onward_without_consent = true }
fields = [{ field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" }]
"#;

async fn federation() -> TestFederation {
    TestFederation::start_specs(&[
        NodeSpec::new("FRA-POL").with_policy(FRA_POLICY),
        NodeSpec::new("DEU-CUS").with_policy(DEU_POLICY),
        NodeSpec::new("ITA-POL"),
    ])
    .await
    .unwrap()
}

fn trace_request() -> pb::SendTraceRequestRequest {
    pb::SendTraceRequestRequest {
        firearm: Some(pb::FirearmIdentification {
            serial_number: "SYN-77-1234".into(),
            manufacturer: "Synthetic Arms".into(),
            model: "S1".into(),
            country_of_manufacture: "DEU".into(),
            ..Default::default()
        }),
        requested_country: "DEU".into(),
        reason: "Seized at a synthetic border crossing".into(),
        legal_basis: "Synthetic law art. 3".into(),
        urgency: pb::Urgency::Urgent as i32,
        case_reference: "SYN-CASE-1".into(),
        target_node: String::new(),
        ..Default::default()
    }
}

async fn trace(fed: &TestFederation, node: usize, direction: &str) -> Vec<pb::TraceRecord> {
    let mut c = fed.admin(node).await.unwrap();
    c.list_trace_requests(pb::ListTraceRequestsRequest {
        direction: direction.into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .traces
}

/// FRA sends the standard trace request to DEU; returns its id once DEU holds it.
async fn sent_and_received(fed: &TestFederation) -> String {
    let sent = fed
        .admin(FRA)
        .await
        .unwrap()
        .send_trace_request(trace_request())
        .await
        .unwrap()
        .into_inner();
    wait_for("DEU receives the request", || async {
        trace(fed, DEU, "incoming").await.into_iter().next()
    })
    .await
    .unwrap();
    sent.request.unwrap().id
}

#[tokio::test]
async fn a_trace_request_to_a_stopped_node_is_delivered_when_it_returns_and_answered() {
    let mut fed = federation().await;
    fed.stop(DEU).await.unwrap();

    let mut fra = fed.admin(FRA).await.unwrap();
    let sent = fra
        .send_trace_request(trace_request())
        .await
        .unwrap()
        .into_inner();
    let id = sent.request.as_ref().unwrap().id.clone();
    assert_eq!(sent.status, pb::TraceStatus::Sent as i32);
    assert_eq!(sent.counterpart_node, "DEU-CUS");
    let req = sent.request.unwrap();
    assert_eq!(
        req.due_at - req.created_at,
        7 * 86_400,
        "urgent: DEU's published 7 days"
    );

    // While DEU is down the delivery waits in FRA's outbox, with the failure recorded.
    let item = wait_for("a failed attempt", || async {
        let mut c = fed.admin(FRA).await.ok()?;
        let items = c
            .list_outbox(pb::ListOutboxRequest::default())
            .await
            .ok()?
            .into_inner()
            .items;
        items.into_iter().find(|i| !i.last_error.is_empty())
    })
    .await
    .unwrap();
    assert!(!item.dead, "a peer being down is retried, not given up");
    assert!(item.attempts >= 1 && !item.last_envelope_id.is_empty());

    // A restart of the sender loses nothing queued.
    fed.stop(FRA).await.unwrap();
    fed.restart(FRA).await.unwrap();
    fed.restart(DEU).await.unwrap();

    wait_for("FRA sees the acknowledgement", || async {
        let t = trace(&fed, FRA, "outgoing").await;
        (t.len() == 1 && t[0].status == pb::TraceStatus::Acknowledged as i32).then_some(())
    })
    .await
    .unwrap();
    let incoming = trace(&fed, DEU, "incoming").await;
    assert_eq!(incoming.len(), 1);
    assert_eq!(incoming[0].status, pb::TraceStatus::Acknowledged as i32);
    assert_eq!(incoming[0].counterpart_node, "FRA-POL");
    assert!(!incoming[0].overdue);

    // DEU answers; the answer travels back with DEU's handling codes.
    let mut deu = fed.admin(DEU).await.unwrap();
    deu.answer_trace_request(pb::AnswerTraceRequestRequest {
        request_id: id.clone(),
        outcome: pb::TraceStatus::Answered as i32,
        chain_of_custody: vec![pb::CustodyLink {
            role: "manufacturer".into(),
            name: "Synthetic Arms".into(),
            country: "DEU".into(),
            date: "2019-05-01".into(),
            details: String::new(),
        }],
        remarks: "Exported legally in 2019 (synthetic)".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let answered = wait_for("the answer reaches FRA", || async {
        let t = trace(&fed, FRA, "outgoing").await;
        t.into_iter()
            .find(|r| r.status == pb::TraceStatus::Answered as i32)
    })
    .await
    .unwrap();
    let resp = answered.response.unwrap();
    assert_eq!(resp.chain_of_custody.len(), 1);
    assert!(resp.handling.as_ref().unwrap().no_onward_without_consent);
    let history: Vec<i32> = answered.history.iter().map(|h| h.status).collect();
    assert_eq!(
        history,
        vec![
            pb::TraceStatus::Sent as i32,
            pb::TraceStatus::Acknowledged as i32,
            pb::TraceStatus::Answered as i32
        ]
    );
    // Answering twice is refused.
    let err = deu
        .answer_trace_request(pb::AnswerTraceRequestRequest {
            request_id: id,
            outcome: pb::TraceStatus::Declined as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    wait_for("outboxes drained", || async {
        let mut a = fed.admin(FRA).await.ok()?;
        let mut b = fed.admin(DEU).await.ok()?;
        let pa = a
            .get_node_info(pb::GetNodeInfoRequest {})
            .await
            .ok()?
            .into_inner()
            .outbox_pending;
        let pb_ = b
            .get_node_info(pb::GetNodeInfoRequest {})
            .await
            .ok()?
            .into_inner()
            .outbox_pending;
        (pa == 0 && pb_ == 0).then_some(())
    })
    .await
    .unwrap();
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_repeated_delivery_is_applied_once() {
    let fed = federation().await;
    let fra_key = fed.signing_key(FRA).unwrap();
    let request = pb::TraceRequest {
        id: "syn-trace-1".into(),
        requester_node: "FRA-POL".into(),
        requested_country: "DEU".into(),
        reason: "synthetic".into(),
        due_at: i64::MAX,
        ..Default::default()
    };
    let mut c = fed
        .peer_client(DEU, ClientCert::Of(FRA, "node"))
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut acks = Vec::new();
    for attempt in 1..=3 {
        let mut msg = pb::SubmitTraceRequestMessage {
            context: None,
            request: Some(request.clone()),
        };
        msg.sign_with(
            &fra_key,
            pb::RequestContext {
                request_id: format!("treq:syn-trace-1#{attempt}"),
                requester_node: "FRA-POL".into(),
                purpose: pb::Purpose::Tracing as i32,
                issued_at: now,
                ..Default::default()
            },
        );
        let ack = c.submit_trace_request(msg).await.unwrap().into_inner();
        acks.push(ack.duplicate);
    }
    assert_eq!(acks, vec![false, true, true]);
    assert_eq!(trace(&fed, DEU, "incoming").await.len(), 1);

    // A request claiming another requester than the caller is refused.
    let mut forged = request.clone();
    forged.id = "syn-trace-2".into();
    forged.requester_node = "ITA-POL".into();
    let mut msg = pb::SubmitTraceRequestMessage {
        context: None,
        request: Some(forged),
    };
    msg.sign_with(
        &fra_key,
        pb::RequestContext {
            request_id: "x#1".into(),
            requester_node: "FRA-POL".into(),
            purpose: pb::Purpose::Tracing as i32,
            issued_at: now,
            ..Default::default()
        },
    );
    let sent_envelope = msg.context.clone().unwrap();
    let err = c.submit_trace_request(msg).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    // DEU audited the refusal as FRA's (the certificate), with the envelope as received, and
    // holds nothing of it.
    let refused = audit(&fed, DEU, "refusal", "FRA-POL").await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].detail.contains("names requester"), "{refused:?}");
    assert_eq!(refused[0].request_envelope.as_ref(), Some(&sent_envelope));
    assert!(audit(&fed, DEU, "refusal", "ITA-POL").await.is_empty());
    assert_eq!(trace(&fed, DEU, "incoming").await.len(), 1);
    fed.shutdown().await.unwrap();
}

/// Node `i`'s audit entries of `kind` recording `peer`.
async fn audit(fed: &TestFederation, i: usize, kind: &str, peer: &str) -> Vec<pb::AuditEntry> {
    fed.admin(i)
        .await
        .unwrap()
        .list_audit(pb::ListAuditRequest {
            kind: kind.into(),
            peer: peer.into(),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries
}

/// What an outbox retry after a crash looks like to the receiver: the same item again, each
/// time in a fresh envelope (new id, so the replay guard lets it through). A passed-on copy and a
/// retraction are applied once and every repeat is acknowledged as one, signed for its envelope.
#[tokio::test]
async fn passed_on_copies_and_retractions_repeated_in_fresh_envelopes_are_applied_once() {
    let fed = federation().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let envelope = |from: &str, id: &str| pb::RequestContext {
        request_id: id.into(),
        requester_node: from.into(),
        purpose: pb::Purpose::CriminalInvestigation as i32,
        issued_at: now,
        ..Default::default()
    };
    let reference = pb::RecordRef {
        owner_node: "ITA-POL".into(),
        reference: "syn-ref-1".into(),
    };
    // ITA's signed statement of what it disclosed to FRA, which allows passing it on.
    let ita_key = fed.signing_key(2).unwrap();
    let statement = ita_key.sign_disclosure(&pb::DisclosureStatement {
        reference: Some(reference.clone()),
        handling: Some(pb::Handling {
            allow_onward: true,
            ..Default::default()
        }),
        recipient_node: "FRA-POL".into(),
        request_id: "syn-q-1".into(),
        disclosed_at: now,
        ..Default::default()
    });
    // FRA passes on ITA's record to DEU three times (its outbox retrying).
    let fra_key = fed.signing_key(FRA).unwrap();
    let mut from_fra = fed
        .peer_client(DEU, ClientCert::Of(FRA, "node"))
        .await
        .unwrap();
    let mut repeats = Vec::new();
    for attempt in ["a", "b", "c"] {
        let mut msg = pb::ShareForwardedRequest {
            context: None,
            record: Some(pb::ReceivedRecord {
                reference: Some(reference.clone()),
                request_id: "syn-q-1".into(),
                owner_disclosure: Some(statement.clone()),
                ..Default::default()
            }),
        };
        msg.sign_with(&fra_key, envelope("FRA-POL", &format!("fwd:1#{attempt}")));
        let ack = from_fra.share_forwarded(msg).await.unwrap().into_inner();
        assert!(ack.signature.is_some());
        repeats.push(ack.duplicate);
    }
    assert_eq!(repeats, vec![false, true, true]);
    let mut deu = fed.admin(DEU).await.unwrap();
    let held = deu
        .list_received(pb::ListReceivedRequest::default())
        .await
        .unwrap()
        .into_inner()
        .records;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].forwarded_by, "FRA-POL");

    // ITA, the owner, retracts it; the retries find nothing more to delete and say so.
    let mut from_ita = fed
        .peer_client(DEU, ClientCert::Of(2, "node"))
        .await
        .unwrap();
    let mut repeats = Vec::new();
    for attempt in ["a", "b"] {
        let mut msg = pb::RetractRequest {
            context: None,
            reference: Some(reference.clone()),
        };
        msg.sign_with(
            &ita_key,
            envelope("ITA-POL", &format!("retract:1#{attempt}")),
        );
        let ack = from_ita.retract(msg).await.unwrap().into_inner();
        repeats.push(ack.duplicate);
    }
    assert_eq!(repeats, vec![false, true]);
    let held = deu
        .list_received(pb::ListReceivedRequest::default())
        .await
        .unwrap()
        .into_inner()
        .records;
    assert!(held.is_empty());

    // Every delivery, repeated or not, is in DEU's audit log, the repeats marked as such.
    let audit = deu
        .list_audit(pb::ListAuditRequest {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let passed_on: Vec<&str> = audit
        .iter()
        .filter(|e| e.detail.starts_with("record of ITA-POL passed on"))
        .map(|e| e.detail.as_str())
        .collect();
    assert_eq!(passed_on.len(), 3, "{passed_on:?}");
    assert_eq!(
        passed_on.iter().filter(|d| d.contains("repeated")).count(),
        2
    );
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.kind == "retraction_applied")
            .count(),
        2
    );
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn answering_against_the_policy_is_refused_and_bad_requests_get_field_errors() {
    let fed = federation().await;
    let mut fra = fed.admin(FRA).await.unwrap();
    let mut bad = trace_request();
    bad.requested_country = "FRA".into();
    bad.reason.clear();
    let err = fra.send_trace_request(bad).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("requested_country") && err.message().contains("reason"),
        "{}",
        err.message()
    );

    let mut nowhere = trace_request();
    nowhere.requested_country = "KEN".into();
    let err = fra.send_trace_request(nowhere).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);

    // ITA has no policy: it may restrict or decline FRA's request, not answer it.
    let mut to_ita = trace_request();
    to_ita.requested_country = "ITA".into();
    let id = fra
        .send_trace_request(to_ita)
        .await
        .unwrap()
        .into_inner()
        .request
        .unwrap()
        .id;
    wait_for("ITA receives it", || async {
        (trace(&fed, 2, "incoming").await.len() == 1).then_some(())
    })
    .await
    .unwrap();
    let mut ita = fed.admin(2).await.unwrap();
    let err = ita
        .answer_trace_request(pb::AnswerTraceRequestRequest {
            request_id: id.clone(),
            outcome: pb::TraceStatus::Answered as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    ita.answer_trace_request(pb::AnswerTraceRequestRequest {
        request_id: id,
        outcome: pb::TraceStatus::Restricted as i32,
        chain_of_custody: vec![pb::CustodyLink::default()],
        remarks: "Ongoing national investigation (synthetic)".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let restricted = wait_for("the restriction reaches FRA", || async {
        trace(&fed, FRA, "outgoing")
            .await
            .into_iter()
            .find(|r| r.status == pb::TraceStatus::Restricted as i32)
    })
    .await
    .unwrap();
    assert!(restricted.response.unwrap().chain_of_custody.is_empty());
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn retraction_deletes_the_recipients_copy_and_stops_disclosure() {
    let fed = federation().await;
    let fra = CountryCode::parse("FRA").unwrap();
    let mut fra_admin = fed.admin(FRA).await.unwrap();
    let created = fra_admin
        .create_record(pb::CreateRecordRequest {
            record: Some(sample::record(fra, 42)),
        })
        .await
        .unwrap()
        .into_inner();
    let id = created.record.unwrap().id;
    let serial = sample::serial(fra, 42);
    let lookup = pb::FederatedLookupRequest {
        inquiry: Some(pb::Inquiry {
            agency_kind: pb::AgencyKind::Customs as i32,
            purpose: pb::Purpose::Tracing as i32,
            ..Default::default()
        }),
        serial_number: serial.clone(),
        manufacturer: String::new(),
        ..Default::default()
    };
    let mut deu = fed.admin(DEU).await.unwrap();
    let found = deu
        .federated_lookup(lookup.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(
        found
            .answers
            .iter()
            .any(|a| a.node_id == "FRA-POL" && a.hit)
    );
    let copies = deu
        .list_received(pb::ListReceivedRequest::default())
        .await
        .unwrap()
        .into_inner()
        .records;
    assert_eq!(copies.len(), 1);
    assert!(
        copies[0]
            .handling
            .as_ref()
            .unwrap()
            .no_onward_without_consent
    );

    let notified = fra_admin
        .retract_record(pb::RetractRecordRequest { id })
        .await
        .unwrap()
        .into_inner()
        .notified;
    assert_eq!(notified, vec!["DEU-CUS"]);
    wait_for("DEU deletes its copy", || async {
        let mut c = fed.admin(DEU).await.ok()?;
        let left = c
            .list_received(pb::ListReceivedRequest::default())
            .await
            .ok()?
            .into_inner()
            .records;
        left.is_empty().then_some(())
    })
    .await
    .unwrap();
    let again = deu.federated_lookup(lookup).await.unwrap().into_inner();
    assert!(
        again.answers.iter().all(|a| !a.hit),
        "withdrawn record still disclosed"
    );
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn originator_controlled_data_is_not_passed_on_and_other_data_is() {
    // FRA shares with DEU twice: serials under no-onward handling, serials and makers under a
    // rule that grants onward transmission explicitly.
    let fra_policy = r#"
owner_country = "FRA"
version = 1
legal_basis = "Synthetic law"
[[rules]]
id = "controlled"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["DEU"] }
handling = { no_onward_without_consent = true }
fields = [{ field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" }]
[[rules]]
id = "open"
purposes = ["PURPOSE_CRIMINAL_INVESTIGATION"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["DEU"] }
handling = { allow_onward = true }
fields = [
  { field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "firearms.manufacturer", treatment = "FIELD_TREATMENT_ALLOW" },
]
"#;
    let fed = TestFederation::start_specs(&[
        NodeSpec::new("FRA-POL").with_policy(fra_policy),
        NodeSpec::new("DEU-CUS"),
        NodeSpec::new("ITA-POL"),
    ])
    .await
    .unwrap();
    let fra = CountryCode::parse("FRA").unwrap();
    let mut fra_admin = fed.admin(FRA).await.unwrap();
    fra_admin
        .create_record(pb::CreateRecordRequest {
            record: Some(sample::record(fra, 1)),
        })
        .await
        .unwrap();
    let mut deu = fed.admin(DEU).await.unwrap();
    let look = |purpose: pb::Purpose| pb::FederatedLookupRequest {
        inquiry: Some(pb::Inquiry {
            purpose: purpose as i32,
            ..Default::default()
        }),
        serial_number: sample::serial(fra, 1),
        manufacturer: String::new(),
        ..Default::default()
    };
    deu.federated_lookup(look(pb::Purpose::Tracing))
        .await
        .unwrap();
    let copy = deu
        .list_received(pb::ListReceivedRequest::default())
        .await
        .unwrap()
        .into_inner()
        .records;
    assert_eq!(copy.len(), 1);
    let reference = copy[0].reference.clone();
    let err = deu
        .forward_received(pb::ForwardReceivedRequest {
            reference: reference.clone(),
            to_node: "ITA-POL".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert!(err.message().contains("FRA-POL"), "{}", err.message());

    // The same record received under the open rule replaces the copy; it may be passed on.
    deu.federated_lookup(look(pb::Purpose::CriminalInvestigation))
        .await
        .unwrap();
    deu.forward_received(pb::ForwardReceivedRequest {
        reference,
        to_node: "ITA-POL".into(),
    })
    .await
    .unwrap();
    let at_ita = wait_for("ITA receives the passed-on record", || async {
        let mut c = fed.admin(2).await.ok()?;
        let r = c
            .list_received(pb::ListReceivedRequest::default())
            .await
            .ok()?
            .into_inner()
            .records;
        r.into_iter().next()
    })
    .await
    .unwrap();
    assert_eq!(at_ita.forwarded_by, "DEU-CUS");
    assert_eq!(at_ita.reference.unwrap().owner_node, "FRA-POL");
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_node_configured_for_it_answers_from_its_own_records_where_its_policy_allows() {
    let fed = TestFederation::start_specs(&[
        NodeSpec::new("FRA-POL").with_policy(FRA_POLICY),
        NodeSpec::new("DEU-CUS")
            .with_policy(DEU_AUTO_POLICY)
            .auto_answering(),
        NodeSpec::new("ITA-POL").auto_answering(), // no policy: never answers automatically
    ])
    .await
    .unwrap();
    let deu = CountryCode::parse("DEU").unwrap();
    let ita = CountryCode::parse("ITA").unwrap();
    let mut d = fed.admin(DEU).await.unwrap();
    let held = sample::record(deu, 8);
    d.create_record(pb::CreateRecordRequest {
        record: Some(held.clone()),
    })
    .await
    .unwrap();
    let mut i = fed.admin(2).await.unwrap();
    i.create_record(pb::CreateRecordRequest {
        record: Some(sample::record(ita, 8)),
    })
    .await
    .unwrap();

    let mut fra = fed.admin(FRA).await.unwrap();
    let ask = |country: &str, serial: String| pb::SendTraceRequestRequest {
        firearm: Some(pb::FirearmIdentification {
            serial_number: serial,
            ..Default::default()
        }),
        requested_country: country.into(),
        reason: "synthetic".into(),
        ..Default::default()
    };
    fra.send_trace_request(ask("DEU", sample::serial(deu, 8)))
        .await
        .unwrap();
    fra.send_trace_request(ask("ITA", sample::serial(ita, 8)))
        .await
        .unwrap();

    let answered = wait_for("DEU's automatic answer", || async {
        trace(&fed, FRA, "outgoing").await.into_iter().find(|t| {
            t.counterpart_node == "DEU-CUS" && t.status == pb::TraceStatus::Answered as i32
        })
    })
    .await
    .unwrap();
    let link = &answered.response.unwrap().chain_of_custody[0];
    assert_eq!(link.role, "seized_by_authorities");
    assert_eq!(link.date, held.event.unwrap().date);
    // ITA acknowledges but leaves the answer to an officer: its policy shares no trace results.
    wait_for("ITA's acknowledgement", || async {
        trace(&fed, FRA, "outgoing").await.into_iter().find(|t| {
            t.counterpart_node == "ITA-POL" && t.status == pb::TraceStatus::Acknowledged as i32
        })
    })
    .await
    .unwrap();
    fed.shutdown().await.unwrap();
}

/// The answers FRA's trace `id` holds, once `n` of them arrived.
async fn messages(fed: &TestFederation, id: &str, n: usize) -> pb::TraceRecord {
    wait_for("the responder's messages", || async {
        trace(fed, FRA, "outgoing")
            .await
            .into_iter()
            .find(|t| t.request.as_ref().is_some_and(|r| r.id == id) && t.messages.len() >= n)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_trace_of_several_items_is_answered_in_parts_after_more_information_and_followed_on() {
    let fed = federation().await;
    let mut fra = fed.admin(FRA).await.unwrap();
    // FRA's seizure the trace is made from (synthetic): two firearms, one with an obliterated
    // serial, and a lot of ammunition.
    let mut seizure = sample::record(CountryCode::parse("FRA").unwrap(), 3);
    seizure.tracing = None;
    let stored = fra
        .create_record(pb::CreateRecordRequest {
            record: Some(seizure.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .record
        .unwrap();
    let firearm = |serial: &str, condition: pb::MarkingCondition| pb::TraceItem {
        item: Some(pb::trace_item::Item::Firearm(pb::FirearmIdentification {
            serial_number: serial.into(),
            manufacturer: "Synthetic Arms".into(),
            model: "S2".into(),
            country_of_manufacture: "DEU".into(),
            category: pb::WeaponCategory::RifleOrCarbine as i32,
            year_of_manufacture: 2015,
            import_marking: Some(pb::ImportMarking {
                country: "FRA".into(),
                year: 2016,
            }),
            other_markings: vec![pb::Marking {
                text: "SYN-PROOF".into(),
                location: "barrel".into(),
            }],
            marking_condition: condition as i32,
            ..Default::default()
        })),
    };
    let sent = fra
        .send_trace_request(pb::SendTraceRequestRequest {
            items: vec![
                firearm("SYN-88-0001", pb::MarkingCondition::Intact),
                firearm("", pb::MarkingCondition::Obliterated),
                pb::TraceItem {
                    item: Some(pb::trace_item::Item::Ammunition(pb::AmmunitionItem {
                        calibre: "7.62x39".into(),
                        quantity: 500,
                        manufacturer: "Synthetic Ammunition Works".into(),
                        ..Default::default()
                    })),
                },
            ],
            seizure_record_id: stored.id.clone(),
            ..trace_request()
        })
        .await
        .unwrap()
        .into_inner();
    let id = sent.request.as_ref().unwrap().id.clone();
    assert_eq!(sent.seizure_record_id, stored.id);
    // Older nodes read the first firearm.
    assert_eq!(
        sent.request
            .as_ref()
            .unwrap()
            .firearm
            .as_ref()
            .unwrap()
            .serial_number,
        "SYN-77-1234",
        "the request's own `firearm` comes first"
    );
    assert_eq!(sent.request.as_ref().unwrap().items.len(), 4);
    let record_of = || async {
        fed.admin(FRA)
            .await
            .unwrap()
            .get_record(pb::GetRecordRequest {
                id: stored.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .record
            .unwrap()
            .tracing
            .unwrap_or_default()
    };
    assert!(record_of().await.trace_requested);

    // DEU receives every item and asks for more information.
    let mut deu = fed.admin(DEU).await.unwrap();
    let incoming = wait_for("DEU receives the request", || async {
        trace(&fed, DEU, "incoming").await.into_iter().next()
    })
    .await
    .unwrap();
    assert_eq!(incoming.request.as_ref().unwrap().items.len(), 4);
    let answer = |outcome: pb::TraceStatus, remarks: &str| pb::AnswerTraceRequestRequest {
        request_id: id.clone(),
        outcome: outcome as i32,
        remarks: remarks.into(),
        ..Default::default()
    };
    deu.answer_trace_request(answer(
        pb::TraceStatus::MoreInformationRequested,
        "Photographs of the obliterated marking area, please (synthetic)",
    ))
    .await
    .unwrap();
    let asked = messages(&fed, &id, 1).await;
    assert_eq!(
        asked.status,
        pb::TraceStatus::MoreInformationRequested as i32
    );
    assert_eq!(asked.messages[0].part, 1);

    // FRA answers the question; DEU sees it and the request is open again.
    let provided = fra
        .provide_trace_information(pb::ProvideTraceInformationRequest {
            request_id: id.clone(),
            text: "Traces of the digits 4 and 7 recovered by etching (synthetic)".into(),
            items: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(provided.status, pb::TraceStatus::Acknowledged as i32);
    let resumed = wait_for("DEU receives the information", || async {
        trace(&fed, DEU, "incoming")
            .await
            .into_iter()
            .find(|t| !t.information.is_empty())
    })
    .await
    .unwrap();
    assert_eq!(resumed.status, pb::TraceStatus::Acknowledged as i32);
    assert!(resumed.information[0].text.contains("etching"));
    // Information nobody asked for is refused.
    let again = fra
        .provide_trace_information(pb::ProvideTraceInformationRequest {
            request_id: id.clone(),
            text: "More".into(),
            items: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::InvalidArgument);

    // DEU answers in two parts; the second names the next State in the chain.
    let link = |role: &str, country: &str| pb::CustodyLink {
        role: role.into(),
        name: "Synthetic Dealer".into(),
        country: country.into(),
        date: "2016-02-01".into(),
        details: String::new(),
    };
    deu.answer_trace_request(pb::AnswerTraceRequestRequest {
        chain_of_custody: vec![link("manufacturer", "DEU")],
        ..answer(
            pb::TraceStatus::PartiallyAnswered,
            "The first firearm (synthetic)",
        )
    })
    .await
    .unwrap();
    let partial = messages(&fed, &id, 2).await;
    assert_eq!(partial.status, pb::TraceStatus::PartiallyAnswered as i32);
    assert!(
        !record_of().await.traced,
        "traced only once answered in full"
    );
    deu.answer_trace_request(pb::AnswerTraceRequestRequest {
        chain_of_custody: vec![link("exporter", "DEU"), link("point of diversion", "ITA")],
        next_country: "ITA".into(),
        ..answer(pb::TraceStatus::Answered, "The rest (synthetic)")
    })
    .await
    .unwrap();
    let done = messages(&fed, &id, 3).await;
    assert_eq!(done.status, pb::TraceStatus::Answered as i32);
    let parts: Vec<(u32, i32)> = done.messages.iter().map(|m| (m.part, m.outcome)).collect();
    assert_eq!(
        parts,
        vec![
            (1, pb::TraceStatus::MoreInformationRequested as i32),
            (2, pb::TraceStatus::PartiallyAnswered as i32),
            (3, pb::TraceStatus::Answered as i32),
        ]
    );
    let history: Vec<i32> = done.history.iter().map(|h| h.status).collect();
    assert!(history.ends_with(&[
        pb::TraceStatus::MoreInformationRequested as i32,
        pb::TraceStatus::Acknowledged as i32,
        pb::TraceStatus::PartiallyAnswered as i32,
        pb::TraceStatus::Answered as i32,
    ]));
    assert_eq!(done.response.as_ref().unwrap().next_country, "ITA");
    // The seizure's tracing status follows the answer.
    let status = wait_for("the seizure's tracing status", || async {
        let t = record_of().await;
        t.traced.then_some(t)
    })
    .await
    .unwrap();
    assert!(status.trace_requested && status.illicit_origin_established);
    // A further answer is refused: the request is closed.
    let closed = deu
        .answer_trace_request(answer(pb::TraceStatus::PartiallyAnswered, "late"))
        .await
        .unwrap_err();
    assert_eq!(closed.code(), tonic::Code::FailedPrecondition, "{closed:?}");

    // The follow-on trace to the next State is linked to the first.
    let follow = fra
        .send_trace_request(pb::SendTraceRequestRequest {
            requested_country: "ITA".into(),
            follows_on: id.clone(),
            target_node: "ITA-POL".into(),
            ..trace_request()
        })
        .await
        .unwrap()
        .into_inner();
    let follow_id = follow.request.as_ref().unwrap().id.clone();
    assert_eq!(follow.request.as_ref().unwrap().follows_on, id);
    let first = trace(&fed, FRA, "outgoing")
        .await
        .into_iter()
        .find(|t| t.request.as_ref().is_some_and(|r| r.id == id))
        .unwrap();
    assert_eq!(first.follow_ons, vec![follow_id.clone()]);
    let arrived = wait_for("ITA receives the follow-on", || async {
        trace(&fed, ITA_NODE, "incoming").await.into_iter().next()
    })
    .await
    .unwrap();
    assert_eq!(arrived.request.as_ref().unwrap().follows_on, id);
    // A follow-on of a trace never sent is refused.
    let unknown = fra
        .send_trace_request(pb::SendTraceRequestRequest {
            follows_on: "no-such-trace".into(),
            ..trace_request()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::InvalidArgument);
    fed.shutdown().await.unwrap();
}

/// A tracing context signed as ITA-POL, a member with a valid certificate but no part in the
/// trace requests of these tests.
fn ita_context(request_id: &str) -> pb::RequestContext {
    pb::RequestContext {
        request_id: request_id.into(),
        requester_node: "ITA-POL".into(),
        agency_kind: pb::AgencyKind::Police as i32,
        purpose: pb::Purpose::Tracing as i32,
        issued_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
        ..Default::default()
    }
}

#[tokio::test]
async fn information_from_a_node_the_request_did_not_come_from_is_refused() {
    let fed = federation().await;
    let id = sent_and_received(&fed).await;
    // ITA, a member but not the requester, sends "information" on FRA's request, in its own
    // name (the name of another is refused before that).
    let mut client = fed
        .peer_client(DEU, ClientCert::Of(ITA_NODE, "node"))
        .await
        .unwrap();
    let key = fed.signing_key(ITA_NODE).unwrap();
    let mut msg = pb::SubmitTraceInformationMessage {
        context: None,
        information: Some(pb::TraceInformation {
            request_id: id.clone(),
            requester_node: "ITA-POL".into(),
            part: 1,
            text: "forged".into(),
            ..Default::default()
        }),
    };
    msg.sign_with(&key, ita_context("ita-forged-info"));
    let err = client.submit_trace_information(msg).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
    let held = trace(&fed, DEU, "incoming").await;
    assert!(held[0].information.is_empty());
    fed.shutdown().await.unwrap();
}

/// A member answering another's trace request in the name of the node it went to: refused
/// before anything of it is applied, audited at the requester as a refusal from the caller (its
/// certificate, not the responder it names) with the signed context as received, and the refusal
/// says nothing of the request.
#[tokio::test]
async fn a_trace_response_naming_another_responder_is_refused_and_audited_as_the_callers() {
    let fed = federation().await;
    let id = sent_and_received(&fed).await;
    // ITA, a member with a valid certificate, answers FRA's request to DEU in DEU's name.
    let mut client = fed
        .peer_client(FRA, ClientCert::Of(ITA_NODE, "node"))
        .await
        .unwrap();
    let key = fed.signing_key(ITA_NODE).unwrap();
    let mut msg = pb::SubmitTraceResponseMessage {
        context: None,
        response: Some(pb::TraceResponse {
            request_id: id.clone(),
            responder_node: "DEU-CUS".into(),
            outcome: pb::TraceStatus::Declined as i32,
            remarks: "forged".into(),
            ..Default::default()
        }),
    };
    msg.sign_with(&key, ita_context("ita-forged-response"));
    let sent_envelope = msg.context.clone().unwrap();
    let err = client.submit_trace_response(msg).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    assert!(!err.message().contains(id.as_str()), "{err:?}");

    // FRA audited it as ITA's refusal, with ITA's envelope, and blamed DEU for nothing.
    let refused = audit(&fed, FRA, "refusal", "ITA-POL").await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].detail.contains("another responder"),
        "{refused:?}"
    );
    assert_eq!(refused[0].request_envelope.as_ref(), Some(&sent_envelope));
    assert!(audit(&fed, FRA, "refusal", "DEU-CUS").await.is_empty());
    // Nothing of it applied: no delivery from ITA, FRA's request still unanswered.
    assert!(audit(&fed, FRA, "delivery", "ITA-POL").await.is_empty());
    let outgoing = trace(&fed, FRA, "outgoing").await;
    let mine = outgoing
        .iter()
        .find(|t| t.request.as_ref().is_some_and(|r| r.id == id))
        .unwrap();
    assert!(mine.response.is_none(), "{mine:?}");
    assert!(mine.messages.is_empty(), "{mine:?}");
    fed.shutdown().await.unwrap();
}
