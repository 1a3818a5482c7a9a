//! Seizure record pages: the list (filtered, sorted, counted and paged), the form (new and
//! edit, messages next to the fields), the detail view, and bulk import (a CSV template, every
//! column's allowed values, a progress bar and a per-row problem report).

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Form, Multipart, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tracenet_proto::v1 as pb;

use super::forms::{self, FieldView};
use super::{Officer, Page, PageResult, fail, render, session};
use crate::app::App;
use crate::auth::{Capability, random_secret};
use crate::error::{FieldProblem, GatewayError};
use crate::i18n::Lang;
use crate::jobs::Phase;
use crate::ops;

/// A row of the records table.
#[derive(Debug)]
struct Row {
    id: String,
    national_ref: String,
    date: String,
    serial: String,
    manufacturer: String,
    transport: String,
    concealment: String,
    /// For a loss report, what was reported ("Reported stolen"); empty for a seizure.
    loss: String,
}

fn row(lang: Lang, r: &pb::SeizureRecord) -> Row {
    let fa = r.firearms.first().cloned().unwrap_or_default();
    let t = r.trafficking.clone().unwrap_or_default();
    Row {
        id: r.id.clone(),
        national_ref: r.national_ref.clone(),
        // A loss report has no seizure event: its date is the loss's.
        date: lang.date(&match &r.loss {
            Some(l) => l.date.clone(),
            None => r.event.clone().unwrap_or_default().date,
        }),
        serial: fa.serial_number,
        manufacturer: fa.manufacturer,
        transport: lang.enum_label(
            pb::TransportMode::try_from(t.transport_mode).map_or("", |m| m.as_str_name()),
        ),
        concealment: lang.enum_label(
            pb::ConcealmentMethod::try_from(t.concealment_method).map_or("", |m| m.as_str_name()),
        ),
        loss: r
            .loss
            .as_ref()
            .map_or_else(String::new, |l| match pb::LossKind::try_from(l.kind) {
                Ok(k) if k != pb::LossKind::Unspecified => lang.enum_label(k.as_str_name()),
                _ => lang.t("lookup.reported_missing").to_owned(),
            }),
    }
}

/// Rows per page of the list.
const LIST_PAGE: usize = 50;

/// A sortable column header: its label, the link that sorts by it, and `aria-sort`.
#[derive(Debug)]
struct SortHeader {
    label: &'static str,
    href: String,
    aria: &'static str,
    arrow: &'static str,
}

#[derive(Template)]
#[template(path = "records.html")]
struct ListPage {
    page: Page,
    rows: Vec<Row>,
    can_write: bool,
    q: String,
    transports: Vec<forms::SelectOption>,
    concealments: Vec<forms::SelectOption>,
    from: String,
    to: String,
    headers: Vec<SortHeader>,
    /// "Showing 1–50 of 123 matching records (1,234 held)".
    summary: String,
    /// Shown when the node holds more records than the list filters.
    partial: Option<String>,
    prev_page: Option<String>,
    next_page: Option<String>,
    page_of: String,
    filtered: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ListQuery {
    q: String,
    transport: String,
    concealment: String,
    from: String,
    to: String,
    sort: String,
    dir: String,
    page: String,
}

impl ListQuery {
    /// The query string of this view with `sort`, `dir` and `page` replaced.
    fn href(&self, sort: &str, dir: &str, page: usize) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("q", self.q.as_str()),
            ("transport", self.transport.as_str()),
            ("concealment", self.concealment.as_str()),
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
        ] {
            if !v.trim().is_empty() {
                parts.push(format!("{k}={}", urlencoding::encode(v.trim())));
            }
        }
        parts.push(format!("sort={sort}"));
        parts.push(format!("dir={dir}"));
        if page > 1 {
            parts.push(format!("page={page}"));
        }
        format!("/records?{}", parts.join("&"))
    }
}

/// The columns the list sorts by: (query value, label key).
const SORTS: &[(&str, &str)] = &[
    ("ref", "field.national_ref"),
    ("date", "field.date"),
    ("serial", "field.serial_number"),
    ("manufacturer", "field.manufacturer"),
    ("transport", "field.transport_mode"),
    ("concealment", "field.concealment_method"),
];

