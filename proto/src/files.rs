//! The import file formats shared by the node's CLI and the gateway: JSON Lines (one
//! `SeizureRecord` per line in the canonical proto3 JSON mapping) and CSV (one firearm per row,
//! the columns listed in [`CSV_COLUMNS`]).
//!
//! Reading is streaming, so files of millions of rows need little memory. Every row carries its
//! line number and every problem is a [`v1::RowError`] with that line, so a person can fix the
//! file. Rows are parsed here, not validated: validation is the node's (it owns the rules).

use std::io::{BufRead, BufReader, Read};

use crate::v1 as pb;

/// Why a file cannot be read at all (row problems are [`pb::RowError`]s instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// The file type is not recognised from its name. Not retryable.
    #[error("cannot tell the format of {0}: use a .jsonl/.ndjson or .csv file")]
    UnknownFormat(String),
    /// The CSV header is unusable (unknown or missing columns). Not retryable.
    #[error("CSV header: {0}")]
    Header(String),
}

/// An import file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON `SeizureRecord` per line.
    JsonLines,
    /// Comma-separated values with a header row.
    Csv,
}

impl Format {
    /// The format named by a file name's extension.
    pub fn from_name(name: &str) -> Result<Format, FileError> {
        match name
            .rsplit_once('.')
            .map(|(_, ext)| ext.to_ascii_lowercase())
            .as_deref()
        {
            Some("jsonl" | "ndjson" | "json") => Ok(Format::JsonLines),
            Some("csv") => Ok(Format::Csv),
            _ => Err(FileError::UnknownFormat(name.to_owned())),
        }
    }
}

/// One row of an import file.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 1-based line number in the file.
    pub line: u64,
    /// The record the row describes (not yet validated).
    pub record: pb::SeizureRecord,
}

/// How many columns [`CSV_COLUMNS`] has (the size of the cell arrays rows are read into).
pub const N_COLUMNS: usize = 62;

/// One row's cells, in [`CSV_COLUMNS`] order.
pub type Columns<'a> = [&'a str; N_COLUMNS];

/// The CSV columns, in the order the template uses. All but `national_ref`, `date`, `country`,
/// `seizing_agency` and `seizure_kind` may be empty. Enumerations use the lowercase value name
/// (e.g. `customs`, `maritime_container`); `route` lists countries separated by `;`, and so
/// does `ballistic_references` its references. `weapon_status` is the first firearm's; the
/// `ammunition_*` columns describe one ammunition lot and the `part_*` columns one part or
/// component (`part_markings` lists marking texts separated by `;`; an empty `part_quantity`
/// is one part); the `person_*` columns one person (natural or legal); `shipment_identifiers`
/// lists `kind:value` pairs separated by `;` (`container:MSCU1234567;air_waybill:176-12345675`).
/// A row with any `loss_*` column (or `reporting_agency`) is a loss report: its seizure columns
/// (`date`, `country`, `seizing_agency`, `seizure_kind`) stay empty.
pub const CSV_COLUMNS: &[&str] = &[
    "national_ref",
    "date",
    "country",
    "region",
    "locality",
    "border_crossing_point",
    "seizing_agency",
    "seizure_kind",
    "criminal_context",
    "serial_number",
    "manufacturer",
    "model",
    "category",
    "calibre",
    "country_of_manufacture",
    "marking_condition",
    "year_of_manufacture",
    "ammunition_calibre",
    "ammunition_quantity",
    "route",
    "transport_mode",
    "concealment_method",
    "concealment_details",
    "case_reference",
    "notes",
    "weapon_status",
    "proceedings_status",
    "disposition",
    "ballistic_references",
    "ammunition_manufacturer",
    "ammunition_type",
    "ammunition_headstamp",
    "ammunition_lot",
    "ammunition_year",
    "part_kind",
    "part_serial_number",
    "part_manufacturer",
    "part_quantity",
    "part_markings",
    "person_kind",
    "person_role",
    "person_name",
    "person_nationality",
    "person_sex",
    "person_age_band",
    "person_licence_reference",
    "shipment_identifiers",
    "consignor",
    "consignee",
    "online_platform",
    "listing",
    "vendor_handle",
    "loss_kind",
    "loss_source",
    "loss_date",
    "loss_country",
    "loss_region",
    "loss_locality",
    "loss_circumstances",
    "reporting_agency",
    "import_country",
    "import_year",
];

