//! Reading import files: JSON Lines (one `SeizureRecord` per line in the canonical proto3 JSON
//! mapping) and CSV (one firearm per row, the columns listed in [`CSV_COLUMNS`]).
//!
//! Reading is streaming, so files of millions of rows need little memory. Every row carries its
//! line number, and every problem is reported as a [`pb::RowError`] with that line, so a person
//! can fix the file. [`check_file`] validates a whole file without writing anything; the CLI
//! writes only files that pass.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use tracenet_proto::v1 as pb;

use crate::model;

/// Why an import file cannot be read at all (row problems are [`pb::RowError`]s instead).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be opened or read. Retrying helps only if the cause is transient.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file type is not recognised from its extension. Not retryable.
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
    /// The format named by the file's extension.
    pub fn from_path(path: &Path) -> Result<Format, ImportError> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("jsonl" | "ndjson" | "json") => Ok(Format::JsonLines),
            Some("csv") => Ok(Format::Csv),
            _ => Err(ImportError::UnknownFormat(path.display().to_string())),
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

/// The CSV columns, in the order the template uses. All but `national_ref`, `date`, `country`,
/// `seizing_agency` and `seizure_kind` may be empty. Enumerations use the lowercase value name
/// (e.g. `customs`, `maritime_container`); `route` lists countries separated by `;`.
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
];

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
) -> Result<Box<dyn Iterator<Item = Result<Row, pb::RowError>>>, ImportError> {
    match format {
        Format::JsonLines => Ok(Box::new(json_rows(BufReader::new(reader)))),
        Format::Csv => Ok(Box::new(csv_rows(reader)?)),
    }
}

/// Opens a file and streams its rows.
pub fn open(
    path: &Path,
) -> Result<Box<dyn Iterator<Item = Result<Row, pb::RowError>>>, ImportError> {
    let format = Format::from_path(path)?;
    let file = File::open(path).map_err(|source| ImportError::Io {
        path: path.display().to_string(),
        source,
    })?;
    rows(file, format)
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

fn csv_rows(
    reader: impl Read,
) -> Result<impl Iterator<Item = Result<Row, pb::RowError>>, ImportError> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = rdr
        .headers()
        .map_err(|e| ImportError::Header(e.to_string()))?
        .clone();
    let mut index = Vec::with_capacity(headers.len());
    for h in &headers {
        let pos = CSV_COLUMNS
            .iter()
            .position(|c| c.eq_ignore_ascii_case(h))
            .ok_or_else(|| {
                ImportError::Header(format!(
                    "unknown column '{h}' (known: {})",
                    CSV_COLUMNS.join(", ")
                ))
            })?;
        index.push(pos);
    }
    for required in [
        "national_ref",
        "date",
        "country",
        "seizing_agency",
        "seizure_kind",
    ] {
        let pos = CSV_COLUMNS.iter().position(|c| *c == required);
        if !index.iter().any(|i| Some(*i) == pos) {
            return Err(ImportError::Header(format!("missing column '{required}'")));
        }
    }
    Ok(rdr.into_records().map(move |r| {
        let r = r.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            row_error(line, "", format!("malformed CSV row: {e}"))
        })?;
        let line = r.position().map_or(0, |p| p.line());
        let mut cols: [&str; 25] = [""; 25];
        for (value, &col) in r.iter().zip(&index) {
            if let Some(slot) = cols.get_mut(col) {
                *slot = value;
            }
        }
        csv_record(line, &cols).map(|record| Row { line, record })
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

fn csv_record(line: u64, c: &[&str; 25]) -> Result<pb::SeizureRecord, pb::RowError> {
    let s = |i: usize| c[i].to_owned();
    let firearm = (!c[9].is_empty() || !c[10].is_empty() || !c[11].is_empty()).then(|| {
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
            ..Default::default()
        })
    });
    let ammunition = if c[17].is_empty() && c[18].is_empty() {
        vec![]
    } else {
        vec![pb::AmmunitionItem {
            calibre: s(17),
            quantity: number(line, "ammunition_quantity", c[18])?,
            ..Default::default()
        }]
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
        ..Default::default()
    })
}

/// The outcome of checking a whole file.
#[derive(Debug, Default)]
pub struct FileCheck {
    /// Rows read.
    pub rows: u64,
    /// Every problem found, in file order.
    pub errors: Vec<pb::RowError>,
}