/// Whether a record matches the filters (`q` in the reference, serials, manufacturers, model
/// or locality, ignoring case; transport and concealment by short name; dates inclusive).
fn matches(r: &pb::SeizureRecord, q: &ListQuery) -> bool {
    let needle = q.q.trim().to_lowercase();
    if !needle.is_empty() {
        let place = r
            .event
            .as_ref()
            .and_then(|e| e.place.as_ref())
            .map(|p| p.locality.to_lowercase())
            .unwrap_or_default();
        let hit = r.national_ref.to_lowercase().contains(&needle)
            || place.contains(&needle)
            || r.firearms.iter().any(|f| {
                f.serial_number.to_lowercase().contains(&needle)
                    || f.manufacturer.to_lowercase().contains(&needle)
                    || f.model.to_lowercase().contains(&needle)
            });
        if !hit {
            return false;
        }
    }
    let t = r.trafficking.clone().unwrap_or_default();
    if !q.transport.is_empty()
        && t.transport_mode != forms::enum_number("TRANSPORT_MODE", &q.transport)
    {
        return false;
    }
    if !q.concealment.is_empty()
        && t.concealment_method != forms::enum_number("CONCEALMENT_METHOD", &q.concealment)
    {
        return false;
    }
    let date = r.event.as_ref().map_or("", |e| e.date.as_str());
    if !q.from.trim().is_empty() && date < q.from.trim() {
        return false;
    }
    if !q.to.trim().is_empty() && date > q.to.trim() {
        return false;
    }
    true
}

/// The sort key of a record for a column (enumerations by their translated label).
fn sort_key(lang: Lang, r: &pb::SeizureRecord, sort: &str) -> String {
    let fa = r.firearms.first().cloned().unwrap_or_default();
    let view = row(lang, r);
    match sort {
        "ref" => r.national_ref.clone(),
        "date" => r.event.as_ref().map(|e| e.date.clone()).unwrap_or_default(),
        "serial" => fa.serial_number.to_lowercase(),
        "manufacturer" => fa.manufacturer.to_lowercase(),
        "transport" => view.transport.to_lowercase(),
        "concealment" => view.concealment.to_lowercase(),
        _ => String::new(),
    }
}

