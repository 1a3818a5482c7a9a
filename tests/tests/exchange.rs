//! Policy-filtered exchange between three nodes over real mutual TLS: what each requester
//! actually receives on the wire, refusals of forged and replayed envelopes, fan-out with a
//! stopped peer, and the audit trail of every disclosure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use prost::Message;
use tracenet_node::country::CountryCode;
use tracenet_node::envelope::{PeerKeys, ReplayGuard, SignedRequest, SigningKey, check_body};
use tracenet_node::ids::NodeId;
use tracenet_node::sample;
use tracenet_proto::v1 as pb;
use tracenet_tests::{ClientCert, NodeSpec, TestFederation};

const FRA_POLICY: &str = r#"
owner_country = "FRA"
version = 7
legal_basis = "Synthetic law art. 1"

[[rules]]
id = "deu-tracing"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["DEU"] }
handling = { no_onward_without_consent = true }
fields = [
  { field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "firearms.manufacturer", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "event.date", treatment = "FIELD_TREATMENT_GENERALISE", generalisation = "GENERALISATION_DATE_TO_MONTH" },
  { field = "case_reference", treatment = "FIELD_TREATMENT_REDACT" },
]

[[rules]]
id = "ita-border"
purposes = ["PURPOSE_BORDER_RISK_ANALYSIS"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["ITA"] }
fields = [
  { field = "trafficking.route", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "trafficking.transport_mode", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "trafficking.concealment_method", treatment = "FIELD_TREATMENT_ALLOW" },
]
"#;

const FRA: usize = 0;
const DEU: usize = 1;
const ITA: usize = 2;

async fn federation() -> TestFederation {
    let fed = TestFederation::start_specs(&[
        NodeSpec::new("FRA-POL").with_policy(FRA_POLICY),
        NodeSpec::new("DEU-CUS"),
        NodeSpec::new("ITA-POL"),
    ])
    .await
    .unwrap();
    let mut admin = fed.admin(FRA).await.unwrap();
    admin
        .import_batch(pb::ImportBatchRequest {
            records: (0..20).map(|n| sample::record(fra(), n)).collect(),
            source_lines: vec![],
            ..Default::default()
        })
        .await
        .unwrap();
    fed
}

fn fra() -> CountryCode {
    CountryCode::parse("FRA").unwrap()
}

/// A request context and the key that signs it into a request (binding the request's body).
#[derive(Clone)]
struct Ctx<'a>(&'a SigningKey, pb::RequestContext);

fn context<'a>(key: &'a SigningKey, node: &str, id: &str, purpose: pb::Purpose) -> Ctx<'a> {
    Ctx(
        key,
        pb::RequestContext {
            request_id: id.into(),
            requester_node: node.into(),
            agency_kind: pb::AgencyKind::Police as i32,
            purpose: purpose as i32,
            legal_basis: "synthetic".into(),
            case_reference: String::new(),
            issued_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64,
            body_sha256: Vec::new(),
        },
    )
}

async fn lookup_as(
    fed: &TestFederation,
    from: usize,
    ctx: Ctx<'_>,
    serial: &str,
) -> Result<pb::LookupResponse, tonic::Status> {
    let mut c = fed
        .peer_client(FRA, ClientCert::Of(from, "node"))
        .await
        .unwrap();
    let mut req = pb::LookupRequest {
        context: None,
        serial_number: serial.into(),
        manufacturer: String::new(),
        ..Default::default()
    };
    req.sign_with(ctx.0, ctx.1);
    c.lookup(req).await.map(|r| r.into_inner())
}

