//! Checking many records at once, the same way wherever they come from (an import batch over the
//! local API, an import file checked by the CLI): each row validated, each national reference
//! used once, and every problem reported with its line. Also the node's own-country rule, which
//! every write of a record obeys.

use std::collections::HashSet;

use tracenet_proto::v1 as pb;

use super::{FieldError, Invalid, ValidRecord, validate};
use crate::country::CountryCode;

/// Field problems as row errors at `line` (0 when not from a file).
pub fn row_errors(line: u64, errors: Vec<FieldError>) -> impl Iterator<Item = pb::RowError> {
    errors.into_iter().map(move |e| pb::RowError {
        line,
        field: e.field,
        reason: e.reason,
    })
}

/// A node records events in its own country only.
pub fn check_own_country(rec: &ValidRecord, own: CountryCode) -> Result<(), FieldError> {
    if rec.country() == own {
        Ok(())
    } else {
        Err(FieldError {
            field: "event.place.country".into(),
            reason: format!("this node records events in {own} only"),
        })
    }
}

/// Rows checked so far, to find a national reference used twice.
#[derive(Debug)]
pub struct BatchCheck {
    seen: HashSet<String>,
    within: &'static str,
}

impl BatchCheck {
    /// A check of rows `within` one batch or file (the words in a duplicate's reason).
    pub fn new(within: &'static str) -> BatchCheck {
        BatchCheck {
            seen: HashSet::new(),
            within,
        }
    }

    /// Validates the row at `line`; a national reference already seen is a problem of this row.
    pub fn row(
        &mut self,
        line: u64,
        rec: pb::SeizureRecord,
    ) -> Result<ValidRecord, Vec<pb::RowError>> {
        match validate(rec) {
            Ok(v) if !self.seen.insert(v.national_ref().to_owned()) => Err(vec![pb::RowError {
                line,
                field: "national_ref".into(),
                reason: format!(
                    "'{}' appears more than once in the {}",
                    v.national_ref(),
                    self.within
                ),
            }]),
            Ok(v) => Ok(v),
            Err(Invalid(errs)) => Err(row_errors(line, errs).collect()),
        }
    }
}

/// The line of row `i`: from `lines` when given, else counting from 1.
pub fn line_of(lines: &[u64], i: usize) -> u64 {
    lines.get(i).copied().unwrap_or(i as u64 + 1)
}

/// Validates a whole batch for a node of country `own`: every row's problems with its line, or
/// the valid records. Records of another country are reported only once the batch is otherwise
/// valid.
pub fn validate_batch(
    records: Vec<pb::SeizureRecord>,
    lines: &[u64],
    own: CountryCode,
) -> Result<Vec<ValidRecord>, Vec<pb::RowError>> {
    let mut check = BatchCheck::new("batch");
    let mut valid = Vec::with_capacity(records.len());
    let mut errors = Vec::new();
    for (i, rec) in records.into_iter().enumerate() {
        match check.row(line_of(lines, i), rec) {
            Ok(v) => valid.push(v),
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let wrong_country: Vec<pb::RowError> = valid
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            check_own_country(v, own)
                .err()
                .map(|e| row_errors(line_of(lines, i), vec![e]))
        })
        .flatten()
        .collect();
    if wrong_country.is_empty() {
        Ok(valid)
    } else {
        Err(wrong_country)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::sample;

    fn c(s: &str) -> CountryCode {
        CountryCode::parse(s).unwrap()
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let fra = c("FRA");
        let mut bad = sample::record(fra, 2);
        bad.event.as_mut().unwrap().date = "2025-02-30".into();
        let dup = sample::record(fra, 1);
        let recs = vec![sample::record(fra, 1), bad, dup];
        let errs = validate_batch(recs.clone(), &[10, 11, 12], fra).unwrap_err();
        let at: Vec<(u64, &str)> = errs.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(at, [(11, "event.date"), (12, "national_ref")]);
        assert!(errs[1].reason.ends_with("more than once in the batch"));
        // Without source lines, rows count from 1.
        let errs = validate_batch(recs, &[], fra).unwrap_err();
        assert_eq!(errs[0].line, 2);
    }

    #[test]
    fn another_countrys_records_are_refused_once_the_batch_is_valid() {
        let (fra, deu) = (c("FRA"), c("DEU"));
        let recs = vec![sample::record(fra, 1), sample::record(deu, 2)];
        let errs = validate_batch(recs.clone(), &[], fra).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(
            (errs[0].line, errs[0].field.as_str()),
            (2, "event.place.country")
        );
        assert_eq!(errs[0].reason, "this node records events in FRA only");
        assert_eq!(
            validate_batch(recs[..1].to_vec(), &[], fra).unwrap().len(),
            1
        );
    }

    #[test]
    fn a_file_check_names_the_file_in_duplicate_reasons() {
        let fra = c("FRA");
        let mut check = BatchCheck::new("file");
        assert!(check.row(2, sample::record(fra, 1)).is_ok());
        let dup = check.row(3, sample::record(fra, 1)).unwrap_err();
        assert_eq!(dup[0].line, 3);
        assert!(dup[0].reason.ends_with("more than once in the file"));
    }
}