/// This node's records: filtered, sorted, counted and a page at a time.
pub async fn list(
    State(app): State<Arc<App>>,
    o: Officer,
    Query(q): Query<ListQuery>,
) -> PageResult {
    let (records, complete) = ops::scan_records(&app, o.caller(), ops::LIST_SCAN_LIMIT)
        .await
        .map_err(fail(&o, &app))?;
    let held = if complete {
        records.len() as u64
    } else {
        ops::node_info(&app)
            .await
            .map_or(records.len() as u64, |i| i.record_count)
    };
    let lang = o.lang;
    // Without a choice, the latest seizures first (the order an officer looks for).
    let (sort, desc) = match SORTS.iter().find(|(k, _)| *k == q.sort) {
        Some((k, _)) => (*k, q.dir == "desc"),
        None => ("date", true),
    };
    let mut matching: Vec<&pb::SeizureRecord> = records
        .iter()
        .filter_map(|r| r.record.as_ref())
        .filter(|r| matches(r, &q))
        .collect();
    {
        let mut keyed: Vec<(String, &pb::SeizureRecord)> = matching
            .into_iter()
            .map(|r| (sort_key(lang, r, sort), r))
            .collect();
        keyed.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| a.1.national_ref.cmp(&b.1.national_ref))
        });
        if desc {
            keyed.reverse();
        }
        matching = keyed.into_iter().map(|(_, r)| r).collect();
    }
    let total = matching.len();
    let pages = total.div_ceil(LIST_PAGE).max(1);
    let page_no = q.page.parse::<usize>().unwrap_or(1).clamp(1, pages);
    let first = (page_no - 1) * LIST_PAGE;
    let rows: Vec<Row> = matching
        .iter()
        .skip(first)
        .take(LIST_PAGE)
        .map(|r| row(lang, r))
        .collect();
    let headers = SORTS
        .iter()
        .map(|(key, label)| {
            let active = *key == sort;
            let next_dir = if active && !desc { "desc" } else { "asc" };
            SortHeader {
                label: lang.t(label),
                href: q.href(key, next_dir, 1),
                aria: match (active, desc) {
                    (false, _) => "none",
                    (true, false) => "ascending",
                    (true, true) => "descending",
                },
                arrow: match (active, desc) {
                    (false, _) => "",
                    (true, false) => " ▲",
                    (true, true) => " ▼",
                },
            }
        })
        .collect();
    let dir = if desc { "desc" } else { "asc" };
    let summary = lang
        .t("records.summary")
        .replace(
            "{from}",
            &lang.number(if total == 0 { 0 } else { first as u64 + 1 }),
        )
        .replace("{to}", &lang.number((first + rows.len()) as u64))
        .replace("{total}", &lang.number(total as u64))
        .replace("{held}", &lang.number(held));
    let partial = (!complete).then(|| {
        lang.t("records.partial")
            .replace("{n}", &lang.number(records.len() as u64))
    });
    let filtered = !(q.q.trim().is_empty()
        && q.transport.is_empty()
        && q.concealment.is_empty()
        && q.from.trim().is_empty()
        && q.to.trim().is_empty());
    let page = ListPage {
        page: o.page(&app, "records.title"),
        rows,
        can_write: o.who.can(Capability::WriteRecords),
        transports: forms::options(lang, "TRANSPORT_MODE", &q.transport, Some("common.any")),
        concealments: forms::options(
            lang,
            "CONCEALMENT_METHOD",
            &q.concealment,
            Some("common.any"),
        ),
        q: q.q.clone(),
        from: q.from.clone(),
        to: q.to.clone(),
        headers,
        summary,
        partial,
        prev_page: (page_no > 1).then(|| q.href(sort, dir, page_no - 1)),
        next_page: (page_no < pages).then(|| q.href(sort, dir, page_no + 1)),
        page_of: lang
            .t("records.page_of")
            .replace("{page}", &lang.number(page_no as u64))
            .replace("{pages}", &lang.number(pages as u64)),
        filtered,
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "record_form.html")]
struct FormPage {
    page: Page,
    action: String,
    revision: u64,
    fields: Vec<FieldView>,
    general: Vec<String>,
}

fn form_page(
    o: &Officer,
    app: &App,
    title: &str,
    action: String,
    revision: u64,
    values: &HashMap<String, String>,
    problems: &[FieldProblem],
) -> FormPage {
    let (fields, general) = forms::record_fields(o.lang, values, problems);
    FormPage {
        page: o.page(app, title),
        action,
        revision,
        fields,
        general,
    }
}

/// The empty form (the country is this node's).
pub async fn new_form(State(app): State<Arc<App>>, o: Officer) -> PageResult {
    o.require(Capability::WriteRecords)
        .map_err(fail(&o, &app))?;
    let values = HashMap::from([("country".to_owned(), app.country())]);
    Ok(render(&form_page(
        &o,
        &app,
        "records.new",
        "/records".into(),
        0,
        &values,
        &[],
    )))
}

