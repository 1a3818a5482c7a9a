//! Exports of published tables, pure: CSV and XLSX (one worksheet per table, `rust_xlsxwriter`)
//! laid out like the UNODC illicit arms flows
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
    /// The spreadsheet writer failed.
    #[error("xlsx: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
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

/// A worksheet name for a table: its id cut to Excel's 31 characters, made unique with a number.
fn sheet_name(id: &str, used: &mut Vec<String>) -> String {
    let clean: String = id
        .chars()
        .filter(|c| !matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\'))
        .take(31)
        .collect();
    let mut name = if clean.is_empty() {
        "table".to_string()
    } else {
        clean
    };
    let mut n = 2;
    while used.contains(&name) {
        let suffix = format!("~{n}");
        name = name.chars().take(31 - suffix.len()).collect::<String>() + &suffix;
        n += 1;
    }
    used.push(name.clone());
    name
}

/// Tables as an XLSX workbook, one worksheet per table in the layout of [`layout`]; counts are
/// numbers, suppressed cells the text [`SUPPRESSED_MARK`].
pub fn xlsx(tables: &[Published]) -> Result<Vec<u8>, ExportError> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let bold = rust_xlsxwriter::Format::new().set_bold();
    let mut used = Vec::new();
    for t in tables {
        let sheet = book.add_worksheet();
        sheet.set_name(sheet_name(&t.id, &mut used))?;
        let body_from = 5u32; // title block (4 rows) and header
        for (r, row) in layout(t).iter().enumerate() {
            let r = u32::try_from(r).unwrap_or(u32::MAX);
            for (c, text) in row.iter().enumerate() {
                let c = u16::try_from(c).unwrap_or(u16::MAX);
                let number = (r >= body_from && c > 0)
                    .then(|| text.parse::<u64>().ok())
                    .flatten();
                match number {
                    Some(v) => {
                        sheet.write_number(r, c, v as f64)?;
                    }
                    None if r == body_from - 1 || c == 0 => {
                        sheet.write_string_with_format(r, c, text, &bold)?;
                    }
                    None => {
                        sheet.write_string(r, c, text)?;
                    }
                }
            }
        }
        sheet.set_column_width(0, 34)?;
    }
    Ok(book.save_to_buffer()?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::stats::{Period, Table, suppress};
    use calamine::{Data, Reader, Xlsx};

    #[test]
    fn the_xlsx_export_opens_and_holds_the_published_table() {
        let t = Table {
            id: "firearms_by_country_of_manufacture".into(),
            title: "Firearms by country of manufacture".into(),
            unit: "firearms".into(),
            definition: "def".into(),
            period: Period::year(2025),
            rows: vec!["AUT".into(), "DEU".into()],
            columns: vec!["seized".into(), "found".into()],
            cells: vec![vec![1, 10], vec![12, 30]],
        };
        let p = suppress::publish(&t, 3);
        let other = suppress::publish(
            &Table {
                id: "firearms_by_country_of_manufacture_2".into(),
                ..t
            },
            0,
        );
        let bytes = xlsx(&[p, other]).unwrap();
        let mut book: Xlsx<_> =
            calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
        let names = book.sheet_names();
        assert_eq!(names.len(), 2);
        assert_eq!(names[0], "firearms_by_country_of_manufact");
        assert_ne!(names[0], names[1]);
        let range = book.worksheet_range(&names[0]).unwrap();
        assert_eq!(
            range.get_value((0, 1)),
            Some(&Data::String("firearms_by_country_of_manufacture".into()))
        );
        assert_eq!(
            range.get_value((2, 1)),
            Some(&Data::String("firearms".into()))
        );
        assert_eq!(
            range.get_value((4, 1)),
            Some(&Data::String("seized".into()))
        );
        // AUT/seized = 1 is suppressed: marked, not zero.
        assert_eq!(range.get_value((5, 0)), Some(&Data::String("AUT".into())));
        assert_eq!(range.get_value((5, 1)), Some(&Data::String("x".into())));
        assert_eq!(
            range.get_value((8, 0)).map(|d| d.to_string()),
            Some("Note".into())
        );
        let range = book.worksheet_range(&names[1]).unwrap();
        assert_eq!(range.get_value((6, 2)), Some(&Data::Float(30.0)));
        assert_eq!(range.get_value((7, 3)), Some(&Data::Float(53.0)));
    }
}
