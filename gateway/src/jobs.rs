//! Bulk imports as background jobs, so a large file shows progress instead of a hung page.
//!
//! A job parses the uploaded file, has the node check every batch without writing (dry run), and
//! writes only if the whole file passed: a file with any bad row writes nothing and reports every
//! problem with its line. Writing goes batch by batch, each atomic on the node; a record is
//! upserted by its national reference, so re-running an interrupted import is safe. Job state
//! lives in memory: a gateway restart forgets the progress page, not what was written.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use tracenet_proto::files::{self, CSV_COLUMNS, Format};
use tracenet_proto::v1 as pb;

use crate::error::{FieldProblem, GatewayError};
use crate::node::NodeLink;

/// Records per batch sent to the node.
pub const BATCH: usize = 500;
/// Most rows one uploaded file may hold.
pub const MAX_ROWS: usize = 200_000;
/// Most problems listed in a report.
pub const MAX_PROBLEMS: usize = 500;
/// Most jobs remembered (finished ones are forgotten first).
pub const MAX_JOBS: usize = 200;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading the file.
    Parsing,
    /// The node is checking the rows.
    Checking,
    /// Writing batches.
    Writing,
    /// Finished: everything written.
    Done,
    /// Finished: nothing written (problems listed), or a failure part-way (see `failure`).
    Failed,
}

impl Phase {
    /// The catalogue key of its label.
    pub fn label_key(self) -> &'static str {
        match self {
            Phase::Parsing => "import.phase.parsing",
            Phase::Checking => "import.phase.checking",
            Phase::Writing => "import.phase.writing",
            Phase::Done => "import.phase.done",
            Phase::Failed => "import.phase.failed",
        }
    }
}

/// A job's state as its page shows it.
#[derive(Debug, Clone)]
pub struct JobState {
    /// The user who started it (only they see it).
    pub owner: String,
    /// The uploaded file's name.
    pub file_name: String,
    /// Where it is.
    pub phase: Phase,
    /// Rows in the file.
    pub total: u64,
    /// Rows checked or written in the current phase.
    pub done: u64,
    /// Records created and updated.
    pub created: u64,
    /// Records that existed and were updated.
    pub updated: u64,
    /// Row problems (nothing written when any).
    pub problems: Vec<FieldProblem>,
    /// A failure that stopped the job (node unavailable...).
    pub failure: Option<String>,
}

impl JobState {
    /// Percent complete over both phases.
    pub fn percent(&self) -> u64 {
        let total = self.total.max(1);
        match self.phase {
            Phase::Parsing => 0,
            Phase::Checking => self.done * 50 / total,
            Phase::Writing => 50 + self.done * 50 / total,
            Phase::Done | Phase::Failed => 100,
        }
    }

    /// Whether the job has finished.
    pub fn finished(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::Failed)
    }
}

