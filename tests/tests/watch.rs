//! The watch list across real nodes over mutual TLS: an officer of DEU keeps a serial on watch,
//! the node's scheduled lookups note what is already known without alerting, and when FRA later
//! records the weapon an alert appears (once), is listed and can be acknowledged; a watch taken
//! off the list raises nothing more.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tracenet_node::country::CountryCode;
use tracenet_node::sample;
use tracenet_proto::v1 as pb;
use tracenet_tests::{NodeSpec, TestFederation, wait_for};

const FRA: usize = 0;
const DEU: usize = 1;

/// FRA shares firearm serials and dates with DEU for criminal investigations (synthetic).
const FRA_POLICY: &str = r#"
owner_country = "FRA"
version = 1
legal_basis = "Synthetic law"
[[rules]]
id = "deu-investigation"
purposes = ["PURPOSE_CRIMINAL_INVESTIGATION"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["DEU"] }
fields = [
  { field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "event.date", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "ballistic_references", treatment = "FIELD_TREATMENT_ALLOW" },
]
"#;

fn fra() -> CountryCode {
    CountryCode::parse("FRA").unwrap()
}

async fn watch(fed: &TestFederation, serial: &str) -> pb::WatchEntry {
    watch_kind(fed, pb::WatchKind::Serial, serial).await
}

