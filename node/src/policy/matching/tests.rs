//! The matching rule's tests: the oracles a hostile requester tried (filters and lookups on
//! withheld or generalised fields, wildcards), and the property that which records match is a
//! function of the disclosed views alone.

use proptest::prelude::*;
use tracenet_proto::v1 as pb;

use super::*;
use crate::policy::{FIELDS, Field, Policy};
use crate::sample;

fn country(s: &str) -> CountryCode {
    CountryCode::parse(s).unwrap()
}

fn allow(name: &str) -> pb::FieldRule {
    pb::FieldRule {
        field: name.into(),
        treatment: pb::FieldTreatment::Allow as i32,
        generalisation: 0,
    }
}

fn month(name: &str) -> pb::FieldRule {
    pb::FieldRule {
        field: name.into(),
        treatment: pb::FieldTreatment::Generalise as i32,
        generalisation: pb::Generalisation::DateToMonth as i32,
    }
}

/// FRA's policy with one rule for ITA (border risk analysis) listing `fields`.
fn policy_with(fields: Vec<pb::FieldRule>, hit_only: bool, partial: Option<(u32, u32)>) -> Policy {
    Policy::parse(pb::SharingPolicy {
        owner_country: "FRA".into(),
        version: 3,
        legal_basis: "Synthetic".into(),
        rules: vec![pb::PolicyRule {
            id: "ita".into(),
            audience: Some(pb::Audience {
                countries: vec!["ITA".into()],
                ..Default::default()
            }),
            purposes: vec![pb::Purpose::BorderRiskAnalysis as i32],
            data_classes: vec![pb::DataClass::Seizure as i32],
            fields,
            hit_only,
            partial_lookup: partial.map(|(min, max)| pb::PartialLookup {
                allowed: true,
                min_literal_prefix: min,
                max_results: max,
            }),
            ..Default::default()
        }],
    })
    .unwrap()
}

fn ita() -> Requester {
    Requester {
        affiliation: crate::ids::Affiliation::State(country("ITA")),
        member_kind: pb::MemberKind::NationalAgency,
        regions: vec![],
        agency_kind: pb::AgencyKind::Police,
        purpose: pb::Purpose::BorderRiskAnalysis,
    }
}

fn rec(n: u64) -> pb::SeizureRecord {
    sample::record(country("FRA"), n)
}

fn hit(p: &Policy, c: &Criteria, r: &pb::SeizureRecord) -> bool {
    matches!(
        select(p, &ita(), pb::DataClass::Seizure, c, r),
        Selection::Hit(_)
    )
}

fn filter(f: pb::RecordFilter) -> Criteria {
    Criteria::Filter(Filter::parse(&f).unwrap())
}

#[test]
fn a_filter_on_a_withheld_field_never_matches() {
    // The rule shares the route only: mode, concealment, category, agency and date are withheld.
    let p = policy_with(vec![allow("trafficking.route")], false, None);
    let r = rec(5);
    let t = r.trafficking.clone().unwrap();
    let ev = r.event.clone().unwrap();
    for f in [
        pb::RecordFilter {
            transport_mode: t.transport_mode,
            ..Default::default()
        },
        pb::RecordFilter {
            concealment_method: t.concealment_method,
            ..Default::default()
        },
        pb::RecordFilter {
            category: r.firearms[0].category,
            ..Default::default()
        },
        pb::RecordFilter {
            seizing_agency: ev.seizing_agency,
            ..Default::default()
        },
        pb::RecordFilter {
            date_from: ev.date.clone(),
            date_to: ev.date.clone(),
            ..Default::default()
        },
    ] {
        assert!(
            !hit(&p, &filter(f.clone()), &r),
            "{f:?} matched a withheld field"
        );
    }
    // The disclosed route matches.
    let via = &t.route[1].country;
    let by_route = filter(pb::RecordFilter {
        route_country: via.clone(),
        ..Default::default()
    });
    assert!(hit(&p, &by_route, &r));
    // And no filter at all selects the record (its view exists).
    assert!(hit(&p, &filter(pb::RecordFilter::default()), &r));
}