const _: () = assert!(CSV_COLUMNS.len() == N_COLUMNS);

// Positions of the columns added after the first 25 (the older ones are used by number below).
const WEAPON_STATUS: usize = 25;
// The first firearm's import marking (ITI paragraph 10): country and year.
const IMPORT_COUNTRY: usize = 60;
const IMPORT_YEAR: usize = 61;
const PROCEEDINGS_STATUS: usize = 26;
const DISPOSITION: usize = 27;
const BALLISTIC_REFERENCES: usize = 28;
const AMMUNITION_MANUFACTURER: usize = 29;
const AMMUNITION_TYPE: usize = 30;
const AMMUNITION_HEADSTAMP: usize = 31;
const AMMUNITION_LOT: usize = 32;
const AMMUNITION_YEAR: usize = 33;
const PART_KIND: usize = 34;
const PART_SERIAL_NUMBER: usize = 35;
const PART_MANUFACTURER: usize = 36;
const PART_QUANTITY: usize = 37;
const PART_MARKINGS: usize = 38;
const PERSON_KIND: usize = 39;
const PERSON_ROLE: usize = 40;
const PERSON_NAME: usize = 41;
const PERSON_NATIONALITY: usize = 42;
const PERSON_SEX: usize = 43;
const PERSON_AGE_BAND: usize = 44;
const PERSON_LICENCE: usize = 45;
const SHIPMENT_IDENTIFIERS: usize = 46;
const CONSIGNOR: usize = 47;
const CONSIGNEE: usize = 48;
const ONLINE_PLATFORM: usize = 49;
const LISTING: usize = 50;
const VENDOR_HANDLE: usize = 51;
const LOSS_KIND: usize = 52;
const LOSS_SOURCE: usize = 53;
const LOSS_DATE: usize = 54;
const LOSS_COUNTRY: usize = 55;
const LOSS_REGION: usize = 56;
const LOSS_LOCALITY: usize = 57;
const LOSS_CIRCUMSTANCES: usize = 58;
const REPORTING_AGENCY: usize = 59;

/// The conveyance identifiers of a `kind:value;kind:value` cell.
fn conveyance_ids(line: u64, cell: &str) -> Result<Vec<pb::ConveyanceId>, pb::RowError> {
    list(cell)
        .map(|pair| {
            let (kind, value) = pair.split_once(':').ok_or_else(|| {
                row_error(
                    line,
                    "shipment_identifiers",
                    format!("'{pair}': write each as kind:value, e.g. container:MSCU1234567"),
                )
            })?;
            let kind = kind.trim();
            let kind = if kind.is_empty() { "?" } else { kind };
            Ok(pb::ConveyanceId {
                kind: enum_value(line, "shipment_identifiers", kind, "CONVEYANCE_KIND", |n| {
                    pb::ConveyanceKind::from_str_name(n).map(|v| v as i32)
                })?,
                value: value.trim().to_owned(),
            })
        })
        .collect()
}

/// The items of a `;`-separated cell, trimmed, empty ones dropped.
fn list(cell: &str) -> impl Iterator<Item = &str> {
    cell.split(';').map(str::trim).filter(|x| !x.is_empty())
}

