//! Which indexes a record is in (pure): the one place indexes are declared. Each index value of
//! a record is a *prefix*; the first byte says which index. The store keeps, per prefix, the
//! records that have it (layout 3: posting lists, see [`super::postings`]), so a range scan over
//! prefixes answers a query.
//!
//! ```text
//! serial:        [1] normalised-serial [0x00]
//! country-month: [2] country(3) yyyymm(u32 BE)    (the exact date is checked on the record)
//! route:         [3] country(3)
//! transport:     [4] mode(u32 BE)
//! concealment:   [5] method(u32 BE)
//! ballistic:     [6] normalised-ballistic-reference [0x00]
//! headstamp:     [7] normalised-headstamp [0x00]
//! ammo lot:      [8] normalised-lot [0x00]
//! shipment id:   [9] normalised-conveyance-identifier [0x00]
//! ```
//!
//! Event dates are indexed by month, not day: a day key gave a batch of 5,000 records about a
//! thousand distinct prefixes (one posting list each), a month key a few dozen; a date-range query
//! scans whole months and [`record_matches`] keeps the days asked for.

use tracenet_proto::v1 as pb;

use super::IndexQuery;
use crate::country::CountryCode;
use crate::model::Date;
use crate::serial;

const SERIAL: u8 = 1;
const COUNTRY_DATE: u8 = 2;
const ROUTE: u8 = 3;
const TRANSPORT: u8 = 4;
const CONCEALMENT: u8 = 5;
const BALLISTIC: u8 = 6;
const HEADSTAMP: u8 = 7;
const AMMUNITION_LOT: u8 = 8;
const SHIPMENT: u8 = 9;

/// The index prefixes of a record, sorted and without duplicates.
pub fn index_prefixes(rec: &pb::SeizureRecord) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let serials = rec
        .firearms
        .iter()
        .map(|f| f.serial_number.as_str())
        .chain(rec.parts.iter().map(|p| p.serial_number.as_str()))
        .filter_map(serial::normalise);
    for s in serials {
        out.push(identifier_key(SERIAL, &s));
    }
    // Ballistic references are looked up like serials, in an index of their own so that a
    // serial lookup never finds a ballistic reference and the other way round.
    for s in rec
        .ballistic_references
        .iter()
        .filter_map(|b| serial::normalise(b))
    {
        out.push(identifier_key(BALLISTIC, &s));
    }
    for a in &rec.ammunition {
        if let Some(s) = serial::normalise(&a.headstamp) {
            out.push(identifier_key(HEADSTAMP, &s));
        }
        if let Some(s) = serial::normalise(&a.lot) {
            out.push(identifier_key(AMMUNITION_LOT, &s));
        }
    }
    for id in rec.shipment.iter().flat_map(|s| &s.identifiers) {
        if let Some(s) = serial::normalise(&id.value) {
            out.push(identifier_key(SHIPMENT, &s));
        }
    }
    if let Some(ev) = &rec.event {
        let country = ev
            .place
            .as_ref()
            .and_then(|p| CountryCode::parse(&p.country).ok());
        if let (Some(c), Some(d)) = (country, Date::parse(&ev.date)) {
            out.push(country_month(c, month(d)));
        }
    }
    if let Some(t) = &rec.trafficking {
        for pt in &t.route {
            if let Ok(c) = CountryCode::parse(&pt.country) {
                let mut k = vec![ROUTE];
                k.extend_from_slice(&c.as_bytes());
                out.push(k);
            }
        }
        if t.transport_mode > 0 {
            let mut k = vec![TRANSPORT];
            k.extend_from_slice(&(t.transport_mode as u32).to_be_bytes());
            out.push(k);
        }
        if t.concealment_method > 0 {
            let mut k = vec![CONCEALMENT];
            k.extend_from_slice(&(t.concealment_method as u32).to_be_bytes());
            out.push(k);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `yyyymm` of a date.
fn month(d: Date) -> u32 {
    d.as_u32() / 100
}

/// `[2] country`: every month of one country.
fn country_prefix(c: CountryCode) -> Vec<u8> {
    let mut k = vec![COUNTRY_DATE];
    k.extend_from_slice(&c.as_bytes());
    k
}

fn country_month(c: CountryCode, yyyymm: u32) -> Vec<u8> {
    let mut k = country_prefix(c);
    k.extend_from_slice(&yyyymm.to_be_bytes());
    k
}

/// `[kind] normalised [0x00]`: the index prefix of one serial-like identifier.
fn identifier_key(kind: u8, s: &serial::NormalisedSerial) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + s.len());
    k.push(kind);
    k.extend_from_slice(s.as_str().as_bytes());
    k.push(0);
    k
}

