//! Synthetic sample data for the demo, tests and benchmarks.
//!
//! Every record is generated deterministically from (country, number), is clearly marked as
//! synthetic in its reference and notes, and describes no real event, weapon or person.

use tracenet_proto::v1 as pb;

use crate::country::CountryCode;

/// A small, fast, deterministic mixer (splitmix64), enough to spread synthetic values.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn pick<'a>(options: &[&'a str], r: u64) -> &'a str {
    options[(r % options.len() as u64) as usize]
}

const MANUFACTURERS: &[&str] = &[
    "Glock",
    "Beretta",
    "CZ",
    "Zastava",
    "Norinco",
    "Heckler & Koch",
    "FN Herstal",
    "Taurus",
    "Smith & Wesson",
    "MKE",
];
const CALIBRES: &[&str] = &[
    "9x19mm",
    "7.62x39mm",
    "5.56x45mm",
    ".38 Special",
    "12 gauge",
];
const NEIGHBOURS: &[&str] = &[
    "BEL", "DEU", "ITA", "ESP", "NLD", "AUT", "CHE", "POL", "SRB", "TUR",
];

/// The serial number marked on sample firearm `n` of `country` (so tests can look it up).
pub fn serial(country: CountryCode, n: u64) -> String {
    let r = mix(seed(country) ^ n);
    let letters = [b'A' + (r % 26) as u8, b'A' + ((r >> 8) % 26) as u8];
    format!(
        "{}{}-{:06}",
        letters[0] as char,
        letters[1] as char,
        (r >> 16) % 1_000_000
    )
}

/// The ballistic reference of sample record `n` of `country`, when it has one (every fourth
/// record), so tests can look it up.
pub fn ballistic_reference(country: CountryCode, n: u64) -> Option<String> {
    n.is_multiple_of(4)
        .then(|| format!("SYN-BAL-{}-{n:06}", country.as_str()))
}

/// Case facts of sample record `n`, from their own mix so the other fields stay as they were:
/// (weapon status, proceedings status, disposition), each sometimes unspecified.
fn case_facts(country: CountryCode, n: u64) -> (i32, i32, i32) {
    let r = mix(seed(country) ^ n.rotate_left(17) ^ 0x5EED);
    let status = match r % 10 {
        s @ 1..=5 => s as i32,
        _ => 0,
    };
    let proceedings = ((r >> 8) % 8) as i32;
    let disposition = ((r >> 16) % 4) as i32;
    (status, proceedings, disposition)
}

/// The synthetic ammunition lot of sample record `n`: headstamp, lot and type from a mix of
/// their own (the calibre and quantity as before), so several records share a lot.
fn ammunition(country: CountryCode, n: u64, calibre: &str) -> pb::AmmunitionItem {
    let r = mix(seed(country).rotate_left(32) ^ n);
    let a = mix(seed(country) ^ n.rotate_left(29) ^ 0xA770);
    let year = 1990 + (a % 35) as u32;
    let maker = pick(&["SYN", "SYA", "SYB"], a >> 8);
    pb::AmmunitionItem {
        calibre: calibre.to_owned(),
        quantity: 10 + (r >> 5) % 500,
        manufacturer: format!("Synthetic Ammunition {maker}"),
        ammunition_type: 1 + ((a >> 12) % 9) as i32,
        headstamp: format!("{maker} {calibre} {:02}", year % 100),
        lot: format!("SYN-LOT-{:03}", (a >> 20) % 40),
        year,
        quantity_band: String::new(),
    }
}

fn seed(country: CountryCode) -> u64 {
    let b = country.as_bytes();
    u64::from(b[0]) << 16 | u64::from(b[1]) << 8 | u64::from(b[2])
}

/// Synthetic seizure record number `n` recorded by `country`.
pub fn record(country: CountryCode, n: u64) -> pb::SeizureRecord {
    let r = mix(seed(country).rotate_left(32) ^ n);
    let month = 1 + (r % 12);
    let day = 1 + ((r >> 4) % 28);
    let year = 2023 + ((r >> 9) % 3);
    let via = pick(NEIGHBOURS, r >> 12);
    let origin = pick(NEIGHBOURS, r >> 20);
    let mode = 1 + ((r >> 28) % 8) as i32;
    let concealment = 1 + ((r >> 32) % 9) as i32;
    let category = 1 + ((r >> 36) % 11) as i32;
    let (status, proceedings_status, disposition) = case_facts(country, n);
    pb::SeizureRecord {
        id: String::new(),
        national_ref: format!("SYN-{}-{n:07}", country.as_str()),
        event: Some(pb::SeizureEvent {
            date: format!("{year:04}-{month:02}-{day:02}"),
            place: Some(pb::Place {
                country: country.as_str().to_owned(),
                region: format!("Synthetic region {}", 1 + (r >> 40) % 9),
                locality: String::new(),
                latitude: None,
                longitude: None,
                border_crossing_point: if mode == pb::TransportMode::Road as i32 {
                    format!("Synthetic crossing {}-{}", via, country.as_str())
                } else {
                    String::new()
                },
            }),
            seizing_agency: 1 + ((r >> 44) % 3) as i32,
        }),
        context: Some(pb::SeizureContext {
            criminal_context: 1 + ((r >> 46) % 6) as i32,
            seizure_kind: 1 + ((r >> 49) % 4) as i32,
        }),
        firearms: vec![pb::FirearmIdentification {
            serial_number: serial(country, n),
            manufacturer: pick(MANUFACTURERS, r >> 52).to_owned(),
            country_of_manufacture: origin.to_owned(),
            model: format!("Model S{}", (r >> 56) % 90 + 10),
            category,
            calibre: pick(CALIBRES, r >> 58).to_owned(),
            year_of_manufacture: 1990 + ((r >> 3) % 30) as u32,
            import_marking: None,
            other_markings: Vec::new(),
            marking_condition: pb::MarkingCondition::Intact as i32,
            status,
        }],
        parts: Vec::new(),
        ammunition: vec![ammunition(country, n, pick(CALIBRES, r >> 58))],
        trafficking: Some(pb::TraffickingFacts {
            route: vec![
                pb::RoutePoint {
                    country: origin.to_owned(),
                    point: String::new(),
                },
                pb::RoutePoint {
                    country: via.to_owned(),
                    point: String::new(),
                },
                pb::RoutePoint {
                    country: country.as_str().to_owned(),
                    point: String::new(),
                },
            ],
            transport_mode: mode,
            concealment_method: concealment,
            concealment_details: String::new(),
            suspected_source_country: origin.to_owned(),
            suspected_destination_country: country.as_str().to_owned(),
        }),
        persons: persons(country, n, via, r),
        case_reference: format!("SYN-CASE-{}", r % 100_000),
        tracing: Some(pb::TracingStatus {
            trace_requested: r.is_multiple_of(3),
            traced: r.is_multiple_of(5),
            illicit_origin_established: r.is_multiple_of(7),
        }),
        notes: "Synthetic sample record: not real data.".to_owned(),
        proceedings_status,
        disposition,
        ballistic_references: ballistic_reference(country, n).into_iter().collect(),
        shipment: shipment(country, n, mode),
        loss: None,
    }
}