fn row_error(line: u64, field: &str, reason: impl Into<String>) -> pb::RowError {
    pb::RowError {
        line,
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// Streams the rows of an open file.
pub fn rows(
    reader: impl Read + 'static,
    format: Format,
) -> Result<Box<dyn Iterator<Item = Result<Row, pb::RowError>>>, FileError> {
    match format {
        Format::JsonLines => Ok(Box::new(json_rows(BufReader::new(reader)))),
        Format::Csv => Ok(Box::new(csv_rows(reader)?)),
    }
}

fn json_rows(reader: impl BufRead) -> impl Iterator<Item = Result<Row, pb::RowError>> {
    reader.lines().enumerate().filter_map(|(i, line)| {
        let line_no = i as u64 + 1;
        match line {
            Err(e) => Some(Err(row_error(line_no, "", format!("unreadable line: {e}")))),
            Ok(text) if text.trim().is_empty() => None,
            Ok(text) => Some(
                serde_json::from_str::<pb::SeizureRecord>(&text)
                    .map(|record| Row {
                        line: line_no,
                        record,
                    })
                    .map_err(|e| row_error(line_no, "", format!("not a valid record: {e}"))),
            ),
        }
    })
}

/// Columns every CSV file has: the national reference, then either a seizure's event and
/// context or a loss report's own columns (a file of loss reports needs no empty seizure
/// columns).
const REQUIRED: &str = "national_ref";
const SEIZURE_REQUIRED: [&str; 4] = ["date", "country", "seizing_agency", "seizure_kind"];
const LOSS_REQUIRED: [&str; 4] = ["loss_kind", "loss_source", "loss_date", "loss_country"];

/// The first required column a header (`index`: positions in [`CSV_COLUMNS`]) lacks, if any:
/// `national_ref`, then the seizure columns unless every loss-report column is there.
pub fn missing_column(index: &[usize]) -> Option<&'static str> {
    let has = |name: &str| {
        CSV_COLUMNS
            .iter()
            .position(|c| *c == name)
            .is_some_and(|pos| index.contains(&pos))
    };
    if !has(REQUIRED) {
        return Some(REQUIRED);
    }
    if LOSS_REQUIRED.iter().all(|c| has(c)) {
        return None;
    }
    SEIZURE_REQUIRED.into_iter().find(|c| !has(c))
}

fn csv_rows(
    reader: impl Read,
) -> Result<impl Iterator<Item = Result<Row, pb::RowError>>, FileError> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = rdr
        .headers()
        .map_err(|e| FileError::Header(e.to_string()))?
        .clone();
    let mut index = Vec::with_capacity(headers.len());
    for h in &headers {
        let pos = CSV_COLUMNS
            .iter()
            .position(|c| c.eq_ignore_ascii_case(h))
            .ok_or_else(|| {
                FileError::Header(format!(
                    "unknown column '{h}' (known: {})",
                    CSV_COLUMNS.join(", ")
                ))
            })?;
        index.push(pos);
    }
    if let Some(missing) = missing_column(&index) {
        return Err(FileError::Header(format!("missing column '{missing}'")));
    }
    Ok(rdr.into_records().map(move |r| {
        let r = r.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            row_error(line, "", format!("malformed CSV row: {e}"))
        })?;
        let line = r.position().map_or(0, |p| p.line());
        let mut cols: Columns = [""; N_COLUMNS];
        for (value, &col) in r.iter().zip(&index) {
            if let Some(slot) = cols.get_mut(col) {
                *slot = value;
            }
        }
        record_from_columns(line, &cols).map(|record| Row { line, record })
    }))
}

/// Parses an enumeration value given by its short lowercase name.
fn enum_value(
    line: u64,
    field: &str,
    value: &str,
    prefix: &str,
    from_name: impl Fn(&str) -> Option<i32>,
) -> Result<i32, pb::RowError> {
    if value.is_empty() {
        return Ok(0);
    }
    let full = format!(
        "{prefix}_{}",
        value.to_ascii_uppercase().replace([' ', '-'], "_")
    );
    from_name(&full).ok_or_else(|| row_error(line, field, format!("unknown value '{value}'")))
}

fn number<T: std::str::FromStr + Default>(
    line: u64,
    field: &str,
    value: &str,
) -> Result<T, pb::RowError> {
    if value.is_empty() {
        return Ok(T::default());
    }
    value
        .parse()
        .map_err(|_| row_error(line, field, format!("'{value}' is not a whole number")))
}

