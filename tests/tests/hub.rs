//! Hubs over real mutual TLS: a member's messages to an outbound-only member travel sealed through
//! their regional hub and wait in its mailbox; the hub sees routing metadata only (canary
//! strings are absent from everything it stores and audits); a tampered sealed message is refused
//! by its recipient and a replayed one is caught by the recipient's replay check; a queued trace
//! request survives restarts of the hub and the recipient; a regional fan-out names the member
//! that did not answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use prost::Message;
use tracenet_node::config::Role;
use tracenet_node::envelope::{SignedRequest, SigningKey};
use tracenet_node::ids::NodeId;
use tracenet_node::seal::{self, Address, SealingSecret};
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::hub_relay_client::HubRelayClient;
use tracenet_tests::{ClientCert, NodeSpec, TestFederation, wait_for};

/// ITA discloses serial numbers to FRA and DEU for criminal investigations.
const ITA_POLICY: &str = r#"
owner_country = "ITA"
version = 1
legal_basis = "Synthetic law art. 2"

[[rules]]
id = "fra-deu-serials"
purposes = ["PURPOSE_CRIMINAL_INVESTIGATION"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["FRA", "DEU"] }
fields = [
  { field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "firearms.manufacturer", treatment = "FIELD_TREATMENT_ALLOW" },
]

[[rules]]
id = "trace-results"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_TRACE_RESULT"]
audience = { countries = ["FRA"] }
"#;

/// DEU answers FRA's lookups the same way.
const DEU_POLICY: &str = r#"
owner_country = "DEU"
version = 1
legal_basis = "Synthetic law art. 4"

[[rules]]
id = "fra-serials"
purposes = ["PURPOSE_CRIMINAL_INVESTIGATION"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["FRA"] }
fields = [
  { field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" },
]
"#;

const HUB: usize = 1;
const FRA: usize = 3;
const ITA: usize = 4;
const DEU: usize = 5;

/// The serial of ITA's record: a canary that must never appear at the hub.
const CANARY: &str = "CANARYQ7X9ZK";

async fn federation() -> TestFederation {
    let t = TestFederation::start_specs(&[
        NodeSpec::new("CHE-SEC").voter(Role::Secretariat),
        NodeSpec::new("BEL-HUB").voter(Role::Hub),
        NodeSpec::new("AUT-HUB").voter(Role::Hub),
        NodeSpec::new("FRA-POL").member_of_hub("BEL-HUB", false),
        NodeSpec::new("ITA-CAR")
            .with_policy(ITA_POLICY)
            .member_of_hub("BEL-HUB", true),
        NodeSpec::new("DEU-BKA")
            .with_policy(DEU_POLICY)
            .member_of_hub("BEL-HUB", false),
    ])
    .await
    .unwrap();
    t.fed.found_directory().await.unwrap();
    // Every node has published its sealing key and hub route.
    for i in 0..6 {
        wait_for("sealing keys and hub routes in the directory", || async {
            let mut c = t.admin(i).await.ok()?;
            let d = c
                .get_directory(pb::GetDirectoryRequest::default())
                .await
                .ok()?
                .into_inner();
            let state = d.state?;
            let ready = ["FRA-POL", "ITA-CAR", "DEU-BKA"].iter().all(|n| {
                state
                    .entries
                    .get(*n)
                    .is_some_and(|e| e.sealing_key.len() == 32 && e.hub_route.is_some())
            });
            ready.then_some(())
        })
        .await
        .unwrap();
    }
    t
}

fn inquiry(via_hub: bool) -> pb::Inquiry {
    pb::Inquiry {
        agency_kind: pb::AgencyKind::Police as i32,
        purpose: pb::Purpose::CriminalInvestigation as i32,
        legal_basis: "Synthetic law art. 9".into(),
        case_reference: "SYN-HUB-1".into(),
        deadline_ms: 8000,
        via_hub,
    }
}

async fn create(t: &TestFederation, i: usize, serial: &str) {
    let country = t.node(i).id.state().unwrap();
    let mut rec = tracenet_node::sample::record(country, 77);
    rec.firearms[0].serial_number = serial.into();
    t.admin(i)
        .await
        .unwrap()
        .create_record(pb::CreateRecordRequest { record: Some(rec) })
        .await
        .unwrap();
}

/// Every file under `dir`, read whole.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p.display().to_string(), b));
        }
    }
    out
}

fn holds(dir: &Path, needle: &str) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|(_, b)| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .map(|(p, _)| p)
        .collect()
}