/// Shows the form again with every problem next to its field (status 422).
fn invalid_form(
    o: &Officer,
    app: &App,
    title: &str,
    action: String,
    revision: u64,
    values: &HashMap<String, String>,
    problems: &[FieldProblem],
) -> Response {
    let page = form_page(o, app, title, action, revision, values, problems);
    (axum::http::StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response()
}

/// Creates a record from the form.
pub async fn create(
    State(app): State<Arc<App>>,
    o: Officer,
    Form(values): Form<HashMap<String, String>>,
) -> PageResult {
    o.require(Capability::WriteRecords)
        .map_err(fail(&o, &app))?;
    let (record, mut problems) = forms::record_from_form(&values);
    if !problems.is_empty() {
        // The node checks the rest now, so every mistake shows in this one round.
        let more = ops::check_records(&app, o.caller(), vec![record], vec![0])
            .await
            .map_err(fail(&o, &app))?;
        crate::jobs::merge_problems(&mut problems, more);
        return Ok(invalid_form(
            &o,
            &app,
            "records.new",
            "/records".into(),
            0,
            &values,
            &problems,
        ));
    }
    match ops::create_record(&app, o.caller(), record).await {
        Ok(r) => {
            let id = r.record.map(|r| r.id).unwrap_or_default();
            Ok(Redirect::to(&format!("/records/{}", urlencoding::encode(&id))).into_response())
        }
        Err(GatewayError::Invalid(p)) => Ok(invalid_form(
            &o,
            &app,
            "records.new",
            "/records".into(),
            0,
            &values,
            &p,
        )),
        Err(GatewayError::Conflict(m)) => {
            let p = FieldProblem {
                field: "national_ref".into(),
                line: 0,
                reason: m,
            };
            Ok(invalid_form(
                &o,
                &app,
                "records.new",
                "/records".into(),
                0,
                &values,
                &[p],
            ))
        }
        Err(e) => Err(fail(&o, &app)(e)),
    }
}

#[derive(Template)]
#[template(path = "record.html")]
struct DetailPage {
    page: Page,
    id: String,
    revision: u64,
    updated: String,
    fields: Vec<FieldView>,
    can_write: bool,
    /// Whether the user may send a trace request from this record.
    can_trace: bool,
    can_preview: bool,
}

/// One record.
pub async fn show(State(app): State<Arc<App>>, o: Officer, Path(id): Path<String>) -> PageResult {
    let r = ops::get_record(&app, o.caller(), &id)
        .await
        .map_err(fail(&o, &app))?;
    let rec = r.record.clone().unwrap_or_default();
    let values = forms::display_values(o.lang, &rec);
    let (fields, _) = forms::record_fields(o.lang, &values, &[]);
    let mut page = o.page(&app, "records.detail");
    page.title = format!("{} {}", page.title, rec.national_ref);
    Ok(render(&DetailPage {
        page,
        id: rec.id.clone(),
        revision: r.revision,
        updated: o.lang.datetime(r.updated_at),
        fields,
        can_write: o.who.can(Capability::WriteRecords),
        can_trace: o.who.can(Capability::Trace),
        can_preview: o.who.can(Capability::Administer),
    }))
}

/// The edit form, filled from the record.
pub async fn edit_form(
    State(app): State<Arc<App>>,
    o: Officer,
    Path(id): Path<String>,
) -> PageResult {
    o.require(Capability::WriteRecords)
        .map_err(fail(&o, &app))?;
    let r = ops::get_record(&app, o.caller(), &id)
        .await
        .map_err(fail(&o, &app))?;
    let values = forms::values_of(&r.record.unwrap_or_default());
    Ok(render(&form_page(
        &o,
        &app,
        "records.edit",
        format!("/records/{}", urlencoding::encode(&id)),
        r.revision,
        &values,
        &[],
    )))
}

/// Saves an edit. Only the fields the form shows change: further firearms, parts, ammunition
/// lots and persons of the stored record are kept.
pub async fn update(
    State(app): State<Arc<App>>,
    o: Officer,
    Path(id): Path<String>,
    Form(values): Form<HashMap<String, String>>,
) -> PageResult {
    o.require(Capability::WriteRecords)
        .map_err(fail(&o, &app))?;
    let action = format!("/records/{}", urlencoding::encode(&id));
    let revision: u64 = values
        .get("expected_revision")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (edited, mut problems) = forms::record_from_form(&values);
    let stored = ops::get_record(&app, o.caller(), &id)
        .await
        .map_err(fail(&o, &app))?
        .record
        .unwrap_or_default();
    let merged = merge(stored, edited);
    if !problems.is_empty() {
        // The node checks the rest now, so every mistake shows in this one round.
        let more = ops::check_records(&app, o.caller(), vec![merged], vec![0])
            .await
            .map_err(fail(&o, &app))?;
        crate::jobs::merge_problems(&mut problems, more);
        return Ok(invalid_form(
            &o,
            &app,
            "records.edit",
            action,
            revision,
            &values,
            &problems,
        ));
    }
    match ops::update_record(&app, o.caller(), &id, merged, revision).await {
        Ok(_) => Ok(Redirect::to(&action).into_response()),
        Err(GatewayError::Invalid(p)) => Ok(invalid_form(
            &o,
            &app,
            "records.edit",
            action,
            revision,
            &values,
            &p,
        )),
        Err(e) => Err(fail(&o, &app)(e)),
    }
}

/// The stored record with the form's fields applied.
fn merge(mut stored: pb::SeizureRecord, edited: pb::SeizureRecord) -> pb::SeizureRecord {
    stored.national_ref = edited.national_ref;
    stored.event = edited.event;
    stored.context = edited.context;
    stored.case_reference = edited.case_reference;
    stored.notes = edited.notes;
    stored.proceedings_status = edited.proceedings_status;
    stored.disposition = edited.disposition;
    stored.ballistic_references = edited.ballistic_references;
    stored.trafficking = match (stored.trafficking.take(), edited.trafficking) {
        (Some(mut old), Some(new)) => {
            old.route = new.route;
            old.transport_mode = new.transport_mode;
            old.concealment_method = new.concealment_method;
            old.concealment_details = new.concealment_details;
            Some(old)
        }
        (_, new) => new,
    };
    match (
        stored.firearms.first_mut(),
        edited.firearms.into_iter().next(),
    ) {
        (Some(first), Some(new)) => {
            // The form edits the import marking; other markings are not on it and stay.
            let kept = std::mem::take(&mut first.other_markings);
            *first = new;
            first.other_markings = kept;
        }
        (None, Some(new)) => stored.firearms.push(new),
        (Some(_), None) => {
            stored.firearms.remove(0);
        }
        (None, None) => {}
    }
    match (
        stored.ammunition.first_mut(),
        edited.ammunition.into_iter().next(),
    ) {
        (Some(first), Some(new)) => {
            first.calibre = new.calibre;
            first.quantity = new.quantity;
            first.manufacturer = new.manufacturer;
            first.ammunition_type = new.ammunition_type;
            first.headstamp = new.headstamp;
            first.lot = new.lot;
            first.year = new.year;
        }
        (None, Some(new)) => stored.ammunition.push(new),
        (Some(_), None) => {
            stored.ammunition.remove(0);
        }
        (None, None) => {}
    }
    // The form shows the first person and the whole shipment.
    match (
        stored.persons.first_mut(),
        edited.persons.into_iter().next(),
    ) {
        (Some(first), Some(new)) => *first = new,
        (None, Some(new)) => stored.persons.push(new),
        (Some(_), None) => {
            stored.persons.remove(0);
        }
        (None, None) => {}
    }
    stored.shipment = edited.shipment;
    stored.loss = edited.loss;
    match (stored.parts.first_mut(), edited.parts.into_iter().next()) {
        (Some(first), Some(mut new)) => {
            // The form shows marking texts only: where they are unchanged, keep their locations.
            let texts = |m: &[pb::Marking]| m.iter().map(|x| x.text.clone()).collect::<Vec<_>>();
            if texts(&first.markings) == texts(&new.markings) {
                new.markings = std::mem::take(&mut first.markings);
            }
            *first = new;
        }
        (None, Some(new)) => stored.parts.push(new),
        (Some(_), None) => {
            stored.parts.remove(0);
        }
        (None, None) => {}
    }
    stored
}

#[derive(Template)]
#[template(path = "import.html")]
struct ImportPage {
    page: Page,
    columns: Vec<ColumnHelp>,
}

/// One CSV column as the import page explains it.
#[derive(Debug)]
struct ColumnHelp {
    name: &'static str,
    label: &'static str,
    required: bool,
    /// The expected form, in words.
    format: String,
    /// The allowed values with their labels, for columns chosen from a list.
    values: Vec<(String, String)>,
}

/// The help of every CSV column, in file order.
fn column_help(lang: Lang) -> Vec<ColumnHelp> {
    tracenet_proto::files::CSV_COLUMNS
        .iter()
        .map(|&name| {
            let select = forms::SELECTS.iter().find(|(c, _)| *c == name);
            let values = select.map_or_else(Vec::new, |(_, prefix)| {
                forms::enum_values(prefix)
                    .into_iter()
                    .map(|(short, full)| (short, lang.enum_label(&full)))
                    .collect()
            });
            let format_key = match name {
                _ if select.is_some() => "import.format.one_of",
                "date" => "import.format.date",
                "country" | "country_of_manufacture" | "import_country" => "import.format.country",
                "route" => "import.format.route",
                "ballistic_references" => "import.format.ballistic_references",
                "year_of_manufacture" | "ammunition_year" | "import_year" => "import.format.year",
                "ammunition_quantity" | "part_quantity" => "import.format.quantity",
                "part_markings" => "import.format.markings",
                "shipment_identifiers" => "import.format.shipment_identifiers",
                "person_nationality" | "loss_country" => "import.format.country",
                "loss_date" => "import.format.date",
                _ => "import.format.text",
            };
            ColumnHelp {
                name,
                label: lang.t(&format!("field.{name}")),
                required: forms::REQUIRED.contains(&name),
                format: lang.t(format_key).to_owned(),
                values,
            }
        })
        .collect()
}

/// The upload form, with a template to download and every column's allowed values.
pub async fn import_form(State(app): State<Arc<App>>, o: Officer) -> PageResult {
    o.require(Capability::WriteRecords)
        .map_err(fail(&o, &app))?;
    Ok(render(&ImportPage {
        page: o.page(&app, "records.import"),
        columns: column_help(o.lang),
    }))
}

/// A CSV template: the header row and one synthetic example row.
pub fn import_template(own_country: &str) -> String {
    let example = |c: &str| -> String {
        match c {
            "national_ref" => "SYN-0001".into(),
            "date" => "2025-03-14".into(),
            "country" => own_country.into(),
            "locality" => "Synthetic town".into(),
            "seizing_agency" => "police".into(),
            "seizure_kind" => "seized".into(),
            "serial_number" => "SYN-12345".into(),
            "manufacturer" => "Synthetic Arms".into(),
            "model" => "S-9".into(),
            "category" => forms::enum_values("WEAPON_CATEGORY")
                .first()
                .map(|v| v.0.clone())
                .unwrap_or_default(),
            "marking_condition" => "intact".into(),
            "route" => format!("TUR;BGR;{own_country}"),
            "transport_mode" => "road".into(),
            "concealment_method" => "vehicle_compartment".into(),
            _ => String::new(),
        }
    };
    let cols = tracenet_proto::files::CSV_COLUMNS;
    let mut out = cols.join(",");
    out.push_str("\r\n");
    out.push_str(
        &cols
            .iter()
            .map(|c| example(c))
            .collect::<Vec<_>>()
            .join(","),
    );
    out.push_str("\r\n");
    out
}

/// Downloads the CSV template.
pub async fn import_template_download(State(app): State<Arc<App>>, o: Officer) -> Response {
    if let Err(e) = o.require(Capability::WriteRecords) {
        return fail(&o, &app)(e).into_response();
    }
    let country = app.node_id().split('-').next().unwrap_or("FRA").to_owned();
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"tracenet-import-template.csv\"",
            ),
        ],
        import_template(&country),
    )
        .into_response()
}

