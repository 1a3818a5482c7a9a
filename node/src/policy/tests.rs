//! Tests of the sharing policy, beside it: parsing, field-by-field evaluation, grants, and a
//! property test that nothing outside the matching rule is ever disclosed.

use std::collections::HashSet;

use proptest::prelude::*;
use tracenet_proto::v1 as pb;

use super::*;
use crate::sample;

fn c(s: &str) -> CountryCode {
    CountryCode::parse(s).unwrap()
}

fn field(name: &str, t: pb::FieldTreatment) -> pb::FieldRule {
    pb::FieldRule {
        field: name.into(),
        treatment: t as i32,
        generalisation: 0,
    }
}

fn generalise(name: &str, g: pb::Generalisation) -> pb::FieldRule {
    pb::FieldRule {
        field: name.into(),
        treatment: pb::FieldTreatment::Generalise as i32,
        generalisation: g as i32,
    }
}

fn rule(
    id: &str,
    countries: &[&str],
    purposes: &[pb::Purpose],
    fields: Vec<pb::FieldRule>,
) -> pb::PolicyRule {
    pb::PolicyRule {
        id: id.into(),
        audience: Some(pb::Audience {
            countries: countries.iter().map(|s| s.to_string()).collect(),
            regions: vec![],
            agency_kinds: vec![],
            ..Default::default()
        }),
        purposes: purposes.iter().map(|p| *p as i32).collect(),
        data_classes: vec![pb::DataClass::Seizure as i32],
        fields,
        handling: Some(pb::Handling {
            no_onward_without_consent: true,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn policy(rules: Vec<pb::PolicyRule>) -> Policy {
    Policy::parse(pb::SharingPolicy {
        owner_country: "FRA".into(),
        version: 3,
        legal_basis: "Synthetic national law art. 1".into(),
        rules,
    })
    .unwrap()
}

fn requester(country: &str, purpose: pb::Purpose) -> Requester {
    Requester {
        affiliation: Affiliation::State(c(country)),
        member_kind: pb::MemberKind::NationalAgency,
        regions: vec![],
        agency_kind: pb::AgencyKind::Police,
        purpose,
    }
}

fn record() -> pb::SeizureRecord {
    let mut r = sample::record(c("FRA"), 11);
    r.event.as_mut().unwrap().date = "2025-03-14".into();
    r.ammunition[0].quantity = 250;
    r
}

#[test]
fn no_rule_means_nothing_disclosed() {
    let p = Policy::deny_all(c("FRA"));
    let d = evaluate(
        &p,
        &requester("DEU", pb::Purpose::Tracing),
        pb::DataClass::Seizure,
        &record(),
    );
    assert!(matches!(d, Err(Denial::NoRule { .. })));
}

#[test]
fn only_allowed_fields_are_disclosed() {
    let p = policy(vec![rule(
        "deu-tracing",
        &["DEU"],
        &[pb::Purpose::Tracing],
        vec![
            field("firearms.serial_number", pb::FieldTreatment::Allow),
            field("firearms.manufacturer", pb::FieldTreatment::Allow),
        ],
    )]);
    let rec = record();
    let d = evaluate(
        &p,
        &requester("DEU", pb::Purpose::Tracing),
        pb::DataClass::Seizure,
        &rec,
    )
    .unwrap();
    assert_eq!(d.rule_id, "deu-tracing");
    assert_eq!(d.policy_version, 3);
    assert_eq!(d.handling.legal_basis, "Synthetic national law art. 1");
    assert!(d.handling.no_onward_without_consent);
    let expected = pb::SeizureRecord {
        firearms: vec![pb::FirearmIdentification {
            serial_number: rec.firearms[0].serial_number.clone(),
            manufacturer: rec.firearms[0].manufacturer.clone(),
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(d.view, expected);
}

#[test]
fn wrong_country_purpose_agency_or_class_is_denied() {
    let mut r = rule(
        "r",
        &["DEU"],
        &[pb::Purpose::Tracing],
        vec![field("notes", pb::FieldTreatment::Allow)],
    );
    r.audience.as_mut().unwrap().agency_kinds = vec![pb::AgencyKind::Customs as i32];
    let p = policy(vec![r]);
    let rec = record();
    let mut q = requester("DEU", pb::Purpose::Tracing);
    q.agency_kind = pb::AgencyKind::Customs;
    assert!(evaluate(&p, &q, pb::DataClass::Seizure, &rec).is_ok());
    assert!(evaluate(&p, &q, pb::DataClass::RouteReport, &rec).is_err());
    let mut police = q.clone();
    police.agency_kind = pb::AgencyKind::Police;
    assert!(evaluate(&p, &police, pb::DataClass::Seizure, &rec).is_err());
    let mut stats = q.clone();
    stats.purpose = pb::Purpose::Statistics;
    assert!(evaluate(&p, &stats, pb::DataClass::Seizure, &rec).is_err());
    let mut ita = q;
    ita.affiliation = Affiliation::State(c("ITA"));
    assert!(evaluate(&p, &ita, pb::DataClass::Seizure, &rec).is_err());
}

#[test]
fn regions_match_and_the_first_matching_rule_wins() {
    let mut regional = rule(
        "region",
        &[],
        &[pb::Purpose::BorderRiskAnalysis],
        vec![field("trafficking.route", pb::FieldTreatment::Allow)],
    );
    regional.audience.as_mut().unwrap().regions = vec!["SYN-REGION".into()];
    let broad = rule(
        "broad",
        &["ITA"],
        &[pb::Purpose::BorderRiskAnalysis],
        vec![field("notes", pb::FieldTreatment::Allow)],
    );
    let p = policy(vec![regional, broad]);
    let mut q = requester("ITA", pb::Purpose::BorderRiskAnalysis);
    q.regions = vec!["SYN-REGION".into()];
    let d = evaluate(&p, &q, pb::DataClass::Seizure, &record()).unwrap();
    assert_eq!(d.rule_id, "region");
    assert!(d.view.notes.is_empty());
    assert!(!d.view.trafficking.unwrap().route.is_empty());
    q.regions.clear();
    assert_eq!(
        evaluate(&p, &q, pb::DataClass::Seizure, &record())
            .unwrap()
            .rule_id,
        "broad"
    );
}

#[test]
fn generalisations_coarsen_dates_places_and_quantities() {
    let p = policy(vec![rule(
        "stats",
        &["DEU"],
        &[pb::Purpose::Statistics],
        vec![
            generalise("event.date", pb::Generalisation::DateToMonth),
            generalise("event.place", pb::Generalisation::PlaceToCountry),
            generalise("ammunition.quantity", pb::Generalisation::QuantityToBand),
        ],
    )]);
    let d = evaluate(
        &p,
        &requester("DEU", pb::Purpose::Statistics),
        pb::DataClass::Seizure,
        &record(),
    )
    .unwrap();
    let ev = d.view.event.unwrap();
    assert_eq!(ev.date, "2025-03");
    assert_eq!(
        ev.place.unwrap(),
        pb::Place {
            country: "FRA".into(),
            ..Default::default()
        }
    );
    assert_eq!(d.view.ammunition[0].quantity, 0);
    assert_eq!(d.view.ammunition[0].quantity_band, "101-1000");
    assert!(d.view.ammunition[0].calibre.is_empty());

    let p = policy(vec![rule(
        "y",
        &["DEU"],
        &[pb::Purpose::Statistics],
        vec![
            generalise("event.date", pb::Generalisation::DateToYear),
            generalise("event.place", pb::Generalisation::PlaceToRegion),
        ],
    )]);
    let d = evaluate(
        &p,
        &requester("DEU", pb::Purpose::Statistics),
        pb::DataClass::Seizure,
        &record(),
    )
    .unwrap();
    let ev = d.view.event.unwrap();
    assert_eq!(ev.date, "2025");
    let place = ev.place.unwrap();
    assert_eq!(place.country, "FRA");
    assert!(!place.region.is_empty());
    assert!(place.border_crossing_point.is_empty() && place.locality.is_empty());
}

#[test]
fn redacted_fields_are_withheld_and_named() {
    let p = policy(vec![rule(
        "r",
        &["DEU"],
        &[pb::Purpose::CriminalInvestigation],
        vec![
            field("case_reference", pb::FieldTreatment::Redact),
            field("notes", pb::FieldTreatment::Allow),
        ],
    )]);
    let d = evaluate(
        &p,
        &requester("DEU", pb::Purpose::CriminalInvestigation),
        pb::DataClass::Seizure,
        &record(),
    )
    .unwrap();
    assert!(d.view.case_reference.is_empty());
    assert_eq!(d.redacted, vec!["case_reference"]);
}

#[test]
fn personal_data_needs_the_persons_class() {
    let mut r = rule(
        "p",
        &["DEU"],
        &[pb::Purpose::CriminalInvestigation],
        vec![field("persons.name", pb::FieldTreatment::Allow)],
    );
    let err = Policy::parse(pb::SharingPolicy {
        owner_country: "FRA".into(),
        version: 1,
        legal_basis: String::new(),
        rules: vec![r.clone()],
    })
    .unwrap_err();
    assert!(err.to_string().contains("DATA_CLASS_PERSONS"), "{err}");
    r.data_classes.push(pb::DataClass::Persons as i32);
    let p = policy(vec![r]);
    let d = evaluate(
        &p,
        &requester("DEU", pb::Purpose::CriminalInvestigation),
        pb::DataClass::Seizure,
        &record(),
    )
    .unwrap();
    assert_eq!(d.view.persons.len(), 1);
    assert!(!d.view.persons[0].name.is_empty());
    assert!(d.view.persons[0].nationality.is_empty());
}

#[test]
fn a_loss_report_is_disclosed_only_under_a_loss_report_rule() {
    let loss = sample::loss_report(c("FRA"), 2);
    let q = requester("DEU", pb::Purpose::CriminalInvestigation);
    let seizure_rule = rule(
        "s",
        &["DEU"],
        &[pb::Purpose::CriminalInvestigation],
        vec![field("firearms.serial_number", pb::FieldTreatment::Allow)],
    );
    let p = policy(vec![seizure_rule.clone()]);
    assert!(evaluate(&p, &q, pb::DataClass::Seizure, &loss).is_err());
    assert!(evaluate(&p, &q, pb::DataClass::LossReport, &loss).is_err());
    let mut loss_rule = rule(
        "l",
        &["DEU"],
        &[pb::Purpose::CriminalInvestigation],
        vec![
            field("firearms.serial_number", pb::FieldTreatment::Allow),
            field("loss.kind", pb::FieldTreatment::Allow),
            generalise("loss.date", pb::Generalisation::DateToMonth),
        ],
    );
    loss_rule.data_classes = vec![pb::DataClass::LossReport as i32];
    let p = policy(vec![loss_rule]);
    let d = evaluate(&p, &q, pb::DataClass::LossReport, &loss).unwrap();
    let seen = d.view.loss.unwrap();
    assert_eq!(seen.kind, loss.loss.as_ref().unwrap().kind);
    assert_eq!(
        seen.date.len(),
        7,
        "generalised to the month: {}",
        seen.date
    );
    assert!(seen.place.is_none() && seen.circumstances.is_empty());
    // A seizure is never disclosed under the loss-report rule.
    assert!(evaluate(&p, &q, pb::DataClass::Seizure, &record()).is_err());
    assert!(evaluate(&p, &q, pb::DataClass::LossReport, &record()).is_err());
}

#[test]
fn consignors_vendors_and_the_new_person_fields_need_the_persons_class() {
    for name in [
        "shipment.consignor",
        "shipment.consignee",
        "shipment.vendor_handle",
        "persons.kind",
        "persons.sex",
        "persons.age_band",
        "persons.licence_reference",
    ] {
        let r = rule(
            "p",
            &["DEU"],
            &[pb::Purpose::CriminalInvestigation],
            vec![field(name, pb::FieldTreatment::Allow)],
        );
        let err = Policy::parse(pb::SharingPolicy {
            owner_country: "FRA".into(),
            version: 1,
            legal_basis: String::new(),
            rules: vec![r],
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("DATA_CLASS_PERSONS"),
            "{name}: {err}"
        );
    }
    // Shipment identifiers and the platform are not personal data.
    for name in [
        "shipment.identifiers",
        "shipment.online_platform",
        "shipment.listing",
    ] {
        let r = rule(
            "p",
            &["DEU"],
            &[pb::Purpose::CriminalInvestigation],
            vec![field(name, pb::FieldTreatment::Allow)],
        );
        policy(vec![r]);
    }
}

#[test]
fn malformed_policies_are_refused_with_the_rule_named() {
    let ok = rule("a", &["DEU"], &[pb::Purpose::Tracing], vec![]);
    let cases: Vec<(pb::PolicyRule, &str)> = vec![
        (
            rule(
                "a",
                &["DEU"],
                &[pb::Purpose::Tracing],
                vec![field("colour", pb::FieldTreatment::Allow)],
            ),
            "unknown field",
        ),
        (
            rule(
                "a",
                &["DEU"],
                &[pb::Purpose::Tracing],
                vec![generalise("notes", pb::Generalisation::DateToYear)],
            ),
            "cannot be generalised",
        ),
        (rule("a", &["XXX"], &[pb::Purpose::Tracing], vec![]), "XXX"),
        (
            rule("a", &[], &[pb::Purpose::Tracing], vec![]),
            "no country, region",
        ),
        (rule("a", &["DEU"], &[], vec![]), "purpose"),
        (
            rule("", &["DEU"], &[pb::Purpose::Tracing], vec![]),
            "needs an id",
        ),
    ];
    for (r, expect) in cases {
        let err = Policy::parse(pb::SharingPolicy {
            owner_country: "FRA".into(),
            version: 1,
            legal_basis: String::new(),
            rules: vec![r],
        })
        .unwrap_err();
        assert!(err.to_string().contains(expect), "{err} lacks {expect}");
    }
    let dup = Policy::parse(pb::SharingPolicy {
        owner_country: "FRA".into(),
        version: 1,
        legal_basis: String::new(),
        rules: vec![ok.clone(), ok.clone()],
    });
    assert!(dup.unwrap_err().to_string().contains("twice"));
    let v0 = Policy::parse(pb::SharingPolicy {
        owner_country: "FRA".into(),
        version: 0,
        legal_basis: String::new(),
        rules: vec![ok],
    });
    assert_eq!(v0.unwrap_err(), PolicyError::Version);
}

#[test]
fn the_example_policy_file_parses() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/policy-FRA.toml"
    ))
    .unwrap();
    let p = Policy::from_toml(&text).unwrap();
    assert_eq!(p.owner().as_str(), "FRA");
    assert!(p.version() >= 1);
}

// ---- Property: nothing outside the matching rule's grant ever appears ----

/// The fields that hold something in a view, found independently of `project`.
fn populated(v: &pb::SeizureRecord) -> HashSet<Field> {
    let mut s = HashSet::new();
    let mut put = |cond: bool, f: Field| {
        if cond {
            s.insert(f);
        }
    };
    if let Some(e) = &v.event {
        put(!e.date.is_empty(), Field::EventDate);
        put(e.place.is_some(), Field::EventPlace);
        put(e.seizing_agency != 0, Field::SeizingAgency);
    }
    if let Some(x) = &v.context {
        put(x.criminal_context != 0, Field::CriminalContext);
        put(x.seizure_kind != 0, Field::SeizureKind);
    }
    for f in &v.firearms {
        put(!f.serial_number.is_empty(), Field::FirearmSerial);
        put(!f.manufacturer.is_empty(), Field::FirearmManufacturer);
        put(!f.model.is_empty(), Field::FirearmModel);
        put(f.category != 0, Field::FirearmCategory);
        put(!f.calibre.is_empty(), Field::FirearmCalibre);
        put(
            !f.country_of_manufacture.is_empty(),
            Field::FirearmCountryOfManufacture,
        );
        put(f.year_of_manufacture != 0, Field::FirearmYear);
        put(f.import_marking.is_some(), Field::FirearmImportMarking);
        put(!f.other_markings.is_empty(), Field::FirearmOtherMarkings);
        put(f.marking_condition != 0, Field::FirearmMarkingCondition);
        put(f.status != 0, Field::FirearmStatus);
    }
    for p in &v.parts {
        put(
            !p.kind.is_empty() || !p.serial_number.is_empty(),
            Field::Parts,
        );
        put(
            p.quantity != 0 || !p.quantity_band.is_empty(),
            Field::PartsQuantity,
        );
        put(!p.manufacturer.is_empty(), Field::PartsManufacturer);
        put(!p.markings.is_empty(), Field::PartsMarkings);
    }
    for a in &v.ammunition {
        put(!a.calibre.is_empty(), Field::AmmunitionCalibre);
        put(!a.manufacturer.is_empty(), Field::AmmunitionManufacturer);
        put(
            a.quantity != 0 || !a.quantity_band.is_empty(),
            Field::AmmunitionQuantity,
        );
        put(a.ammunition_type != 0, Field::AmmunitionType);
        put(!a.headstamp.is_empty(), Field::AmmunitionHeadstamp);
        put(!a.lot.is_empty(), Field::AmmunitionLot);
        put(a.year != 0, Field::AmmunitionYear);
    }
    if let Some(t) = &v.trafficking {
        put(!t.route.is_empty(), Field::Route);
        put(t.transport_mode != 0, Field::TransportMode);
        put(t.concealment_method != 0, Field::ConcealmentMethod);
        put(!t.concealment_details.is_empty(), Field::ConcealmentDetails);
        put(
            !t.suspected_source_country.is_empty(),
            Field::SuspectedSource,
        );
        put(
            !t.suspected_destination_country.is_empty(),
            Field::SuspectedDestination,
        );
    }
    for p in &v.persons {
        put(p.role != 0, Field::PersonRole);
        put(!p.nationality.is_empty(), Field::PersonNationality);
        put(!p.name.is_empty(), Field::PersonName);
        put(p.kind != 0, Field::PersonKind);
        put(p.sex != 0, Field::PersonSex);
        put(p.age_band != 0, Field::PersonAgeBand);
        put(!p.licence_reference.is_empty(), Field::PersonLicence);
    }
    put(!v.case_reference.is_empty(), Field::CaseReference);
    put(v.tracing.is_some(), Field::Tracing);
    put(!v.notes.is_empty(), Field::Notes);
    put(v.proceedings_status != 0, Field::ProceedingsStatus);
    put(v.disposition != 0, Field::Disposition);
    put(
        !v.ballistic_references.is_empty(),
        Field::BallisticReferences,
    );
    if let Some(l) = &v.loss {
        put(l.kind != 0, Field::LossKind);
        put(l.source != 0, Field::LossSource);
        put(!l.date.is_empty(), Field::LossDate);
        put(l.place.is_some(), Field::LossPlace);
        put(!l.circumstances.is_empty(), Field::LossCircumstances);
        put(!l.reporting_agency.is_empty(), Field::LossReportingAgency);
    }
    if let Some(sh) = &v.shipment {
        put(!sh.identifiers.is_empty(), Field::ShipmentIdentifiers);
        put(!sh.consignor.is_empty(), Field::ShipmentConsignor);
        put(!sh.consignee.is_empty(), Field::ShipmentConsignee);
        put(!sh.online_platform.is_empty(), Field::ShipmentPlatform);
        put(!sh.listing.is_empty(), Field::ShipmentListing);
        put(!sh.vendor_handle.is_empty(), Field::ShipmentVendorHandle);
    }
    s
}

const COUNTRIES: &[&str] = &["DEU", "ITA", "ESP", "BEL"];
const PURPOSES: &[pb::Purpose] = &[
    pb::Purpose::CriminalInvestigation,
    pb::Purpose::Tracing,
    pb::Purpose::BorderRiskAnalysis,
    pb::Purpose::Statistics,
];

fn arb_rule(id: usize) -> impl Strategy<Value = pb::PolicyRule> {
    (
        proptest::sample::subsequence(COUNTRIES, 1..=COUNTRIES.len()),
        proptest::sample::subsequence(PURPOSES, 1..=PURPOSES.len()),
        any::<bool>(),
        proptest::collection::vec((0..FIELDS.len(), 0u8..4), 0..12),
    )
        .prop_map(move |(countries, purposes, persons, picks)| {
            let mut classes = vec![pb::DataClass::Seizure as i32];
            if persons {
                classes.push(pb::DataClass::Persons as i32);
            }
            let mut seen = HashSet::new();
            let fields = picks
                .into_iter()
                .filter_map(|(i, t)| {
                    let (f, name) = FIELDS[i];
                    if !seen.insert(f) || (f.is_personal() && !persons) {
                        return None;
                    }
                    let g = [
                        pb::Generalisation::DateToMonth,
                        pb::Generalisation::DateToYear,
                        pb::Generalisation::PlaceToRegion,
                        pb::Generalisation::PlaceToCountry,
                        pb::Generalisation::QuantityToBand,
                    ]
                    .into_iter()
                    .find(|g| f.accepts(*g));
                    Some(match (t, g) {
                        (0, _) => field(name, pb::FieldTreatment::Allow),
                        (1, _) => field(name, pb::FieldTreatment::Redact),
                        (2, Some(g)) => generalise(name, g),
                        _ => field(name, pb::FieldTreatment::Unspecified),
                    })
                })
                .collect();
            pb::PolicyRule {
                id: format!("rule-{id}"),
                audience: Some(pb::Audience {
                    countries: countries.iter().map(|s| s.to_string()).collect(),
                    regions: vec![],
                    agency_kinds: vec![],
                    ..Default::default()
                }),
                purposes: purposes.iter().map(|p| *p as i32).collect(),
                data_classes: classes,
                fields,
                ..Default::default()
            }
        })
}

fn arb_policy() -> impl Strategy<Value = pb::SharingPolicy> {
    (0usize..4)
        .prop_flat_map(|n| (0..n).map(arb_rule).collect::<Vec<_>>())
        .prop_map(|rules| pb::SharingPolicy {
            owner_country: "FRA".into(),
            version: 1,
            legal_basis: "synthetic".into(),
            rules,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn nothing_outside_the_matching_rule_is_ever_disclosed(
        source in arb_policy(),
        n in 0u64..10_000,
        who in 0usize..COUNTRIES.len(),
        why in 0usize..PURPOSES.len(),
        with_id in any::<bool>(),
    ) {
        let p = Policy::parse(source.clone()).unwrap();
        let mut rec = sample::record(c("FRA"), n);
        if with_id {
            rec.id = "0123456789abcdef0123456789abcdef".into();
        }
        let q = requester(COUNTRIES[who], PURPOSES[why]);
        let expected_rule = source.rules.iter().find(|r| {
            r.audience.as_ref().unwrap().countries.iter().any(|x| x == COUNTRIES[who])
                && r.purposes.contains(&(PURPOSES[why] as i32))
        });
        match (evaluate(&p, &q, pb::DataClass::Seizure, &rec), expected_rule) {
            (Err(_), None) => {}
            (Ok(d), Some(r)) => {
                prop_assert_eq!(&d.rule_id, &r.id);
                prop_assert!(d.view.id.is_empty() && d.view.national_ref.is_empty());
                let granted: HashSet<Field> = r
                    .fields
                    .iter()
                    .filter(|f| f.treatment == pb::FieldTreatment::Allow as i32
                        || f.treatment == pb::FieldTreatment::Generalise as i32)
                    .filter_map(|f| Field::from_name(&f.field))
                    .collect();
                for f in populated(&d.view) {
                    prop_assert!(granted.contains(&f), "{} disclosed but not granted by {}", f, r.id);
                }
                for name in &d.redacted {
                    let f = Field::from_name(name).unwrap();
                    prop_assert!(r.fields.iter().any(|x| x.field == *name && x.treatment == pb::FieldTreatment::Redact as i32), "{} reported redacted", f);
                }
            }
            (Ok(d), None) => prop_assert!(false, "disclosed under {} with no matching rule", d.rule_id),
            (Err(e), Some(r)) => prop_assert!(false, "denied ({}) though {} matches", e, r.id),
        }
    }
}

fn organisation(code: &str, kind: pb::MemberKind) -> Requester {
    Requester {
        affiliation: Affiliation::Organisation(OrgCode::parse(code).unwrap()),
        member_kind: kind,
        regions: vec!["BENELUX".into()],
        agency_kind: pb::AgencyKind::Unspecified,
        purpose: pb::Purpose::Tracing,
    }
}

fn audience_rule(id: &str, audience: pb::Audience) -> pb::PolicyRule {
    pb::PolicyRule {
        audience: Some(audience),
        ..rule(id, &[], &[pb::Purpose::Tracing], vec![])
    }
}

#[test]
fn a_rule_naming_a_state_or_region_never_matches_an_organisations_node() {
    let p = policy(vec![audience_rule(
        "bel",
        pb::Audience {
            countries: vec!["BEL".into()],
            regions: vec!["BENELUX".into()],
            ..Default::default()
        },
    )]);
    let rec = record();
    let mut bel = requester("BEL", pb::Purpose::Tracing);
    assert!(evaluate(&p, &bel, pb::DataClass::Seizure, &rec).is_ok());
    bel.affiliation = Affiliation::State(c("LUX"));
    bel.regions = vec!["BENELUX".into()];
    assert!(evaluate(&p, &bel, pb::DataClass::Seizure, &rec).is_ok());
    // The regional organisation of those States, in the same region: not named, not matched.
    for kind in [
        pb::MemberKind::RegionalOrganisation,
        pb::MemberKind::Unspecified,
        pb::MemberKind::NationalAgency,
    ] {
        let hub = organisation("BENELUX", kind);
        let d = evaluate(&p, &hub, pb::DataClass::Seizure, &rec);
        assert!(
            matches!(&d, Err(Denial::NoRule { requester, .. }) if requester == "BENELUX"),
            "{kind:?}: {d:?}"
        );
    }
}

#[test]
fn a_rule_naming_an_organisation_or_a_member_kind_matches_it() {
    let by_code = policy(vec![audience_rule(
        "ecowas",
        pb::Audience {
            organisations: vec!["ECOWAS".into()],
            ..Default::default()
        },
    )]);
    let rec = record();
    let hub = organisation("ECOWAS", pb::MemberKind::RegionalOrganisation);
    assert_eq!(
        evaluate(&by_code, &hub, pb::DataClass::Seizure, &rec)
            .unwrap()
            .rule_id,
        "ecowas"
    );
    let other = organisation("UNODC", pb::MemberKind::InternationalBody);
    assert!(evaluate(&by_code, &other, pb::DataClass::Seizure, &rec).is_err());
    // A State's node is never an organisation.
    let ecowas_state = requester("GHA", pb::Purpose::Tracing);
    assert!(evaluate(&by_code, &ecowas_state, pb::DataClass::Seizure, &rec).is_err());

    let by_kind = policy(vec![audience_rule(
        "bodies",
        pb::Audience {
            member_kinds: vec![pb::MemberKind::InternationalBody as i32],
            ..Default::default()
        },
    )]);
    assert!(evaluate(&by_kind, &other, pb::DataClass::Seizure, &rec).is_ok());
    assert!(evaluate(&by_kind, &hub, pb::DataClass::Seizure, &rec).is_err());
    let national = policy(vec![audience_rule(
        "national",
        pb::Audience {
            member_kinds: vec![pb::MemberKind::NationalAgency as i32],
            ..Default::default()
        },
    )]);
    assert!(evaluate(&national, &ecowas_state, pb::DataClass::Seizure, &rec).is_ok());
    assert!(evaluate(&national, &hub, pb::DataClass::Seizure, &rec).is_err());
    // An organisation without a listed kind is matched by its code only.
    let unlisted = organisation("UNODC", pb::MemberKind::Unspecified);
    assert!(evaluate(&by_kind, &unlisted, pb::DataClass::Seizure, &rec).is_err());
}

#[test]
fn audiences_are_checked() {
    for (audience, problem) in [
        (pb::Audience::default(), "names no country"),
        (
            pb::Audience {
                organisations: vec!["BEL".into()],
                ..Default::default()
            },
            "not an organisation code",
        ),
        (
            pb::Audience {
                member_kinds: vec![0],
                ..Default::default()
            },
            "unknown member kind",
        ),
    ] {
        let e = Policy::parse(pb::SharingPolicy {
            owner_country: "FRA".into(),
            version: 1,
            legal_basis: "synthetic".into(),
            rules: vec![audience_rule("r", audience)],
        })
        .unwrap_err();
        assert!(e.to_string().contains(problem), "{e}");
    }
}

#[test]
fn member_kinds_default_by_affiliation() {
    let bel = Affiliation::State(c("BEL"));
    let hub = Affiliation::Organisation(OrgCode::parse("ECOWAS").unwrap());
    assert_eq!(member_kind(&bel, None), pb::MemberKind::NationalAgency);
    assert_eq!(
        member_kind(&bel, Some(pb::MemberKind::Unspecified)),
        pb::MemberKind::NationalAgency
    );
    assert_eq!(member_kind(&hub, None), pb::MemberKind::Unspecified);
    assert_eq!(
        member_kind(&hub, Some(pb::MemberKind::Secretariat)),
        pb::MemberKind::Secretariat
    );
}
