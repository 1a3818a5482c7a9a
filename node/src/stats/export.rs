//! Exports of published tables, pure: CSV laid out like the UNODC illicit arms flows
//! questionnaire's tables (a title block naming the table, period, unit and definition, then one
//! row per category with one column per seizure kind and a total). Suppressed cells are written
//! as [`SUPPRESSED_MARK`], never as 0, and a note says so.

use super::suppress::{Cell, Published};

/// How a suppressed cell is written.
pub const SUPPRESSED_MARK: &str = "x";

/// Errors of exports.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The CSV writer failed.
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    /// The output was not UTF-8 or could not be taken from the writer.
    #[error("csv output: {0}")]
    Output(String),
}

/// A published cell as text.
pub fn cell_text(cell: Cell) -> String {
    match cell {
        Cell::Value(v) => v.to_string(),
        Cell::Suppressed => SUPPRESSED_MARK.to_string(),
    }
}

/// The rows of one table as exported (title block, header, body, totals, note), shared by CSV and
/// spreadsheet exports.
pub fn layout(table: &Published) -> Vec<Vec<String>> {
    let mut out = vec![
        vec!["Table".to_string(), table.id.clone(), table.title.clone()],
        vec!["Period".to_string(), table.period.label()],
        vec!["Unit".to_string(), table.unit.clone()],
        vec!["Definition".to_string(), table.definition.clone()],
    ];
    let mut header = vec!["category".to_string()];
    header.extend(table.columns.iter().cloned());
    header.push("total".to_string());
    out.push(header);
    let labels = table
        .rows
        .iter()
        .cloned()
        .chain(std::iter::once("total".to_string()));
    for (label, line) in labels.zip(&table.cells) {
        let mut row = vec![label];
        row.extend(line.iter().map(|c| cell_text(*c)));
        out.push(row);
    }
    if table.suppressed() > 0 {
        out.push(vec![
            "Note".to_string(),
            format!(
                "{SUPPRESSED_MARK}: suppressed (fewer than {} or needed to protect such a cell)",
                table.threshold
            ),
        ]);
    }
    out
}

/// Tables as one CSV document, tables separated by an empty line.
pub fn csv(tables: &[Published]) -> Result<String, ExportError> {
    let mut w = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    for (i, t) in tables.iter().enumerate() {
        if i > 0 {
            w.write_record([""])?;
        }
        for row in layout(t) {
            w.write_record(&row)?;
        }
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ExportError::Output(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| ExportError::Output(e.to_string()))
}