#[test]
fn a_month_generalised_date_matches_month_ranges_never_a_day() {
    let p = policy_with(vec![month("event.date")], false, None);
    let r = rec(5);
    let date = Date::parse(&r.event.clone().unwrap().date).unwrap();
    let (y, m, _) = date.ymd();
    let day = |d: &str| {
        filter(pb::RecordFilter {
            date_from: d.into(),
            date_to: d.into(),
            ..Default::default()
        })
    };
    assert!(
        !hit(&p, &day(&date.to_string()), &r),
        "a one-day range matched"
    );
    let last = days_in_month(u32::from(y), u32::from(m)).unwrap();
    let whole_month = filter(pb::RecordFilter {
        date_from: format!("{y:04}-{m:02}-01"),
        date_to: format!("{y:04}-{m:02}-{last:02}"),
        ..Default::default()
    });
    assert!(hit(&p, &whole_month, &r));
    let from_only = filter(pb::RecordFilter {
        date_from: format!("{y:04}-{m:02}-02"),
        ..Default::default()
    });
    assert!(
        !hit(&p, &from_only, &r),
        "a range cutting the month matched"
    );
    // Exact dates match exact days.
    let exact = policy_with(vec![allow("event.date")], false, None);
    assert!(hit(&exact, &day(&date.to_string()), &r));
}

#[test]
fn periods_cover_exact_month_and_year_views() {
    assert_eq!(period("2024-02-10"), Some((20240210, 20240210)));
    assert_eq!(period("2024-02"), Some((20240201, 20240229)));
    assert_eq!(period("2023-02"), Some((20230201, 20230228)));
    assert_eq!(period("2025"), Some((20250101, 20251231)));
    assert_eq!(period(""), None);
    assert_eq!(period("2025-13"), None);
    assert_eq!(period("20x5"), None);
}

#[test]
fn serial_lookups_hit_only_disclosed_serials_each_on_its_own() {
    let mut r = rec(7);
    r.parts.push(pb::PartItem {
        kind: "slide".into(),
        serial_number: "PX-778899".into(),
        quantity: 1,
        ..Default::default()
    });
    let firearm = Criteria::serial(&r.firearms[0].serial_number, "").unwrap();
    let part = Criteria::serial("px778899", "").unwrap();
    let none = policy_with(vec![allow("trafficking.route")], false, None);
    assert!(!hit(&none, &firearm, &r) && !hit(&none, &part, &r));
    let serials = policy_with(vec![allow("firearms.serial_number")], false, None);
    assert!(hit(&serials, &firearm, &r));
    assert!(!hit(&serials, &part, &r), "a withheld part serial matched");
    let parts = policy_with(vec![allow("parts")], false, None);
    assert!(hit(&parts, &part, &r));
    assert!(
        !hit(&parts, &firearm, &r),
        "a withheld firearm serial matched"
    );
}

#[test]
fn a_manufacturer_narrows_only_where_it_is_disclosed() {
    let r = rec(9);
    let maker = r.firearms[0].manufacturer.clone();
    let c = Criteria::serial(&r.firearms[0].serial_number, &maker).unwrap();
    let serial_only = policy_with(vec![allow("firearms.serial_number")], false, None);
    assert!(
        !hit(&serial_only, &c, &r),
        "a withheld manufacturer matched"
    );
    let both = policy_with(
        vec![
            allow("firearms.serial_number"),
            allow("firearms.manufacturer"),
        ],
        false,
        None,
    );
    assert!(hit(&both, &c, &r));
    let other = Criteria::serial(&r.firearms[0].serial_number, "No Such Maker").unwrap();
    assert!(!hit(&both, &other, &r));
}

#[test]
fn without_a_rule_nothing_is_a_hit() {
    let p = policy_with(vec![allow("firearms.serial_number")], false, None);
    let r = rec(3);
    let c = Criteria::serial(&r.firearms[0].serial_number, "").unwrap();
    let deu = Requester {
        affiliation: crate::ids::Affiliation::State(country("DEU")),
        ..ita()
    };
    assert!(matches!(
        select(&p, &deu, pb::DataClass::Seizure, &c, &r),
        Selection::Denied(_)
    ));
}

#[test]
fn a_hit_only_rule_matches_on_its_fields_and_sends_none() {
    let p = policy_with(vec![allow("firearms.serial_number")], true, None);
    let r = rec(11);
    let c = Criteria::serial(&r.firearms[0].serial_number, "").unwrap();
    match select(&p, &ita(), pb::DataClass::Seizure, &c, &r) {
        Selection::Hit(d) => {
            assert!(d.hit_only);
            assert_eq!(d.view, pb::SeizureRecord::default());
            assert!(d.redacted.is_empty());
            assert_eq!(d.rule_id, "ita");
        }
        other => panic!("expected a hit, got {other:?}"),
    }
    let other = Criteria::serial("ZZ-000000", "").unwrap();
    assert_eq!(
        select(&p, &ita(), pb::DataClass::Seizure, &other, &r),
        Selection::Miss
    );
}

