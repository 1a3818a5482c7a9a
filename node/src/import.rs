//! Reading import files from disk for the CLI: the formats themselves (JSON Lines and CSV, row
//! by row with line numbers) are in [`tracenet_proto::files`], shared with the gateway.
//! [`check_file`] validates a whole file without writing anything, row by row exactly as the
//! node validates an import batch ([`crate::model::batch::BatchCheck`]); the CLI writes only
//! files that pass.

use std::fs::File;
use std::path::Path;

use tracenet_proto::files::{self, FileError, Format, Row};
use tracenet_proto::v1 as pb;

use crate::model::batch::BatchCheck;

pub use tracenet_proto::files::CSV_COLUMNS;

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
    /// The format is unknown or the header unusable. Not retryable.
    #[error(transparent)]
    Format(#[from] FileError),
}

/// Opens a file and streams its rows.
pub fn open(
    path: &Path,
) -> Result<Box<dyn Iterator<Item = Result<Row, pb::RowError>>>, ImportError> {
    let format = Format::from_name(&path.display().to_string())?;
    let file = File::open(path).map_err(|source| ImportError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(files::rows(file, format)?)
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
    let mut check = BatchCheck::new("file");
    for row in open(path)? {
        out.rows += 1;
        if out.rows.is_multiple_of(10_000) {
            progress(out.rows);
        }
        match row {
            Ok(row) => {
                if let Err(errors) = check.row(row.line, row.record) {
                    out.errors.extend(errors);
                }
            }
            Err(e) => out.errors.push(e),
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
        assert!(crate::model::validate(first.record.clone()).is_ok());
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
        assert!(matches!(
            open(&p).err(),
            Some(ImportError::Format(FileError::Header(_)))
        ));
        let (_d, p) = write("a.csv", "national_ref,date\n");
        assert!(matches!(
            open(&p).err(),
            Some(ImportError::Format(FileError::Header(_)))
        ));
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
        assert!(Format::from_name("x.xlsx").is_err());
        assert_eq!(Format::from_name("x.NDJSON").unwrap(), Format::JsonLines);
    }
}