/// Builds a record from values named by [`CSV_COLUMNS`] (in that order): one CSV row, or one
/// submitted record form, which uses the same names and the same short enumeration values.
pub fn record_from_columns(line: u64, c: &Columns) -> Result<pb::SeizureRecord, pb::RowError> {
    let s = |i: usize| c[i].to_owned();
    let status = enum_value(
        line,
        "weapon_status",
        c[WEAPON_STATUS],
        "WEAPON_STATUS",
        |n| pb::WeaponStatus::from_str_name(n).map(|v| v as i32),
    )?;
    let import_year = number(line, "import_year", c[IMPORT_YEAR])?;
    let import_marking =
        (!c[IMPORT_COUNTRY].is_empty() || import_year != 0).then(|| pb::ImportMarking {
            country: c[IMPORT_COUNTRY].to_ascii_uppercase(),
            year: import_year,
        });
    let firearm = (!c[9].is_empty()
        || !c[10].is_empty()
        || !c[11].is_empty()
        || status != 0
        || import_marking.is_some())
    .then(|| {
        Ok::<_, pb::RowError>(pb::FirearmIdentification {
            serial_number: s(9),
            manufacturer: s(10),
            model: s(11),
            category: enum_value(line, "category", c[12], "WEAPON_CATEGORY", |n| {
                pb::WeaponCategory::from_str_name(n).map(|v| v as i32)
            })?,
            calibre: s(13),
            country_of_manufacture: s(14),
            marking_condition: enum_value(
                line,
                "marking_condition",
                c[15],
                "MARKING_CONDITION",
                |n| pb::MarkingCondition::from_str_name(n).map(|v| v as i32),
            )?,
            year_of_manufacture: number(line, "year_of_manufacture", c[16])?,
            status,
            import_marking,
            ..Default::default()
        })
    });
    let ammunition_columns = [17, 18]
        .into_iter()
        .chain(AMMUNITION_MANUFACTURER..=AMMUNITION_YEAR);
    let ammunition = if ammunition_columns.clone().all(|i| c[i].is_empty()) {
        vec![]
    } else {
        vec![pb::AmmunitionItem {
            calibre: s(17),
            quantity: number(line, "ammunition_quantity", c[18])?,
            manufacturer: s(AMMUNITION_MANUFACTURER),
            ammunition_type: enum_value(
                line,
                "ammunition_type",
                c[AMMUNITION_TYPE],
                "AMMUNITION_TYPE",
                |n| pb::AmmunitionType::from_str_name(n).map(|v| v as i32),
            )?,
            headstamp: s(AMMUNITION_HEADSTAMP),
            lot: s(AMMUNITION_LOT),
            year: number(line, "ammunition_year", c[AMMUNITION_YEAR])?,
            ..Default::default()
        }]
    };
    let parts = if (PART_KIND..=PART_MARKINGS).all(|i| c[i].is_empty()) {
        vec![]
    } else {
        vec![pb::PartItem {
            kind: s(PART_KIND),
            serial_number: s(PART_SERIAL_NUMBER),
            manufacturer: s(PART_MANUFACTURER),
            quantity: match c[PART_QUANTITY] {
                "" => 1,
                q => number(line, "part_quantity", q)?,
            },
            markings: list(c[PART_MARKINGS])
                .map(|text| pb::Marking {
                    text: text.to_owned(),
                    location: String::new(),
                })
                .collect(),
            ..Default::default()
        }]
    };
    let persons = if (PERSON_KIND..=PERSON_LICENCE).all(|i| c[i].is_empty()) {
        vec![]
    } else {
        let e = |field: &str, i: usize, prefix: &str, f: fn(&str) -> Option<i32>| {
            enum_value(line, field, c[i], prefix, f)
        };
        vec![pb::Person {
            kind: e("person_kind", PERSON_KIND, "PERSON_KIND", |n| {
                pb::PersonKind::from_str_name(n).map(|v| v as i32)
            })?,
            role: e("person_role", PERSON_ROLE, "PERSON_ROLE", |n| {
                pb::PersonRole::from_str_name(n).map(|v| v as i32)
            })?,
            name: s(PERSON_NAME),
            nationality: s(PERSON_NATIONALITY),
            sex: e("person_sex", PERSON_SEX, "PERSON_SEX", |n| {
                pb::PersonSex::from_str_name(n).map(|v| v as i32)
            })?,
            age_band: e("person_age_band", PERSON_AGE_BAND, "AGE_BAND", |n| {
                pb::AgeBand::from_str_name(n).map(|v| v as i32)
            })?,
            licence_reference: s(PERSON_LICENCE),
        }]
    };
    let shipment = if (SHIPMENT_IDENTIFIERS..=VENDOR_HANDLE).all(|i| c[i].is_empty()) {
        None
    } else {
        Some(pb::ShipmentFacts {
            identifiers: conveyance_ids(line, c[SHIPMENT_IDENTIFIERS])?,
            consignor: s(CONSIGNOR),
            consignee: s(CONSIGNEE),
            online_platform: s(ONLINE_PLATFORM),
            listing: s(LISTING),
            vendor_handle: s(VENDOR_HANDLE),
        })
    };
    let loss = if (LOSS_KIND..=REPORTING_AGENCY).all(|i| c[i].is_empty()) {
        None
    } else {
        Some(pb::LossReport {
            kind: enum_value(line, "loss_kind", c[LOSS_KIND], "LOSS_KIND", |n| {
                pb::LossKind::from_str_name(n).map(|v| v as i32)
            })?,
            source: enum_value(line, "loss_source", c[LOSS_SOURCE], "LOSS_SOURCE", |n| {
                pb::LossSource::from_str_name(n).map(|v| v as i32)
            })?,
            date: s(LOSS_DATE),
            place: Some(pb::Place {
                country: s(LOSS_COUNTRY),
                region: s(LOSS_REGION),
                locality: s(LOSS_LOCALITY),
                ..Default::default()
            }),
            circumstances: s(LOSS_CIRCUMSTANCES),
            reporting_agency: s(REPORTING_AGENCY),
        })
    };
    let route = c[19]
        .split(';')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|country| pb::RoutePoint {
            country: country.to_owned(),
            point: String::new(),
        })
        .collect::<Vec<_>>();
    let transport_mode = enum_value(line, "transport_mode", c[20], "TRANSPORT_MODE", |n| {
        pb::TransportMode::from_str_name(n).map(|v| v as i32)
    })?;
    let concealment_method = enum_value(
        line,
        "concealment_method",
        c[21],
        "CONCEALMENT_METHOD",
        |n| pb::ConcealmentMethod::from_str_name(n).map(|v| v as i32),
    )?;
    let has_trafficking =
        !route.is_empty() || transport_mode != 0 || concealment_method != 0 || !c[22].is_empty();
    Ok(pb::SeizureRecord {
        national_ref: s(0),
        event: Some(pb::SeizureEvent {
            date: s(1),
            place: Some(pb::Place {
                country: s(2),
                region: s(3),
                locality: s(4),
                border_crossing_point: s(5),
                ..Default::default()
            }),
            seizing_agency: enum_value(line, "seizing_agency", c[6], "AGENCY_KIND", |n| {
                pb::AgencyKind::from_str_name(n).map(|v| v as i32)
            })?,
        }),
        context: Some(pb::SeizureContext {
            seizure_kind: enum_value(line, "seizure_kind", c[7], "SEIZURE_KIND", |n| {
                pb::SeizureKind::from_str_name(n).map(|v| v as i32)
            })?,
            criminal_context: enum_value(
                line,
                "criminal_context",
                c[8],
                "CRIMINAL_CONTEXT",
                |n| pb::CriminalContext::from_str_name(n).map(|v| v as i32),
            )?,
        }),
        firearms: firearm.transpose()?.into_iter().collect(),
        parts,
        persons,
        shipment,
        loss,
        ammunition,
        trafficking: has_trafficking.then(|| pb::TraffickingFacts {
            route,
            transport_mode,
            concealment_method,
            concealment_details: s(22),
            ..Default::default()
        }),
        case_reference: s(23),
        notes: s(24),
        proceedings_status: enum_value(
            line,
            "proceedings_status",
            c[PROCEEDINGS_STATUS],
            "PROCEEDINGS_STATUS",
            |n| pb::ProceedingsStatus::from_str_name(n).map(|v| v as i32),
        )?,
        disposition: enum_value(line, "disposition", c[DISPOSITION], "DISPOSITION", |n| {
            pb::Disposition::from_str_name(n).map(|v| v as i32)
        })?,
        ballistic_references: c[BALLISTIC_REFERENCES]
            .split(';')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect(),
        ..Default::default()
    })
}