#[test]
fn a_ballistic_reference_matches_only_where_disclosed_and_never_as_a_serial() {
    let mut r = rec(9);
    r.ballistic_references = vec!["IBIS-FRA-0042".into()];
    let by_ballistic = Criteria::ballistic("ibis fra 0042").unwrap();
    let as_serial = Criteria::serial("IBIS-FRA-0042", "").unwrap();
    let withheld = policy_with(vec![allow("firearms.serial_number")], false, None);
    assert!(!hit(&withheld, &by_ballistic, &r), "withheld, yet matched");
    let shared = policy_with(
        vec![
            allow("firearms.serial_number"),
            allow("ballistic_references"),
        ],
        false,
        None,
    );
    assert!(hit(&shared, &by_ballistic, &r));
    assert!(
        !hit(&shared, &as_serial, &r),
        "a ballistic reference is no serial"
    );
    let serial = Criteria::serial(&r.firearms[0].serial_number, "").unwrap();
    assert!(hit(&shared, &serial, &r));
    assert!(
        !hit(
            &shared,
            &Criteria::ballistic(&r.firearms[0].serial_number).unwrap(),
            &r
        ),
        "a serial is no ballistic reference"
    );
    assert!(Criteria::ballistic(" -- ").is_none());
}

#[test]
fn headstamp_and_lot_lookups_match_only_their_own_disclosed_kind() {
    let r = rec(11);
    let (headstamp, lot) = (
        r.ammunition[0].headstamp.clone(),
        r.ammunition[0].lot.clone(),
    );
    let by_headstamp = Criteria::identifier(Identifier::Headstamp, &headstamp).unwrap();
    let by_lot = Criteria::identifier(Identifier::AmmunitionLot, &lot).unwrap();
    let lot_as_headstamp = Criteria::identifier(Identifier::Headstamp, &lot).unwrap();
    let withheld = policy_with(vec![allow("ammunition.calibre")], false, None);
    assert!(!hit(&withheld, &by_headstamp, &r) && !hit(&withheld, &by_lot, &r));
    let shared = policy_with(
        vec![allow("ammunition.headstamp"), allow("ammunition.lot")],
        false,
        None,
    );
    assert!(hit(&shared, &by_headstamp, &r) && hit(&shared, &by_lot, &r));
    assert!(
        !hit(&shared, &lot_as_headstamp, &r),
        "a lot is no headstamp"
    );
    let lot_only = policy_with(vec![allow("ammunition.lot")], false, None);
    assert!(!hit(&lot_only, &by_headstamp, &r) && hit(&lot_only, &by_lot, &r));
}

#[test]
fn a_serial_lookup_checks_loss_reports_under_their_own_rule() {
    let loss = sample::loss_report(country("FRA"), 7);
    let c = Criteria::serial(&loss.firearms[0].serial_number, "").unwrap();
    let p = policy_with(vec![allow("firearms.serial_number")], false, None);
    // A seizure rule never selects a loss report, whatever it discloses.
    assert!(matches!(
        select(&p, &ita(), pb::DataClass::Seizure, &c, &loss),
        Selection::Denied(_)
    ));
    assert!(matches!(
        select(&p, &ita(), pb::DataClass::LossReport, &c, &loss),
        Selection::Denied(_)
    ));
    let mut source = p.source().clone();
    source.rules[0].data_classes = vec![pb::DataClass::LossReport as i32];
    let p = Policy::parse(source).unwrap();
    assert!(!hit(&p, &c, &loss), "asked as a seizure");
    assert!(matches!(
        select(&p, &ita(), pb::DataClass::LossReport, &c, &loss),
        Selection::Hit(_)
    ));
}

