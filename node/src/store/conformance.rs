//! The behaviour every [`RecordStore`] implementation must show, as a reusable test suite.
//!
//! Call [`run_all`] from a test with a constructor for empty stores. Kept in the library (not
//! under `#[cfg(test)]`) so other crates' tests can run it against their own stores too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tracenet_proto::v1 as pb;

use super::{IndexQuery, RecordStore, StoreError};
use crate::country::CountryCode;
use crate::ids::RecordId;
use crate::model::{Date, ValidRecord, validate};
use crate::{sample, serial};

/// Runs every conformance check, each on a fresh store from `make`.
pub fn run_all<S: RecordStore>(make: impl Fn() -> S) {
    create_assigns_id_and_reads_back(&make());
    duplicate_national_ref_is_refused_and_changes_nothing(&make());
    update_moves_index_entries(&make());
    stale_revision_is_refused(&make());
    update_of_unknown_record_is_refused(&make());
    batch_upserts_by_national_ref(&make());
    list_pages_through_everything_once(&make());
    indexes_select_the_right_records(&make());
    updates_move_records_between_every_index(&make());
    a_batch_naming_a_reference_twice_keeps_the_last(&make());
    date_ranges_end_on_the_days_asked(&make());
}

fn country(c: &str) -> CountryCode {
    CountryCode::parse(c).unwrap()
}

fn valid(n: u64) -> ValidRecord {
    validate(sample::record(country("FRA"), n)).unwrap()
}

fn id_of(s: &pb::StoredRecord) -> RecordId {
    RecordId::parse(&s.record.as_ref().unwrap().id).unwrap()
}

fn create_assigns_id_and_reads_back(store: &impl RecordStore) {
    let input = sample::record(country("FRA"), 1);
    let created = store.create(validate(input.clone()).unwrap(), 100).unwrap();
    assert_eq!(created.revision, 1);
    assert_eq!(created.created_at, 100);
    let id = id_of(&created);
    let got = store.get(id).unwrap().unwrap();
    let mut expected = input;
    expected.id = id.to_string();
    assert_eq!(got.record.unwrap(), expected);
    assert_eq!(store.count().unwrap(), 1);
    assert!(store.get(RecordId::from_bytes([7; 16])).unwrap().is_none());
    let by_ref = store.get_by_national_ref(&expected.national_ref).unwrap();
    assert_eq!(by_ref.map(|s| id_of(&s)), Some(id));
}

fn duplicate_national_ref_is_refused_and_changes_nothing(store: &impl RecordStore) {
    store.create(valid(1), 1).unwrap();
    let mut other = sample::record(country("FRA"), 2);
    other.national_ref = sample::record(country("FRA"), 1).national_ref;
    let serial = serial::normalise(&other.firearms[0].serial_number).unwrap();
    let err = store.create(validate(other).unwrap(), 2).unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateNationalRef { .. }),
        "{err}"
    );
    assert_eq!(store.count().unwrap(), 1);
    assert!(
        store
            .find(&IndexQuery::Serial(serial), 10)
            .unwrap()
            .is_empty()
    );
}

fn update_moves_index_entries(store: &impl RecordStore) {
    let created = store.create(valid(3), 1).unwrap();
    let id = id_of(&created);
    let old_serial =
        serial::normalise(&created.record.as_ref().unwrap().firearms[0].serial_number).unwrap();
    let mut rec = created.record.clone().unwrap();
    rec.firearms[0].serial_number = "ZZ-999999".into();
    let updated = store.update(validate(rec).unwrap(), Some(1), 9).unwrap();
    assert_eq!(updated.revision, 2);
    assert_eq!(updated.created_at, 1);
    assert_eq!(updated.updated_at, 9);
    assert!(
        store
            .find(&IndexQuery::Serial(old_serial), 10)
            .unwrap()
            .is_empty()
    );
    let new_serial = serial::normalise("zz999999").unwrap();
    let found = store.find(&IndexQuery::Serial(new_serial), 10).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(id_of(&found[0]), id);
    assert_eq!(store.count().unwrap(), 1);
}