#[tokio::test]
async fn each_requester_receives_only_what_its_rule_allows() {
    let fed = federation().await;
    let rec = sample::record(fra(), 5);
    let deu_key = fed.signing_key(DEU).unwrap();

    // DEU, tracing: serial, manufacturer, month; nothing else is on the wire.
    let mut resp = lookup_as(
        &fed,
        DEU,
        context(&deu_key, "DEU-CUS", "q1", pb::Purpose::Tracing),
        &rec.firearms[0].serial_number,
    )
    .await
    .unwrap();
    assert!(resp.hit);
    assert_eq!(resp.hits.len(), 1);
    let hit = &resp.hits[0];
    let expected = pb::SeizureRecord {
        event: Some(pb::SeizureEvent {
            date: rec.event.as_ref().unwrap().date[..7].to_owned(),
            ..Default::default()
        }),
        firearms: vec![pb::FirearmIdentification {
            serial_number: rec.firearms[0].serial_number.clone(),
            manufacturer: rec.firearms[0].manufacturer.clone(),
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(hit.disclosed.as_ref().unwrap(), &expected);
    assert_eq!(hit.redacted_fields, vec!["case_reference"]);
    assert_eq!(
        (hit.policy_version, hit.policy_rule.as_str()),
        (7, "deu-tracing")
    );
    assert!(hit.handling.as_ref().unwrap().no_onward_without_consent);
    // The bytes on the wire do not contain what was withheld.
    let wire = resp.encode_to_vec();
    for secret in [
        &rec.persons[0].name,
        &rec.case_reference,
        &rec.firearms[0].model,
    ] {
        assert!(
            !wire.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} leaked"
        );
    }
    // The response is signed by FRA.
    let sig = resp.signature.take();
    let keys = PeerKeys::new(HashMap::from([(
        NodeId::parse("FRA-POL").unwrap(),
        fed.public_key(FRA).unwrap(),
    )]));
    keys.verify_response(
        &NodeId::parse("FRA-POL").unwrap(),
        "q1",
        &resp.encode_to_vec(),
        sig.as_ref(),
    )
    .unwrap();

    // ITA, border risk analysis: routes and methods, never the serial.
    let ita_key = fed.signing_key(ITA).unwrap();
    let mut c = fed
        .peer_client(FRA, ClientCert::Of(ITA, "node"))
        .await
        .unwrap();
    let route_country = rec.trafficking.as_ref().unwrap().route[1].country.clone();
    let mut query = pb::QueryRecordsRequest {
        context: None,
        filter: Some(pb::RecordFilter {
            route_country: route_country.clone(),
            ..Default::default()
        }),
        limit: 100,
    };
    let Ctx(key, rc) = context(&ita_key, "ITA-POL", "q2", pb::Purpose::BorderRiskAnalysis);
    query.sign_with(key, rc);
    let mut stream = c.query_records(query).await.unwrap().into_inner();
    let mut n = 0;
    while let Some(d) = stream.message().await.unwrap() {
        n += 1;
        let r = d.record.unwrap();
        assert!(
            r.firearms.is_empty() && r.event.is_none() && r.persons.is_empty(),
            "{r:?}"
        );
        let t = r.trafficking.unwrap();
        assert!(t.route.iter().any(|p| p.country == route_country));
        assert_ne!(t.transport_mode, 0);
        assert_eq!(d.policy_rule, "ita-border");
    }
    assert!(n >= 1);
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_purpose_or_requester_without_a_rule_gets_nothing() {
    let fed = federation().await;
    let serial = sample::serial(fra(), 5);
    let deu_key = fed.signing_key(DEU).unwrap();
    let resp = lookup_as(
        &fed,
        DEU,
        context(&deu_key, "DEU-CUS", "s1", pb::Purpose::Statistics),
        &serial,
    )
    .await
    .unwrap();
    assert!(!resp.hit && resp.hits.is_empty());
    let ita_key = fed.signing_key(ITA).unwrap();
    let resp = lookup_as(
        &fed,
        ITA,
        context(&ita_key, "ITA-POL", "s2", pb::Purpose::Tracing),
        &serial,
    )
    .await
    .unwrap();
    assert!(!resp.hit && resp.hits.is_empty());
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn forged_mismatched_missing_and_replayed_envelopes_are_refused() {
    let fed = federation().await;
    let serial = sample::serial(fra(), 5);
    let deu_key = fed.signing_key(DEU).unwrap();
    let ita_key = fed.signing_key(ITA).unwrap();

    // DEU's certificate, a context naming ITA (signed with ITA's key): the signer is not the caller.
    let err = lookup_as(
        &fed,
        DEU,
        context(&ita_key, "ITA-POL", "f1", pb::Purpose::Tracing),
        &serial,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");

    // A context naming DEU but signed with another key.
    let err = lookup_as(
        &fed,
        DEU,
        context(&ita_key, "DEU-CUS", "f2", pb::Purpose::Tracing),
        &serial,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");

    // No context at all.
    let mut c = fed
        .peer_client(FRA, ClientCert::Of(DEU, "node"))
        .await
        .unwrap();
    let err = c
        .lookup(pb::LookupRequest {
            context: None,
            serial_number: serial.clone(),
            manufacturer: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");

    // A good request works once; its replay is refused.
    let good = context(&deu_key, "DEU-CUS", "f3", pb::Purpose::Tracing);
    assert!(
        lookup_as(&fed, DEU, good.clone(), &serial)
            .await
            .unwrap()
            .hit
    );
    let err = lookup_as(&fed, DEU, good, &serial).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists, "{err:?}");

    // A signed context carried over to another question: the body digest no longer matches.
    let mut asked = pb::LookupRequest {
        context: None,
        serial_number: "SYN-NOT-ASKED".into(),
        manufacturer: String::new(),
        ..Default::default()
    };
    let Ctx(key, rc) = context(&deu_key, "DEU-CUS", "f4", pb::Purpose::Tracing);
    asked.sign_with(key, rc);
    asked.serial_number = serial.clone();
    let err = c.lookup(asked).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");

    // Every refusal is in FRA's audit log.
    let mut admin = fed.admin(FRA).await.unwrap();
    let refusals = admin
        .list_audit(pb::ListAuditRequest {
            kind: "refusal".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(refusals.len(), 5, "{refusals:?}");
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn fan_out_merges_answers_and_names_a_stopped_peer() {
    let mut fed = federation().await;
    let serial = sample::serial(fra(), 9);
    let lookup = pb::FederatedLookupRequest {
        inquiry: Some(pb::Inquiry {
            agency_kind: pb::AgencyKind::Customs as i32,
            purpose: pb::Purpose::Tracing as i32,
            legal_basis: "synthetic".into(),
            case_reference: "SYN-CASE".into(),
            deadline_ms: 2000,
            via_hub: false,
        }),
        serial_number: serial.to_lowercase(),
        manufacturer: String::new(),
        ..Default::default()
    };
    let mut deu = fed.admin(DEU).await.unwrap();
    let all = deu
        .federated_lookup(lookup.clone())
        .await
        .unwrap()
        .into_inner();
    let by_node: HashMap<_, _> = all
        .answers
        .iter()
        .map(|a| (a.node_id.as_str(), a))
        .collect();
    assert!(by_node["FRA-POL"].hit);
    assert!(!by_node["ITA-POL"].hit);
    assert!(all.failed.is_empty(), "{:?}", all.failed);

    fed.stop(ITA).await.unwrap();
    let partial = deu.federated_lookup(lookup).await.unwrap().into_inner();
    assert_eq!(partial.answers.len(), 1);
    assert_eq!(partial.answers[0].node_id, "FRA-POL");
    assert!(partial.answers[0].hit);
    assert_eq!(partial.failed.len(), 1);
    assert_eq!(partial.failed[0].node_id, "ITA-POL");

    // A purpose is required.
    let err = deu
        .federated_lookup(pb::FederatedLookupRequest {
            inquiry: Some(pb::Inquiry::default()),
            serial_number: serial,
            manufacturer: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_disclosure_is_audited_and_the_chain_verifies_offline() {
    let mut fed = federation().await;
    let deu_key = fed.signing_key(DEU).unwrap();
    let serial = sample::serial(fra(), 3);
    lookup_as(
        &fed,
        DEU,
        context(&deu_key, "DEU-CUS", "a1", pb::Purpose::Tracing),
        &serial,
    )
    .await
    .unwrap();
    let mut admin = fed.admin(FRA).await.unwrap();
    let entries = admin
        .list_audit(pb::ListAuditRequest {
            peer: "DEU-CUS".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["request_received", "disclosure"]);
    let d = &entries[1];
    assert_eq!(
        (
            d.request_id.as_str(),
            d.policy_version,
            d.policy_rule.as_str()
        ),
        ("a1", 7, "deu-tracing")
    );
    assert_eq!(d.record_refs.len(), 1);
    // The request entry keeps DEU's signed context: with DEU's key anyone can check that DEU
    // asked, and for which serial (the body digest inside what DEU signed).
    let envelope = entries[0].request_envelope.clone().unwrap();
    assert!(d.request_envelope.is_none());
    let deu = NodeId::parse("DEU-CUS").unwrap();
    let keys = PeerKeys::new(HashMap::from([(deu.clone(), fed.public_key(DEU).unwrap())]));
    let signed = pb::RequestContext::decode(envelope.context.as_slice()).unwrap();
    let asked = ReplayGuard::new(300, 1)
        .verify_context(&keys, Some(&envelope), &deu, signed.issued_at)
        .unwrap();
    let body = |serial: &str| {
        pb::LookupRequest {
            context: None,
            serial_number: serial.into(),
            manufacturer: String::new(),
            ..Default::default()
        }
        .encode_to_vec()
    };
    check_body(&asked, pb::LookupRequest::METHOD, &body(&serial)).unwrap();
    assert!(check_body(&asked, pb::LookupRequest::METHOD, &body("SYN-OTHER")).is_err());
    drop(admin);

    fed.stop(FRA).await.unwrap();
    let db = sled::open(fed.node(FRA).config.data_dir.join("records")).unwrap();
    let v = tracenet_node::audit::verify(&db, &fed.public_key(FRA).unwrap()).unwrap();
    assert_eq!(v.entries, 2);
    assert_eq!(
        v.unsigned_tail, 0,
        "stopping the node signs a final checkpoint"
    );
    // Remove the disclosure entry: the verifier names it.
    db.open_tree("audit")
        .unwrap()
        .remove(2u64.to_be_bytes())
        .unwrap();
    let fault = tracenet_node::audit::verify(&db, &fed.public_key(FRA).unwrap()).unwrap_err();
    assert_eq!(fault.seq, 2, "{fault}");
}
