//! Statistics disclosed as tables, never records, over real mutual TLS: a peer under a rule with
//! the statistics purpose and the aggregate data class receives the owner's tables with small
//! cells suppressed (and no record, and no record through a query either); a peer without such a
//! rule is refused, directly and through its own node; both are in the owner's audit log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tracenet_node::country::CountryCode;
use tracenet_node::envelope::SignedRequest;
use tracenet_node::sample;
use tracenet_proto::v1 as pb;
use tracenet_tests::{ClientCert, NodeSpec, TestFederation};

/// FRA shares statistical tables with DEU (cells below 3 suppressed) and a route report with ITA
/// (border risk analysis: the route and modus operandi tables only), and nothing else.
const FRA_POLICY: &str = r#"
owner_country = "FRA"
version = 2
legal_basis = "Synthetic statistics law art. 1"

[[rules]]
id = "deu-stats"
purposes = ["PURPOSE_STATISTICS"]
data_classes = ["DATA_CLASS_STATISTICS_AGGREGATE"]
audience = { countries = ["DEU"] }
statistics_min_cell = 3

[[rules]]
id = "ita-route-report"
purposes = ["PURPOSE_BORDER_RISK_ANALYSIS"]
data_classes = ["DATA_CLASS_ROUTE_REPORT"]
audience = { countries = ["ITA"] }
statistics_min_cell = 2
"#;

const FRA: usize = 0;
const DEU: usize = 1;
const ITA: usize = 2;
const N: u64 = 120;
const YEAR: u32 = 2024;

async fn federation() -> TestFederation {
    let fed = TestFederation::start_specs(&[
        NodeSpec::new("FRA-POL").with_policy(FRA_POLICY),
        NodeSpec::new("DEU-CUS"),
        NodeSpec::new("ITA-POL"),
    ])
    .await
    .unwrap();
    let fra = CountryCode::parse("FRA").unwrap();
    let records: Vec<pb::SeizureRecord> = (0..N).map(|n| sample::record(fra, n)).collect();
    fed.admin(FRA)
        .await
        .unwrap()
        .import_batch(pb::ImportBatchRequest {
            records,
            ..Default::default()
        })
        .await
        .unwrap();
    fed
}