/// The range of a serial-like identifier query: exactly the identifier, or every key sharing
/// its literal prefix when it has wildcards (then narrowed by [`key_matches`]).
fn identifier_range(kind: u8, s: &serial::NormalisedSerial) -> (Vec<u8>, Vec<u8>) {
    let mut start = vec![kind];
    if s.has_wildcards() {
        start.extend_from_slice(s.literal_prefix().as_bytes());
    } else {
        start.extend_from_slice(s.as_str().as_bytes());
        start.push(0);
    }
    let end = prefix_end(&start);
    (start, end)
}

/// The prefix range `[start, end)` an index query scans.
pub fn query_range(q: &IndexQuery) -> (Vec<u8>, Vec<u8>) {
    match q {
        IndexQuery::Serial(s) => identifier_range(SERIAL, s),
        IndexQuery::Ballistic(s) => identifier_range(BALLISTIC, s),
        IndexQuery::Headstamp(s) => identifier_range(HEADSTAMP, s),
        IndexQuery::AmmunitionLot(s) => identifier_range(AMMUNITION_LOT, s),
        IndexQuery::Shipment(s) => identifier_range(SHIPMENT, s),
        IndexQuery::CountryDate { country, from, to } => {
            let start = country_month(*country, from.map_or(0, month));
            let end = match to {
                Some(d) => country_month(*country, month(*d) + 1),
                None => prefix_end(&country_prefix(*country)),
            };
            (start, end)
        }
        IndexQuery::RouteCountry(c) => {
            let mut start = vec![ROUTE];
            start.extend_from_slice(&c.as_bytes());
            let end = prefix_end(&start);
            (start, end)
        }
        IndexQuery::TransportMode(m) => {
            let mut start = vec![TRANSPORT];
            start.extend_from_slice(&(*m as u32).to_be_bytes());
            let end = prefix_end(&start);
            (start, end)
        }
        IndexQuery::Concealment(m) => {
            let mut start = vec![CONCEALMENT];
            start.extend_from_slice(&(*m as u32).to_be_bytes());
            let end = prefix_end(&start);
            (start, end)
        }
    }
}

/// Whether an index prefix found by a range scan really satisfies the query (wildcard serial
/// queries scan a wider range than they match).
pub fn prefix_matches(q: &IndexQuery, prefix: &[u8]) -> bool {
    match q {
        IndexQuery::Serial(pattern)
        | IndexQuery::Ballistic(pattern)
        | IndexQuery::Headstamp(pattern)
        | IndexQuery::AmmunitionLot(pattern)
        | IndexQuery::Shipment(pattern)
            if pattern.has_wildcards() =>
        {
            let Some(body) = prefix
                .get(1..prefix.len().saturating_sub(1))
                .and_then(|b| std::str::from_utf8(b).ok())
            else {
                return false;
            };
            // Keys hold normalised ASCII serials and a wildcard stands for one character, so a
            // key of another length never matches: skip it before normalising (finding L5).
            if body.len() != pattern.len() {
                return false;
            }
            serial::normalise(body)
                .is_some_and(|cand| serial::matches(pattern, &cand, serial::MatchMode::Normalised))
        }
        _ => true,
    }
}

/// Whether a record found through a prefix the query scanned satisfies the query: the index
/// holds months, so a date range is checked here on the record's own date.
pub fn record_matches(q: &IndexQuery, rec: &pb::SeizureRecord) -> bool {
    match q {
        IndexQuery::CountryDate { from, to, .. } => {
            let Some(d) = rec.event.as_ref().and_then(|ev| Date::parse(&ev.date)) else {
                return false;
            };
            from.is_none_or(|f| f.as_u32() <= d.as_u32())
                && to.is_none_or(|t| d.as_u32() <= t.as_u32())
        }
        _ => true,
    }
}