#[test]
fn partial_lookups_need_a_rule_that_allows_them_and_a_long_enough_prefix() {
    let exact = serial::normalise("AB123456").unwrap();
    let stars = serial::normalise("********").unwrap();
    let short = serial::normalise("AB1*****").unwrap();
    let long = serial::normalise("AB12****").unwrap();
    assert_eq!(check_serial(None, &exact), Ok(MAX_EXACT_HITS));
    assert_eq!(
        check_serial(None, &long),
        Err(SerialRefusal::PartialNotAllowed)
    );
    let closed = policy_with(vec![allow("firearms.serial_number")], false, None);
    let rule = Applicable::find(&closed, &ita(), pb::DataClass::Seizure).unwrap();
    assert_eq!(
        check_serial(Some(&rule), &stars),
        Err(SerialRefusal::PartialNotAllowed)
    );
    let open = policy_with(vec![allow("firearms.serial_number")], false, Some((0, 0)));
    let rule = Applicable::find(&open, &ita(), pb::DataClass::Seizure).unwrap();
    assert_eq!(
        check_serial(Some(&rule), &stars),
        Err(SerialRefusal::PrefixTooShort { needed: 4 })
    );
    assert_eq!(
        check_serial(Some(&rule), &short),
        Err(SerialRefusal::PrefixTooShort { needed: 4 })
    );
    assert_eq!(
        check_serial(Some(&rule), &long),
        Ok(PartialLookup::DEFAULT_RESULTS)
    );
}

#[test]
fn partial_lookup_settings_are_checked_when_the_policy_is_read() {
    for (min, max) in [(2, 0), (0, 101)] {
        let p = pb::SharingPolicy {
            owner_country: "FRA".into(),
            version: 1,
            legal_basis: "Synthetic".into(),
            rules: vec![pb::PolicyRule {
                id: "x".into(),
                audience: Some(pb::Audience {
                    countries: vec!["ITA".into()],
                    ..Default::default()
                }),
                purposes: vec![pb::Purpose::Tracing as i32],
                data_classes: vec![pb::DataClass::Seizure as i32],
                partial_lookup: Some(pb::PartialLookup {
                    allowed: true,
                    min_literal_prefix: min,
                    max_results: max,
                }),
                ..Default::default()
            }],
        };
        assert!(Policy::parse(p).is_err(), "({min}, {max}) accepted");
    }
}

// ---- the property: matches are a function of the disclosed views alone ----

/// Fields a request can select on, and how a rule may treat them.
const MATCHABLE: &[&str] = &[
    "event.date",
    "event.seizing_agency",
    "firearms.serial_number",
    "firearms.manufacturer",
    "firearms.category",
    "parts",
    "trafficking.route",
    "trafficking.transport_mode",
    "trafficking.concealment_method",
    "ballistic_references",
    "ammunition.headstamp",
    "ammunition.lot",
    "shipment.identifiers",
];

fn arb_fields() -> impl Strategy<Value = Vec<pb::FieldRule>> {
    proptest::collection::vec(0u8..5, MATCHABLE.len()).prop_map(|picks| {
        MATCHABLE
            .iter()
            .zip(picks)
            .filter_map(|(name, t)| {
                let date = *name == "event.date";
                let g = |g: pb::Generalisation| pb::FieldRule {
                    field: (*name).into(),
                    treatment: pb::FieldTreatment::Generalise as i32,
                    generalisation: g as i32,
                };
                match t {
                    0 | 1 => Some(allow(name)),
                    2 => Some(pb::FieldRule {
                        field: (*name).into(),
                        treatment: pb::FieldTreatment::Redact as i32,
                        generalisation: 0,
                    }),
                    3 if date => Some(g(pb::Generalisation::DateToMonth)),
                    4 if date => Some(g(pb::Generalisation::DateToYear)),
                    _ => None,
                }
            })
            .collect()
    })
}