/// Most bytes an uploaded file may have.
const MAX_UPLOAD: usize = 64 * 1024 * 1024;

/// Receives a file and starts an import job (the CSRF token is a form field before the file).
pub async fn import(State(app): State<Arc<App>>, o: Officer, mut form: Multipart) -> PageResult {
    o.require(Capability::WriteRecords)
        .map_err(fail(&o, &app))?;
    let bad = |m: &str| GatewayError::BadRequest(m.to_owned());
    let mut token = String::new();
    let mut file: Option<(String, Vec<u8>)> = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| fail(&o, &app)(bad(&e.body_text())))?
    {
        match field.name() {
            Some("csrf") => {
                token = field.text().await.unwrap_or_default();
            }
            Some("file") => {
                session::check_token(&token, &o.csrf).map_err(fail(&o, &app))?;
                let name = field.file_name().unwrap_or("upload.csv").to_owned();
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| fail(&o, &app)(bad(&e.body_text())))?;
                if bytes.len() > MAX_UPLOAD {
                    return Err(fail(&o, &app)(bad("file too large")));
                }
                file = Some((name, bytes.to_vec()));
            }
            _ => {}
        }
    }
    session::check_token(&token, &o.csrf).map_err(fail(&o, &app))?;
    let (name, bytes) = file.ok_or_else(|| fail(&o, &app)(bad("no file was sent")))?;
    let id = random_secret(12).map_err(|_| fail(&o, &app)(GatewayError::Internal))?;
    app.jobs
        .start(id.clone(), &o.who.name, &name, bytes, app.node.clone())
        .map_err(fail(&o, &app))?;
    let _ = app
        .store
        .log_access(app.now(), &o.who.name, "console", "import file", &name)
        .await;
    Ok(Redirect::to(&format!("/records/import/{id}")).into_response())
}

