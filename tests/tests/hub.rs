//! Hubs over real mutual TLS: a member's messages to an outbound-only member travel sealed through
//! their regional hub and wait in its mailbox; the hub sees routing metadata only (canary
//! strings are absent from everything it stores and audits); a tampered sealed message is refused
//! by its recipient and a replayed one is caught by the recipient's replay check; a queued trace
//! request survives restarts of the hub and the recipient; a regional fan-out names the member
//! that did not answer.
//!
//! Hostile members (a valid certificate, hostile intent): one flooding another's mailbox only
//! churns its own share (past it, each new message replaces its own oldest, audited) while
//! honest senders and other recipients still get through and what others had held before is
//! delivered; a regional fan-out past its bound is
//! refused whole before anything is relayed, and one at the bound relays exactly that many; trace
//! information forged through the hub (a context naming another node, information naming
//! another requester, information for a trace request the sender did not send, or a header
//! naming another sender) is refused, audited at the recipient as a refusal from the member that
//! signed it, and nothing of it is stored; a sealed message whose id is empty or longer than
//! `MAX_MESSAGE_ID` is refused (INVALID_ARGUMENT) and neither held nor relayed. Identity is always
//! the certificate (at the hub) or the seal's signature (at the recipient), never a field of the
//! request.

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
    federation_with(&[]).await
}

/// The federation above and `extra` members (indexes from 6 on).
async fn federation_with(extra: &[NodeSpec]) -> TestFederation {
    let mut specs = vec![
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
    ];
    specs.extend(extra.iter().cloned());
    let t = TestFederation::start_specs(&specs).await.unwrap();
    t.fed.found_directory().await.unwrap();
    let members: Vec<String> = (3..specs.len()).map(|i| t.node(i).id.to_string()).collect();
    // Every node has published its sealing key and hub route.
    for i in 0..specs.len() {
        let (t, members) = (&t, &members);
        wait_for(
            "sealing keys and hub routes in the directory",
            || async move {
                let mut c = t.admin(i).await.ok()?;
                let d = c
                    .get_directory(pb::GetDirectoryRequest::default())
                    .await
                    .ok()?
                    .into_inner();
                let state = d.state?;
                let ready = members.iter().all(|n| {
                    state
                        .entries
                        .get(n.as_str())
                        .is_some_and(|e| e.sealing_key.len() == 32 && e.hub_route.is_some())
                });
                ready.then_some(())
            },
        )
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
    let forged_id = forged.message_id.clone();
    let err = hub.relay(forged).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    // The hub audits the attempt as the caller's (its certificate), naming the sender claimed.
    let refused: Vec<_> = audit(&t, HUB, "refusal")
        .await
        .into_iter()
        .filter(|e| e.detail.contains(&forged_id))
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].peer, "FRA-POL");
    assert!(
        refused[0].detail.contains("named sender DEU-BKA"),
        "{refused:?}"
    );
    assert!(
        audit(&t, HUB, "relayed")
            .await
            .iter()
            .all(|e| !e.detail.contains(&forged_id)),
        "a refused message is not relayed"
    );
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

