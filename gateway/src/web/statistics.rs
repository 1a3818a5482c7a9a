//! Statistics: the node's own tables of a year or quarter (or a member's, under that member's
//! statistics rule), each as a table in the questionnaire layout with a chart of its row totals,
//! and SDG indicator 16.4.2 with its proportion over the years. Suppressed cells are shown as
//! "x", never as 0.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use serde::Deserialize;
use tracenet_proto::v1 as pb;

use super::{Officer, Page, PageResult, fail, render};
use crate::app::App;
use crate::auth::Capability;
use crate::charts;
use crate::error::{FieldProblem, GatewayError};
use crate::i18n::Lang;
use crate::ops;

/// Years of the SDG 16.4.2 series shown.
const SERIES_YEARS: u32 = 5;

/// The query string.
#[derive(Debug, Default, Deserialize)]
pub(super) struct StatsQuery {
    #[serde(default)]
    year: String,
    #[serde(default)]
    quarter: String,
    #[serde(default)]
    peer: String,
    /// "on" from the checkbox: the region's total (on a hub).
    #[serde(default)]
    regional: String,
}

/// One table as shown.
#[derive(Debug)]
struct TableView {
    id: String,
    title: String,
    unit: String,
    definition: String,
    columns: Vec<String>,
    /// Row label, then each cell and the row total as text.
    rows: Vec<(String, Vec<String>)>,
    suppressed: bool,
    svg: String,
}

#[derive(Template)]
#[template(path = "statistics.html")]
struct StatisticsPage {
    page: Page,
    year: String,
    /// Quarter choices: value, label, selected.
    quarters: Vec<(String, String, bool)>,
    peer: String,
    /// The regional total was asked for.
    regional: bool,
    error: Option<String>,
    /// Whose tables and for which period.
    heading: String,
    /// The disclosing rule, for a member's tables.
    rule: String,
    sdg: String,
    series_svg: String,
    tables: Vec<TableView>,
}

/// The label of a row or column code in the page's language: enumeration values through their
/// proto names, the rest through `stats.label.<code>`, else the code itself (countries, calibres).
fn label(lang: Lang, table: &str, code: &str) -> String {
    if let Some(t) = lang.lookup(&format!("stats.label.{code}")) {
        return t.to_owned();
    }
    let prefix = match table {
        "firearms_by_category" => "WEAPON_CATEGORY_",
        "firearms_by_transport_mode" => "TRANSPORT_MODE_",
        "firearms_by_concealment" => "CONCEALMENT_METHOD_",
        "firearms_by_criminal_context" => "CRIMINAL_CONTEXT_",
        "persons_by_role" => "PERSON_ROLE_",
        "persons_by_sex" => "PERSON_SEX_",
        "persons_by_age_band" => "AGE_BAND_",
        "records_by_agency" => "AGENCY_KIND_",
        _ => return code.to_owned(),
    };
    let full = format!("{prefix}{}", code.to_ascii_uppercase());
    match lang.lookup(&format!("enum.{full}")) {
        Some(t) => t.to_owned(),
        None => code.to_owned(),
    }
}

fn cell_text(lang: Lang, c: &pb::StatisticsCell) -> String {
    if c.suppressed {
        "x".into()
    } else {
        lang.number(c.value)
    }
}

fn view(lang: Lang, t: &pb::StatisticsTable) -> TableView {
    let width = t.columns.len() + 1;
    let mut rows = Vec::new();
    let mut totals = Vec::new();
    let labels = t
        .rows
        .iter()
        .map(|r| label(lang, &t.id, r))
        .chain(std::iter::once(lang.t("stats.total").to_owned()));
    for (i, (name, line)) in labels.zip(t.cells.chunks(width)).enumerate() {
        if i < t.rows.len()
            && let Some(total) = line.last()
            && !total.suppressed
            && total.value > 0
        {
            totals.push((name.clone(), total.value));
        }
        rows.push((name, line.iter().map(|c| cell_text(lang, c)).collect()));
    }
    let title = match lang.lookup(&format!("stats.table.{}", t.id)) {
        Some(s) => s.to_owned(),
        None => t.title.clone(),
    };
    let mut columns: Vec<String> = t.columns.iter().map(|c| label(lang, &t.id, c)).collect();
    columns.push(lang.t("stats.total").to_owned());
    TableView {
        id: t.id.clone(),
        svg: charts::bars(&title, &totals),
        title,
        unit: t.unit.clone(),
        definition: t.definition.clone(),
        columns,
        rows,
        suppressed: t.cells.iter().any(|c| c.suppressed),
    }
}