fn stale_revision_is_refused(store: &impl RecordStore) {
    let created = store.create(valid(4), 1).unwrap();
    let mut rec = created.record.clone().unwrap();
    rec.notes = "changed".into();
    store
        .update(validate(rec.clone()).unwrap(), Some(1), 2)
        .unwrap();
    rec.notes = "changed again from a stale copy".into();
    let err = store
        .update(validate(rec).unwrap(), Some(1), 3)
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::RevisionMismatch {
                expected: 1,
                actual: 2,
                ..
            }
        ),
        "{err}"
    );
    let now = store.get(id_of(&created)).unwrap().unwrap();
    assert_eq!(now.record.unwrap().notes, "changed");
}

fn update_of_unknown_record_is_refused(store: &impl RecordStore) {
    let mut rec = sample::record(country("FRA"), 5);
    rec.id = RecordId::from_bytes([1; 16]).to_string();
    let err = store.update(validate(rec).unwrap(), None, 1).unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    let err = store.update(valid(5), None, 1).unwrap_err();
    assert!(matches!(err, StoreError::MissingId), "{err}");
    assert_eq!(store.count().unwrap(), 0);
}

fn batch_upserts_by_national_ref(store: &impl RecordStore) {
    let batch: Vec<ValidRecord> = (10..20).map(valid).collect();
    let out = store.upsert_batch(batch.clone(), 1).unwrap();
    assert_eq!((out.created, out.updated), (10, 0));
    let again = store.upsert_batch(batch, 2).unwrap();
    assert_eq!((again.created, again.updated), (0, 10));
    assert_eq!(store.count().unwrap(), 10);
    let one = store
        .get_by_national_ref(&sample::record(country("FRA"), 12).national_ref)
        .unwrap()
        .unwrap();
    assert_eq!(one.revision, 2);
    assert_eq!(one.created_at, 1);
    let serial = serial::normalise(&sample::serial(country("FRA"), 12)).unwrap();
    assert_eq!(
        store.find(&IndexQuery::Serial(serial), 10).unwrap().len(),
        1
    );
}

fn list_pages_through_everything_once(store: &impl RecordStore) {
    let batch: Vec<ValidRecord> = (0..25).map(valid).collect();
    store.upsert_batch(batch, 1).unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.list(after, 7).unwrap();
        if page.is_empty() {
            break;
        }
        after = Some(id_of(page.last().unwrap()));
        seen.extend(page.iter().map(id_of));
    }
    assert_eq!(seen.len(), 25);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "pages overlap or are out of order");
    let mut newest = Vec::new();
    let mut before = None;
    loop {
        let page = store.list_newest(before, 7).unwrap();
        if page.is_empty() {
            break;
        }
        before = Some(id_of(page.last().unwrap()));
        newest.extend(page.iter().map(id_of));
    }
    newest.reverse();
    assert_eq!(newest, seen, "newest-first pages are not the reverse order");
}