/// Parses and validates every row of a file without writing anything. `progress` is called
/// with the number of rows read so far, every 10,000 rows.
pub fn check_file(path: &Path, mut progress: impl FnMut(u64)) -> Result<FileCheck, ImportError> {
    let mut out = FileCheck::default();
    let mut seen = HashSet::new();
    for row in open(path)? {
        out.rows += 1;
        if out.rows.is_multiple_of(10_000) {
            progress(out.rows);
        }
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                out.errors.push(e);
                continue;
            }
        };
        match model::validate(row.record) {
            Ok(v) => {
                if !seen.insert(v.national_ref().to_owned()) {
                    out.errors.push(row_error(
                        row.line,
                        "national_ref",
                        format!("'{}' appears more than once in the file", v.national_ref()),
                    ));
                }
            }
            Err(model::Invalid(errs)) => out.errors.extend(
                errs.into_iter()
                    .map(|e| row_error(row.line, &e.field, e.reason)),
            ),
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const CSV: &str = "national_ref,date,country,seizing_agency,seizure_kind,serial_number,manufacturer,marking_condition,route,transport_mode,concealment_method\n\
SYN-1,2025-03-14,FRA,customs,seized,AB-1234,Glock,intact,TUR;BGR;FRA,maritime_container,mixed_with_cargo\n\
SYN-2,2025-02-30,FRA,police,found,CD-1,Beretta,intact,,road,\n\
SYN-3,2025-03-01,FRA,police,seized,,Beretta,obliterated,,teleport,\n";

    fn write(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn csv_rows_map_to_records() {
        let (_d, p) = write("a.csv", CSV);
        let rows: Vec<_> = open(&p).unwrap().collect();
        let first = rows[0].as_ref().unwrap();
        assert_eq!(first.line, 2);
        let t = first.record.trafficking.as_ref().unwrap();
        assert_eq!(t.route.len(), 3);
        assert_eq!(
            t.transport_mode,
            pb::TransportMode::MaritimeContainer as i32
        );
        assert_eq!(
            t.concealment_method,
            pb::ConcealmentMethod::MixedWithCargo as i32
        );
        assert!(model::validate(first.record.clone()).is_ok());
        let bad = rows[2].as_ref().unwrap_err();
        assert_eq!((bad.line, bad.field.as_str()), (4, "transport_mode"));
    }

    #[test]
    fn check_reports_each_bad_row_with_its_line() {
        let (_d, p) = write("a.csv", CSV);
        let check = check_file(&p, |_| {}).unwrap();
        assert_eq!(check.rows, 3);
        let lines: Vec<(u64, &str)> = check
            .errors
            .iter()
            .map(|e| (e.line, e.field.as_str()))
            .collect();
        assert_eq!(lines, vec![(3, "event.date"), (4, "transport_mode")]);
    }

    #[test]
    fn unknown_csv_columns_are_refused() {
        let (_d, p) = write("a.csv", "national_ref,date,country,colour\n");
        assert!(matches!(open(&p).err(), Some(ImportError::Header(_))));
        let (_d, p) = write("a.csv", "national_ref,date\n");
        assert!(matches!(open(&p).err(), Some(ImportError::Header(_))));
    }

    #[test]
    fn json_lines_rows_and_errors_keep_line_numbers() {
        let fra = crate::country::CountryCode::parse("FRA").unwrap();
        let good = serde_json::to_string(&crate::sample::record(fra, 1)).unwrap();
        let text = format!("{good}\n\n{{\"national_ref\": 5}}\n{good}\n");
        let (_d, p) = write("a.jsonl", &text);
        let check = check_file(&p, |_| {}).unwrap();
        assert_eq!(check.rows, 3);
        let lines: Vec<u64> = check.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4], "{:?}", check.errors);
        assert!(check.errors[1].reason.contains("more than once"));
    }

    #[test]
    fn the_example_csv_file_is_valid() {
        let p = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/examples/seizures.csv"
        ));
        let check = check_file(p, |_| {}).unwrap();
        assert_eq!(check.rows, 2);
        assert!(check.errors.is_empty(), "{:?}", check.errors);
    }

    #[test]
    fn unknown_extension_is_refused() {
        assert!(Format::from_path(Path::new("x.xlsx")).is_err());
        assert_eq!(
            Format::from_path(Path::new("x.NDJSON")).unwrap(),
            Format::JsonLines
        );
    }
}