#[derive(Template)]
#[template(path = "import_status.html")]
struct StatusPage {
    page: Page,
    file_name: String,
    phase: &'static str,
    phase_code: &'static str,
    percent: u64,
    total: String,
    created: u64,
    updated: u64,
    failure: Option<String>,
    finished: bool,
    problems: Vec<FieldProblem>,
}

/// A job's progress (the page refreshes itself until the job ends).
pub async fn import_status(
    State(app): State<Arc<App>>,
    o: Officer,
    Path(job): Path<String>,
) -> PageResult {
    o.require(Capability::WriteRecords)
        .map_err(fail(&o, &app))?;
    let s = app
        .jobs
        .get(&job, &o.who.name)
        .ok_or_else(|| fail(&o, &app)(GatewayError::NotFound(job.clone())))?;
    Ok(render(&StatusPage {
        page: o.page(&app, "records.import"),
        file_name: s.file_name.clone(),
        phase: o.lang.t(s.phase.label_key()),
        phase_code: match s.phase {
            Phase::Parsing | Phase::Checking | Phase::Writing => "running",
            Phase::Done => "done",
            Phase::Failed => "failed",
        },
        percent: s.percent(),
        total: o.lang.number(s.total),
        created: s.created,
        updated: s.updated,
        failure: s.failure.clone(),
        finished: s.finished(),
        problems: s
            .problems
            .iter()
            .map(|p| FieldProblem {
                reason: crate::i18n::node_text(o.lang, &p.reason),
                ..p.clone()
            })
            .collect(),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The template reads back as one record with the example's values.
    #[test]
    fn the_import_template_reads_as_one_record() {
        let text = import_template("FRA");
        let rows: Vec<_> = tracenet_proto::files::rows(
            std::io::Cursor::new(text.into_bytes()),
            tracenet_proto::files::Format::Csv,
        )
        .unwrap()
        .collect();
        assert_eq!(rows.len(), 1);
        let row = rows.into_iter().next().unwrap().unwrap();
        assert_eq!(row.record.national_ref, "SYN-0001");
        assert_eq!(row.record.firearms[0].serial_number, "SYN-12345");
        let route: Vec<String> = row
            .record
            .trafficking
            .unwrap()
            .route
            .into_iter()
            .map(|p| p.country)
            .collect();
        assert_eq!(route, vec!["TUR", "BGR", "FRA"]);
    }

    /// Every column is explained, with the values of the enumerated ones.
    #[test]
    fn every_column_has_help() {
        let help = column_help(Lang::Fr);
        assert_eq!(help.len(), tracenet_proto::files::CSV_COLUMNS.len());
        let transport = help.iter().find(|c| c.name == "transport_mode").unwrap();
        assert!(transport.values.iter().any(|(v, _)| v == "road"));
        assert!(help.iter().all(|c| c.label != "?" && c.format != "?"));
    }
}
