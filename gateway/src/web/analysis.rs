//! Routes and concealment: a query across the federation (this node's records included) by
//! route country, transport mode, concealment method and period, shown as a table and as
//! charts (seizures per month, routes on a map with the same hops as a table, concealment
//! methods), and exportable as CSV.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use askama::Template;
use axum::extract::{Form, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use tracenet_proto::v1 as pb;

use super::forms::{self, SelectOption};
use super::{Officer, Page, PageResult, fail, render};
use crate::app::App;
use crate::auth::Capability;
use crate::charts;
use crate::error::GatewayError;
use crate::i18n::Lang;
use crate::ops;

/// Query form values.
#[derive(Debug, Default, Deserialize)]
pub(super) struct QueryForm {
    #[serde(default)]
    route_country: String,
    #[serde(default)]
    transport_mode: String,
    #[serde(default)]
    concealment_method: String,
    #[serde(default)]
    date_from: String,
    #[serde(default)]
    date_to: String,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    legal_basis: String,
}

/// Results as shown.
#[derive(Debug)]
struct ResultView {
    total: String,
    members: String,
    failed: String,
    /// Members whose answer reached the limit (more may match), joined; empty when none.
    limited: String,
    /// The notice saying so, with the limit written out.
    limited_note: String,
    months_svg: String,
    routes_svg: String,
    /// A small map per transport mode: its label, its seizures, the map.
    mode_maps: Vec<(String, String, String)>,
    /// The map's hops as a table (from, to, transport mode, seizures), most seizures first.
    route_rows: Vec<(String, String, String, String)>,
    concealment_svg: String,
    rows: Vec<(String, String, String, String, String, String, String)>,
}

#[derive(Template)]
#[template(path = "analysis.html")]
struct AnalysisPage {
    page: Page,
    route_country: String,
    date_from: String,
    date_to: String,
    legal_basis: String,
    modes: Vec<SelectOption>,
    methods: Vec<SelectOption>,
    purposes: Vec<SelectOption>,
    errors: HashMap<String, String>,
    error: Option<String>,
    result: Option<ResultView>,
}

fn page_for(o: &Officer, app: &App, f: &QueryForm) -> AnalysisPage {
    let purpose = if f.purpose.is_empty() {
        "border_risk_analysis"
    } else {
        &f.purpose
    };
    AnalysisPage {
        page: o.page(app, "analysis.title"),
        route_country: f.route_country.clone(),
        date_from: f.date_from.clone(),
        date_to: f.date_to.clone(),
        legal_basis: f.legal_basis.clone(),
        modes: forms::options(
            o.lang,
            "TRANSPORT_MODE",
            &f.transport_mode,
            Some("common.any"),
        ),
        methods: forms::options(
            o.lang,
            "CONCEALMENT_METHOD",
            &f.concealment_method,
            Some("common.any"),
        ),
        purposes: forms::options(o.lang, "PURPOSE", purpose, None),
        errors: HashMap::new(),
        error: None,
        result: None,
    }
}

/// The empty query form.
pub async fn form(State(app): State<Arc<App>>, o: Officer) -> PageResult {
    o.require(Capability::Analyse).map_err(fail(&o, &app))?;
    Ok(render(&page_for(&o, &app, &QueryForm::default())))
}

fn filter_of(f: &QueryForm) -> pb::RecordFilter {
    pb::RecordFilter {
        route_country: f.route_country.trim().to_ascii_uppercase(),
        transport_mode: forms::enum_number("TRANSPORT_MODE", &f.transport_mode),
        concealment_method: forms::enum_number("CONCEALMENT_METHOD", &f.concealment_method),
        date_from: f.date_from.trim().to_owned(),
        date_to: f.date_to.trim().to_owned(),
        ..Default::default()
    }
}

fn inquiry_of(f: &QueryForm) -> ops::Inquiry {
    ops::Inquiry::stated(&f.purpose, &f.legal_basis, "")
}

fn label(lang: Lang, name: Option<&str>) -> String {
    lang.enum_label(name.unwrap_or(""))
}

/// The table rows: member, date, route, mode, method, category, withheld fields.
fn rows(
    lang: Lang,
    r: &pb::FederatedQueryResponse,
) -> Vec<(String, String, String, String, String, String, String)> {
    let mut out = Vec::new();
    for a in &r.answers {
        for d in &a.records {
            let rec = d.record.clone().unwrap_or_default();
            let t = rec.trafficking.clone().unwrap_or_default();
            out.push((
                a.node_id.clone(),
                lang.date(&rec.event.clone().unwrap_or_default().date),
                t.route
                    .iter()
                    .map(|p| p.country.as_str())
                    .collect::<Vec<_>>()
                    .join(" → "),
                label(
                    lang,
                    pb::TransportMode::try_from(t.transport_mode)
                        .ok()
                        .map(|m| m.as_str_name()),
                ),
                label(
                    lang,
                    pb::ConcealmentMethod::try_from(t.concealment_method)
                        .ok()
                        .map(|m| m.as_str_name()),
                ),
                rec.firearms
                    .first()
                    .map(|f| {
                        label(
                            lang,
                            pb::WeaponCategory::try_from(f.category)
                                .ok()
                                .map(|c| c.as_str_name()),
                        )
                    })
                    .unwrap_or_default(),
                if d.hit_only {
                    lang.t("lookup.hit_only").to_owned()
                } else {
                    d.redacted_fields.join(", ")
                },
            ));
        }
    }
    out
}

fn summarise(lang: Lang, r: &pb::FederatedQueryResponse) -> ResultView {
    let mut months: BTreeMap<String, u64> = BTreeMap::new();
    let mut hops: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    let mut methods: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0u64;
    for d in r.answers.iter().flat_map(|a| &a.records) {
        total += 1;
        let rec = d.record.clone().unwrap_or_default();
        let date = rec.event.clone().unwrap_or_default().date;
        // Peer data: take the month only if it is there (never slice mid-character).
        if let Some(month) = date.get(..7).filter(|m| m.as_bytes().get(4) == Some(&b'-')) {
            *months.entry(month.to_owned()).or_default() += 1;
        }
        let t = rec.trafficking.clone().unwrap_or_default();
        let mode = label(
            lang,
            pb::TransportMode::try_from(t.transport_mode)
                .ok()
                .map(|m| m.as_str_name()),
        );
        for w in t.route.windows(2) {
            if w[0].country != w[1].country {
                *hops
                    .entry((w[0].country.clone(), w[1].country.clone(), mode.clone()))
                    .or_default() += 1;
            }
        }
        let m = label(
            lang,
            pb::ConcealmentMethod::try_from(t.concealment_method)
                .ok()
                .map(|m| m.as_str_name()),
        );
        if !m.is_empty() {
            *methods.entry(m).or_default() += 1;
        }
    }
    let month_items: Vec<(String, u64)> = every_month(&months)
        .into_iter()
        .map(|(k, v)| (lang.date(&k), v))
        .collect();
    let mut route_hops: Vec<charts::Hop> = hops
        .into_iter()
        .map(|((from, to, mode), seizures)| charts::Hop {
            from,
            to,
            mode,
            seizures,
        })
        .collect();
    route_hops.sort_by(|a, b| {
        b.seizures
            .cmp(&a.seizures)
            .then_with(|| (&a.from, &a.to, &a.mode).cmp(&(&b.from, &b.to, &b.mode)))
    });
    let country = |code: &str| {
        lang.country_name(code)
            .map_or_else(|| code.to_owned(), str::to_owned)
    };
    let unknown_mode = lang.t("analysis.mode_unknown");
    let maps = charts::route_maps(
        lang.t("analysis.routes"),
        &route_hops,
        &country,
        unknown_mode,
    );
    let routes_svg = maps.overview;
    let mode_maps = maps
        .by_mode
        .into_iter()
        .map(|(mode, n, svg)| (mode, lang.number(n), svg))
        .collect();
    let route_rows = route_hops
        .iter()
        .map(|h| {
            (
                format!("{} ({})", country(&h.from), h.from),
                format!("{} ({})", country(&h.to), h.to),
                if h.mode.is_empty() {
                    unknown_mode.to_owned()
                } else {
                    h.mode.clone()
                },
                lang.number(h.seizures),
            )
        })
        .collect();
    let method_items: Vec<(String, u64)> = methods.into_iter().collect();
    ResultView {
        total: lang.number(total),
        members: r
            .answers
            .iter()
            .map(|a| format!("{} ({})", a.node_id, lang.number(a.records.len() as u64)))
            .collect::<Vec<_>>()
            .join(", "),
        failed: r
            .failed
            .iter()
            .map(|f| f.node_id.clone())
            .collect::<Vec<_>>()
            .join(", "),
        limited: ops::limited_members(r).join(", "),
        limited_note: limited_note(lang),
        months_svg: charts::columns(lang.t("analysis.per_month"), &month_items),
        routes_svg,
        mode_maps,
        route_rows,
        concealment_svg: charts::bars(lang.t("analysis.concealment"), &method_items),
        rows: rows(lang, r),
    }
}

/// "Limit reached: only the first 1,000 records per member are included for:" in `lang`.
fn limited_note(lang: Lang) -> String {
    lang.t("analysis.limited")
        .replace("{n}", &lang.number(u64::from(ops::ANALYSIS_LIMIT)))
}

/// Every month from the first to the last seen (`YYYY-MM`), with 0 where nothing was seized,
/// so the time axis is even.
fn every_month(seen: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let parse = |k: &str| -> Option<(i32, u32)> {
        let (y, m) = k.split_once('-')?;
        Some((y.parse().ok()?, m.parse().ok()?))
    };
    let (Some(first), Some(last)) = (
        seen.keys().next().and_then(|k| parse(k)),
        seen.keys().next_back().and_then(|k| parse(k)),
    ) else {
        return seen.iter().map(|(k, v)| (k.clone(), *v)).collect();
    };
    let mut out = Vec::new();
    let (mut y, mut m) = first;
    while (y, m) <= last && out.len() < 600 {
        let key = format!("{y:04}-{m:02}");
        out.push((key.clone(), seen.get(&key).copied().unwrap_or(0)));
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
    out
}

fn field_errors(o: &Officer, problems: Vec<crate::error::FieldProblem>) -> HashMap<String, String> {
    problems
        .into_iter()
        .map(|p| {
            let msg = match p.field.as_str() {
                "purpose" => o.lang.t("inquiry.need_purpose").to_owned(),
                "legal_basis" => o.lang.t("inquiry.need_legal_basis").to_owned(),
                _ => p.reason,
            };
            (p.field, msg)
        })
        .collect()
}

/// Runs the query and shows table and charts.
pub async fn run(State(app): State<Arc<App>>, o: Officer, Form(f): Form<QueryForm>) -> PageResult {
    o.require(Capability::Analyse).map_err(fail(&o, &app))?;
    let mut page = page_for(&o, &app, &f);
    match ops::analyse(&app, o.caller(), filter_of(&f), inquiry_of(&f)).await {
        Ok(r) => {
            page.result = Some(summarise(o.lang, &r));
            Ok(render(&page))
        }
        Err(GatewayError::Invalid(p)) => {
            page.errors = field_errors(&o, p);
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
        Err(GatewayError::BadRequest(m)) => {
            page.error = Some(m);
            Ok((axum::http::StatusCode::BAD_REQUEST, render(&page)).into_response())
        }
        Err(e) => Err(fail(&o, &app)(e)),
    }
}

fn csv_cell(s: &str) -> String {
    // Quote everything, and defuse spreadsheet formulas (OWASP: a leading = + - @, TAB or CR).
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The same query's rows as a CSV download (logged as an export).
pub async fn export(
    State(app): State<Arc<App>>,
    o: Officer,
    Form(f): Form<QueryForm>,
) -> PageResult {
    o.require(Capability::Analyse).map_err(fail(&o, &app))?;
    let r = ops::analyse(&app, o.caller(), filter_of(&f), inquiry_of(&f))
        .await
        .map_err(fail(&o, &app))?;
    let rows = rows(o.lang, &r);
    let limited = ops::limited_members(&r);
    ops::log_export(
        &app,
        o.caller(),
        &format!("analysis CSV, {} rows", rows.len()),
    )
    .await
    .map_err(fail(&o, &app))?;
    let mut out =
        String::from("member,date,route,transport_mode,concealment_method,category,withheld\n");
    for r in rows {
        let cells = [&r.0, &r.1, &r.2, &r.3, &r.4, &r.5, &r.6];
        out.push_str(
            &cells
                .iter()
                .map(|c| csv_cell(c))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    if !limited.is_empty() {
        // The file says it is incomplete, in its last row.
        let note = format!(
            "{} {}. {}",
            limited_note(o.lang),
            limited.join(", "),
            o.lang.t("analysis.limited_hint")
        );
        out.push_str(&csv_cell(&note));
        out.push_str(",\"\",\"\",\"\",\"\",\"\",\"\"\n");
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"tracenet-analysis.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_contiguous() {
        let seen = BTreeMap::from([("2024-11".to_owned(), 2), ("2025-02".to_owned(), 1)]);
        let all = every_month(&seen);
        let keys: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["2024-11", "2024-12", "2025-01", "2025-02"]);
        assert_eq!(all[1].1, 0);
    }

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_cell("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv_cell("=cmd()"), "\"'=cmd()\"");
        for lead in ['+', '-', '@', '\t', '\r'] {
            let cell = csv_cell(&format!("{lead}cmd|' /C calc'!A0"));
            assert!(cell.starts_with("\"'"), "{lead:?} not defused: {cell:?}");
        }
        assert_eq!(csv_cell("TUR → FRA"), "\"TUR → FRA\"");
    }

    #[test]
    fn summary_counts_months_hops_and_methods() {
        let rec = |date: &str, route: &[&str]| pb::DisclosedRecord {
            record: Some(pb::SeizureRecord {
                event: Some(pb::SeizureEvent {
                    date: date.into(),
                    ..Default::default()
                }),
                trafficking: Some(pb::TraffickingFacts {
                    route: route
                        .iter()
                        .map(|c| pb::RoutePoint {
                            country: (*c).into(),
                            point: String::new(),
                        })
                        .collect(),
                    concealment_method: pb::ConcealmentMethod::MixedWithCargo as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = pb::FederatedQueryResponse {
            request_id: "r".into(),
            answers: vec![pb::PeerRecords {
                node_id: "FRA-POL".into(),
                records: vec![
                    rec("2025-03-01", &["TUR", "BGR", "FRA"]),
                    rec("2025-03", &["TUR", "BGR"]),
                ],
            }],
            failed: vec![],
        };
        let v = summarise(Lang::En, &r);
        assert_eq!(v.total, "2");
        let odd = pb::FederatedQueryResponse {
            answers: vec![pb::PeerRecords {
                node_id: "X".into(),
                records: vec![rec("2025-0é-01", &[]), rec("20250", &[])],
            }],
            ..Default::default()
        };
        assert_eq!(
            summarise(Lang::En, &odd).total,
            "2",
            "odd peer dates do not panic"
        );
        assert!(v.months_svg.contains(">Mar 2025<"), "{}", v.months_svg);
        assert!(
            v.routes_svg.contains("Türkiye (TUR): 2"),
            "{}",
            v.routes_svg
        );
        assert_eq!(
            v.route_rows
                .first()
                .map(|r| (r.0.as_str(), r.1.as_str(), r.3.as_str())),
            Some(("Türkiye (TUR)", "Bulgaria (BGR)", "2"))
        );
        assert_eq!(v.mode_maps.len(), 1, "one transport mode in the sample");
        assert!(v.concealment_svg.contains(">2<"));
        assert_eq!(v.rows.len(), 2);
    }
}