fn ask(peer: &str) -> pb::StatisticsLocalRequest {
    pb::StatisticsLocalRequest {
        year: YEAR,
        quarter: 0,
        peer_node: peer.into(),
        series_from: 0,
        inquiry: Some(pb::Inquiry {
            agency_kind: pb::AgencyKind::Customs as i32,
            legal_basis: "synthetic".into(),
            ..Default::default()
        }),
        regional: false,
        deadline_ms: 0,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_under_a_statistics_rule_gets_tables_and_no_record_and_others_are_refused() {
    let fed = federation().await;

    // FRA's own tables, unsuppressed, with the SDG series.
    let own = fed
        .admin(FRA)
        .await
        .unwrap()
        .statistics_tables(pb::StatisticsLocalRequest {
            series_from: 2023,
            ..ask("")
        })
        .await
        .unwrap()
        .into_inner();
    let own_report = own.report.unwrap();
    assert_eq!(own_report.node_id, "FRA-POL");
    assert_eq!(own.series.len(), 2);
    assert!(
        own_report
            .tables
            .iter()
            .flat_map(|t| &t.cells)
            .all(|c| !c.suppressed)
    );
    let own_total = |id: &str| -> u64 {
        let t = own_report.tables.iter().find(|t| t.id == id).unwrap();
        t.cells.last().unwrap().value
    };
    assert!(own_total("firearms_by_category") > 0);

    // DEU receives FRA's tables under deu-stats, suppressed at 3.
    let got = fed
        .admin(DEU)
        .await
        .unwrap()
        .statistics_tables(ask("FRA-POL"))
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap();
    assert_eq!(got.node_id, "FRA-POL");
    assert_eq!(got.policy_rule, "deu-stats");
    assert_eq!(got.policy_version, 2);
    assert_eq!(got.period, YEAR.to_string());
    assert_eq!(got.tables.len(), own_report.tables.len());
    let mut suppressed = 0;
    for (t, o) in got.tables.iter().zip(&own_report.tables) {
        assert_eq!(t.threshold, 3);
        assert_eq!(t.cells.len(), o.cells.len());
        for (c, oc) in t.cells.iter().zip(&o.cells) {
            if c.suppressed {
                suppressed += 1;
                assert_eq!(c.value, 0, "a suppressed cell carries no value");
            } else {
                assert_eq!(c.value, oc.value);
                assert!(
                    c.value == 0 || c.value >= 3,
                    "small cell published in {}",
                    t.id
                );
            }
        }
    }
    assert!(
        suppressed > 0,
        "{N} records spread over many categories leave small cells"
    );

    // Tables, never records: DEU holds no copy, and a statistics query for records gets none.
    let received = fed
        .admin(DEU)
        .await
        .unwrap()
        .list_received(pb::ListReceivedRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(received.records.is_empty());
    let mut client = fed
        .peer_client(FRA, ClientCert::Of(DEU, "node"))
        .await
        .unwrap();
    let key = fed.signing_key(DEU).unwrap();
    let ctx = |id: &str, node: &str| pb::RequestContext {
        request_id: id.into(),
        requester_node: node.into(),
        agency_kind: pb::AgencyKind::Customs as i32,
        purpose: pb::Purpose::Statistics as i32,
        legal_basis: "synthetic".into(),
        issued_at: now(),
        ..Default::default()
    };
    let mut q = pb::QueryRecordsRequest {
        context: None,
        filter: Some(pb::RecordFilter::default()),
        limit: 1000,
    };
    q.sign_with(&key, ctx("stats-query-1", "DEU-CUS"));
    let mut stream = client.query_records(q).await.unwrap().into_inner();
    assert!(
        stream.message().await.unwrap().is_none(),
        "no record under the aggregate class"
    );

    // ITA has no statistics rule: refused through its node and directly.
    let refused = fed
        .admin(ITA)
        .await
        .unwrap()
        .statistics_tables(ask("FRA-POL"))
        .await
        .unwrap_err();
    assert!(
        refused.message().contains("PermissionDenied"),
        "{refused:?}"
    );
    let mut ita = fed
        .peer_client(FRA, ClientCert::Of(ITA, "node"))
        .await
        .unwrap();
    let mut req = pb::StatisticsRequest {
        context: None,
        year: YEAR,
        quarter: 0,
    };
    req.sign_with(
        &fed.signing_key(ITA).unwrap(),
        ctx("stats-ita-1", "ITA-POL"),
    );
    let status = ita.statistics_tables(req).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);

    // DEU asking for another purpose than statistics is refused too.
    let mut req = pb::StatisticsRequest {
        context: None,
        year: YEAR,
        quarter: 0,
    };
    let mut c = ctx("stats-deu-wrong-purpose", "DEU-CUS");
    c.purpose = pb::Purpose::CriminalInvestigation as i32;
    req.sign_with(&key, c);
    let status = client.statistics_tables(req).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);

    // Both are in FRA's audit log, the disclosure with its rule.
    let audit = fed
        .admin(FRA)
        .await
        .unwrap()
        .list_audit(pb::ListAuditRequest {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(audit.iter().any(|e| e.kind == "disclosure"
        && e.peer == "DEU-CUS"
        && e.policy_rule == "deu-stats"
        && e.detail.contains("no record")));
    assert!(
        audit
            .iter()
            .any(|e| e.kind == "denial" && e.peer == "ITA-POL" && e.detail.contains("statistics"))
    );

    fed.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_route_report_carries_route_tables_only_and_only_under_its_own_class() {
    let fed = federation().await;
    let border = |peer: &str| pb::StatisticsLocalRequest {
        inquiry: Some(pb::Inquiry {
            purpose: pb::Purpose::BorderRiskAnalysis as i32,
            agency_kind: pb::AgencyKind::BorderGuard as i32,
            legal_basis: "synthetic".into(),
            ..Default::default()
        }),
        ..ask(peer)
    };
    // ITA, under the route-report rule: routes, modes and concealment, nothing else.
    let got = fed
        .admin(ITA)
        .await
        .unwrap()
        .statistics_tables(border("FRA-POL"))
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap();
    assert_eq!(got.policy_rule, "ita-route-report");
    let ids: Vec<&str> = got.tables.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "firearms_by_route_country",
            "firearms_by_transport_mode",
            "firearms_by_concealment"
        ]
    );
    assert!(got.sdg.is_none());
    assert!(got.tables.iter().all(|t| t.threshold == 2));
    // DEU's statistics rule does not give it a route report, nor ITA's route rule statistics.
    let refused = fed
        .admin(DEU)
        .await
        .unwrap()
        .statistics_tables(border("FRA-POL"))
        .await
        .unwrap_err();
    assert!(
        refused.message().contains("PermissionDenied"),
        "{refused:?}"
    );
    let refused = fed
        .admin(ITA)
        .await
        .unwrap()
        .statistics_tables(ask("FRA-POL"))
        .await
        .unwrap_err();
    assert!(
        refused.message().contains("PermissionDenied"),
        "{refused:?}"
    );
    // The route report is audited as such, with its rule.
    let audit = fed
        .admin(FRA)
        .await
        .unwrap()
        .list_audit(pb::ListAuditRequest {
            kind: "disclosure".into(),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(audit.iter().any(|e| e.peer == "ITA-POL"
        && e.policy_rule == "ita-route-report"
        && e.detail.starts_with("route report tables")));
}
