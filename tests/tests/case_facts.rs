//! Case facts (weapon status, proceedings, disposition, ballistic references) and ammunition
//! and part details (type, headstamp, lot, year; part manufacturer and markings) end to end: a
//! ballistic reference, headstamp or lot recorded by one State is found by another State's
//! federated lookup over real mutual TLS, only where the holder's rule discloses it and never as
//! another kind; and every new field round-trips through the JSON API, CSV and JSON Lines import
//! and the console.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use reqwest::StatusCode;
use serde_json::{Value, json};
use tracenet_gateway::auth::Role;
use tracenet_node::country::CountryCode;
use tracenet_node::envelope::SignedRequest;
use tracenet_node::sample;
use tracenet_proto::v1 as pb;
use tracenet_tests::gateway::{Console, TestGateways};
use tracenet_tests::{ClientCert, NodeSpec, TestFederation};

/// DEU's synthetic policy: FRA (tracing) sees serials, ballistic references, the case facts,
/// headstamps, lots and shipment identifiers, not the consignor (personal data: a rule may list
/// it only with the persons data class); ITA (tracing) sees serials only.
const DEU_POLICY: &str = r#"
owner_country = "DEU"
version = 1
legal_basis = "Synthetic law art. 2"

[[rules]]
id = "fra-ballistic"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["FRA"] }
fields = [
  { field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "firearms.status", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "ballistic_references", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "proceedings_status", treatment = "FIELD_TREATMENT_REDACT" },
  { field = "disposition", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "ammunition.headstamp", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "ammunition.lot", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "shipment.identifiers", treatment = "FIELD_TREATMENT_ALLOW" },
]

[[rules]]
id = "fra-losses"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_LOSS_REPORT"]
audience = { countries = ["FRA"] }
fields = [
  { field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "loss.kind", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "loss.source", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "loss.date", treatment = "FIELD_TREATMENT_GENERALISE", generalisation = "GENERALISATION_DATE_TO_MONTH" },
]

