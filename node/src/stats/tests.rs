//! The statistics functions against tables computed by hand on fixed data.

use super::*;
use crate::stats::export;
use crate::stats::suppress::{self, Cell};

fn firearm(category: pb::WeaponCategory, country: &str) -> pb::FirearmIdentification {
    pb::FirearmIdentification {
        category: category as i32,
        country_of_manufacture: country.into(),
        ..Default::default()
    }
}

#[allow(clippy::too_many_arguments)]
fn record(
    date: &str,
    kind: pb::SeizureKind,
    firearms: Vec<pb::FirearmIdentification>,
    route: &[&str],
    mode: pb::TransportMode,
    context: pb::CriminalContext,
    tracing: (bool, bool),
) -> pb::SeizureRecord {
    pb::SeizureRecord {
        event: Some(pb::SeizureEvent {
            date: date.into(),
            place: None,
            seizing_agency: pb::AgencyKind::Customs as i32,
        }),
        context: Some(pb::SeizureContext {
            criminal_context: context as i32,
            seizure_kind: kind as i32,
        }),
        firearms,
        trafficking: Some(pb::TraffickingFacts {
            route: route
                .iter()
                .map(|c| pb::RoutePoint {
                    country: (*c).into(),
                    point: String::new(),
                })
                .collect(),
            transport_mode: mode as i32,
            ..Default::default()
        }),
        tracing: Some(pb::TracingStatus {
            trace_requested: tracing.0 || tracing.1,
            traced: tracing.0,
            illicit_origin_established: tracing.1,
        }),
        ..Default::default()
    }
}

/// Five records:
///
/// | # | date       | kind        | firearms (category, made in) | route         | mode | context | traced / established |
/// |---|------------|-------------|------------------------------|---------------|------|---------|----------------------|
/// | 1 | 2025-02-10 | seized      | pistol DEU, pistol AUT       | SRB, AUT, FRA | road | drugs   | yes / no  |
/// | 2 | 2025-05-01 | found       | rifle DEU                    | —             | rail | other   | no / yes  |
/// | 3 | 2025-11-30 | surrendered | shotgun ITA, pistol DEU, rifle DEU | FRA     | road | none    | no / no   |
/// | 4 | 2024-12-31 | seized      | pistol DEU                   | BEL           | road | drugs   | yes / yes (other year) |
/// | 5 | 2025-07-04 | unspecified | pistol —                     | SRB, SRB      | air  | drugs   | no / no   |
///
/// Record 1 also carries 50 rounds of 9MM and 20 of 7.62X39, one slide and two persons; record 3
/// 12 rounds of "9mm ".
fn records() -> Vec<pb::SeizureRecord> {
    use pb::{CriminalContext as X, SeizureKind as K, TransportMode as T, WeaponCategory as W};
    let mut r1 = record(
        "2025-02-10",
        K::Seized,
        vec![
            firearm(W::RevolverOrSelfLoadingPistol, "DEU"),
            firearm(W::RevolverOrSelfLoadingPistol, "AUT"),
        ],
        &["SRB", "AUT", "FRA"],
        T::Road,
        X::DrugTrafficking,
        (true, false),
    );
    r1.ammunition = vec![
        pb::AmmunitionItem {
            calibre: "9MM".into(),
            quantity: 50,
            ..Default::default()
        },
        pb::AmmunitionItem {
            calibre: "7.62X39".into(),
            quantity: 20,
            ..Default::default()
        },
    ];
    r1.parts = vec![pb::PartItem {
        kind: "Slide".into(),
        quantity: 1,
        ..Default::default()
    }];
    r1.persons = vec![
        pb::Person {
            role: pb::PersonRole::Courier as i32,
            ..Default::default()
        },
        pb::Person {
            role: pb::PersonRole::Suspect as i32,
            ..Default::default()
        },
    ];
    let r2 = record(
        "2025-05-01",
        K::Found,
        vec![firearm(W::RifleOrCarbine, "DEU")],
        &[],
        T::Rail,
        X::Other,
        (false, true),
    );
    let mut r3 = record(
        "2025-11-30",
        K::Surrendered,
        vec![
            firearm(W::Shotgun, "ITA"),
            firearm(W::RevolverOrSelfLoadingPistol, "DEU"),
            firearm(W::RifleOrCarbine, "deu"),
        ],
        &["FRA"],
        T::Road,
        X::NoneEstablished,
        (false, false),
    );
    r3.ammunition = vec![pb::AmmunitionItem {
        calibre: "9mm ".into(),
        quantity: 12,
        ..Default::default()
    }];
    let r4 = record(
        "2024-12-31",
        K::Seized,
        vec![firearm(W::RevolverOrSelfLoadingPistol, "DEU")],
        &["BEL"],
        T::Road,
        X::DrugTrafficking,
        (true, true),
    );
    let r5 = record(
        "2025-07-04",
        K::Unspecified,
        vec![firearm(W::RevolverOrSelfLoadingPistol, "")],
        &["SRB", "SRB"],
        T::AirCargo,
        X::DrugTrafficking,
        (false, false),
    );
    vec![r1, r2, r3, r4, r5]
}