/// Every audit entry of `kind` on node `i`, read page by page.
async fn audit_all(t: &TestFederation, i: usize, kind: &str) -> Vec<pb::AuditEntry> {
    let mut c = t.admin(i).await.unwrap();
    let mut out: Vec<pb::AuditEntry> = Vec::new();
    loop {
        let page = c
            .list_audit(pb::ListAuditRequest {
                kind: kind.into(),
                after_seq: out.last().map_or(0, |e| e.seq),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entries;
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

/// A sealed message a hostile member makes up: a header the hub accepts (the caller as sender,
/// an active member as recipient) around bytes nobody can open.
fn junk(sender: &str, to: &str, id: &str) -> pb::SealedMessage {
    pb::SealedMessage {
        message_id: id.into(),
        sender: sender.into(),
        recipient: to.into(),
        kind: "Lookup".into(),
        sent_at: 1,
        ciphertext: vec![0x5a; 48],
        ..Default::default()
    }
}

#[tokio::test]
async fn a_member_flooding_a_mailbox_churns_only_its_share_and_what_was_held_is_delivered() {
    use tracenet_node::hub::mailbox::MAX_HELD_PER_SENDER;
    let mut t = federation_with(&[NodeSpec::new("ESP-GCV").member_of_hub("BEL-HUB", true)]).await;
    t.stop(ITA).await.unwrap();

    // Held before the flood: an honest trace request from DEU, waiting for ITA.
    let sent = t
        .admin(DEU)
        .await
        .unwrap()
        .send_trace_request(pb::SendTraceRequestRequest {
            firearm: Some(pb::FirearmIdentification {
                serial_number: "SYN-ITA-FLOOD-1".into(),
                manufacturer: "Synthetic Arms".into(),
                country_of_manufacture: "ITA".into(),
                ..Default::default()
            }),
            requested_country: "ITA".into(),
            reason: "Seized at a synthetic border".into(),
            legal_basis: "Synthetic law art. 3".into(),
            urgency: pb::Urgency::Routine as i32,
            case_reference: "SYN-HUB-FLOOD".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let id = sent.request.unwrap().id;
    wait_for("DEU's trace request in ITA's mailbox", || async {
        audit(&t, HUB, "relayed")
            .await
            .iter()
            .any(|e| {
                e.detail.contains("SubmitTraceRequest")
                    && e.detail.contains("from DEU-BKA to ITA-CAR")
            })
            .then_some(())
    })
    .await
    .unwrap();

    // FRA, a member with a valid certificate, floods ITA's mailbox: six regional fan-outs of
    // 200 made-up messages each, 1,200 in all, at once over one connection.
    let hub = t
        .hub_client(HUB, ClientCert::Of(FRA, "node"))
        .await
        .unwrap();
    let mut rounds = tokio::task::JoinSet::new();
    for r in 0..6 {
        let mut hub = hub.clone();
        rounds.spawn(async move {
            let calls = (0..200)
                .map(|i| junk("FRA-POL", "ITA-CAR", &format!("flood-{r}-{i}")))
                .collect();
            hub.regional_fanout(pb::RegionalFanoutRequest {
                calls,
                // The longest a fan-out may take: every call is held or refused well before.
                deadline_ms: 30_000,
            })
            .await
            .unwrap()
            .into_inner()
        });
    }
    let answers = rounds.join_all().await;
    let silent: Vec<&pb::RegionalSilence> = answers.iter().flat_map(|a| &a.silent).collect();
    assert!(answers.iter().all(|a| a.replies.is_empty()));
    assert_eq!(silent.len(), 1200);
    // Every call was held; past FRA's share each new one took the place of FRA's own oldest,
    // whose caller (if still waiting) was told at once. None was refused for room.
    assert!(
        silent
            .iter()
            .all(|s| s.reason.contains("queued for ITA-CAR")
                || s.reason.contains("dropped from the mailbox of ITA-CAR")),
        "{silent:?}"
    );
    // The hub's audit log names each dropped message as a refusal from FRA (after its
    // `relayed` entry): exactly what passed FRA's share.
    let dropped = || async {
        audit_all(&t, HUB, "refusal")
            .await
            .into_iter()
            .filter(|e| e.peer == "FRA-POL" && e.detail.contains("its share of the mailbox"))
            .count()
    };
    assert_eq!(dropped().await, 1200 - MAX_HELD_PER_SENDER);

    // One more from FRA: held too, in place of FRA's oldest. In DEU's name, to spend DEU's
    // share: refused, the sender is the caller's certificate.
    let mut fra_hub = hub.clone();
    let more = fra_hub
        .relay(junk("FRA-POL", "ITA-CAR", "flood-more"))
        .await
        .unwrap_err();
    assert_eq!(more.code(), tonic::Code::Unavailable, "{more:?}");
    assert!(more.message().contains("queued"), "{more:?}");
    assert_eq!(dropped().await, 1200 - MAX_HELD_PER_SENDER + 1);
    let forged = fra_hub
        .relay(junk("DEU-BKA", "ITA-CAR", "flood-as-deu"))
        .await
        .unwrap_err();
    assert_eq!(forged.code(), tonic::Code::PermissionDenied, "{forged:?}");

    // An honest sender still reaches ITA's mailbox, and FRA still reaches another member's:
    // both held (UNAVAILABLE "queued", not RESOURCE_EXHAUSTED).
    let mut deu_hub = t
        .hub_client(HUB, ClientCert::Of(DEU, "node"))
        .await
        .unwrap();
    let (honest, other) = tokio::join!(
        deu_hub.relay(junk("DEU-BKA", "ITA-CAR", "honest-1")),
        fra_hub.relay(junk("FRA-POL", "ESP-GCV", "other-1")),
    );
    for (what, r) in [("DEU to ITA", honest), ("FRA to ESP", other)] {
        let e = r.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unavailable, "{what}: {e:?}");
        assert!(e.message().contains("queued"), "{what}: {e:?}");
    }

    // ITA comes back and collects: DEU's trace request, held before the flood, arrives once.
    t.restart(ITA).await.unwrap();
    let incoming = wait_for("ITA holds DEU's trace request", || async {
        let traces = t
            .admin(ITA)
            .await
            .ok()?
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
    assert_eq!(incoming[0].counterpart_node, "DEU-BKA");
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_regional_fan_out_past_its_bound_is_refused_before_anything_is_relayed() {
    use tracenet_node::hub::MAX_FANOUT_CALLS;
    let t = federation().await;
    let mut hub = t
        .hub_client(HUB, ClientCert::Of(FRA, "node"))
        .await
        .unwrap();
    let calls = |tag: &str, n: usize| -> Vec<pb::SealedMessage> {
        (0..n)
            .map(|i| junk("FRA-POL", "DEU-BKA", &format!("{tag}-{i}")))
            .collect()
    };

    // One call past the bound: refused whole, with a status saying the bound.
    let err = hub
        .regional_fanout(pb::RegionalFanoutRequest {
            calls: calls("overflow", MAX_FANOUT_CALLS + 1),
            deadline_ms: 5_000,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().contains(&MAX_FANOUT_CALLS.to_string()),
        "{err:?}"
    );

    // At the bound: carried, every one (DEU cannot open them and says so). Counted after the
    // refused one, so the counts below also show the refused fan-out sent nothing.
    let ok = hub
        .regional_fanout(pb::RegionalFanoutRequest {
            calls: calls("bound", MAX_FANOUT_CALLS),
            deadline_ms: 10_000,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(ok.replies.is_empty());
    assert_eq!(ok.silent.len(), MAX_FANOUT_CALLS);
    assert!(
        ok.silent
            .iter()
            .all(|s| s.node_id == "DEU-BKA" && s.reason.contains("sealed message refused")),
        "{:?}",
        ok.silent.first()
    );

    let count = |entries: &[pb::AuditEntry], tag: &str| {
        entries
            .iter()
            .filter(|e| e.detail.contains(&format!("message {tag}-")))
            .count()
    };
    let relayed = audit_all(&t, HUB, "relayed").await;
    let refused_at_deu = audit_all(&t, DEU, "refusal").await;
    assert_eq!(count(&relayed, "overflow"), 0);
    assert_eq!(count(&refused_at_deu, "overflow"), 0);
    assert_eq!(count(&relayed, "bound"), MAX_FANOUT_CALLS);
    assert_eq!(count(&refused_at_deu, "bound"), MAX_FANOUT_CALLS);
    // DEU names the sender its hub's header carried (checked there against the certificate).
    assert!(
        refused_at_deu
            .iter()
            .filter(|e| e.detail.contains("message bound-"))
            .all(|e| e.peer == "FRA-POL")
    );
    t.shutdown().await.unwrap();
}

/// What a test acting as a member needs to seal peer calls to ITA through the hub and open
/// ITA's sealed replies.
struct Member {
    id: NodeId,
    key: SigningKey,
    secret: SealingSecret,
    ita_key: Vec<u8>,
    ita_public: tracenet_node::envelope::PeerKeys,
}

async fn member(t: &TestFederation, i: usize) -> Member {
    let d = t
        .admin(i)
        .await
        .unwrap()
        .get_directory(pb::GetDirectoryRequest::default())
        .await
        .unwrap()
        .into_inner();
    Member {
        id: t.node(i).id.clone(),
        key: t.signing_key(i).unwrap(),
        secret: SealingSecret::load_or_generate(&t.node(i).config.data_dir.join("sealing.key"))
            .unwrap(),
        ita_key: d.state.unwrap().entries["ITA-CAR"].sealing_key.clone(),
        ita_public: tracenet_node::envelope::PeerKeys::new(
            [(
                NodeId::parse("ITA-CAR").unwrap(),
                t.public_key(ITA).unwrap(),
            )]
            .into_iter()
            .collect(),
        ),
    }
}

/// `info` in a `SubmitTraceInformation` call whose signed context names `named` (signed with
/// `m`'s key whatever it names), sealed by `m` to ITA.
fn sealed_information(
    m: &Member,
    named: &str,
    rid: &str,
    info: pb::TraceInformation,
) -> pb::SealedMessage {
    let mut msg = pb::SubmitTraceInformationMessage {
        context: None,
        information: Some(info),
    };
    msg.sign_with(
        &m.key,
        pb::RequestContext {
            request_id: rid.into(),
            requester_node: named.into(),
            purpose: pb::Purpose::Tracing as i32,
            issued_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64,
            ..Default::default()
        },
    );
    seal::seal(
        &m.key,
        Address {
            message_id: seal::new_message_id().unwrap(),
            recipient: &NodeId::parse("ITA-CAR").unwrap(),
            recipient_key: &m.ita_key,
            kind: "SubmitTraceInformation",
            in_reply_to: "",
            sent_at: 1,
        },
        &pb::SealedBody {
            method: "/tracenet.v1.PeerExchange/SubmitTraceInformation".into(),
            messages: vec![msg.encode_to_vec()],
            ..Default::default()
        },
    )
    .unwrap()
}

/// Relays `sealed` through the hub as `m` and opens ITA's sealed reply: its status.
async fn relay_to_ita(
    t: &TestFederation,
    i: usize,
    m: &Member,
    sealed: pb::SealedMessage,
) -> pb::SealedBody {
    let mut hub = t.hub_client(HUB, ClientCert::Of(i, "node")).await.unwrap();
    let reply = hub.relay(sealed).await.unwrap().into_inner();
    assert_eq!(reply.sender, "ITA-CAR");
    let (from, body) = seal::open(&m.id, &m.secret, &m.ita_public, &reply).unwrap();
    assert_eq!(from.as_str(), "ITA-CAR");
    body
}

#[tokio::test]
async fn trace_information_forged_by_a_member_through_the_hub_is_refused_audited_and_not_stored() {
    let t = federation().await;
    // FRA's trace request reaches ITA (outbound-only) through the hub.
    let sent = t
        .admin(FRA)
        .await
        .unwrap()
        .send_trace_request(pb::SendTraceRequestRequest {
            firearm: Some(pb::FirearmIdentification {
                serial_number: "SYN-ITA-INFO-1".into(),
                manufacturer: "Synthetic Arms".into(),
                country_of_manufacture: "ITA".into(),
                ..Default::default()
            }),
            requested_country: "ITA".into(),
            reason: "Seized at a synthetic port".into(),
            legal_basis: "Synthetic law art. 3".into(),
            urgency: pb::Urgency::Routine as i32,
            case_reference: "SYN-HUB-INFO".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let id = sent.request.unwrap().id;
    let incoming = || async {
        t.admin(ITA)
            .await
            .unwrap()
            .list_trace_requests(pb::ListTraceRequestsRequest {
                direction: "incoming".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .traces
    };
    wait_for("ITA holds FRA's trace request", || async {
        let held = incoming().await;
        held.iter()
            .any(|r| r.request.as_ref().is_some_and(|q| q.id == id))
            .then_some(())
    })
    .await
    .unwrap();
    let info = |requester: &str, rid: &str, part: u32, text: &str| pb::TraceInformation {
        request_id: rid.into(),
        requester_node: requester.into(),
        part,
        text: text.into(),
        ..Default::default()
    };

    // Control: FRA's own information, sealed by FRA through the hub, is applied.
    let fra = member(&t, FRA).await;
    let body = relay_to_ita(
        &t,
        FRA,
        &fra,
        sealed_information(
            &fra,
            "FRA-POL",
            "info-fra-1",
            info("FRA-POL", &id, 1, "genuine"),
        ),
    )
    .await;
    assert_eq!(body.status_code, 0, "{body:?}");

    // DEU, a member with a valid certificate that neither sent nor received the request:
    let deu = member(&t, DEU).await;
    let refusals_before = audit_all(&t, ITA, "refusal").await.len();
    let attempts = [
        // a signed context naming FRA (signed with DEU's key: FRA's is not DEU's to use);
        (
            "context names FRA",
            sealed_information(
                &deu,
                "FRA-POL",
                "info-deu-1",
                info("FRA-POL", &id, 2, "forged"),
            ),
            tonic::Code::PermissionDenied,
        ),
        // its own context, the information naming FRA as requester;
        (
            "information names FRA",
            sealed_information(
                &deu,
                "DEU-BKA",
                "info-deu-2",
                info("FRA-POL", &id, 2, "forged"),
            ),
            tonic::Code::PermissionDenied,
        ),
        // in its own name, for FRA's request (part 1, which FRA sent: no "repeated" answer);
        (
            "FRA's request, in DEU's name",
            sealed_information(
                &deu,
                "DEU-BKA",
                "info-deu-3",
                info("DEU-BKA", &id, 1, "forged"),
            ),
            tonic::Code::NotFound,
        ),
        (
            "FRA's request, a new part",
            sealed_information(
                &deu,
                "DEU-BKA",
                "info-deu-4",
                info("DEU-BKA", &id, 3, "forged"),
            ),
            tonic::Code::NotFound,
        ),
        // and for a request that does not exist: refused alike, so nothing tells them apart.
        (
            "no such request",
            sealed_information(
                &deu,
                "DEU-BKA",
                "info-deu-5",
                info("DEU-BKA", "no-such-trace", 3, "forged"),
            ),
            tonic::Code::NotFound,
        ),
    ];
    let mut not_found = Vec::new();
    for (what, sealed, code) in attempts {
        let body = relay_to_ita(&t, DEU, &deu, sealed).await;
        assert_eq!(body.status_code, code as i32, "{what}: {body:?}");
        assert!(body.messages.is_empty(), "{what}: {body:?}");
        if code == tonic::Code::NotFound {
            not_found.push(
                body.status_message
                    .replace(id.as_str(), "ID")
                    .replace("no-such-trace", "ID"),
            );
        }
    }
    not_found.dedup();
    assert_eq!(not_found.len(), 1, "{not_found:?}");
    // A sealed message whose header names FRA as sender: the hub refuses it (the sender is the
    // caller's certificate).
    let mut as_fra =
        sealed_information(&deu, "DEU-BKA", "info-deu-6", info("DEU-BKA", &id, 4, "x"));
    as_fra.sender = "FRA-POL".into();
    let err = t
        .hub_client(HUB, ClientCert::Of(DEU, "node"))
        .await
        .unwrap()
        .relay(as_fra)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");

    // Nothing of DEU's is stored: the trace holds FRA's information only.
    let held = incoming().await;
    let trace = held
        .iter()
        .find(|r| r.request.as_ref().is_some_and(|q| q.id == id))
        .unwrap();
    assert_eq!(trace.information.len(), 1, "{:?}", trace.information);
    assert_eq!(trace.information[0].text, "genuine");
    // ITA audited each attempt as a refusal from DEU (the signer), none as a delivery, and
    // blamed FRA for nothing.
    let refusals = audit_all(&t, ITA, "refusal").await;
    let new = &refusals[refusals_before..];
    let from_deu: Vec<_> = new.iter().filter(|e| e.peer == "DEU-BKA").collect();
    assert_eq!(from_deu.len(), 5, "{new:?}");
    assert!(new.iter().all(|e| e.peer != "FRA-POL"), "{new:?}");
    assert!(
        from_deu.iter().all(|e| e.request_envelope.is_some()),
        "each refusal keeps the signed context as received: {new:?}"
    );
    let deliveries = audit_all(&t, ITA, "delivery").await;
    assert!(
        deliveries.iter().all(|e| e.peer != "DEU-BKA"),
        "{deliveries:?}"
    );
    assert!(
        deliveries
            .iter()
            .any(|e| e.peer == "FRA-POL" && e.detail.contains("trace information part 1")),
        "{deliveries:?}"
    );
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_sealed_message_with_an_over_long_id_is_refused_and_not_held() {
    use tracenet_node::hub::MAX_MESSAGE_ID;
    let mut t = federation().await;
    // ITA (outbound-only) is away: what the hub holds for it stays in its mailbox.
    t.stop(ITA).await.unwrap();
    let mut hub = t
        .hub_client(HUB, ClientCert::Of(FRA, "node"))
        .await
        .unwrap();
    let long = "L".repeat(MAX_MESSAGE_ID + 1);
    let at_bound = "B".repeat(MAX_MESSAGE_ID);

    // One byte past the bound, and empty: refused as invalid, saying the bound.
    for id in [long.as_str(), ""] {
        let err = hub.relay(junk("FRA-POL", "ITA-CAR", id)).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        assert!(
            err.message().contains(&MAX_MESSAGE_ID.to_string()),
            "{err:?}"
        );
    }
    // Through a regional fan-out too: that call is silent, the other one carried.
    let fanout = hub
        .regional_fanout(pb::RegionalFanoutRequest {
            calls: vec![
                junk("FRA-POL", "ITA-CAR", &long),
                junk("FRA-POL", "DEU-BKA", "fanout-ok"),
            ],
            deadline_ms: 5_000,
        })
        .await
        .unwrap()
        .into_inner();
    let reasons: Vec<(&str, &str)> = fanout
        .silent
        .iter()
        .map(|s| (s.node_id.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|(n, r)| *n == "ITA-CAR" && r.contains(&format!("1-{MAX_MESSAGE_ID} bytes")))
    );
    assert!(
        reasons
            .iter()
            .any(|(n, r)| *n == "DEU-BKA" && r.contains("sealed message refused"))
    );
    // At the bound: held for ITA (queued, not refused).
    let held = hub
        .relay(junk("FRA-POL", "ITA-CAR", &at_bound))
        .await
        .unwrap_err();
    assert_eq!(held.code(), tonic::Code::Unavailable, "{held:?}");
    assert!(held.message().contains("queued"), "{held:?}");

    // ITA's mailbox, as ITA collects it: the message at the bound only.
    let pending = t
        .hub_client(HUB, ClientCert::Of(ITA, "node"))
        .await
        .unwrap()
        .mailbox_poll(pb::MailboxPollRequest {
            wait_ms: 0,
            max_messages: 100,
        })
        .await
        .unwrap()
        .into_inner()
        .messages;
    let ids: Vec<&str> = pending.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids, [at_bound.as_str()]);
    // The hub relayed nothing of the refused ones (its audit names ids by their first 64
    // characters).
    let relayed = audit_all(&t, HUB, "relayed").await;
    let named = |c: char| {
        relayed
            .iter()
            .filter(|e| {
                e.detail
                    .contains(&format!("message {}", c.to_string().repeat(64)))
            })
            .count()
    };
    assert_eq!((named('L'), named('B')), (0, 1), "{relayed:?}");
    assert!(
        relayed.iter().all(|e| !e.detail.contains("message  from")),
        "an empty id was relayed: {relayed:?}"
    );
    t.shutdown().await.unwrap();
}