fn sdg_text(lang: Lang, s: &pb::StatisticsSdg) -> String {
    if s.suppressed {
        return format!("{}: {}", s.period, lang.t("stats.sdg_withheld"));
    }
    match s.proportion {
        Some(p) => format!(
            "{}: {} / {} = {:.1} %",
            s.period,
            lang.number(s.numerator),
            lang.number(s.denominator),
            p * 100.0
        ),
        None => format!("{}: {}", s.period, lang.t("stats.sdg_undefined")),
    }
}

fn current_year(app: &App) -> u32 {
    let days = (app.clock)().div_euclid(86_400);
    // Years of 365.2425 days since 1970: exact enough for a default.
    (1970 + days * 400 / 146_097) as u32
}

/// The page: the form, and the tables of the period asked (this year by default).
pub async fn page(
    State(app): State<Arc<App>>,
    o: Officer,
    Query(q): Query<StatsQuery>,
) -> PageResult {
    o.require(Capability::Analyse).map_err(fail(&o, &app))?;
    let lang = o.lang;
    let year = match q.year.trim() {
        "" => current_year(&app),
        y => y.parse().unwrap_or(0),
    };
    let quarter: u32 = q.quarter.trim().parse().unwrap_or(0);
    let peer = q.peer.trim().to_ascii_uppercase();
    let regional = !q.regional.trim().is_empty();
    let mut p = StatisticsPage {
        page: o.page(&app, "stats.title"),
        year: year.to_string(),
        quarters: (0..=4)
            .map(|q| {
                let label = match q {
                    0 => lang.t("stats.whole_year").to_owned(),
                    q => format!("Q{q}"),
                };
                (q.to_string(), label, q == quarter)
            })
            .collect(),
        peer: peer.clone(),
        regional,
        error: None,
        heading: String::new(),
        rule: String::new(),
        sdg: String::new(),
        series_svg: String::new(),
        tables: Vec::new(),
    };
    if !(1900..=2199).contains(&year) || quarter > 4 {
        p.error = Some(lang.t("stats.bad_period").to_owned());
        return Ok(render(&p));
    }
    let req = pb::StatisticsLocalRequest {
        year,
        quarter,
        peer_node: peer.clone(),
        series_from: if peer.is_empty() && !regional {
            year.saturating_sub(SERIES_YEARS - 1).max(1900)
        } else {
            0
        },
        inquiry: None,
        regional,
        deadline_ms: 0,
    };
    match ops::statistics(&app, o.caller(), req).await {
        Ok(r) => {
            let report = r.report.unwrap_or_default();
            p.heading = format!("{} · {}", report.node_id, report.period);
            if !report.policy_rule.is_empty() {
                p.rule = format!(
                    "{} {} ({})",
                    lang.t("stats.disclosed_under"),
                    report.policy_rule,
                    report.policy_version
                );
            }
            if let Some(r) = &r.round {
                let dropped: Vec<&str> = r.dropped.iter().map(|d| d.node_id.as_str()).collect();
                p.rule = format!(
                    "{} {}: {}/{} {}{}",
                    lang.t("stats.round"),
                    r.round_id,
                    r.received.len(),
                    r.members.len(),
                    lang.t("stats.round_members"),
                    if dropped.is_empty() {
                        String::new()
                    } else {
                        format!(" · {}: {}", lang.t("stats.dropped_out"), dropped.join(", "))
                    }
                );
            }
            if let Some(s) = &report.sdg {
                p.sdg = sdg_text(lang, s);
            }
            let series: Vec<(String, u64)> = r
                .series
                .iter()
                .map(|s| match s.proportion {
                    Some(v) => (s.period.clone(), (v * 100.0).round() as u64),
                    // No firearm in the denominator: an empty column marked as undefined.
                    None => (format!("{} –", s.period), 0),
                })
                .collect();
            if !series.is_empty() {
                p.series_svg = charts::columns(lang.t("stats.sdg_series"), &series);
            }
            p.tables = report.tables.iter().map(|t| view(lang, t)).collect();
        }
        Err(GatewayError::Invalid(problems)) => {
            p.error = Some(
                problems
                    .iter()
                    .map(|f: &FieldProblem| format!("{}: {}", f.field, f.reason))
                    .collect::<Vec<_>>()
                    .join("; "),
            );
        }
        Err(GatewayError::Forbidden) => return Err(fail(&o, &app)(GatewayError::Forbidden)),
        Err(e) => p.error = Some(e.to_string()),
    }
    Ok(render(&p))
}
