//! Records through the local API: validation, search, import atomicity, and durability across
//! a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tracenet_node::country::CountryCode;
use tracenet_node::sample;
use tracenet_proto::v1 as pb;
use tracenet_tests::TestFederation;

fn fra() -> CountryCode {
    CountryCode::parse("FRA").unwrap()
}

#[tokio::test]
async fn records_and_indexes_survive_a_node_restart() {
    let mut fed = TestFederation::start(1).await.unwrap();
    let mut admin = fed.admin(0).await.unwrap();
    admin
        .import_batch(pb::ImportBatchRequest {
            records: (0..50).map(|n| sample::record(fra(), n)).collect(),
            source_lines: vec![],
            ..Default::default()
        })
        .await
        .unwrap();
    let created = admin
        .create_record(pb::CreateRecordRequest {
            record: Some(sample::record(fra(), 777)),
        })
        .await
        .unwrap()
        .into_inner();
    let id = created.record.unwrap().id;
    drop(admin);

    fed.stop(0).await.unwrap();
    fed.restart(0).await.unwrap();

    let mut admin = fed.admin(0).await.unwrap();
    let info = admin
        .get_node_info(pb::GetNodeInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.record_count, 51);
    let got = admin
        .get_record(pb::GetRecordRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        got.record.unwrap().national_ref,
        sample::record(fra(), 777).national_ref
    );
    // The serial index survived too: search by a differently written serial.
    let messy = sample::serial(fra(), 777).to_lowercase().replace('-', "  ");
    let found = admin
        .search_by_serial(pb::SearchBySerialRequest {
            serial_number: messy,
            r#match: pb::SerialMatch::Normalised as i32,
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.records.len(), 1);
    assert_eq!(found.records[0].record.as_ref().unwrap().id, id);
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn exact_search_distinguishes_what_normalised_search_unifies() {
    let fed = TestFederation::start(1).await.unwrap();
    let mut admin = fed.admin(0).await.unwrap();
    let mut a = sample::record(fra(), 1);
    a.firearms[0].serial_number = "AB-1234".into();
    let mut b = sample::record(fra(), 2);
    b.firearms[0].serial_number = "ab 1234".into();
    for r in [a, b] {
        admin
            .create_record(pb::CreateRecordRequest { record: Some(r) })
            .await
            .unwrap();
    }
    let search = |m: pb::SerialMatch| pb::SearchBySerialRequest {
        serial_number: "AB-1234".into(),
        r#match: m as i32,
        limit: 10,
        ..Default::default()
    };
    let normalised = admin
        .search_by_serial(search(pb::SerialMatch::Normalised))
        .await
        .unwrap();
    assert_eq!(normalised.into_inner().records.len(), 2);
    let exact = admin
        .search_by_serial(search(pb::SerialMatch::Exact))
        .await
        .unwrap();
    let exact = exact.into_inner().records;
    assert_eq!(exact.len(), 1);
    assert_eq!(
        exact[0].record.as_ref().unwrap().firearms[0].serial_number,
        "AB-1234"
    );
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_batch_with_bad_rows_reports_each_and_writes_nothing() {
    let fed = TestFederation::start(1).await.unwrap();
    let mut admin = fed.admin(0).await.unwrap();
    let mut records: Vec<pb::SeizureRecord> = (0..10).map(|n| sample::record(fra(), n)).collect();
    records[2].event.as_mut().unwrap().date = "2025-13-01".into();
    records[6].firearms[0].country_of_manufacture = "ZZZ".into();
    let err = admin
        .import_batch(pb::ImportBatchRequest {
            records,
            source_lines: (100..110).collect(),
            dry_run: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let errors = tracenet_proto::rpc::field_errors(err.details());
    let got: Vec<(u64, &str)> = errors.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (102, "event.date"),
            (106, "firearms[0].country_of_manufacture")
        ]
    );
    assert!(err.message().contains("line 102"), "{}", err.message());
    let info = admin
        .get_node_info(pb::GetNodeInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.record_count, 0, "a partial batch was written");
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_import_command_checks_the_whole_file_first_then_imports_in_batches() {
    let fed = TestFederation::start(1).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    fed.node(0).write_config(&config).unwrap();

    // A JSON Lines file with two bad rows among 30: refused, nothing written.
    let mut lines: Vec<String> = (0..30)
        .map(|n| serde_json::to_string(&sample::record(fra(), n)).unwrap())
        .collect();
    lines[4] = lines[4].replace("FRA\"", "XYZ\"");
    lines[20] = "{\"national_ref\": ".into();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let err = tracenet_node::cli::import_file(&config, &bad, 7)
        .await
        .unwrap_err();
    assert!(err.contains("nothing was written"), "{err}");
    let mut admin = fed.admin(0).await.unwrap();
    let count = |info: pb::NodeInfo| info.record_count;
    assert_eq!(
        count(
            admin
                .get_node_info(pb::GetNodeInfoRequest {})
                .await
                .unwrap()
                .into_inner()
        ),
        0
    );

    // The same rows, fixed: all written, in batches of 7; a re-run updates instead of duplicating.
    let good = dir.path().join("good.jsonl");
    let fixed: Vec<String> = (0..30)
        .map(|n| serde_json::to_string(&sample::record(fra(), n)).unwrap())
        .collect();
    std::fs::write(&good, fixed.join("\n")).unwrap();
    tracenet_node::cli::import_file(&config, &good, 7)
        .await
        .unwrap();
    tracenet_node::cli::import_file(&config, &good, 7)
        .await
        .unwrap();
    assert_eq!(
        count(
            admin
                .get_node_info(pb::GetNodeInfoRequest {})
                .await
                .unwrap()
                .into_inner()
        ),
        30
    );

    // CSV too.
    let csv = dir.path().join("more.csv");
    std::fs::write(
        &csv,
        "national_ref,date,country,seizing_agency,seizure_kind,serial_number,manufacturer,marking_condition,route,transport_mode\n\
         SYN-CSV-1,2025-03-14,FRA,customs,seized,QX-55,Glock,intact,TUR;BGR;FRA,maritime_container\n",
    )
    .unwrap();
    tracenet_node::cli::import_file(&config, &csv, 100)
        .await
        .unwrap();
    assert_eq!(
        count(
            admin
                .get_node_info(pb::GetNodeInfoRequest {})
                .await
                .unwrap()
                .into_inner()
        ),
        31
    );
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn invalid_records_get_field_errors_and_foreign_events_are_refused() {
    let fed = TestFederation::start(1).await.unwrap();
    let mut admin = fed.admin(0).await.unwrap();
    let err = admin
        .create_record(pb::CreateRecordRequest {
            record: Some(pb::SeizureRecord::default()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let fields: Vec<String> = tracenet_proto::rpc::field_errors(err.details())
        .into_iter()
        .map(|e| e.field)
        .collect();
    assert!(fields.contains(&"national_ref".to_string()), "{fields:?}");
    assert!(fields.contains(&"event".to_string()), "{fields:?}");

    // FRA-POL records events in FRA only.
    let deu = sample::record(CountryCode::parse("DEU").unwrap(), 1);
    let err = admin
        .create_record(pb::CreateRecordRequest { record: Some(deu) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    let dup = sample::record(fra(), 1);
    admin
        .create_record(pb::CreateRecordRequest {
            record: Some(dup.clone()),
        })
        .await
        .unwrap();
    let err = admin
        .create_record(pb::CreateRecordRequest { record: Some(dup) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists);

    let err = admin
        .get_record(pb::GetRecordRequest {
            id: "../../etc/passwd".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_dry_run_batch_checks_everything_and_writes_nothing() {
    let fed = TestFederation::start(1).await.unwrap();
    let mut admin = fed.admin(0).await.unwrap();
    let records: Vec<pb::SeizureRecord> = (0..5).map(|n| sample::record(fra(), n)).collect();
    let mut bad = records.clone();
    bad[3].event.as_mut().unwrap().date = "2025-13-01".into();
    let err = admin
        .import_batch(pb::ImportBatchRequest {
            records: bad,
            dry_run: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let ok = admin
        .import_batch(pb::ImportBatchRequest {
            records,
            dry_run: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((ok.created, ok.updated), (0, 0));
    let info = admin
        .get_node_info(pb::GetNodeInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.record_count, 0, "a dry run wrote something");
}