/// One change to a record, as a hostile requester would probe for it.
fn mutate(r: &mut pb::SeizureRecord, which: u8, v: u32) {
    let t = r.trafficking.get_or_insert_with(Default::default);
    let ev = r.event.get_or_insert_with(Default::default);
    match which {
        0 => {
            // Another day of the same month.
            let d = Date::parse(&ev.date).unwrap();
            let (y, m, _) = d.ymd();
            ev.date = format!("{y:04}-{m:02}-{:02}", 1 + v % 28);
        }
        1 => {
            let d = Date::parse(&ev.date).unwrap();
            let (y, _, day) = d.ymd();
            ev.date = format!("{y:04}-{:02}-{day:02}", 1 + v % 12);
        }
        2 => ev.seizing_agency = 1 + (v % 3) as i32,
        3 => t.transport_mode = 1 + (v % 8) as i32,
        4 => t.concealment_method = 1 + (v % 9) as i32,
        5 => t.route[1].country = ["TUR", "SRB", "DEU", "ESP"][(v % 4) as usize].into(),
        6 => r.firearms[0].category = 1 + (v % 11) as i32,
        7 => r.firearms[0].serial_number = format!("QX-{:06}", v % 1_000_000),
        9 => r.ballistic_references = vec![format!("QX-BAL-{:06}", v % 1_000_000)],
        10 => r.ballistic_references.clear(),
        11 => r.ammunition[0].headstamp = format!("QX {:02}", v % 100),
        12 => r.ammunition[0].lot = format!("QX-LOT-{:03}", v % 1000),
        13 => {
            r.shipment = Some(pb::ShipmentFacts {
                identifiers: vec![pb::ConveyanceId {
                    kind: 1 + (v % 7) as i32,
                    value: format!("QXU{:07}", v % 10_000_000),
                }],
                ..Default::default()
            })
        }
        8 => {
            r.firearms[0].manufacturer = ["Synthetic Arms", "Other Works"][(v % 2) as usize].into()
        }
        14 => r.firearms[0].serial_number = misread(&r.firearms[0].serial_number, v),
        _ => {
            r.parts = vec![pb::PartItem {
                kind: "barrel".into(),
                serial_number: format!("QX-{:06}", v % 1_000_000),
                quantity: 1,
                ..Default::default()
            }]
        }
    }
}

/// `serial` as an officer might misread it: one of its confusable variants (itself when it
/// has none).
fn misread(serial: &str, v: u32) -> String {
    let n = crate::serial::normalise(serial).unwrap();
    let variants = crate::serial::confusable_variants(&n, 16);
    variants
        .get(v as usize % variants.len().max(1))
        .map_or_else(|| serial.to_owned(), |m| m.as_str().to_owned())
}

/// A criterion built from a record's own values (so hits are frequent) or from `v`.
fn criteria(r: &pb::SeizureRecord, which: u8, v: u32) -> Criteria {
    let t = r.trafficking.clone().unwrap_or_default();
    let ev = r.event.clone().unwrap_or_default();
    let d = Date::parse(&ev.date).unwrap();
    let (y, m, _) = d.ymd();
    match which {
        0 => filter(pb::RecordFilter {
            date_from: ev.date.clone(),
            date_to: ev.date.clone(),
            ..Default::default()
        }),
        1 => filter(pb::RecordFilter {
            date_from: format!("{y:04}-{m:02}-01"),
            date_to: format!(
                "{y:04}-{m:02}-{:02}",
                days_in_month(u32::from(y), u32::from(m)).unwrap()
            ),
            ..Default::default()
        }),
        2 => filter(pb::RecordFilter {
            date_from: format!("{y:04}-01-01"),
            date_to: format!("{y:04}-12-31"),
            ..Default::default()
        }),
        3 => filter(pb::RecordFilter {
            seizing_agency: 1 + (v % 3) as i32,
            ..Default::default()
        }),
        4 => filter(pb::RecordFilter {
            transport_mode: t.transport_mode,
            concealment_method: 1 + (v % 9) as i32,
            ..Default::default()
        }),
        5 => filter(pb::RecordFilter {
            route_country: t
                .route
                .get(1)
                .map(|p| p.country.clone())
                .unwrap_or_default(),
            category: if v.is_multiple_of(2) {
                r.firearms[0].category
            } else {
                0
            },
            ..Default::default()
        }),
        6 => Criteria::serial(&r.firearms[0].serial_number, "").unwrap(),
        7 => Criteria::serial(&format!("QX-{:06}", v % 1_000_000), "").unwrap(),
        8 => Criteria::serial(&misread(&r.firearms[0].serial_number, v), "").unwrap(),
        9 => Criteria::ballistic(&format!("QX-BAL-{:06}", v % 1_000_000)).unwrap(),
        10 => Criteria::ballistic(
            r.ballistic_references
                .first()
                .map_or("SYN-BAL-NONE", String::as_str),
        )
        .unwrap(),
        11 => Criteria::identifier(Identifier::Headstamp, &r.ammunition[0].headstamp).unwrap(),
        12 => Criteria::identifier(Identifier::Headstamp, &format!("QX {:02}", v % 100)).unwrap(),
        13 => Criteria::identifier(Identifier::AmmunitionLot, &r.ammunition[0].lot).unwrap(),
        14 => Criteria::identifier(
            Identifier::AmmunitionLot,
            &format!("QX-LOT-{:03}", v % 1000),
        )
        .unwrap(),
        15 => Criteria::identifier(
            Identifier::ShipmentId,
            r.shipment
                .as_ref()
                .and_then(|s| s.identifiers.first())
                .map_or("SYN-NONE", |i| i.value.as_str()),
        )
        .unwrap(),
        16 => Criteria::identifier(Identifier::ShipmentId, &format!("QXU{:07}", v % 10_000_000))
            .unwrap(),
        _ => Criteria::serial(&r.firearms[0].serial_number, &r.firearms[0].manufacturer).unwrap(),
    }
}