fn row(t: &Table, label: &str) -> Vec<u64> {
    let i = t.rows.iter().position(|r| r == label).unwrap();
    t.cells[i].clone()
}

fn table<'a>(r: &'a Report, id: &str) -> &'a Table {
    r.table(id).unwrap()
}

#[test]
fn yearly_seizure_tables_match_the_hand_computed_ones() {
    let r = report(Period::year(2025), &records(), &[], 0);
    // Columns: seized, found, surrendered, confiscated, not_stated.
    let t = table(&r, "firearms_by_category");
    assert_eq!(t.unit, "firearms");
    assert_eq!(
        t.rows.len(),
        13,
        "12 categories and not_stated, in proto order"
    );
    assert_eq!(t.rows[0], "revolver_or_self_loading_pistol");
    assert_eq!(
        row(t, "revolver_or_self_loading_pistol"),
        vec![2, 0, 1, 0, 1]
    );
    assert_eq!(row(t, "rifle_or_carbine"), vec![0, 1, 1, 0, 0]);
    assert_eq!(row(t, "shotgun"), vec![0, 0, 1, 0, 0]);
    assert_eq!(t.total(), 7);

    let t = table(&r, "firearms_by_country_of_manufacture");
    assert_eq!(t.rows, vec!["AUT", "DEU", "ITA", "unknown"]);
    assert_eq!(row(t, "DEU"), vec![1, 1, 2, 0, 0]);
    assert_eq!(row(t, "AUT"), vec![1, 0, 0, 0, 0]);
    assert_eq!(row(t, "unknown"), vec![0, 0, 0, 0, 1]);

    let t = table(&r, "firearms_by_route_country");
    assert_eq!(
        row(t, "SRB"),
        vec![2, 0, 0, 0, 1],
        "SRB twice on record 5 counts once"
    );
    assert_eq!(row(t, "FRA"), vec![2, 0, 3, 0, 0]);
    assert_eq!(row(t, "none_recorded"), vec![0, 1, 0, 0, 0]);
    assert!(!t.rows.contains(&"BEL".to_string()), "record 4 is 2024");

    let t = table(&r, "firearms_by_transport_mode");
    assert_eq!(row(t, "road"), vec![2, 0, 3, 0, 0]);
    assert_eq!(row(t, "rail"), vec![0, 1, 0, 0, 0]);
    assert_eq!(row(t, "air_cargo"), vec![0, 0, 0, 0, 1]);

    let t = table(&r, "firearms_by_criminal_context");
    assert_eq!(row(t, "drug_trafficking"), vec![2, 0, 0, 0, 1]);
    assert_eq!(row(t, "none_established"), vec![0, 0, 3, 0, 0]);

    let t = table(&r, "ammunition_by_calibre");
    assert_eq!(t.unit, "rounds of ammunition");
    assert_eq!(
        row(t, "9MM"),
        vec![50, 0, 12, 0, 0],
        "calibres compared trimmed, upper case"
    );
    assert_eq!(row(t, "7.62X39"), vec![20, 0, 0, 0, 0]);

    let t = table(&r, "parts_by_kind");
    assert_eq!(t.rows, vec!["slide"]);
    assert_eq!(row(t, "slide"), vec![1, 0, 0, 0, 0]);

    let t = table(&r, "persons_by_role");
    assert_eq!(row(t, "courier"), vec![1, 0, 0, 0, 0]);
    assert_eq!(row(t, "suspect"), vec![1, 0, 0, 0, 0]);

    let t = table(&r, "records_by_agency");
    assert_eq!(row(t, "customs"), vec![1, 1, 1, 0, 1]);
}

#[test]
fn natural_persons_are_counted_by_sex_and_age_band_and_legal_persons_by_role_only() {
    let mut recs = records();
    recs[0].persons = vec![
        pb::Person {
            role: pb::PersonRole::Courier as i32,
            kind: pb::PersonKind::Natural as i32,
            sex: pb::PersonSex::Female as i32,
            age_band: pb::AgeBand::AgeBand18To24 as i32,
            ..Default::default()
        },
        pb::Person {
            role: pb::PersonRole::Suspect as i32,
            sex: pb::PersonSex::Male as i32,
            ..Default::default()
        },
        pb::Person {
            role: pb::PersonRole::Broker as i32,
            kind: pb::PersonKind::Legal as i32,
            licence_reference: "SYN-BRK-1".into(),
            ..Default::default()
        },
    ];
    let r = report(Period::year(2025), &recs, &[], 0);
    let t = table(&r, "persons_by_sex");
    assert_eq!(row(t, "female"), vec![1, 0, 0, 0, 0]);
    assert_eq!(row(t, "male"), vec![1, 0, 0, 0, 0]);
    assert_eq!(
        row(t, "not_stated"),
        vec![0, 0, 0, 0, 0],
        "the firm has no sex"
    );
    let t = table(&r, "persons_by_age_band");
    assert_eq!(row(t, "18_to_24"), vec![1, 0, 0, 0, 0]);
    assert_eq!(row(t, "not_stated"), vec![1, 0, 0, 0, 0]);
    assert_eq!(t.rows.first().map(String::as_str), Some("under_18"));
    let t = table(&r, "persons_by_role");
    assert_eq!(row(t, "broker"), vec![1, 0, 0, 0, 0]);
}

