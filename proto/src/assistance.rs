//! The assistance board as a CSV file (for the biennial national reports): one row per need,
//! offer and match as the caller may see it, synthetic or not as the board holds it. Shared by
//! the CLI (`directory assistance board --csv`) and the gateway's export.

use crate::v1 as pb;

/// The CSV header, in order.
pub const CSV_COLUMNS: [&str; 12] = [
    "kind",
    "id",
    "author",
    "country",
    "categories",
    "title",
    "regions",
    "status",
    "priority",
    "wanted_by_or_until",
    "covered_by_or_offer",
    "languages",
];

/// A category's short name (`marking`, `record_keeping`, …).
pub fn category_name(c: i32) -> String {
    pb::AssistanceCategory::try_from(c)
        .unwrap_or(pb::AssistanceCategory::Unspecified)
        .as_str_name()
        .trim_start_matches("ASSISTANCE_CATEGORY_")
        .to_lowercase()
}

/// A status's short name (`open`, `in_progress`, …).
pub fn status_name(s: i32) -> String {
    pb::AssistanceStatus::try_from(s)
        .unwrap_or(pb::AssistanceStatus::Unspecified)
        .as_str_name()
        .trim_start_matches("ASSISTANCE_STATUS_")
        .to_lowercase()
}

/// Errors writing the CSV.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The CSV writer failed.
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    /// The output is not UTF-8 (cannot happen with UTF-8 input).
    #[error("csv: {0}")]
    Utf8(#[from] std::string::FromUtf8Error),
    /// Flushing the buffer failed.
    #[error("csv: {0}")]
    Io(#[from] std::io::Error),
}

/// The board as CSV (header first). Cells starting with `=`, `+`, `-` or `@` are prefixed with
/// `'` so that a spreadsheet does not run them as formulas.
pub fn board_csv(b: &pb::AssistanceBoardResponse) -> Result<String, CsvError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_COLUMNS)?;
    let safe = |s: &str| {
        if s.starts_with(['=', '+', '-', '@']) {
            format!("'{s}")
        } else {
            s.to_owned()
        }
    };
    for n in &b.needs {
        let need = n.need.clone().unwrap_or_default();
        w.write_record([
            "need".to_owned(),
            safe(&need.id),
            n.author.clone(),
            n.country.clone(),
            category_name(need.category),
            safe(&need.title),
            n.regions.join(" "),
            status_name(n.status),
            need.priority.to_string(),
            need.wanted_by.clone(),
            n.covered_by.clone(),
            safe(&need.languages.join(" ")),
        ])?;
    }
    for o in &b.offers {
        let offer = o.offer.clone().unwrap_or_default();
        let cats: Vec<String> = offer.categories.iter().map(|c| category_name(*c)).collect();
        w.write_record([
            "offer".to_owned(),
            safe(&offer.id),
            o.author.clone(),
            o.country.clone(),
            cats.join(" "),
            safe(&offer.title),
            if offer.any_region {
                "any".to_owned()
            } else {
                o.regions.join(" ")
            },
            status_name(o.status),
            String::new(),
            offer.until.clone(),
            String::new(),
            safe(&offer.languages.join(" ")),
        ])?;
    }
    for m in &b.matches {
        let x = m.r#match.clone().unwrap_or_default();
        w.write_record([
            "match".to_owned(),
            safe(&x.id),
            x.donor.clone(),
            String::new(),
            String::new(),
            format!(
                "{} -> {}/{}",
                safe(&x.offer_id),
                x.requester,
                safe(&x.need_id)
            ),
            String::new(),
            status_name(x.status),
            String::new(),
            m.wanted_by.clone(),
            format!("{}/{}", x.donor, safe(&x.offer_id)),
            String::new(),
        ])?;
    }
    w.flush()?;
    let bytes = w.into_inner().map_err(|e| CsvError::Io(e.into_error()))?;
    Ok(String::from_utf8(bytes)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_board_as_csv_with_formulas_defused() {
        let b = pb::AssistanceBoardResponse {
            needs: vec![pb::AssistanceBoardNeed {
                author: "SEN-POL".into(),
                country: "SEN".into(),
                need: Some(pb::AssistanceNeed {
                    id: "n1".into(),
                    category: pb::AssistanceCategory::Marking as i32,
                    title: "=cmd()".into(),
                    priority: 1,
                    ..Default::default()
                }),
                status: pb::AssistanceStatus::Open as i32,
                ..Default::default()
            }],
            ..Default::default()
        };
        let csv = board_csv(&b).unwrap();
        let mut lines = csv.lines();
        assert_eq!(lines.next().unwrap(), CSV_COLUMNS.join(","));
        assert_eq!(
            lines.next().unwrap(),
            "need,n1,SEN-POL,SEN,marking,'=cmd(),,open,1,,,"
        );
    }
}