fn indexes_select_the_right_records(store: &impl RecordStore) {
    let records: Vec<pb::SeizureRecord> =
        (0..60).map(|n| sample::record(country("FRA"), n)).collect();
    store
        .upsert_batch(
            records
                .iter()
                .cloned()
                .map(|r| validate(r).unwrap())
                .collect(),
            1,
        )
        .unwrap();
    let refs = |found: Vec<pb::StoredRecord>| -> Vec<String> {
        let mut v: Vec<String> = found
            .into_iter()
            .map(|s| s.record.unwrap().national_ref)
            .collect();
        v.sort();
        v
    };
    let expect = |pred: &dyn Fn(&pb::SeizureRecord) -> bool| -> Vec<String> {
        let mut v: Vec<String> = records
            .iter()
            .filter(|r| pred(r))
            .map(|r| r.national_ref.clone())
            .collect();
        v.sort();
        v
    };

    let deu = country("DEU");
    assert_eq!(
        refs(store.find(&IndexQuery::RouteCountry(deu), 1000).unwrap()),
        expect(&|r| r
            .trafficking
            .as_ref()
            .unwrap()
            .route
            .iter()
            .any(|p| p.country == "DEU"))
    );
    let mode = pb::TransportMode::MaritimeContainer;
    assert_eq!(
        refs(store.find(&IndexQuery::TransportMode(mode), 1000).unwrap()),
        expect(&|r| r.trafficking.as_ref().unwrap().transport_mode == mode as i32)
    );
    let method = pb::ConcealmentMethod::VehicleCompartment;
    assert_eq!(
        refs(store.find(&IndexQuery::Concealment(method), 1000).unwrap()),
        expect(&|r| r.trafficking.as_ref().unwrap().concealment_method == method as i32)
    );
    let (from, to) = (Date::parse("2024-01-01"), Date::parse("2024-06-30"));
    assert_eq!(
        refs(
            store
                .find(
                    &IndexQuery::CountryDate {
                        country: country("FRA"),
                        from,
                        to
                    },
                    1000
                )
                .unwrap()
        ),
        expect(&|r| {
            let d = r.event.as_ref().unwrap().date.as_str();
            ("2024-01-01"..="2024-06-30").contains(&d)
        })
    );
    assert!(
        store
            .find(
                &IndexQuery::CountryDate {
                    country: deu,
                    from: None,
                    to: None
                },
                1000
            )
            .unwrap()
            .is_empty()
    );

    // Normalised and wildcard serial lookups.
    let marked = sample::serial(country("FRA"), 42);
    let messy = marked.to_lowercase().replace('-', " ");
    let found = store
        .find(&IndexQuery::Serial(serial::normalise(&messy).unwrap()), 10)
        .unwrap();
    assert_eq!(
        refs(found),
        expect(&|r| r.firearms[0].serial_number == marked)
    );
    let mut blurred = serial::normalise(&marked).unwrap().as_str().to_owned();
    blurred.replace_range(blurred.len() - 2.., "**");
    let found = store
        .find(
            &IndexQuery::Serial(serial::normalise(&blurred).unwrap()),
            100,
        )
        .unwrap();
    assert!(refs(found.clone()).contains(&sample::record(country("FRA"), 42).national_ref));
    for f in found {
        let s = serial::normalise(&f.record.unwrap().firearms[0].serial_number).unwrap();
        assert!(s.as_str().starts_with(&blurred[..blurred.len() - 2]));
        assert_eq!(s.len(), blurred.len());
    }
    // Ballistic references: normalised, in their own index.
    let wanted = sample::ballistic_reference(country("FRA"), 40).unwrap();
    let found = store
        .find(
            &IndexQuery::Ballistic(serial::normalise(&wanted.to_lowercase()).unwrap()),
            10,
        )
        .unwrap();
    assert_eq!(
        refs(found),
        expect(&|r| r.ballistic_references.contains(&wanted))
    );
    assert!(
        store
            .find(&IndexQuery::Serial(serial::normalise(&wanted).unwrap()), 10)
            .unwrap()
            .is_empty(),
        "a ballistic reference is not a serial"
    );
    // Headstamps and lots, each in its own index.
    let lot = records[41].ammunition[0].lot.clone();
    let found = store
        .find(
            &IndexQuery::AmmunitionLot(serial::normalise(&lot).unwrap()),
            100,
        )
        .unwrap();
    assert_eq!(
        refs(found),
        expect(&|r| r.ammunition.iter().any(|a| a.lot == lot))
    );
    let headstamp = records[41].ammunition[0].headstamp.clone();
    let found = store
        .find(
            &IndexQuery::Headstamp(serial::normalise(&headstamp).unwrap()),
            100,
        )
        .unwrap();
    assert_eq!(
        refs(found),
        expect(&|r| r.ammunition.iter().any(|a| a.headstamp == headstamp))
    );
    let limited = store
        .find(&IndexQuery::RouteCountry(country("FRA")), 5)
        .unwrap();
    assert_eq!(limited.len(), 5);
}

fn route_of(rec: &mut pb::SeizureRecord) -> &mut pb::TraffickingFacts {
    rec.trafficking.get_or_insert_with(Default::default)
}