#[test]
fn sdg_16_4_2_counts_traced_or_established_firearms_over_seized_found_surrendered() {
    let r = report(Period::year(2025), &records(), &[], 0);
    let t = table(&r, SDG_TABLE);
    assert_eq!(row(t, "traced_or_established"), vec![2, 1, 0, 0, 0]);
    assert_eq!(row(t, "not_traced"), vec![0, 0, 3, 0, 1]);
    let sdg = r.sdg().unwrap();
    // Record 5 (no seizure kind) is outside the denominator: 2 + 1 + 3 = 6; numerator 2 + 1.
    assert_eq!((sdg.numerator, sdg.denominator), (3, 6));
    assert_eq!(sdg.proportion(), Some(0.5));

    let series = sdg_series(2024, 2026, &records());
    assert_eq!(series.len(), 3);
    assert_eq!((series[0].numerator, series[0].denominator), (1, 1));
    assert_eq!(series[2].proportion(), None);
}

#[test]
fn quarterly_tables_take_only_their_quarter() {
    let q2 = report(Period::quarter(2025, 2).unwrap(), &records(), &[], 0);
    assert_eq!(
        table(&q2, "firearms_by_category").total(),
        1,
        "record 2 (May)"
    );
    let q4 = report(Period::quarter(2025, 4).unwrap(), &records(), &[], 0);
    assert_eq!(
        table(&q4, "firearms_by_category").total(),
        3,
        "record 3 (November)"
    );
    assert!(Period::quarter(2025, 5).is_none());
    assert_eq!(Period::quarter(2025, 4).unwrap().label(), "2025-Q4");
}

fn trace(
    direction: &str,
    created: i64,
    due: i64,
    status: pb::TraceStatus,
    chain: bool,
) -> pb::TraceRecord {
    pb::TraceRecord {
        request: Some(pb::TraceRequest {
            created_at: created,
            due_at: due,
            ..Default::default()
        }),
        response: chain.then(|| pb::TraceResponse {
            chain_of_custody: vec![pb::CustodyLink::default()],
            ..Default::default()
        }),
        status: status as i32,
        direction: direction.into(),
        ..Default::default()
    }
}

#[test]
fn tracing_outcomes_match_the_hand_computed_table() {
    use pb::TraceStatus as S;
    // 2025-03-01T00:00:00Z = 1740787200; 2024-06-01 = 1717200000.
    let t0 = 1_740_787_200;
    let now = t0 + 40 * 86_400;
    let traces = vec![
        trace("outgoing", t0, t0 + 30 * 86_400, S::Answered, true),
        trace("outgoing", t0, t0 + 30 * 86_400, S::Answered, false),
        trace("outgoing", t0, t0 + 30 * 86_400, S::Acknowledged, false),
        trace("outgoing", t0, t0 + 60 * 86_400, S::Sent, false),
        trace("incoming", t0, t0 + 30 * 86_400, S::Declined, false),
        trace("incoming", t0, t0 + 30 * 86_400, S::Restricted, false),
        trace("incoming", 1_717_200_000, 0, S::Answered, true),
    ];
    let t = tracing_table(Period::year(2025), &traces, now);
    assert_eq!(t.unit, "trace requests");
    // answered+origin, answered other, restricted, declined, pending, overdue
    assert_eq!(t.cells[0], vec![1, 1, 0, 0, 1, 1]);
    assert_eq!(t.cells[1], vec![0, 0, 1, 1, 0, 0]);
    assert_eq!(year_month_of(t0), (2025, 3));
    assert_eq!(year_month_of(1_717_200_000), (2024, 6));
}

#[test]
fn published_tables_mark_suppressed_cells_in_csv() {
    let r = report(Period::year(2025), &records(), &[], 0);
    let p = suppress::publish(table(&r, "firearms_by_transport_mode"), 3);
    // rail/found = 1 is small.
    let rail = p.rows.iter().position(|x| x == "rail").unwrap();
    assert_eq!(p.cells[rail][1], Cell::Suppressed);
    let csv = export::csv(&[p]).unwrap();
    assert!(csv.starts_with("Table,firearms_by_transport_mode,Firearms by mode of transport\n"));
    assert!(csv.contains("Unit,firearms\n"));
    assert!(csv.contains("category,seized,found,surrendered,confiscated,not_stated,total\n"));
    assert!(csv.contains("rail,0,x,0,0,0,x\n"), "{csv}");
    assert!(csv.contains("Note,x: suppressed"));
}