async fn audit(t: &TestFederation, i: usize, kind: &str) -> Vec<pb::AuditEntry> {
    t.admin(i)
        .await
        .unwrap()
        .list_audit(pb::ListAuditRequest {
            kind: kind.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries
}

#[tokio::test]
async fn lookups_reach_an_outbound_only_member_through_its_hub_which_reads_nothing() {
    let t = federation().await;
    create(&t, ITA, CANARY).await;

    // FRA asks the whole federation; ITA accepts no connection, so its part goes sealed
    // through BEL-HUB's mailbox, which ITA collects.
    let resp = t
        .admin(FRA)
        .await
        .unwrap()
        .federated_lookup(pb::FederatedLookupRequest {
            inquiry: Some(inquiry(false)),
            serial_number: CANARY.into(),
            manufacturer: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ita = resp
        .answers
        .iter()
        .find(|a| a.node_id == "ITA-CAR")
        .unwrap_or_else(|| panic!("no answer from ITA: {resp:?}"));
    assert!(ita.hit);
    assert_eq!(
        ita.hits[0].disclosed.as_ref().unwrap().firearms[0].serial_number,
        CANARY
    );

    // The hub audited the routing of the call and of the reply, and nothing of their content.
    let relayed = audit(&t, HUB, "relayed").await;
    assert!(
        relayed
            .iter()
            .any(|e| e.detail.contains("Lookup") && e.detail.contains("to ITA-CAR")),
        "{relayed:?}"
    );
    let all = audit(&t, HUB, "").await;
    assert!(
        all.iter().all(|e| !format!("{e:?}").contains(CANARY)),
        "the canary is in the hub's audit log"
    );
    // ITA's own store holds the canary (so the search below can find it), the hub's nothing.
    let hub_dir = t.node(HUB).config.data_dir.clone();
    let ita_dir = t.node(ITA).config.data_dir.clone();
    let mut t = t;
    t.stop(HUB).await.unwrap();
    t.stop(ITA).await.unwrap();
    assert!(!holds(&ita_dir, CANARY).is_empty(), "control: ITA holds it");
    assert!(
        holds(&hub_dir, CANARY).is_empty(),
        "the canary is in the hub's files: {:?}",
        holds(&hub_dir, CANARY)
    );
    t.shutdown().await.unwrap();
}

/// What a test acting as FRA needs to seal a lookup to DEU by hand.
struct Fra {
    key: SigningKey,
    deu_key: Vec<u8>,
}

async fn fra(t: &TestFederation) -> Fra {
    let mut c = t.admin(FRA).await.unwrap();
    let d = c
        .get_directory(pb::GetDirectoryRequest::default())
        .await
        .unwrap()
        .into_inner();
    Fra {
        key: t.signing_key(FRA).unwrap(),
        deu_key: d.state.unwrap().entries["DEU-BKA"].sealing_key.clone(),
    }
}

fn sealed_lookup(f: &Fra, serial: &str, rid: &str) -> pb::SealedMessage {
    let mut req = pb::LookupRequest {
        context: None,
        serial_number: serial.into(),
        manufacturer: String::new(),
        ..Default::default()
    };
    let rc = pb::RequestContext {
        request_id: rid.into(),
        requester_node: "FRA-POL".into(),
        agency_kind: pb::AgencyKind::Police as i32,
        purpose: pb::Purpose::CriminalInvestigation as i32,
        legal_basis: "Synthetic law art. 9".into(),
        case_reference: "SYN-HUB-2".into(),
        issued_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
        body_sha256: Vec::new(),
    };
    req.sign_with(&f.key, rc);
    seal::seal(
        &f.key,
        Address {
            message_id: seal::new_message_id().unwrap(),
            recipient: &NodeId::parse("DEU-BKA").unwrap(),
            recipient_key: &f.deu_key,
            kind: "Lookup",
            in_reply_to: "",
            sent_at: 1,
        },
        &pb::SealedBody {
            method: "/tracenet.v1.PeerExchange/Lookup".into(),
            messages: vec![req.encode_to_vec()],
            ..Default::default()
        },
    )
    .unwrap()
}

#[tokio::test]
async fn a_tampered_message_is_refused_and_a_replayed_one_is_caught() {
    let t = federation().await;
    create(&t, DEU, "SYN-DEU-HUB-1").await;
    let f = fra(&t).await;
    let ch = t
        .channel(HUB, false, ClientCert::Of(FRA, "node"))
        .await
        .unwrap();
    let mut hub = HubRelayClient::new(ch);

    // Sent once, it is answered by DEU, sealed to FRA.
    let good = sealed_lookup(&f, "SYN-DEU-HUB-1", "hub-replay-1");
    let reply = hub.relay(good.clone()).await.unwrap().into_inner();
    assert_eq!(reply.sender, "DEU-BKA");
    assert_eq!(reply.in_reply_to, good.message_id);
    let fra_secret =
        SealingSecret::load_or_generate(&t.node(FRA).config.data_dir.join("sealing.key")).unwrap();
    let keys = tracenet_node::envelope::PeerKeys::new(
        [(
            NodeId::parse("DEU-BKA").unwrap(),
            t.public_key(DEU).unwrap(),
        )]
        .into_iter()
        .collect(),
    );
    let own = NodeId::parse("FRA-POL").unwrap();
    let (_, body) = seal::open(&own, &fra_secret, &keys, &reply).unwrap();
    assert_eq!(body.status_code, 0, "{body:?}");
    let answer = pb::LookupResponse::decode(body.messages[0].as_slice()).unwrap();
    assert!(answer.hit);

    // The hub sends the same sealed message again: DEU's replay check refuses the call inside.
    let again = hub.relay(good).await.unwrap().into_inner();
    let (_, body) = seal::open(&own, &fra_secret, &keys, &again).unwrap();
    assert_eq!(
        body.status_code,
        tonic::Code::AlreadyExists as i32,
        "{body:?}"
    );

    // One bit of the ciphertext flipped: DEU cannot open it and says so.
    let mut bad = sealed_lookup(&f, "SYN-DEU-HUB-1", "hub-tamper-1");
    let last = bad.ciphertext.len() - 1;
    bad.ciphertext[last] ^= 0x01;
    let err = hub.relay(bad).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    assert!(
        audit(&t, DEU, "refusal")
            .await
            .iter()
            .any(|e| e.detail.contains("sealed message refused")),
    );

    // A member cannot relay in another's name.
    let mut forged = sealed_lookup(&f, "SYN-DEU-HUB-1", "hub-forged-1");
    forged.sender = "DEU-BKA".into();
    let err = hub.relay(forged).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_trace_request_queued_for_an_offline_member_survives_hub_and_member_restarts() {
    let mut t = federation().await;
    t.stop(ITA).await.unwrap();

    let sent = t
        .admin(FRA)
        .await
        .unwrap()
        .send_trace_request(pb::SendTraceRequestRequest {
            firearm: Some(pb::FirearmIdentification {
                serial_number: "SYN-ITA-HUB-9".into(),
                manufacturer: "Synthetic Arms".into(),
                country_of_manufacture: "ITA".into(),
                ..Default::default()
            }),
            requested_country: "ITA".into(),
            reason: "Seized at a synthetic port".into(),
            legal_basis: "Synthetic law art. 3".into(),
            urgency: pb::Urgency::Routine as i32,
            case_reference: "SYN-HUB-3".into(),
            target_node: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let id = sent.request.unwrap().id;

    // The request waits in BEL-HUB's mailbox for ITA.
    wait_for("the trace request relayed into ITA's mailbox", || async {
        let relayed = audit(&t, HUB, "relayed").await;
        relayed
            .iter()
            .any(|e| e.detail.contains("SubmitTraceRequest") && e.detail.contains("to ITA-CAR"))
            .then_some(())
    })
    .await
    .unwrap();

    // Both restart; ITA collects its mailbox and the request is there, once.
    t.stop(HUB).await.unwrap();
    t.restart(HUB).await.unwrap();
    t.restart(ITA).await.unwrap();
    let incoming = wait_for("ITA holds the trace request", || async {
        let mut c = t.admin(ITA).await.ok()?;
        let traces = c
            .list_trace_requests(pb::ListTraceRequestsRequest {
                direction: "incoming".into(),
                ..Default::default()
            })
            .await
            .ok()?
            .into_inner()
            .traces;
        (!traces.is_empty()).then_some(traces)
    })
    .await
    .unwrap();
    assert_eq!(incoming.len(), 1);
    assert_eq!(incoming[0].request.as_ref().unwrap().id, id);
    assert_eq!(incoming[0].counterpart_node, "FRA-POL");
    // FRA learns it was delivered (its outbox's retry gets ITA's signed acknowledgement).
    wait_for("FRA's delivery acknowledged", || async {
        let mut c = t.admin(FRA).await.ok()?;
        let items = c
            .list_outbox(pb::ListOutboxRequest::default())
            .await
            .ok()?
            .into_inner()
            .items;
        items.is_empty().then_some(())
    })
    .await
    .unwrap();
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_regional_fan_out_names_the_member_that_did_not_answer() {
    let mut t = federation().await;
    create(&t, DEU, "SYN-REGION-1").await;
    t.stop(ITA).await.unwrap();
    let resp = t
        .admin(FRA)
        .await
        .unwrap()
        .federated_lookup(pb::FederatedLookupRequest {
            inquiry: Some(pb::Inquiry {
                deadline_ms: 3000,
                ..inquiry(true)
            }),
            serial_number: "SYN-REGION-1".into(),
            manufacturer: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let deu = resp.answers.iter().find(|a| a.node_id == "DEU-BKA");
    assert!(deu.is_some_and(|a| a.hit), "{resp:?}");
    let silent: Vec<_> = resp.failed.iter().map(|f| f.node_id.as_str()).collect();
    assert!(silent.contains(&"ITA-CAR"), "{resp:?}");
    // The hub relayed and audited each call without learning the serial.
    let all = audit(&t, HUB, "").await;
    assert!(
        all.iter()
            .all(|e| !format!("{e:?}").contains("SYN-REGION-1"))
    );
    t.shutdown().await.unwrap();
}