/// The short value name of an enumeration value as files and forms use it
/// (`TRANSPORT_MODE_MARITIME_CONTAINER` with prefix `TRANSPORT_MODE` gives `maritime_container`).
pub fn short_name(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix)
        .and_then(|s| s.strip_prefix('_'))
        .unwrap_or(full)
        .to_ascii_lowercase()
}

/// The values of a record under [`CSV_COLUMNS`] (first firearm and first ammunition item only):
/// the inverse of [`record_from_columns`], used to fill an edit form.
pub fn columns_of(r: &pb::SeizureRecord) -> Vec<String> {
    let ev = r.event.clone().unwrap_or_default();
    let place = ev.place.clone().unwrap_or_default();
    let ctx = r.context.unwrap_or_default();
    let fa = r.firearms.first().cloned().unwrap_or_default();
    let am = r.ammunition.first().cloned().unwrap_or_default();
    let part = r.parts.first().cloned().unwrap_or_default();
    let person = r.persons.first().cloned().unwrap_or_default();
    let sh = r.shipment.clone().unwrap_or_default();
    let loss = r.loss.clone().unwrap_or_default();
    let loss_place = loss.place.clone().unwrap_or_default();
    let t = r.trafficking.clone().unwrap_or_default();
    let e = |name: Option<&str>, prefix: &str| match name {
        Some(n) if !n.ends_with("_UNSPECIFIED") => short_name(n, prefix),
        _ => String::new(),
    };
    let num = |n: u64| if n == 0 { String::new() } else { n.to_string() };
    vec![
        r.national_ref.clone(),
        ev.date.clone(),
        place.country.clone(),
        place.region.clone(),
        place.locality.clone(),
        place.border_crossing_point.clone(),
        e(
            pb::AgencyKind::try_from(ev.seizing_agency)
                .ok()
                .map(|v| v.as_str_name()),
            "AGENCY_KIND",
        ),
        e(
            pb::SeizureKind::try_from(ctx.seizure_kind)
                .ok()
                .map(|v| v.as_str_name()),
            "SEIZURE_KIND",
        ),
        e(
            pb::CriminalContext::try_from(ctx.criminal_context)
                .ok()
                .map(|v| v.as_str_name()),
            "CRIMINAL_CONTEXT",
        ),
        fa.serial_number.clone(),
        fa.manufacturer.clone(),
        fa.model.clone(),
        e(
            pb::WeaponCategory::try_from(fa.category)
                .ok()
                .map(|v| v.as_str_name()),
            "WEAPON_CATEGORY",
        ),
        fa.calibre.clone(),
        fa.country_of_manufacture.clone(),
        e(
            pb::MarkingCondition::try_from(fa.marking_condition)
                .ok()
                .map(|v| v.as_str_name()),
            "MARKING_CONDITION",
        ),
        num(u64::from(fa.year_of_manufacture)),
        am.calibre.clone(),
        num(am.quantity),
        t.route
            .iter()
            .map(|p| p.country.as_str())
            .collect::<Vec<_>>()
            .join(";"),
        e(
            pb::TransportMode::try_from(t.transport_mode)
                .ok()
                .map(|v| v.as_str_name()),
            "TRANSPORT_MODE",
        ),
        e(
            pb::ConcealmentMethod::try_from(t.concealment_method)
                .ok()
                .map(|v| v.as_str_name()),
            "CONCEALMENT_METHOD",
        ),
        t.concealment_details.clone(),
        r.case_reference.clone(),
        r.notes.clone(),
        e(
            pb::WeaponStatus::try_from(fa.status)
                .ok()
                .map(|v| v.as_str_name()),
            "WEAPON_STATUS",
        ),
        e(
            pb::ProceedingsStatus::try_from(r.proceedings_status)
                .ok()
                .map(|v| v.as_str_name()),
            "PROCEEDINGS_STATUS",
        ),
        e(
            pb::Disposition::try_from(r.disposition)
                .ok()
                .map(|v| v.as_str_name()),
            "DISPOSITION",
        ),
        r.ballistic_references.join(";"),
        am.manufacturer.clone(),
        e(
            pb::AmmunitionType::try_from(am.ammunition_type)
                .ok()
                .map(|v| v.as_str_name()),
            "AMMUNITION_TYPE",
        ),
        am.headstamp.clone(),
        am.lot.clone(),
        num(u64::from(am.year)),
        part.kind.clone(),
        part.serial_number.clone(),
        part.manufacturer.clone(),
        num(part.quantity),
        part.markings
            .iter()
            .map(|m| m.text.as_str())
            .collect::<Vec<_>>()
            .join(";"),
        e(
            pb::PersonKind::try_from(person.kind)
                .ok()
                .map(|v| v.as_str_name()),
            "PERSON_KIND",
        ),
        e(
            pb::PersonRole::try_from(person.role)
                .ok()
                .map(|v| v.as_str_name()),
            "PERSON_ROLE",
        ),
        person.name.clone(),
        person.nationality.clone(),
        e(
            pb::PersonSex::try_from(person.sex)
                .ok()
                .map(|v| v.as_str_name()),
            "PERSON_SEX",
        ),
        e(
            pb::AgeBand::try_from(person.age_band)
                .ok()
                .map(|v| v.as_str_name()),
            "AGE_BAND",
        ),
        person.licence_reference.clone(),
        sh.identifiers
            .iter()
            .map(|i| {
                format!(
                    "{}:{}",
                    e(
                        pb::ConveyanceKind::try_from(i.kind)
                            .ok()
                            .map(|v| v.as_str_name()),
                        "CONVEYANCE_KIND"
                    ),
                    i.value
                )
            })
            .collect::<Vec<_>>()
            .join(";"),
        sh.consignor.clone(),
        sh.consignee.clone(),
        sh.online_platform.clone(),
        sh.listing.clone(),
        sh.vendor_handle.clone(),
        e(
            pb::LossKind::try_from(loss.kind)
                .ok()
                .map(|v| v.as_str_name()),
            "LOSS_KIND",
        ),
        e(
            pb::LossSource::try_from(loss.source)
                .ok()
                .map(|v| v.as_str_name()),
            "LOSS_SOURCE",
        ),
        loss.date.clone(),
        loss_place.country.clone(),
        loss_place.region.clone(),
        loss_place.locality.clone(),
        loss.circumstances.clone(),
        loss.reporting_agency.clone(),
        fa.import_marking
            .as_ref()
            .map(|m| m.country.clone())
            .unwrap_or_default(),
        num(u64::from(fa.import_marking.as_ref().map_or(0, |m| m.year))),
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn columns_round_trip_through_a_record() {
        let cols = [
            "SYN-1",
            "2025-03-14",
            "FRA",
            "R",
            "L",
            "BCP",
            "customs",
            "seized",
            "drug_trafficking",
            "AB-1",
            "Glock",
            "17",
            "revolver_or_self_loading_pistol",
            "9mm",
            "AUT",
            "intact",
            "2001",
            "9mm",
            "50",
            "TUR;BGR;FRA",
            "road",
            "vehicle_compartment",
            "fuel tank",
            "CASE-1",
            "synthetic",
            "printed_3d",
            "trial",
            "retained",
            "IBIS-FRA-1;IBIS-FRA-2",
            "Synthetic Ammunition",
            "expanding",
            "SYN 9MM 21",
            "LOT-21-7",
            "2021",
            "slide",
            "SL-1",
            "Synthetic Arms",
            "2",
            "SYN;PROOF-1",
            "legal",
            "broker",
            "Synthetic Brokers Ltd",
            "NLD",
            "",
            "",
            "SYN-BRK-0001",
            "container:SYNU1234567;air_waybill:176-12345675",
            "Synthetic Export Ltd",
            "Synthetic Import Ltd",
            "synthetic-market.example",
            "https://synthetic-market.example/listing/1",
            "synthetic_vendor",
            "stolen",
            "dealer",
            "2025-01-02",
            "FRA",
            "Synthetic region",
            "Synthetic town",
            "Synthetic break-in",
            "Synthetic police station",
            "FRA",
            "2003",
        ];
        let rec = record_from_columns(0, &cols).unwrap();
        let import = rec.firearms[0].import_marking.clone().unwrap();
        assert_eq!((import.country.as_str(), import.year), ("FRA", 2003));
        let back = columns_of(&rec);
        assert_eq!(
            back,
            cols.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_loss_report_file_needs_no_seizure_columns() {
        let pos = |names: &[&str]| -> Vec<usize> {
            names
                .iter()
                .map(|n| CSV_COLUMNS.iter().position(|c| c == n).unwrap())
                .collect()
        };
        let loss = pos(&[
            "national_ref",
            "loss_kind",
            "loss_source",
            "loss_date",
            "loss_country",
        ]);
        assert_eq!(missing_column(&loss), None);
        assert_eq!(missing_column(&loss[1..]), Some("national_ref"));
        assert_eq!(missing_column(&loss[..4]), Some("date"));
        let seizure = pos(&[
            "national_ref",
            "date",
            "country",
            "seizing_agency",
            "seizure_kind",
        ]);
        assert_eq!(missing_column(&seizure), None);
        assert_eq!(missing_column(&seizure[..4]), Some("seizure_kind"));
    }

    #[test]
    fn unknown_enum_value_names_the_field() {
        let mut cols = [""; N_COLUMNS];
        cols[20] = "teleport";
        let err = record_from_columns(7, &cols).unwrap_err();
        assert_eq!((err.line, err.field.as_str()), (7, "transport_mode"));
        for (at, name) in [
            (WEAPON_STATUS, "weapon_status"),
            (PROCEEDINGS_STATUS, "proceedings_status"),
            (DISPOSITION, "disposition"),
            (AMMUNITION_TYPE, "ammunition_type"),
        ] {
            let mut cols = [""; N_COLUMNS];
            cols[at] = "lost";
            let err = record_from_columns(3, &cols).unwrap_err();
            assert_eq!(err.field, name);
            assert_eq!(CSV_COLUMNS[at], name);
        }
    }

    #[test]
    fn a_row_with_loss_columns_is_a_loss_report() {
        let mut cols = [""; N_COLUMNS];
        cols[0] = "SYN-L-1";
        cols[9] = "SN-1";
        cols[LOSS_KIND] = "diverted";
        cols[LOSS_SOURCE] = "state_stockpile";
        cols[LOSS_DATE] = "2025-01-02";
        cols[LOSS_COUNTRY] = "FRA";
        let rec = record_from_columns(1, &cols).unwrap();
        let loss = rec.loss.unwrap();
        assert_eq!(loss.kind, pb::LossKind::Diverted as i32);
        assert_eq!(loss.source, pb::LossSource::StateStockpile as i32);
        cols[LOSS_SOURCE] = "neighbour";
        assert_eq!(
            record_from_columns(1, &cols).unwrap_err().field,
            "loss_source"
        );
        assert!(
            record_from_columns(1, &[""; N_COLUMNS])
                .unwrap()
                .loss
                .is_none()
        );
    }

    #[test]
    fn shipment_identifiers_are_kind_value_pairs() {
        let mut cols = [""; N_COLUMNS];
        cols[SHIPMENT_IDENTIFIERS] = "parcel_tracking:SYN 0001 ; flight:SY123";
        let rec = record_from_columns(1, &cols).unwrap();
        let ids = rec.shipment.unwrap().identifiers;
        assert_eq!(ids[0].kind, pb::ConveyanceKind::ParcelTracking as i32);
        assert_eq!(ids[0].value, "SYN 0001");
        assert_eq!(ids[1].kind, pb::ConveyanceKind::Flight as i32);
        for bad in ["MSCU1234567", "boat:X1", ":X1"] {
            cols[SHIPMENT_IDENTIFIERS] = bad;
            let err = record_from_columns(2, &cols).unwrap_err();
            assert_eq!(err.field, "shipment_identifiers", "{bad}");
        }
        let mut cols = [""; N_COLUMNS];
        cols[PERSON_SEX] = "female";
        cols[PERSON_AGE_BAND] = "25_to_34";
        let rec = record_from_columns(1, &cols).unwrap();
        assert_eq!(rec.persons[0].age_band, pb::AgeBand::AgeBand25To34 as i32);
        assert!(rec.shipment.is_none());
    }

    #[test]
    fn a_part_without_a_quantity_is_one_part() {
        let mut cols = [""; N_COLUMNS];
        cols[PART_KIND] = "frame";
        cols[PART_MARKINGS] = "A; ;B";
        let rec = record_from_columns(1, &cols).unwrap();
        assert_eq!(rec.parts[0].quantity, 1);
        let texts: Vec<&str> = rec.parts[0]
            .markings
            .iter()
            .map(|m| m.text.as_str())
            .collect();
        assert_eq!(texts, ["A", "B"]);
        assert!(rec.ammunition.is_empty());
        cols[PART_QUANTITY] = "many";
        assert_eq!(
            record_from_columns(1, &cols).unwrap_err().field,
            "part_quantity"
        );
        let mut cols = [""; N_COLUMNS];
        cols[AMMUNITION_LOT] = "L-1";
        let rec = record_from_columns(1, &cols).unwrap();
        assert_eq!(rec.ammunition[0].lot, "L-1");
        assert!(rec.parts.is_empty());
    }

    #[test]
    fn case_facts_are_read_from_their_columns() {
        let mut cols = [""; N_COLUMNS];
        cols[WEAPON_STATUS] = "craft-made";
        cols[PROCEEDINGS_STATUS] = "conviction";
        cols[DISPOSITION] = "destroyed";
        cols[BALLISTIC_REFERENCES] = " IBIS-1 ; ;IBIS-2";
        let rec = record_from_columns(1, &cols).unwrap();
        assert_eq!(rec.firearms[0].status, pb::WeaponStatus::CraftMade as i32);
        assert_eq!(
            rec.proceedings_status,
            pb::ProceedingsStatus::Conviction as i32
        );
        assert_eq!(rec.disposition, pb::Disposition::Destroyed as i32);
        assert_eq!(rec.ballistic_references, ["IBIS-1", "IBIS-2"]);
    }
}