fn is_hit(s: &Selection) -> bool {
    matches!(s, Selection::Hit(_))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    /// For any record, rule and criterion, and any probe changing one field: if the rule's
    /// views of the two records are equal, they match alike. So the answer carries nothing a
    /// requester's view does not.
    #[test]
    fn matches_are_a_function_of_the_disclosed_views(
        fields in arb_fields(),
        hit_only in any::<bool>(),
        n in 0u64..5_000,
        change in 0u8..16,
        v in any::<u32>(),
        ask in 0u8..18,
        fuzzy in any::<bool>(),
    ) {
        // With a partial-lookup rule, serials match through confusable characters too.
        let p = policy_with(fields, hit_only, fuzzy.then_some((4, 10)));
        let rule = Applicable::find(&p, &ita(), pb::DataClass::Seizure).unwrap();
        let a = rec(n);
        let mut b = a.clone();
        mutate(&mut b, change, v);
        let c = criteria(&a, ask, v);
        let (sa, sb) = (select_under(&rule, &c, &a), select_under(&rule, &c, &b));
        if rule.view(&a) == rule.view(&b) {
            prop_assert_eq!(is_hit(&sa), is_hit(&sb), "views equal, matches differ: {:?}", c);
            // The ranking (exact first) is a function of the views too.
            prop_assert_eq!(rank_under(&rule, &c, &a), rank_under(&rule, &c, &b));
        }
        // A hit is exactly a ranked record.
        prop_assert_eq!(is_hit(&sa), rank_under(&rule, &c, &a).is_some());
        // A hit's disclosure is the rule's view (or nothing, under hit only).
        if let Selection::Hit(d) = sa {
            prop_assert_eq!(d.hit_only, hit_only);
            if hit_only {
                prop_assert_eq!(d.view, pb::SeizureRecord::default());
            } else {
                prop_assert_eq!(d.view, rule.view(&a).0);
            }
        }
    }
}

#[test]
fn confusable_serials_match_only_under_a_partial_rule_and_rank_after_exact() {
    let r = rec(11);
    let serial = r.firearms[0].serial_number.clone();
    let misread = misread(&serial, 0);
    assert_ne!(
        crate::serial::normalise(&misread),
        crate::serial::normalise(&serial)
    );
    let c = Criteria::serial(&misread, "").unwrap();
    let exact = Criteria::serial(&serial, "").unwrap();
    let fields = vec![allow("firearms.serial_number")];
    let strict = policy_with(fields.clone(), false, None);
    let fuzzy = policy_with(fields, false, Some((4, 10)));
    assert!(
        !hit(&strict, &c, &r),
        "no partial rule: no confusable match"
    );
    assert!(hit(&fuzzy, &c, &r));
    let rule = Applicable::find(&fuzzy, &ita(), pb::DataClass::Seizure).unwrap();
    let (close, far) = (
        rank_under(&rule, &exact, &r).unwrap(),
        rank_under(&rule, &c, &r).unwrap(),
    );
    assert_eq!(close, Rank::EXACT);
    assert!(close < far && far.confusable > 0);
    // A withheld serial never matches, confusable or not.
    let withheld = policy_with(vec![allow("firearms.category")], false, Some((4, 10)));
    assert!(!hit(&withheld, &c, &r));
    assert!(!hit(&withheld, &exact, &r));
}

#[test]
fn the_matchable_fields_are_policy_fields() {
    for name in MATCHABLE {
        assert!(Field::from_name(name).is_some(), "{name}");
    }
    assert!(FIELDS.len() > MATCHABLE.len());
}
