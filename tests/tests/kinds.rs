//! Member kinds and tracing designations across real nodes on real sockets: a regional
//! organisation's hub has its own identity (`WESTREG-HUB`), so a policy rule naming one of its
//! member States never discloses to it, while a rule naming the organisation does; a trace
//! request goes to the node the requested State designates in the directory, and without a
//! designation the sender is told which nodes that State has and must choose one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tracenet_devnet::NodeSpec;
use tracenet_node::config::Role;
use tracenet_node::policy::Policy;
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::directory_command::Op;
use tracenet_tests::{TestFederation, wait_for};

const WAIT: Duration = Duration::from_secs(20);

const HUB: usize = 1;
const BEL: usize = 2;
const DEU: usize = 3;

const DEU_POLICY: &str = r#"
owner_country = "DEU"
version = 1
legal_basis = "Synthetic test basis"

[[rules]]
id = "bel"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["BEL"], regions = ["SYN-WEST"] }
fields = [{ field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" }]
"#;

fn secretariat() -> NodeSpec {
    NodeSpec::new("SECRETARIAT-DIR")
        .voter(Role::Secretariat)
        .organisation(pb::MemberKind::Secretariat, "CHE", &[])
}

fn lookup_of(serial: &str) -> pb::FederatedLookupRequest {
    pb::FederatedLookupRequest {
        inquiry: Some(pb::Inquiry {
            purpose: pb::Purpose::Tracing as i32,
            agency_kind: pb::AgencyKind::Police as i32,
            legal_basis: "Synthetic test basis".into(),
            case_reference: "TEST-KINDS".into(),
            deadline_ms: 0,
            via_hub: false,
        }),
        serial_number: serial.to_owned(),
        manufacturer: String::new(),
        ..Default::default()
    }
}

async fn deu_hit(t: &TestFederation, from: usize, serial: &str) -> Option<pb::PeerAnswer> {
    t.admin(from)
        .await
        .unwrap()
        .federated_lookup(lookup_of(serial))
        .await
        .unwrap()
        .into_inner()
        .answers
        .into_iter()
        .find(|a| a.node_id == "DEU-CUS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_naming_a_state_does_not_disclose_to_its_regional_organisations_hub() {
    let t = TestFederation::start_specs(&[
        secretariat(),
        // The hub of a regional organisation of BEL and FRA, in the same region as BEL-FPJ.
        NodeSpec::new("WESTREG-HUB")
            .voter(Role::Hub)
            .in_regions(&["SYN-WEST"])
            .organisation(pb::MemberKind::RegionalOrganisation, "BEL", &["BEL", "FRA"]),
        NodeSpec::new("BEL-FPJ").in_regions(&["SYN-WEST"]),
        NodeSpec::new("DEU-CUS").with_policy(DEU_POLICY),
    ])
    .await
    .unwrap();
    t.fed.found_directory().await.unwrap();
    let v = t
        .fed
        .wait_for_directory(DEU, "the hub admitted", WAIT, |v| {
            v.state
                .as_ref()
                .is_some_and(|s| s.members.contains_key("WESTREG-HUB"))
        })
        .await
        .unwrap();
    let hub = &v.state.unwrap().members["WESTREG-HUB"];
    assert_eq!(hub.kind, pb::MemberKind::RegionalOrganisation as i32);
    assert_eq!(hub.country, "", "an organisation has no country");
    assert_eq!(hub.member_states, vec!["BEL", "FRA"]);

    let serial = t
        .admin(DEU)
        .await
        .unwrap()
        .create_record(pb::CreateRecordRequest {
            record: Some(tracenet_node::sample::record(
                tracenet_node::country::CountryCode::parse("DEU").unwrap(),
                3,
            )),
        })
        .await
        .unwrap()
        .into_inner()
        .record
        .unwrap()
        .firearms[0]
        .serial_number
        .clone();

    // BEL's node is named by the rule and gets the hit.
    let bel = deu_hit(&t, BEL, &serial).await.unwrap();
    assert!(bel.hit, "{bel:?}");
    // The regional organisation's hub is not BEL, nor in BEL's region: nothing disclosed.
    let hub = deu_hit(&t, HUB, &serial).await.unwrap();
    assert!(!hub.hit && hub.hits.is_empty(), "{hub:?}");

    // A rule naming the organisation discloses to its hub.
    let mut v2 = Policy::from_toml(DEU_POLICY).unwrap().source().clone();
    v2.version = 2;
    let mut org_rule = v2.rules[0].clone();
    org_rule.id = "westreg".into();
    org_rule.audience = Some(pb::Audience {
        organisations: vec!["WESTREG".into()],
        ..Default::default()
    });
    v2.rules.push(org_rule);
    t.fed
        .propose_applied(DEU, Op::PublishPolicy(v2))
        .await
        .unwrap();
    t.fed
        .wait_for_directory(DEU, "DEU's policy v2 in force", WAIT, |v| {
            v.state.as_ref().is_some_and(|s| {
                s.entries["DEU-CUS"]
                    .policies
                    .last()
                    .and_then(|p| p.policy.as_ref())
                    .is_some_and(|p| p.version == 2)
            })
        })
        .await
        .unwrap();
    let hub = deu_hit(&t, HUB, &serial).await.unwrap();
    assert!(hub.hit, "{hub:?}");
    assert!(
        hub.hits.iter().all(|h| h.policy_rule == "westreg"),
        "{hub:?}"
    );
    t.shutdown().await.unwrap();
}

fn trace_to(country: &str, target: &str) -> pb::SendTraceRequestRequest {
    pb::SendTraceRequestRequest {
        firearm: Some(pb::FirearmIdentification {
            serial_number: "SYN-KINDS-0001".into(),
            manufacturer: "Synthetic Arms".into(),
            ..Default::default()
        }),
        requested_country: country.into(),
        reason: "Seized at a synthetic border crossing".into(),
        legal_basis: "Synthetic law art. 3".into(),
        urgency: pb::Urgency::Routine as i32,
        case_reference: "SYN-KINDS".into(),
        target_node: target.into(),
        ..Default::default()
    }
}

async fn incoming(t: &TestFederation, node: usize) -> Vec<pb::TraceRecord> {
    t.admin(node)
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_go_to_the_designated_node_and_without_one_the_sender_chooses() {
    const FRA: usize = 1;
    const BEL_CUS: usize = 2;
    const BEL_FPJ: usize = 3;
    let t = TestFederation::start_specs(&[
        secretariat(),
        NodeSpec::new("FRA-POL"),
        NodeSpec::new("BEL-CUS"),
        NodeSpec::new("BEL-FPJ"),
    ])
    .await
    .unwrap();
    t.fed.found_directory().await.unwrap();
    let mut fra = t.admin(FRA).await.unwrap();

    // BEL runs two nodes and has designated neither: the sender is told which exist.
    let err = fra
        .send_trace_request(trace_to("BEL", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains("BEL-CUS, BEL-FPJ") && err.message().contains("target_node"),
        "{}",
        err.message()
    );
    assert!(incoming(&t, BEL_CUS).await.is_empty());

    // A chosen node must be one of BEL's.
    let err = fra
        .send_trace_request(trace_to("BEL", "FRA-POL"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    let sent = fra
        .send_trace_request(trace_to("BEL", "BEL-CUS"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sent.counterpart_node, "BEL-CUS");
    wait_for("BEL-CUS receives the chosen request", || async {
        (incoming(&t, BEL_CUS).await.len() == 1).then_some(())
    })
    .await
    .unwrap();

    // BEL designates BEL-FPJ (published by its other node): requests now go there.
    t.fed
        .propose_applied(
            BEL_CUS,
            Op::PublishTracingDesignation(pb::TracingDesignation {
                node_id: "BEL-FPJ".into(),
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    // Another State's node may not designate for BEL.
    let refused = t
        .fed
        .propose(
            FRA,
            Op::PublishTracingDesignation(pb::TracingDesignation {
                node_id: "BEL-CUS".into(),
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    assert!(
        !refused.applied && refused.refusal.contains("not an active member of FRA"),
        "{refused:?}"
    );
    t.fed
        .wait_for_directory(FRA, "BEL's designation", WAIT, |v| {
            v.state.as_ref().is_some_and(|s| {
                s.entries
                    .get("BEL-CUS")
                    .and_then(|e| e.tracing_designation.as_ref())
                    .is_some_and(|d| d.node_id == "BEL-FPJ")
            })
        })
        .await
        .unwrap();
    let sent = fra
        .send_trace_request(trace_to("BEL", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sent.counterpart_node, "BEL-FPJ");
    wait_for("BEL-FPJ receives the routed request", || async {
        (incoming(&t, BEL_FPJ).await.len() == 1).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(
        incoming(&t, BEL_CUS).await.len(),
        1,
        "nothing more to BEL-CUS"
    );
    t.shutdown().await.unwrap();
}