fn updates_move_records_between_every_index(store: &impl RecordStore) {
    let batch: Vec<ValidRecord> = (0..5).map(valid).collect();
    store.upsert_batch(batch, 1).unwrap();
    let moved = store
        .get_by_national_ref(&sample::record(country("FRA"), 2).national_ref)
        .unwrap()
        .unwrap();
    let id = id_of(&moved);
    let mut rec = moved.record.unwrap();
    route_of(&mut rec).route = vec![pb::RoutePoint {
        country: "MLT".into(),
        point: String::new(),
    }];
    route_of(&mut rec).transport_mode = pb::TransportMode::AirCargo as i32;
    rec.event.as_mut().unwrap().date = "2019-03-04".into();
    store.update(validate(rec).unwrap(), None, 2).unwrap();
    let ids = |q: IndexQuery| -> Vec<RecordId> {
        store.find(&q, 100).unwrap().iter().map(id_of).collect()
    };
    assert_eq!(ids(IndexQuery::RouteCountry(country("MLT"))), [id]);
    for n in (0..5).filter(|&n| n != 2) {
        let other = sample::record(country("FRA"), n);
        for p in &other.trafficking.as_ref().unwrap().route {
            let c = country(&p.country);
            assert!(
                !ids(IndexQuery::RouteCountry(c)).contains(&id),
                "{c} still lists it"
            );
        }
    }
    let air = ids(IndexQuery::TransportMode(pb::TransportMode::AirCargo));
    assert!(air.contains(&id));
    let all_modes: usize = (1..=8)
        .filter_map(|m| pb::TransportMode::try_from(m).ok())
        .map(|m| ids(IndexQuery::TransportMode(m)).len())
        .sum();
    assert_eq!(all_modes, 5, "each record in exactly one transport list");
    let march = ids(IndexQuery::CountryDate {
        country: country("FRA"),
        from: Date::parse("2019-03-01"),
        to: Date::parse("2019-03-31"),
    });
    assert_eq!(march, [id]);
    let everything = ids(IndexQuery::CountryDate {
        country: country("FRA"),
        from: None,
        to: None,
    });
    assert_eq!(everything.len(), 5);
}

fn a_batch_naming_a_reference_twice_keeps_the_last(store: &impl RecordStore) {
    let first = sample::record(country("FRA"), 7);
    let mut second = first.clone();
    second.firearms[0].serial_number = "SECOND-7".into();
    route_of(&mut second).concealment_method = pb::ConcealmentMethod::FalseBottomLuggage as i32;
    let out = store
        .upsert_batch(
            vec![validate(first.clone()).unwrap(), validate(second).unwrap()],
            1,
        )
        .unwrap();
    assert_eq!((out.created, out.updated), (1, 1));
    assert_eq!(store.count().unwrap(), 1);
    let old = serial::normalise(&first.firearms[0].serial_number).unwrap();
    assert!(store.find(&IndexQuery::Serial(old), 10).unwrap().is_empty());
    let new = serial::normalise("SECOND-7").unwrap();
    let found = store.find(&IndexQuery::Serial(new), 10).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].revision, 2);
    let luggage = store
        .find(
            &IndexQuery::Concealment(pb::ConcealmentMethod::FalseBottomLuggage),
            10,
        )
        .unwrap();
    assert_eq!(luggage.len(), 1);
}

fn date_ranges_end_on_the_days_asked(store: &impl RecordStore) {
    let dated: Vec<ValidRecord> = ["2024-05-01", "2024-05-14", "2024-05-15", "2024-05-31"]
        .iter()
        .enumerate()
        .map(|(n, d)| {
            let mut r = sample::record(country("FRA"), n as u64);
            r.event.as_mut().unwrap().date = (*d).into();
            validate(r).unwrap()
        })
        .collect();
    store.upsert_batch(dated, 1).unwrap();
    let dates = |from: &str, to: &str| -> Vec<String> {
        let mut v: Vec<String> = store
            .find(
                &IndexQuery::CountryDate {
                    country: country("FRA"),
                    from: Date::parse(from),
                    to: Date::parse(to),
                },
                100,
            )
            .unwrap()
            .into_iter()
            .map(|s| s.record.unwrap().event.unwrap().date)
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        dates("2024-05-14", "2024-05-15"),
        ["2024-05-14", "2024-05-15"]
    );
    assert_eq!(dates("2024-05-02", "2024-05-13"), Vec::<String>::new());
    assert_eq!(dates("2024-05-31", "2024-06-30"), ["2024-05-31"]);
    // A limit counts records that match, not records scanned.
    let first = store
        .find(
            &IndexQuery::CountryDate {
                country: country("FRA"),
                from: Date::parse("2024-05-15"),
                to: None,
            },
            1,
        )
        .unwrap();
    assert_eq!(first.len(), 1);
}