/// The smallest key greater than every key starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::sample;

    #[test]
    fn a_record_has_one_key_per_index_value() {
        let fra = CountryCode::parse("FRA").unwrap();
        let rec = sample::record(fra, 7);
        let keys = index_prefixes(&rec);
        let kinds: Vec<u8> = keys.iter().map(|k| k[0]).collect();
        assert_eq!(kinds.iter().filter(|&&k| k == SERIAL).count(), 1);
        assert_eq!(kinds.iter().filter(|&&k| k == COUNTRY_DATE).count(), 1);
        assert!(kinds.iter().filter(|&&k| k == ROUTE).count() >= 2);
        assert_eq!(kinds.iter().filter(|&&k| k == TRANSPORT).count(), 1);
        assert_eq!(kinds.iter().filter(|&&k| k == CONCEALMENT).count(), 1);
    }

    #[test]
    fn serial_query_range_covers_exactly_the_serial() {
        let s = serial::normalise("AB-12").unwrap();
        let (start, end) = query_range(&IndexQuery::Serial(s));
        let bucket = [0xff; 6];
        let mut hit = vec![SERIAL];
        hit.extend_from_slice(b"AB12\0");
        hit.extend_from_slice(&bucket);
        let mut longer = vec![SERIAL];
        longer.extend_from_slice(b"AB123\0");
        assert!(start.as_slice() <= hit.as_slice() && hit.as_slice() < end.as_slice());
        assert!(!(start.as_slice() <= longer.as_slice() && longer.as_slice() < end.as_slice()));
    }

    #[test]
    fn date_range_scans_whole_months_and_checks_days_on_the_record() {
        let c = CountryCode::parse("DEU").unwrap();
        let q = IndexQuery::CountryDate {
            country: c,
            from: Date::parse("2024-01-10"),
            to: Date::parse("2024-01-31"),
        };
        let (start, end) = query_range(&q);
        let key = |d: &str| {
            let mut rec = sample::record(c, 1);
            rec.event.as_mut().unwrap().date = d.into();
            let k = index_prefixes(&rec)
                .into_iter()
                .find(|k| k[0] == COUNTRY_DATE)
                .unwrap();
            (k, rec)
        };
        let inside = |k: &[u8]| start.as_slice() <= k && k < end.as_slice();
        for (d, scanned, matches) in [
            ("2024-01-10", true, true),
            ("2024-01-31", true, true),
            ("2024-01-09", true, false),
            ("2023-12-31", false, false),
            ("2024-02-01", false, false),
        ] {
            let (k, rec) = key(d);
            assert_eq!(inside(&k), scanned, "{d}");
            assert_eq!(inside(&k) && record_matches(&q, &rec), matches, "{d}");
        }
        let open_ended = IndexQuery::CountryDate {
            country: c,
            from: None,
            to: None,
        };
        let (start, end) = query_range(&open_ended);
        let (k, rec) = key("2199-12-31");
        assert!(start <= k && k < end && record_matches(&open_ended, &rec));
        let (k, _) = key("1900-01-01");
        assert!(start <= k && k < end);
    }

    #[test]
    fn ballistic_references_have_an_index_of_their_own() {
        let fra = CountryCode::parse("FRA").unwrap();
        let mut rec = sample::record(fra, 7);
        rec.ballistic_references = vec!["ibis-fra-1".into(), "IBIS FRA 1".into(), "--".into()];
        let keys = index_prefixes(&rec);
        let ballistic: Vec<&Vec<u8>> = keys.iter().filter(|k| k[0] == BALLISTIC).collect();
        assert_eq!(
            ballistic,
            [&b"\x06IBISFRA1\0".to_vec()],
            "one key, normalised"
        );
        let s = serial::normalise("IBIS-FRA-1").unwrap();
        let (start, end) = query_range(&IndexQuery::Ballistic(s.clone()));
        let key = ballistic[0].clone();
        assert!(start <= key && key < end);
        // The same text as a serial is looked for in the serial index, never here.
        let (start, end) = query_range(&IndexQuery::Serial(s));
        assert!(!(start <= key && key < end));
    }

    #[test]
    fn headstamps_and_lots_are_indexed_apart() {
        let fra = CountryCode::parse("FRA").unwrap();
        let mut rec = sample::record(fra, 7);
        rec.ammunition[0].headstamp = "MKE 7.62 89".into();
        rec.ammunition[0].lot = "L-89".into();
        let keys = index_prefixes(&rec);
        assert!(keys.contains(&b"\x07MKE76289\0".to_vec()), "{keys:?}");
        assert!(keys.contains(&b"\x08L89\0".to_vec()), "{keys:?}");
        let lot = serial::normalise("l 89").unwrap();
        let (start, end) = query_range(&IndexQuery::AmmunitionLot(lot.clone()));
        let key = b"\x08L89\0".to_vec();
        assert!(start <= key && key < end);
        let (start, end) = query_range(&IndexQuery::Headstamp(lot));
        assert!(!(start <= key && key < end));
        rec.shipment = Some(pb::ShipmentFacts {
            identifiers: vec![pb::ConveyanceId {
                kind: pb::ConveyanceKind::AirWaybill as i32,
                value: "176-1234 5675".into(),
            }],
            ..Default::default()
        });
        assert!(index_prefixes(&rec).contains(&b"\x0917612345675\0".to_vec()));
    }

    #[test]
    fn prefix_end_handles_ff() {
        assert_eq!(prefix_end(&[1, 2]), vec![1, 3]);
        assert_eq!(prefix_end(&[1, 0xff]), vec![2]);
    }
}