async fn watch_kind(fed: &TestFederation, kind: pb::WatchKind, serial: &str) -> pb::WatchEntry {
    fed.admin(DEU)
        .await
        .unwrap()
        .add_watch(pb::AddWatchRequest {
            kind: kind as i32,
            value: serial.into(),
            inquiry: Some(pb::Inquiry {
                agency_kind: pb::AgencyKind::Police as i32,
                purpose: pb::Purpose::CriminalInvestigation as i32,
                legal_basis: "Synthetic basis".into(),
                ..Default::default()
            }),
            created_by: "officer-deu".into(),
            note: "synthetic".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

async fn entry(fed: &TestFederation, id: &str) -> Option<pb::WatchEntry> {
    fed.admin(DEU)
        .await
        .unwrap()
        .list_watches(pb::ListWatchesRequest {})
        .await
        .unwrap()
        .into_inner()
        .watches
        .into_iter()
        .find(|w| w.id == id)
}

async fn alerts(fed: &TestFederation) -> pb::ListWatchAlertsResponse {
    fed.admin(DEU)
        .await
        .unwrap()
        .list_watch_alerts(pb::ListWatchAlertsRequest::default())
        .await
        .unwrap()
        .into_inner()
}

async fn import(fed: &TestFederation, records: Vec<pb::SeizureRecord>) {
    fed.admin(FRA)
        .await
        .unwrap()
        .import_batch(pb::ImportBatchRequest {
            records,
            ..Default::default()
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_watch_alert_appears_when_a_peer_records_the_weapon() {
    let fed = TestFederation::start_specs(&[
        NodeSpec::new("FRA-POL").with_policy(FRA_POLICY),
        NodeSpec::new("DEU-CUS"),
    ])
    .await
    .unwrap();
    // FRA already holds one weapon with the watched serial: known, so no alert for it.
    let known = sample::record(fra(), 1);
    let serial = known.firearms[0].serial_number.clone();
    import(&fed, vec![known]).await;

    let w = watch(&fed, &serial).await;
    assert_eq!(w.kind, pb::WatchKind::Serial as i32);
    assert!(!w.baseline_taken);
    let first = wait_for("the first watch run", || async {
        entry(&fed, &w.id).await.filter(|e| e.baseline_taken)
    })
    .await
    .unwrap();
    assert_eq!(first.seen.len(), 1, "{first:?}");
    assert!(first.seen[0].starts_with("FRA-POL/"));
    assert_eq!(alerts(&fed).await.unacknowledged, 0);

    // FRA records the same weapon seized again (synthetic): a new hit, so an alert.
    let mut again = sample::record(fra(), 2);
    again.firearms[0].serial_number = serial.to_lowercase();
    import(&fed, vec![again]).await;
    let raised = wait_for("the watch alert", || async {
        let a = alerts(&fed).await;
        (a.unacknowledged > 0).then_some(a)
    })
    .await
    .unwrap();
    assert_eq!(raised.alerts.len(), 1, "{raised:?}");
    let alert = &raised.alerts[0];
    assert_eq!(alert.watch_id, w.id);
    assert_eq!(alert.node_id, "FRA-POL");
    assert!(!first.seen.contains(&format!("FRA-POL/{}", alert.reference)));
    let disclosed = alert.hit.as_ref().unwrap().disclosed.as_ref().unwrap();
    assert_eq!(disclosed.firearms[0].serial_number, serial.to_lowercase());
    assert_eq!(alert.hit.as_ref().unwrap().policy_rule, "deu-investigation");

    // Later runs do not raise it again.
    let later = wait_for("a later watch run", || async {
        let e = entry(&fed, &w.id).await?;
        (e.last_run_at > alert.raised_at).then_some(e)
    })
    .await
    .unwrap();
    assert_eq!(later.alert_count, 1);
    assert_eq!(later.seen.len(), 2);
    assert_eq!(alerts(&fed).await.alerts.len(), 1);

    // Acknowledged: listed as such, no longer open.
    let acked = fed
        .admin(DEU)
        .await
        .unwrap()
        .acknowledge_watch_alert(pb::AcknowledgeWatchAlertRequest {
            id: alert.id.clone(),
            acknowledged_by: "officer-deu".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(acked.acknowledged);
    let after = alerts(&fed).await;
    assert_eq!(after.unacknowledged, 0);
    assert!(after.alerts[0].acknowledged);

    // The audit log says an alert was raised and the watch was added.
    let audit = fed
        .admin(DEU)
        .await
        .unwrap()
        .list_audit(pb::ListAuditRequest {
            kind: "watch_alert".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(audit.entries.len(), 1);

    // Removed: gone from the list, and an unknown id is NOT_FOUND.
    let mut admin = fed.admin(DEU).await.unwrap();
    admin
        .remove_watch(pb::RemoveWatchRequest { id: w.id.clone() })
        .await
        .unwrap();
    assert!(entry(&fed, &w.id).await.is_none());
    let gone = admin
        .remove_watch(pb::RemoveWatchRequest { id: w.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound);
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_watch_is_refused_with_every_problem_at_once() {
    let fed = TestFederation::start_specs(&[NodeSpec::new("FRA-POL"), NodeSpec::new("DEU-CUS")])
        .await
        .unwrap();
    let err = fed
        .admin(DEU)
        .await
        .unwrap()
        .add_watch(pb::AddWatchRequest {
            kind: pb::WatchKind::Serial as i32,
            value: "--".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_ballistic_reference_on_watch_alerts_when_a_peer_records_it_and_not_as_a_serial() {
    let fed = TestFederation::start_specs(&[
        NodeSpec::new("FRA-POL").with_policy(FRA_POLICY),
        NodeSpec::new("DEU-CUS"),
    ])
    .await
    .unwrap();
    const REF: &str = "FRA-BAL-2025-0917";
    let w = watch_kind(&fed, pb::WatchKind::BallisticReference, REF).await;
    assert_eq!(w.kind, pb::WatchKind::BallisticReference as i32);
    wait_for("the first watch run", || async {
        entry(&fed, &w.id).await.filter(|e| e.baseline_taken)
    })
    .await
    .unwrap();
    // A record whose serial is the watched text is no ballistic hit.
    let mut decoy = sample::record(fra(), 5);
    decoy.firearms[0].serial_number = REF.into();
    decoy.ballistic_references.clear();
    // The weapon whose cartridge case has the watched reference (synthetic).
    let mut rec = sample::record(fra(), 6);
    rec.ballistic_references = vec![REF.to_lowercase()];
    import(&fed, vec![decoy, rec]).await;
    let raised = wait_for("the ballistic watch alert", || async {
        let a = alerts(&fed).await;
        (a.unacknowledged > 0).then_some(a)
    })
    .await
    .unwrap();
    assert_eq!(raised.alerts.len(), 1, "{raised:?}");
    let disclosed = raised.alerts[0]
        .hit
        .as_ref()
        .unwrap()
        .disclosed
        .clone()
        .unwrap();
    assert_eq!(disclosed.ballistic_references, [REF.to_lowercase()]);
    // A manufacturer narrows serial watches only.
    let err = fed
        .admin(DEU)
        .await
        .unwrap()
        .add_watch(pb::AddWatchRequest {
            kind: pb::WatchKind::BallisticReference as i32,
            value: REF.into(),
            manufacturer: "Synthetic Arms".into(),
            inquiry: Some(pb::Inquiry {
                agency_kind: pb::AgencyKind::Police as i32,
                purpose: pb::Purpose::CriminalInvestigation as i32,
                legal_basis: "Synthetic basis".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    fed.shutdown().await.unwrap();
}