[[rules]]
id = "ita-serials"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["ITA"] }
fields = [
  { field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" },
]
"#;

const FRA: usize = 0;
const DEU: usize = 1;
const ITA: usize = 2;

fn deu() -> CountryCode {
    CountryCode::parse("DEU").unwrap()
}

fn lookup(term: &str, kind: pb::LookupKind) -> pb::FederatedLookupRequest {
    pb::FederatedLookupRequest {
        inquiry: Some(pb::Inquiry {
            purpose: pb::Purpose::Tracing as i32,
            agency_kind: pb::AgencyKind::Police as i32,
            legal_basis: "Synthetic test basis".into(),
            case_reference: "TEST-BALLISTIC".into(),
            deadline_ms: 0,
            via_hub: false,
        }),
        serial_number: term.to_owned(),
        kind: kind as i32,
        ..Default::default()
    }
}

async fn deu_answer(
    fed: &TestFederation,
    from: usize,
    term: &str,
    kind: pb::LookupKind,
) -> pb::PeerAnswer {
    let r = fed
        .admin(from)
        .await
        .unwrap()
        .federated_lookup(lookup(term, kind))
        .await
        .unwrap()
        .into_inner();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    r.answers
        .into_iter()
        .find(|a| a.node_id == "DEU-CUS")
        .expect("DEU-CUS answers")
}

#[tokio::test]
async fn a_weapon_reported_stolen_in_one_state_is_found_by_anothers_lookup_as_its_rule_allows() {
    let fed = TestFederation::start_specs(&[
        NodeSpec::new("FRA-POL"),
        NodeSpec::new("DEU-CUS").with_policy(DEU_POLICY),
        NodeSpec::new("ITA-POL"),
    ])
    .await
    .unwrap();
    let mut report = sample::loss_report(deu(), 3);
    let loss = report.loss.as_mut().unwrap();
    loss.kind = pb::LossKind::Stolen as i32;
    loss.source = pb::LossSource::Dealer as i32;
    loss.date = "2025-03-14".into();
    fed.admin(DEU)
        .await
        .unwrap()
        .create_record(pb::CreateRecordRequest {
            record: Some(report.clone()),
        })
        .await
        .unwrap();
    let serial = report.firearms[0]
        .serial_number
        .to_lowercase()
        .replace('-', " ");

    // FRA's lookup finds it under DEU's loss-report rule: stolen from a dealer, in March 2025.
    let a = deu_answer(&fed, FRA, &serial, pb::LookupKind::Serial).await;
    assert!(a.hit, "{a:?}");
    let hit = &a.hits[0];
    assert_eq!(hit.policy_rule, "fra-losses");
    let seen = hit.disclosed.clone().unwrap().loss.unwrap();
    assert_eq!(seen.kind, pb::LossKind::Stolen as i32);
    assert_eq!(seen.source, pb::LossSource::Dealer as i32);
    assert_eq!(seen.date, "2025-03", "generalised to the month");
    assert!(seen.circumstances.is_empty() && seen.place.is_none());

    // ITA's rule is for seizures: the loss report is no hit for it, though it shares serials.
    let ita = deu_answer(&fed, ITA, &serial, pb::LookupKind::Serial).await;
    assert!(!ita.hit && ita.hits.is_empty(), "{ita:?}");
    // FRA's query for seizures never returns it as one (its seizure rule does not cover it).
    let q = fed
        .admin(FRA)
        .await
        .unwrap()
        .federated_query(pb::FederatedQueryRequest {
            inquiry: lookup("x", pb::LookupKind::Serial).inquiry,
            filter: Some(pb::RecordFilter::default()),
            limit_per_peer: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let leaked = q
        .answers
        .iter()
        .flat_map(|a| &a.records)
        .filter_map(|r| r.record.as_ref())
        .any(|r| {
            r.firearms
                .iter()
                .any(|f| f.serial_number == report.firearms[0].serial_number)
                && r.loss.is_none()
        });
    assert!(!leaked, "a loss report was disclosed as a seizure");
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_ballistic_reference_recorded_by_one_state_is_found_by_another_where_disclosed() {
    let fed = TestFederation::start_specs(&[
        NodeSpec::new("FRA-POL"),
        NodeSpec::new("DEU-CUS").with_policy(DEU_POLICY),
        NodeSpec::new("ITA-POL"),
    ])
    .await
    .unwrap();
    let mut rec = sample::record(deu(), 1);
    rec.ballistic_references = vec!["DEU-IBIS-2025-0042".into()];
    rec.firearms[0].status = pb::WeaponStatus::Converted as i32;
    rec.proceedings_status = pb::ProceedingsStatus::Trial as i32;
    rec.disposition = pb::Disposition::Retained as i32;
    fed.admin(DEU)
        .await
        .unwrap()
        .create_record(pb::CreateRecordRequest {
            record: Some(rec.clone()),
        })
        .await
        .unwrap();

    // FRA finds it, written differently, with what DEU's rule discloses.
    let a = deu_answer(
        &fed,
        FRA,
        "deu ibis 2025 0042",
        pb::LookupKind::BallisticReference,
    )
    .await;
    assert!(a.hit, "{a:?}");
    let hit = &a.hits[0];
    let seen = hit.disclosed.clone().unwrap();
    assert_eq!(seen.ballistic_references, rec.ballistic_references);
    assert_eq!(seen.firearms[0].status, pb::WeaponStatus::Converted as i32);
    assert_eq!(seen.disposition, pb::Disposition::Retained as i32);
    assert_eq!(seen.proceedings_status, 0, "redacted, yet sent");
    assert!(
        hit.redacted_fields
            .contains(&"proceedings_status".to_owned())
    );
    assert_eq!(hit.policy_rule, "fra-ballistic");

    // The same text as a serial is no hit, and a serial is no ballistic reference.
    let as_serial = deu_answer(&fed, FRA, "DEU-IBIS-2025-0042", pb::LookupKind::Serial).await;
    assert!(!as_serial.hit, "{as_serial:?}");
    let serial = &rec.firearms[0].serial_number;
    assert!(
        deu_answer(&fed, FRA, serial, pb::LookupKind::Serial)
            .await
            .hit
    );
    let serial_as_ballistic =
        deu_answer(&fed, FRA, serial, pb::LookupKind::BallisticReference).await;
    assert!(!serial_as_ballistic.hit);

    // ITA's rule withholds ballistic references: the reference is no hit for it, though the
    // record's serial is.
    let ita = deu_answer(
        &fed,
        ITA,
        "DEU-IBIS-2025-0042",
        pb::LookupKind::BallisticReference,
    )
    .await;
    assert!(!ita.hit && ita.hits.is_empty(), "{ita:?}");
    assert!(
        deu_answer(&fed, ITA, serial, pb::LookupKind::Serial)
            .await
            .hit
    );

    // Headstamps and lots: found by FRA, each only as its own kind; not by ITA.
    let mut ammo = sample::record(deu(), 2);
    ammo.ammunition[0].headstamp = "SYN 7.62 88".into();
    ammo.ammunition[0].lot = "SYN-LOT-88-4".into();
    fed.admin(DEU)
        .await
        .unwrap()
        .create_record(pb::CreateRecordRequest {
            record: Some(ammo.clone()),
        })
        .await
        .unwrap();
    let by_headstamp = deu_answer(&fed, FRA, "syn 7 62 88", pb::LookupKind::Headstamp).await;
    assert!(by_headstamp.hit, "{by_headstamp:?}");
    assert_eq!(
        by_headstamp.hits[0].disclosed.clone().unwrap().ammunition[0].headstamp,
        "SYN 7.62 88"
    );
    assert!(
        deu_answer(&fed, FRA, "SYN-LOT-88-4", pb::LookupKind::AmmunitionLot)
            .await
            .hit
    );
    assert!(
        !deu_answer(&fed, FRA, "SYN-LOT-88-4", pb::LookupKind::Headstamp)
            .await
            .hit
    );
    assert!(
        !deu_answer(&fed, FRA, "SYN-LOT-88-4", pb::LookupKind::Serial)
            .await
            .hit
    );
    assert!(
        !deu_answer(&fed, ITA, "SYN-LOT-88-4", pb::LookupKind::AmmunitionLot)
            .await
            .hit
    );
    assert!(
        !deu_answer(&fed, ITA, "SYN 7.62 88", pb::LookupKind::Headstamp)
            .await
            .hit
    );

    // Shipment identifiers: a container number recorded at DEU, found by FRA written
    // differently; the consignor (personal data, not granted) stays home.
    let mut shipped = sample::record(deu(), 5);
    shipped.shipment = Some(pb::ShipmentFacts {
        identifiers: vec![pb::ConveyanceId {
            kind: pb::ConveyanceKind::Container as i32,
            value: "SYNU 765432-1".into(),
        }],
        consignor: "Synthetic Export Ltd".into(),
        ..Default::default()
    });
    fed.admin(DEU)
        .await
        .unwrap()
        .create_record(pb::CreateRecordRequest {
            record: Some(shipped),
        })
        .await
        .unwrap();
    let by_container = deu_answer(&fed, FRA, "synu7654321", pb::LookupKind::ShipmentId).await;
    assert!(by_container.hit, "{by_container:?}");
    let seen = by_container.hits[0]
        .disclosed
        .clone()
        .unwrap()
        .shipment
        .unwrap();
    assert_eq!(seen.identifiers[0].value, "SYNU 765432-1");
    assert!(
        seen.consignor.is_empty(),
        "personal data left without the persons class"
    );
    assert!(
        !deu_answer(&fed, ITA, "SYNU7654321", pb::LookupKind::ShipmentId)
            .await
            .hit
    );
    assert!(
        !deu_answer(&fed, FRA, "SYNU7654321", pb::LookupKind::Serial)
            .await
            .hit
    );

    // A peer asking directly with an unknown kind is refused, not answered as a serial.
    let mut client = fed
        .peer_client(DEU, ClientCert::Of(FRA, "node"))
        .await
        .unwrap();
    let mut req = pb::LookupRequest {
        serial_number: "DEU-IBIS-2025-0042".into(),
        kind: 77,
        ..Default::default()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    req.sign_with(
        &fed.signing_key(FRA).unwrap(),
        pb::RequestContext {
            request_id: "probe-kind-1".into(),
            requester_node: "FRA-POL".into(),
            agency_kind: pb::AgencyKind::Police as i32,
            purpose: pb::Purpose::Tracing as i32,
            legal_basis: "synthetic".into(),
            issued_at: now,
            ..Default::default()
        },
    );
    let refused = client.lookup(req).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    fed.shutdown().await.unwrap();
}

/// A record with every case fact set, in the API's JSON.
fn api_record(national_ref: &str) -> Value {
    json!({
        "national_ref": national_ref,
        "event": {"date": "2025-06-01", "place": {"country": "DEU"}, "seizing_agency": "AGENCY_KIND_CUSTOMS"},
        "context": {"seizure_kind": "SEIZURE_KIND_SEIZED"},
        "firearms": [{"serial_number": "SYN-CF-1", "marking_condition": "MARKING_CONDITION_INTACT", "status": "WEAPON_STATUS_PRINTED_3D"}],
        "proceedings_status": "PROCEEDINGS_STATUS_PROSECUTION",
        "disposition": "DISPOSITION_DESTROYED",
        "ballistic_references": ["SYN-IBIS-DEU-7"],
        "ammunition": [{"calibre": "9x19mm", "quantity": "50", "manufacturer": "Synthetic Ammunition",
                        "ammunition_type": "AMMUNITION_TYPE_TRACER", "headstamp": "SYN 9MM 21", "lot": "SYN-LOT-21", "year": 2021}],
        "parts": [{"kind": "slide", "serial_number": "SYN-SL-1", "quantity": "1", "manufacturer": "Synthetic Arms",
                   "markings": [{"text": "SYN"}]}],
        "persons": [{"kind": "PERSON_KIND_LEGAL", "role": "PERSON_ROLE_BROKER", "name": "Synthetic Brokers Ltd",
                     "nationality": "NLD", "licence_reference": "SYN-BRK-0001"}],
        "shipment": {"identifiers": [{"kind": "CONVEYANCE_KIND_AIR_WAYBILL", "value": "176-12345675"}],
                     "consignor": "Synthetic Export Ltd", "consignee": "Synthetic Import Ltd",
                     "online_platform": "synthetic-market.example", "listing": "https://synthetic-market.example/l/1",
                     "vendor_handle": "synthetic_vendor"},
        "notes": "Synthetic test record: not real data."
    })
}

/// The case facts of an API record as JSON.
fn facts(record: &Value) -> Value {
    json!([
        record["firearms"][0]["status"],
        record["proceedings_status"],
        record["disposition"],
        record["ballistic_references"],
        record["ammunition"][0]["ammunition_type"],
        record["ammunition"][0]["headstamp"],
        record["ammunition"][0]["lot"],
        record["ammunition"][0]["year"],
        record["ammunition"][0]["manufacturer"],
        record["parts"][0]["manufacturer"],
        record["parts"][0]["markings"][0]["text"],
        record["parts"][0]["serial_number"],
        record["persons"][0],
        record["shipment"],
    ])
}

async fn api_get(t: &TestGateways, id: &str) -> Value {
    let r = reqwest::Client::new()
        .get(t.deu.url(&format!("/api/v1/records/{id}")))
        .bearer_auth(t.deu.token(Role::Officer))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Value>().await.unwrap()["record"].clone()
}

async fn api_by_ref(t: &TestGateways, national_ref: &str) -> Value {
    let v: Value = reqwest::Client::new()
        .get(t.deu.url("/api/v1/records?page_size=200"))
        .bearer_auth(t.deu.token(Role::Officer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["record"].clone())
        .find(|r| r["national_ref"] == national_ref)
        .unwrap_or_else(|| panic!("{national_ref} not found in {v}"))
}

async fn import(c: &Console, name: &str, text: &str) {
    let token = c.csrf().await.unwrap();
    let form = reqwest::multipart::Form::new().text("csrf", token).part(
        "file",
        reqwest::multipart::Part::bytes(text.as_bytes().to_vec()).file_name(name.to_owned()),
    );
    let r = c
        .http
        .post(format!("{}/records/import", c.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let job = r
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let deadline = std::time::Instant::now() + tracenet_tests::WAIT_LIMIT;
    loop {
        let (s, body) = c.get(&job).await.unwrap();
        assert_eq!(s, StatusCode::OK);
        if !body.contains("data-phase=\"running\"") {
            assert!(body.contains("data-phase=\"done\""), "{body}");
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "import never finished"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn case_facts_round_trip_through_the_api_imports_and_the_console() {
    let t = TestGateways::start(0).await.unwrap();
    let expected = facts(&api_record("x"));

    // JSON API: create, read back.
    let r = reqwest::Client::new()
        .post(t.deu.url("/api/v1/records"))
        .bearer_auth(t.deu.token(Role::Officer))
        .json(&api_record("SYN-CF-API"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["record"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(facts(&api_get(&t, &id).await), expected);

    // This node's own records are searchable by each identifier kind, exactly or normalised.
    let search = |q: &str| {
        let url = t.deu.url(&format!("/api/v1/search?{q}"));
        let token = t.deu.token(Role::Officer).to_owned();
        async move {
            let v: Value = reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["items"].as_array().map_or(0, Vec::len)
        }
    };
    assert_eq!(search("serial=syn%209mm%2021&kind=headstamp").await, 1);
    assert_eq!(
        search("serial=SYN%209MM%2021&kind=headstamp&match=exact").await,
        1
    );
    assert_eq!(
        search("serial=syn%209mm%2021&kind=headstamp&match=exact").await,
        0
    );
    assert_eq!(search("serial=synlot21&kind=ammunition_lot").await, 1);
    assert_eq!(
        search("serial=syn-ibis-deu-7&kind=ballistic_reference").await,
        1
    );
    assert_eq!(search("serial=17612345675&kind=shipment_id").await, 1);
    assert_eq!(
        search("serial=SYN-SL-1").await,
        1,
        "part serials are serials"
    );
    assert_eq!(search("serial=synlot21").await, 0, "a lot is no serial");

    // CSV and JSON Lines through the console's import.
    let c = Console::logged_in(&t.deu.gw.url, "all").await.unwrap();
    let csv = "national_ref,date,country,seizing_agency,seizure_kind,serial_number,marking_condition,weapon_status,proceedings_status,disposition,ballistic_references,\
               ammunition_calibre,ammunition_quantity,ammunition_manufacturer,ammunition_type,ammunition_headstamp,ammunition_lot,ammunition_year,\
               part_kind,part_serial_number,part_manufacturer,part_quantity,part_markings,\
               person_kind,person_role,person_name,person_nationality,person_licence_reference,\
               shipment_identifiers,consignor,consignee,online_platform,listing,vendor_handle,import_country,import_year\n\
               SYN-CF-CSV,2025-06-01,DEU,customs,seized,SYN-CF-2,intact,printed_3d,prosecution,destroyed,SYN-IBIS-DEU-7,\
               9x19mm,50,Synthetic Ammunition,tracer,SYN 9MM 21,SYN-LOT-21,2021,\
               slide,SYN-SL-1,Synthetic Arms,1,SYN,\
               legal,broker,Synthetic Brokers Ltd,NLD,SYN-BRK-0001,\
               air_waybill:176-12345675,Synthetic Export Ltd,Synthetic Import Ltd,synthetic-market.example,https://synthetic-market.example/l/1,synthetic_vendor,ita,2011\n";
    import(&c, "facts.csv", csv).await;
    let from_csv = api_by_ref(&t, "SYN-CF-CSV").await;
    assert_eq!(facts(&from_csv), expected);
    // The import marking (ITI paragraph 10) comes in through CSV too.
    assert_eq!(
        from_csv["firearms"][0]["import_marking"],
        json!({"country": "ITA", "year": 2011}),
        "{from_csv}"
    );
    let mut line = api_record("SYN-CF-JSONL");
    line["firearms"][0]["serial_number"] = json!("SYN-CF-3");
    import(&c, "facts.jsonl", &format!("{line}\n")).await;
    assert_eq!(facts(&api_by_ref(&t, "SYN-CF-JSONL").await), expected);

    // The console form: create, then the detail page and the edit form show every fact, in
    // English and French.
    let (s, _) = c
        .post(
            "/records",
            &[
                ("national_ref", "SYN-CF-FORM"),
                ("date", "2025-06-01"),
                ("country", "DEU"),
                ("seizing_agency", "customs"),
                ("seizure_kind", "seized"),
                ("serial_number", "SYN-CF-4"),
                ("marking_condition", "intact"),
                ("weapon_status", "printed_3d"),
                ("proceedings_status", "prosecution"),
                ("disposition", "destroyed"),
                ("ballistic_references", "SYN-IBIS-DEU-7"),
                ("ammunition_calibre", "9x19mm"),
                ("ammunition_quantity", "50"),
                ("ammunition_manufacturer", "Synthetic Ammunition"),
                ("ammunition_type", "tracer"),
                ("ammunition_headstamp", "SYN 9MM 21"),
                ("ammunition_lot", "SYN-LOT-21"),
                ("ammunition_year", "2021"),
                ("part_kind", "slide"),
                ("part_serial_number", "SYN-SL-1"),
                ("part_manufacturer", "Synthetic Arms"),
                ("part_quantity", "1"),
                ("part_markings", "SYN"),
                ("person_kind", "legal"),
                ("person_role", "broker"),
                ("person_name", "Synthetic Brokers Ltd"),
                ("person_nationality", "NLD"),
                ("person_licence_reference", "SYN-BRK-0001"),
                ("shipment_identifiers", "air_waybill:176-12345675"),
                ("consignor", "Synthetic Export Ltd"),
                ("consignee", "Synthetic Import Ltd"),
                ("online_platform", "synthetic-market.example"),
                ("listing", "https://synthetic-market.example/l/1"),
                ("vendor_handle", "synthetic_vendor"),
                ("import_country", "ITA"),
                ("import_year", "2011"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(s, StatusCode::SEE_OTHER);
    let form_rec = api_by_ref(&t, "SYN-CF-FORM").await;
    assert_eq!(facts(&form_rec), expected);
    assert_eq!(
        form_rec["firearms"][0]["import_marking"],
        json!({"country": "ITA", "year": 2011}),
        "{form_rec}"
    );
    let form_id = form_rec["id"].as_str().unwrap();
    let (_, detail) = c.get(&format!("/records/{form_id}")).await.unwrap();
    for shown in [
        "id=\"v-weapon_status\">3D-printed<",
        "id=\"v-proceedings_status\">Prosecution<",
        "id=\"v-disposition\">Destroyed<",
        "id=\"v-ballistic_references\">SYN-IBIS-DEU-7<",
        "id=\"v-ammunition_type\">Tracer<",
        "id=\"v-ammunition_headstamp\">SYN 9MM 21<",
        "id=\"v-ammunition_lot\">SYN-LOT-21<",
        "id=\"v-part_serial_number\">SYN-SL-1<",
        "id=\"v-part_markings\">SYN<",
        "id=\"v-person_kind\">Legal person (company)<",
        "id=\"v-person_licence_reference\">SYN-BRK-0001<",
        "id=\"v-shipment_identifiers\">air_waybill:176-12345675<",
        "id=\"v-vendor_handle\">synthetic_vendor<",
        "id=\"v-import_country\">ITA<",
        "id=\"v-import_year\">2011<",
    ] {
        assert!(detail.contains(shown), "{shown} missing:\n{detail}");
    }
    let (_, found) = c
        .get("/search?serial=syn+lot+21&kind=ammunition_lot&normalised=1")
        .await
        .unwrap();
    assert!(
        found.contains("id=\"search-count\">") && found.contains("SYN-CF-FORM"),
        "{found}"
    );
    let (_, edit) = c.get(&format!("/records/{form_id}/edit")).await.unwrap();
    assert!(
        edit.contains("<option value=\"printed_3d\" selected>"),
        "{edit}"
    );
    assert!(
        edit.contains("<option value=\"destroyed\" selected>"),
        "{edit}"
    );
    assert!(edit.contains("value=\"SYN-IBIS-DEU-7\""), "{edit}");
    let r = c
        .http
        .get(format!("{}/lang/fr?back=%2F", c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, detail) = c.get(&format!("/records/{form_id}")).await.unwrap();
    assert!(
        detail.contains("Imprimée en 3D") && detail.contains("Détruits"),
        "{detail}"
    );
    assert!(detail.contains("Références balistiques"), "{detail}");
    assert!(
        detail.contains("Personne morale") && detail.contains("Pseudonyme du vendeur"),
        "{detail}"
    );
    assert!(
        detail.contains("Marquage du culot") && detail.contains("Traçante"),
        "{detail}"
    );

    // A bad choice is reported next to its field, with the rest of the form kept.
    let (s, body) = c
        .post(
            "/records",
            &[
                ("national_ref", "SYN-CF-BAD"),
                ("date", "2025-06-01"),
                ("country", "DEU"),
                ("seizing_agency", "customs"),
                ("seizure_kind", "seized"),
                ("serial_number", "SYN-CF-5"),
                ("disposition", "sold"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("id=\"err-disposition\""), "{body}");
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_ballistic_lookup_from_the_console_and_the_api_shows_the_holders_hit() {
    let t = TestGateways::start(0).await.unwrap();
    let r = reqwest::Client::new()
        .post(t.deu.url("/api/v1/records"))
        .bearer_auth(t.deu.token(Role::Officer))
        .json(&api_record("SYN-CF-LOOKUP"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // The API: FRA asks by ballistic reference; DEU's demo rule for FRA discloses it.
    let v: Value = reqwest::Client::new()
        .post(t.fra.url("/api/v1/lookup"))
        .bearer_auth(t.fra.token(Role::Officer))
        .json(
            &json!({"serial_number": "syn ibis deu 7", "kind": "ballistic_reference",
                      "purpose": "tracing", "legal_basis": "Synthetic basis"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let deu = v["answers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["node_id"] == "DEU-CUS")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(deu["hit"], true, "{v}");
    assert_eq!(
        deu["hits"][0]["disclosed"]["ballistic_references"],
        json!(["SYN-IBIS-DEU-7"])
    );
    let (s, bad) = {
        let r = reqwest::Client::new()
            .post(t.fra.url("/api/v1/lookup"))
            .bearer_auth(t.fra.token(Role::Officer))
            .json(
                &json!({"serial_number": "SYN-IBIS-DEU-7", "kind": "fingerprint",
                          "purpose": "tracing", "legal_basis": "Synthetic basis"}),
            )
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    };
    assert!(s.is_client_error() && bad.contains("kind"), "{s} {bad}");

    // The console: the lookup form takes the kind, and the hit shows the reference and the
    // disclosed case facts.
    let c = Console::logged_in(&t.fra.gw.url, "all").await.unwrap();
    let (s, page) = c
        .post(
            "/lookup",
            &[
                ("serial_number", "SYN-IBIS-DEU-7"),
                ("kind", "ballistic_reference"),
                ("purpose", "tracing"),
                ("legal_basis", "Synthetic basis"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(
        page.contains("<option value=\"ballistic_reference\" selected>"),
        "{page}"
    );
    let row = page
        .split("data-node=\"DEU-CUS\"")
        .nth(1)
        .unwrap_or_else(|| panic!("{page}"));
    let row = row.split("</tr>").next().unwrap();
    assert!(row.contains("class=\"hit\"") || page.contains("class=\"hit\" data-node=\"DEU-CUS\""));
    assert!(row.contains("SYN-IBIS-DEU-7"), "{row}");
    assert!(
        row.contains("3D-printed") && row.contains("Destroyed"),
        "{row}"
    );

    // A lot lookup from the console shows DEU's hit with the lot (the demo rule discloses it).
    let (s, page) = c
        .post(
            "/lookup",
            &[
                ("serial_number", "syn lot 21"),
                ("kind", "ammunition_lot"),
                ("purpose", "tracing"),
                ("legal_basis", "Synthetic basis"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(s, StatusCode::OK, "{page}");
    let row = page
        .split("data-node=\"DEU-CUS\"")
        .nth(1)
        .unwrap_or_else(|| panic!("{page}"));
    let row = row.split("</tr>").next().unwrap();
    assert!(row.contains("SYN-LOT-21"), "{row}");

    // A weapon DEU reported stolen: FRA's lookup shows "reported stolen from a dealer" next to
    // DEU's answer, as DEU's loss-report rule allows.
    let report = json!({
        "national_ref": "SYN-CF-LOSS",
        "firearms": [{"serial_number": "SYN-STOLEN-1", "marking_condition": "MARKING_CONDITION_INTACT"}],
        "loss": {"kind": "LOSS_KIND_STOLEN", "source": "LOSS_SOURCE_DEALER", "date": "2025-03-14",
                 "place": {"country": "DEU"}, "circumstances": "Synthetic break-in", "reporting_agency": "Synthetic station"}
    });
    let r = reqwest::Client::new()
        .post(t.deu.url("/api/v1/records"))
        .bearer_auth(t.deu.token(Role::Officer))
        .json(&report)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let (s, page) = c
        .post(
            "/lookup",
            &[
                ("serial_number", "syn stolen 1"),
                ("purpose", "tracing"),
                ("legal_basis", "Synthetic basis"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(s, StatusCode::OK, "{page}");
    let row = page
        .split("data-node=\"DEU-CUS\"")
        .nth(1)
        .unwrap_or_else(|| panic!("{page}"));
    let row = row.split("</tr>").next().unwrap();
    assert!(
        row.contains("Reported stolen") && row.contains("from a dealer") && row.contains("DEU"),
        "{row}"
    );
    assert!(
        !row.contains("Synthetic break-in"),
        "circumstances are not shared: {row}"
    );
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_loss_report_round_trips_through_the_console_and_csv() {
    let t = TestGateways::start(0).await.unwrap();
    let c = Console::logged_in(&t.deu.gw.url, "all").await.unwrap();
    let (s, body) = c
        .post(
            "/records",
            &[
                ("national_ref", "SYN-LOSS-FORM"),
                ("serial_number", "SYN-LOST-2"),
                ("marking_condition", "intact"),
                ("loss_kind", "diverted"),
                ("loss_source", "state_stockpile"),
                ("loss_date", "2025-02-01"),
                ("loss_country", "DEU"),
                ("loss_circumstances", "Synthetic stock check"),
                ("reporting_agency", "Synthetic station"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let rec = api_by_ref(&t, "SYN-LOSS-FORM").await;
    assert_eq!(rec["loss"]["kind"], "LOSS_KIND_DIVERTED", "{rec}");
    assert_eq!(rec["loss"]["source"], "LOSS_SOURCE_STATE_STOCKPILE");
    assert!(
        rec["event"].is_null(),
        "a loss report has no seizure event: {rec}"
    );
    let (_, detail) = c
        .get(&format!("/records/{}", rec["id"].as_str().unwrap()))
        .await
        .unwrap();
    assert!(
        detail.contains("id=\"v-loss_kind\">Reported diverted<")
            && detail.contains("id=\"v-loss_source\">from a State stockpile<"),
        "{detail}"
    );
    let csv = "national_ref,date,country,seizing_agency,seizure_kind,serial_number,marking_condition,loss_kind,loss_source,loss_date,loss_country,reporting_agency\n\
               SYN-LOSS-CSV,,,,,SYN-LOST-3,intact,lost,carrier,2025-02-02,DEU,Synthetic station\n";
    import(&c, "losses.csv", csv).await;
    let rec = api_by_ref(&t, "SYN-LOSS-CSV").await;
    assert_eq!(rec["loss"]["kind"], "LOSS_KIND_LOST", "{rec}");
    let (_, list) = c.get("/records").await.unwrap();
    assert!(
        list.contains("class=\"muted loss-report\">Reported lost<"),
        "the list says which records are loss reports:\n{list}"
    );
    assert_eq!(rec["loss"]["place"]["country"], "DEU");
    // A file of loss reports needs no seizure columns at all.
    let csv = "national_ref,serial_number,marking_condition,loss_kind,loss_source,loss_date,loss_country\n\
               SYN-LOSS-CSV-2,SYN-LOST-4,intact,stolen,private_owner,2025-03-03,DEU\n";
    import(&c, "losses-only.csv", csv).await;
    let rec = api_by_ref(&t, "SYN-LOSS-CSV-2").await;
    assert_eq!(rec["loss"]["kind"], "LOSS_KIND_STOLEN", "{rec}");
    // A loss report without its facts is refused with the fields named.
    let (s, body) = c
        .post(
            "/records",
            &[
                ("national_ref", "SYN-LOSS-BAD"),
                ("serial_number", "SYN-LOST-4"),
                ("loss_kind", "stolen"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body.contains("id=\"err-loss_source\"") && body.contains("id=\"err-loss_date\""),
        "{body}"
    );
    t.shutdown().await.unwrap();
}