/// Running and finished jobs, by id.
#[derive(Debug, Default)]
pub struct Jobs {
    jobs: Mutex<HashMap<String, Arc<Mutex<JobState>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Jobs {
    /// The state of job `id`, if `owner` started it.
    pub fn get(&self, id: &str, owner: &str) -> Option<JobState> {
        let jobs = lock(&self.jobs);
        let job = jobs.get(id)?;
        let s = lock(job).clone();
        (s.owner == owner).then_some(s)
    }

    /// Starts importing `bytes` in the background; returns the job id.
    pub fn start(
        &self,
        id: String,
        owner: &str,
        file_name: &str,
        bytes: Vec<u8>,
        node: NodeLink,
    ) -> Result<(), GatewayError> {
        let format =
            Format::from_name(file_name).map_err(|e| GatewayError::BadRequest(e.to_string()))?;
        let state = Arc::new(Mutex::new(JobState {
            owner: owner.to_owned(),
            file_name: file_name.chars().take(120).collect(),
            phase: Phase::Parsing,
            total: 0,
            done: 0,
            created: 0,
            updated: 0,
            problems: Vec::new(),
            failure: None,
        }));
        {
            let mut jobs = lock(&self.jobs);
            // Finished jobs are kept for their report page, within a bound.
            if jobs.len() >= MAX_JOBS {
                jobs.retain(|_, j| !lock(j).finished());
            }
            if jobs.len() >= MAX_JOBS {
                return Err(GatewayError::Conflict(
                    "too many imports are running; try again when one has finished".into(),
                ));
            }
            jobs.insert(id, state.clone());
        }
        tokio::spawn(async move {
            let outcome = run(&state, format, bytes, node).await;
            let mut s = lock(&state);
            match outcome {
                Ok(()) if s.problems.is_empty() => s.phase = Phase::Done,
                Ok(()) => s.phase = Phase::Failed,
                Err(e) => {
                    s.failure = Some(e.detail());
                    s.phase = Phase::Failed;
                }
            }
        });
        Ok(())
    }
}

/// Splits `records` into consecutive batches of at most [`BATCH`] records each, and of at most
/// `max_bytes` once encoded for the node (a large record makes its batch smaller; a record larger
/// than `max_bytes` goes alone, and the node says it is too large).
pub fn batches(records: &[pb::SeizureRecord], max_bytes: usize) -> Vec<std::ops::Range<usize>> {
    use prost::Message as _;
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0usize);
    for (i, r) in records.iter().enumerate() {
        let len = r.encoded_len();
        // The field tag, the length prefix, the record, and its source line.
        let size = 1 + prost::encoding::encoded_len_varint(len as u64) + len + 10;
        if i > start && (i - start >= BATCH || bytes + size > max_bytes) {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < records.len() {
        out.push(start..records.len());
    }
    out
}

/// What one batch to the node may weigh: the node's limit less room for the rest of the message.
const BATCH_BYTES: usize = crate::ops::NODE_MAX_MESSAGE - 64 * 1024;

/// The column (and form field) a node field path belongs to (`firearms[0].serial_number` → `serial_number`,
/// `event.place.country` → `country`); empty when it has none (shown above the form).
pub fn column_of(path: &str) -> String {
    if CSV_COLUMNS.contains(&path) {
        return path.to_owned();
    }
    if path.starts_with("ammunition") {
        let last = path.rsplit('.').next().unwrap_or("");
        if last == "ammunition_type" {
            return last.to_owned();
        }
        return format!("ammunition_{last}");
    }
    if let Some(rest) = path.strip_prefix("persons[") {
        let last = rest.rsplit('.').next().unwrap_or("");
        let column = format!("person_{last}");
        return if CSV_COLUMNS.contains(&column.as_str()) {
            column
        } else {
            String::new()
        };
    }
    if let Some(rest) = path.strip_prefix("loss") {
        return match rest.rsplit('.').next().unwrap_or("") {
            "kind" => "loss_kind",
            "source" => "loss_source",
            "date" => "loss_date",
            "region" => "loss_region",
            "locality" => "loss_locality",
            "circumstances" => "loss_circumstances",
            "reporting_agency" => "reporting_agency",
            _ => "loss_country",
        }
        .into();
    }
    if path.starts_with("shipment.identifiers") {
        return "shipment_identifiers".into();
    }
    if path.starts_with("firearms[0].import_marking") {
        return if path.ends_with(".year") {
            "import_year"
        } else {
            "import_country"
        }
        .into();
    }
    if let Some(rest) = path.strip_prefix("parts[") {
        // parts[0].kind → part_kind; anything about a part's markings → part_markings.
        if rest.contains(".markings") {
            return "part_markings".into();
        }
        let last = rest.rsplit('.').next().unwrap_or("");
        let column = format!("part_{last}");
        return if CSV_COLUMNS.contains(&column.as_str()) {
            column
        } else {
            String::new()
        };
    }
    if path.starts_with("trafficking.route") {
        return "route".into();
    }
    if path.starts_with("firearms") && path.ends_with(".status") {
        return "weapon_status".into();
    }
    let last = path.rsplit('.').next().unwrap_or(path);
    let last = last.split('[').next().unwrap_or(last);
    if CSV_COLUMNS.contains(&last) {
        last.to_owned()
    } else if path == "firearms" {
        "serial_number".into()
    } else {
        String::new()
    }
}

/// A record from values named by [`CSV_COLUMNS`] (a form or a CSV row), with every problem of
/// reading them: each bad cell is reported and read as empty, then the rest is read again.
pub fn record_from_columns(
    line: u64,
    mut cols: files::Columns,
) -> (pb::SeizureRecord, Vec<FieldProblem>) {
    let mut problems = Vec::new();
    // Each round empties one more cell, so there are at most as many rounds as cells.
    for _ in 0..=cols.len() {
        match files::record_from_columns(line, &cols) {
            Ok(r) => return (r, problems),
            Err(e) => {
                let at = CSV_COLUMNS.iter().position(|c| *c == e.field);
                problems.push(FieldProblem {
                    field: e.field,
                    line,
                    reason: e.reason,
                });
                match at.and_then(|i| cols.get_mut(i)) {
                    Some(cell) if !cell.is_empty() => *cell = "",
                    // Nothing left to empty: give up on this row.
                    _ => break,
                }
            }
        }
    }
    (pb::SeizureRecord::default(), problems)
}

/// Adds the node's problems to those found reading the form or row, except where a field was
/// already reported (the node then only says it is missing, having received it emptied).
pub fn merge_problems(read: &mut Vec<FieldProblem>, node: Vec<FieldProblem>) {
    for p in node {
        let field = column_of(&p.field);
        let known = read
            .iter()
            .any(|r| r.line == p.line && !field.is_empty() && column_of(&r.field) == field);
        if !known {
            read.push(p);
        }
    }
}

/// A file as read: its records (bad cells read as empty, so the node can still check the rest)
/// with their lines, every problem found reading it, and how many rows it has.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Records, in file order.
    pub records: Vec<pb::SeizureRecord>,
    /// The line each record came from.
    pub lines: Vec<u64>,
    /// Every problem found reading the file (before the node checks anything).
    pub problems: Vec<FieldProblem>,
    /// Data rows in the file (blank lines of a JSON Lines file do not count).
    pub rows: u64,
}

/// One CSV row: its line and its cells under [`CSV_COLUMNS`].
type CsvRow = (u64, Vec<String>);

/// One row as read: its line, its record, and the problems of reading it; or a row that could
/// not be read at all.
type ReadRow = Result<(u64, pb::SeizureRecord, Vec<FieldProblem>), FieldProblem>;

/// The rows of a CSV file as cells under [`CSV_COLUMNS`] (so every bad cell of a row can be
/// reported, not only the first); the header must name known columns and the required ones.
fn csv_cells(bytes: &[u8]) -> Result<Vec<Result<CsvRow, FieldProblem>>, String> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = rdr.headers().map_err(|e| format!("header: {e}"))?.clone();
    let mut index = Vec::with_capacity(headers.len());
    for h in &headers {
        let pos = CSV_COLUMNS
            .iter()
            .position(|c| c.eq_ignore_ascii_case(h))
            .ok_or_else(|| {
                format!(
                    "header: unknown column '{h}' (known: {})",
                    CSV_COLUMNS.join(", ")
                )
            })?;
        index.push(pos);
    }
    if let Some(missing) = tracenet_proto::files::missing_column(&index) {
        return Err(format!("header: missing column '{missing}'"));
    }
    Ok(rdr
        .into_records()
        .take(MAX_ROWS + 1)
        .map(|r| {
            let r = r.map_err(|e| FieldProblem {
                field: String::new(),
                line: e.position().map_or(0, |p| p.line()),
                reason: format!("malformed CSV row: {e}"),
            })?;
            let line = r.position().map_or(0, |p| p.line());
            let mut cols = vec![String::new(); CSV_COLUMNS.len()];
            for (value, &col) in r.iter().zip(&index) {
                if let Some(slot) = cols.get_mut(col) {
                    value.clone_into(slot);
                }
            }
            Ok((line, cols))
        })
        .collect())
}