/// The serial number of the firearm in sample loss report `n` of `country`.
pub fn loss_serial(country: CountryCode, n: u64) -> String {
    format!("SYN-LOSS-{}-{n:05}", country.as_str())
}

/// Synthetic loss report `n` of `country`: one pistol lost, stolen or diverted from a dealer,
/// a carrier, a private owner or a State stockpile.
pub fn loss_report(country: CountryCode, n: u64) -> pb::SeizureRecord {
    let r = mix(seed(country) ^ n.rotate_left(13) ^ 0x1055);
    let month = 1 + (r % 12);
    let day = 1 + ((r >> 4) % 28);
    pb::SeizureRecord {
        national_ref: format!("SYN-LOSS-{}-{n:05}", country.as_str()),
        firearms: vec![pb::FirearmIdentification {
            serial_number: loss_serial(country, n),
            manufacturer: pick(MANUFACTURERS, r >> 8).to_owned(),
            category: pb::WeaponCategory::RevolverOrSelfLoadingPistol as i32,
            calibre: "9x19mm".into(),
            marking_condition: pb::MarkingCondition::Intact as i32,
            ..Default::default()
        }],
        loss: Some(pb::LossReport {
            kind: 1 + ((r >> 16) % 3) as i32,
            source: 1 + ((r >> 20) % 4) as i32,
            date: format!("2025-{month:02}-{day:02}"),
            place: Some(pb::Place {
                country: country.as_str().to_owned(),
                region: format!("Synthetic region {}", 1 + (r >> 24) % 9),
                ..Default::default()
            }),
            circumstances: "Synthetic loss report: not real data.".into(),
            reporting_agency: "Synthetic police station".into(),
        }),
        notes: "Synthetic sample record: not real data.".into(),
        ..Default::default()
    }
}

/// The container number of sample record `n` of `country`, when it has one (every third
/// record travelled in a container), so tests can look it up.
pub fn container(country: CountryCode, n: u64) -> Option<String> {
    n.is_multiple_of(3)
        .then(|| format!("SYNU{}{n:06}", &country.as_str()[..2]))
}

/// Synthetic shipment facts: a container for every third record, an online sale for records
/// moved by online order.
fn shipment(country: CountryCode, n: u64, mode: i32) -> Option<pb::ShipmentFacts> {
    let online = mode == pb::TransportMode::OnlineOrder as i32;
    let container = container(country, n);
    if container.is_none() && !online {
        return None;
    }
    Some(pb::ShipmentFacts {
        identifiers: container
            .map(|value| pb::ConveyanceId {
                kind: pb::ConveyanceKind::Container as i32,
                value,
            })
            .into_iter()
            .collect(),
        consignor: "Synthetic Export Ltd".into(),
        consignee: format!("Synthetic Consignee {}", n % 50),
        online_platform: if online {
            "synthetic-market.example".into()
        } else {
            String::new()
        },
        listing: if online {
            format!("https://synthetic-market.example/listing/{n}")
        } else {
            String::new()
        },
        vendor_handle: if online {
            format!("synthetic_vendor_{}", n % 20)
        } else {
            String::new()
        },
    })
}

/// The persons of sample record `n`: a courier (a natural person, with sex and age band), and
/// for every fifth record a broker's firm (a legal person with a licence reference).
fn persons(country: CountryCode, n: u64, via: &str, r: u64) -> Vec<pb::Person> {
    let p = mix(seed(country) ^ n.rotate_left(41) ^ 0x9E50);
    let mut out = vec![pb::Person {
        role: pb::PersonRole::Courier as i32,
        nationality: via.to_owned(),
        name: format!("Synthetic Person {}", r % 10_000),
        kind: pb::PersonKind::Natural as i32,
        sex: (p % 4) as i32,
        age_band: ((p >> 8) % 8) as i32,
        licence_reference: String::new(),
    }];
    if n.is_multiple_of(5) {
        out.push(pb::Person {
            role: pb::PersonRole::Broker as i32,
            nationality: country.as_str().to_owned(),
            name: format!("Synthetic Brokers {} Ltd", n % 7),
            kind: pb::PersonKind::Legal as i32,
            sex: 0,
            age_band: 0,
            licence_reference: format!("SYN-BRK-{:04}", n % 1000),
        });
    }
    out
}
