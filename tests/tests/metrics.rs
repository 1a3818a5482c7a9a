//! The metrics endpoint, scraped over a real socket: a federated lookup moves the call counters
//! on both nodes and the disclosure and denial counters of the node that answered, and the
//! health and readiness endpoints answer; a directory learner reports the replica's Raft state.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracenet_node::config::Role;
use tracenet_node::country::CountryCode;
use tracenet_node::sample;
use tracenet_proto::v1 as pb;
use tracenet_tests::{NodeSpec, TestFederation, wait_for};

/// FRA shares serials with DEU for tracing and nothing with ITA.
const FRA_POLICY: &str = r#"
owner_country = "FRA"
version = 1
legal_basis = "Synthetic law art. 1"

[[rules]]
id = "deu-tracing"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["DEU"] }
fields = [
  { field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" },
]
"#;

const FRA: usize = 0;
const DEU: usize = 1;
const ITA: usize = 2;

/// One plain HTTP/1.1 GET; returns the status line and the body.
async fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

fn lookup(serial: &str) -> pb::FederatedLookupRequest {
    pb::FederatedLookupRequest {
        inquiry: Some(pb::Inquiry {
            purpose: pb::Purpose::Tracing as i32,
            agency_kind: pb::AgencyKind::Police as i32,
            legal_basis: "Synthetic test basis".into(),
            case_reference: "TEST-1".into(),
            deadline_ms: 0,
            via_hub: false,
        }),
        serial_number: serial.to_owned(),
        manufacturer: String::new(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_moves_call_disclosure_and_denial_counters() {
    let fed = TestFederation::start_specs(&[
        NodeSpec::new("FRA-POL")
            .with_policy(FRA_POLICY)
            .with_metrics(),
        NodeSpec::new("DEU-POL").with_metrics(),
        NodeSpec::new("ITA-POL"),
    ])
    .await
    .unwrap();
    let fra = CountryCode::parse("FRA").unwrap();
    fed.admin(FRA)
        .await
        .unwrap()
        .import_batch(pb::ImportBatchRequest {
            records: vec![sample::record(fra, 0)],
            ..Default::default()
        })
        .await
        .unwrap();
    let serial = sample::record(fra, 0).firearms[0].serial_number.clone();

    let fra_metrics = fed.node(FRA).metrics_addr.unwrap();
    let (status, _) = get(fra_metrics, "/healthz").await;
    assert!(status.contains(" 200 "), "{status}");
    let (status, body) = get(fra_metrics, "/readyz").await;
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body, "ready\n");
    let (status, _) = get(fra_metrics, "/nothing").await;
    assert!(status.contains(" 404 "), "{status}");

    let hits = fed
        .admin(DEU)
        .await
        .unwrap()
        .federated_lookup(lookup(&serial))
        .await
        .unwrap()
        .into_inner();
    assert!(
        hits.answers.iter().any(|a| a.node_id == "FRA-POL" && a.hit),
        "FRA shares the serial with DEU: {hits:?}"
    );
    // ITA has no rule: FRA withholds the record it found, and audits the denial.
    fed.admin(ITA)
        .await
        .unwrap()
        .federated_lookup(lookup(&serial))
        .await
        .unwrap();

    let (status, text) = get(fra_metrics, "/metrics").await;
    assert!(status.contains(" 200 "), "{status}");
    for line in [
        r#"tracenet_grpc_calls_total{api="peer",code="OK",method="tracenet.v1.PeerExchange/Lookup"} 2"#,
        r#"tracenet_disclosures_total{peer="DEU-POL",rule="deu-tracing"} 1"#,
        r#"tracenet_denials_total{peer="ITA-POL",rule="none"} 1"#,
        "tracenet_store_records 1",
        "tracenet_outbox_depth 0",
    ] {
        assert!(text.contains(line), "FRA lacks {line}:\n{text}");
    }
    assert!(
        text.contains(r#"tracenet_grpc_call_duration_seconds_count{api="peer",method="tracenet.v1.PeerExchange/Lookup"} 2"#),
        "{text}"
    );
    assert!(
        !text.contains(&serial),
        "a serial number reached the metrics"
    );

    let (_, text) = get(fed.node(DEU).metrics_addr.unwrap(), "/metrics").await;
    let line = r#"tracenet_grpc_calls_total{api="local",code="OK",method="tracenet.v1.NodeApi/FederatedLookup"} 1"#;
    assert!(text.contains(line), "DEU lacks {line}:\n{text}");
    fed.shutdown().await.unwrap();
}

/// The value of an unlabelled gauge in a scrape, if present.
fn gauge(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_reports_the_directory_term_leader_and_applied_index() {
    let t = TestFederation::start_specs(&[
        NodeSpec::new("CHE-SEC").voter(Role::Secretariat),
        NodeSpec::new("BEL-HUB").voter(Role::Hub),
        NodeSpec::new("AUT-HUB").voter(Role::Hub),
        NodeSpec::new("FRA-POL").with_metrics(),
    ])
    .await
    .unwrap();
    t.fed.found_directory().await.unwrap();
    let addr = t.node(3).metrics_addr.unwrap();
    let (leader, text) = wait_for("a leader in FRA's metrics", || async move {
        let (_, text) = get(addr, "/metrics").await;
        let leader = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("tracenet_directory_leader{node=\"")?
                    .split_once('"')
            })
            .map(|(node, _)| node.to_owned())?;
        (gauge(&text, "tracenet_directory_applied_index")? > 0).then_some((leader, text))
    })
    .await
    .unwrap();
    assert!(
        ["CHE-SEC", "BEL-HUB", "AUT-HUB"].contains(&leader.as_str()),
        "{leader}"
    );
    assert!(
        gauge(&text, "tracenet_directory_term").unwrap() >= 1,
        "{text}"
    );
    assert!(
        gauge(&text, "tracenet_directory_last_log_index").unwrap()
            >= gauge(&text, "tracenet_directory_applied_index").unwrap(),
        "{text}"
    );
    let (status, _) = get(addr, "/readyz").await;
    assert!(status.contains(" 200 "), "{status}");
    t.shutdown().await.unwrap();
}