/// Reads the whole file: every row, every problem of every row.
pub fn parse(format: Format, bytes: Vec<u8>) -> Parsed {
    let mut out = Parsed::default();
    let rows: Vec<ReadRow> = match format {
        Format::Csv => match csv_cells(&bytes) {
            Ok(rows) => rows
                .into_iter()
                .map(|row| {
                    let (line, cells) = row?;
                    let mut cols: files::Columns = [""; files::N_COLUMNS];
                    for (slot, cell) in cols.iter_mut().zip(&cells) {
                        *slot = cell.as_str();
                    }
                    let (record, problems) = record_from_columns(line, cols);
                    Ok((line, record, problems))
                })
                .collect(),
            Err(e) => {
                out.problems.push(FieldProblem {
                    field: String::new(),
                    line: 1,
                    reason: e,
                });
                return out;
            }
        },
        Format::JsonLines => match files::rows(std::io::Cursor::new(bytes), format) {
            Ok(rows) => rows
                .take(MAX_ROWS + 1)
                .map(|row| match row {
                    Ok(r) => Ok((r.line, r.record, Vec::new())),
                    Err(e) => Err(FieldProblem {
                        field: e.field,
                        line: e.line,
                        reason: e.reason,
                    }),
                })
                .collect(),
            Err(e) => {
                out.problems.push(FieldProblem {
                    field: String::new(),
                    line: 1,
                    reason: e.to_string(),
                });
                return out;
            }
        },
    };
    let mut refs = HashSet::new();
    for row in rows {
        if out.rows as usize >= MAX_ROWS {
            out.problems.push(FieldProblem {
                field: String::new(),
                line: 0,
                reason: format!("a file may hold at most {MAX_ROWS} rows"),
            });
            break;
        }
        out.rows += 1;
        match row {
            Ok((line, record, problems)) => {
                out.problems.extend(problems);
                if !record.national_ref.is_empty() && !refs.insert(record.national_ref.clone()) {
                    out.problems.push(FieldProblem {
                        field: "national_ref".into(),
                        line,
                        reason: format!(
                            "'{}' appears more than once in the file",
                            record.national_ref
                        ),
                    });
                }
                out.lines.push(line);
                out.records.push(record);
            }
            Err(p) => out.problems.push(p),
        }
    }
    out
}

async fn run(
    state: &Mutex<JobState>,
    format: Format,
    bytes: Vec<u8>,
    node: NodeLink,
) -> Result<(), GatewayError> {
    let parsed = tokio::task::spawn_blocking(move || parse(format, bytes))
        .await
        .map_err(|_| GatewayError::Internal)?;
    let Parsed {
        records,
        lines,
        mut problems,
        rows,
    } = parsed;
    {
        let mut s = lock(state);
        s.total = rows;
        s.phase = Phase::Checking;
    }
    // The node checks every record, even those of rows with problems already, so a row lists
    // all its mistakes at once.
    let ranges = batches(&records, BATCH_BYTES);
    for range in &ranges {
        if problems.len() >= MAX_PROBLEMS {
            break;
        }
        let req = pb::ImportBatchRequest {
            records: records[range.clone()].to_vec(),
            source_lines: lines[range.clone()].to_vec(),
            dry_run: true,
        };
        match node.api().import_batch(req).await {
            Ok(_) => {}
            Err(s) => match crate::node::from_status(s) {
                GatewayError::Invalid(p) => merge_problems(&mut problems, p),
                other => return Err(other),
            },
        }
        lock(state).done += range.len() as u64;
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line);
        problems.truncate(MAX_PROBLEMS);
        lock(state).problems = problems;
        return Ok(());
    }
    {
        let mut s = lock(state);
        s.phase = Phase::Writing;
        s.done = 0;
    }
    for range in ranges {
        let req = pb::ImportBatchRequest {
            records: records[range.clone()].to_vec(),
            source_lines: lines[range.clone()].to_vec(),
            dry_run: false,
        };
        let out = node.api().import_batch(req).await?.into_inner();
        let mut s = lock(state);
        s.done += range.len() as u64;
        s.created += out.created;
        s.updated += out.updated;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_reports_every_problem_with_its_line() {
        let csv = "national_ref,date,country,seizing_agency,seizure_kind,transport_mode\n\
                   SYN-1,2025-01-01,FRA,police,seized,road\n\
                   SYN-1,2025-01-02,FRA,police,seized,road\n\
                   SYN-3,2025-01-03,FRA,police,seized,teleport\n";
        let parsed = parse(Format::Csv, csv.as_bytes().to_vec());
        let problems = parsed.problems;
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(
            (problems[0].line, problems[0].field.as_str()),
            (3, "national_ref")
        );
        assert_eq!(
            (problems[1].line, problems[1].field.as_str()),
            (4, "transport_mode")
        );
        assert_eq!(parsed.rows, 3, "every row is counted");
    }

    #[test]
    fn parse_reports_every_bad_cell_of_a_row() {
        let csv = "national_ref,date,country,seizing_agency,seizure_kind,transport_mode,serial_number,category,ammunition_quantity\n\
                   SYN-1,2025-01-01,FRA,spies,seized,teleport,S-1,laser,-3\n";
        let parsed = parse(Format::Csv, csv.as_bytes().to_vec());
        let mut fields: Vec<&str> = parsed.problems.iter().map(|p| p.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "ammunition_quantity",
                "category",
                "seizing_agency",
                "transport_mode"
            ]
        );
        assert!(parsed.problems.iter().all(|p| p.line == 2));
        assert_eq!((parsed.rows, parsed.records.len()), (1, 1));
    }

    #[test]
    fn parse_accepts_a_clean_file() {
        let jsonl = "{\"national_ref\":\"SYN-1\"}\n\n{\"national_ref\":\"SYN-2\"}\n";
        let parsed = parse(Format::JsonLines, jsonl.as_bytes().to_vec());
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        assert_eq!(parsed.records.len(), 2);
        assert_eq!(parsed.lines, vec![1, 3]);
        assert_eq!(parsed.rows, 2);
    }

    #[test]
    fn batches_respect_the_record_count_and_the_node_message_size() {
        let small = pb::SeizureRecord {
            national_ref: "SYN-1".into(),
            ..Default::default()
        };
        let big = pb::SeizureRecord {
            notes: "n".repeat(3000),
            ..Default::default()
        };
        let many = vec![small; BATCH * 2 + 1];
        let r = batches(&many, BATCH_BYTES);
        assert_eq!(
            r,
            vec![0..BATCH, BATCH..BATCH * 2, BATCH * 2..BATCH * 2 + 1]
        );
        let heavy = vec![big; 10];
        let r = batches(&heavy, 10_000);
        assert_eq!(r, vec![0..3, 3..6, 6..9, 9..10]);
        for range in &r {
            let req = pb::ImportBatchRequest {
                records: heavy[range.clone()].to_vec(),
                source_lines: range.clone().map(|i| i as u64 + 100_000).collect(),
                dry_run: true,
            };
            assert!(prost::Message::encoded_len(&req) <= 10_000);
        }
        assert!(batches(&[], 10).is_empty());
    }

    #[test]
    fn progress_spans_both_phases() {
        let mut s = JobState {
            owner: "a".into(),
            file_name: "f.csv".into(),
            phase: Phase::Checking,
            total: 10,
            done: 5,
            created: 0,
            updated: 0,
            problems: vec![],
            failure: None,
        };
        assert_eq!(s.percent(), 25);
        s.phase = Phase::Writing;
        assert_eq!(s.percent(), 75);
        s.phase = Phase::Done;
        assert_eq!(s.percent(), 100);
        assert!(s.finished());
    }
}
