//! Seizure record pages: the list, the form (new and edit, messages next to the fields), the
//! detail view, and bulk import with a progress bar and a per-row problem report.

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
}

fn row(lang: Lang, r: &pb::SeizureRecord) -> Row {
    let fa = r.firearms.first().cloned().unwrap_or_default();
    let t = r.trafficking.clone().unwrap_or_default();
    Row {
        id: r.id.clone(),
        national_ref: r.national_ref.clone(),
        date: lang.date(&r.event.clone().unwrap_or_default().date),
        serial: fa.serial_number,
        manufacturer: fa.manufacturer,
        transport: lang.enum_label(
            pb::TransportMode::try_from(t.transport_mode).map_or("", |m| m.as_str_name()),
        ),
        concealment: lang.enum_label(
            pb::ConcealmentMethod::try_from(t.concealment_method).map_or("", |m| m.as_str_name()),
        ),
    }
}

#[derive(Template)]
#[template(path = "records.html")]
struct ListPage {
    page: Page,
    rows: Vec<Row>,
    next_page: Option<String>,
    can_write: bool,
}

#[derive(Debug, Deserialize)]
pub(super) struct PageQuery {
    #[serde(default)]
    page: String,
}

/// This node's records, a page at a time.
pub async fn list(
    State(app): State<Arc<App>>,
    o: Officer,
    Query(q): Query<PageQuery>,
) -> PageResult {
    let res = ops::list_records(&app, o.caller(), 50, q.page, true)
        .await
        .map_err(fail(&o, &app))?;
    let page = ListPage {
        page: o.page(&app, "records.title"),
        rows: res
            .records
            .iter()
            .filter_map(|r| r.record.as_ref())
            .map(|r| row(o.lang, r))
            .collect(),
        next_page: (!res.next_page_token.is_empty())
            .then(|| urlencoding::encode(&res.next_page_token).into_owned()),
        can_write: o.who.can(Capability::WriteRecords),
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
    let values = HashMap::from([("country".to_owned(), app.country().to_owned())]);
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
            let kept = (
                first.import_marking.take(),
                std::mem::take(&mut first.other_markings),
            );
            *first = new;
            first.import_marking = kept.0;
            first.other_markings = kept.1;
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
        }
        (None, Some(new)) => stored.ammunition.push(new),
        (Some(_), None) => {
            stored.ammunition.remove(0);
        }
        (None, None) => {}
    }
    stored
}

#[derive(Template)]
#[template(path = "import.html")]
struct ImportPage {
    page: Page,
    columns: String,
}

/// The upload form.
pub async fn import_form(State(app): State<Arc<App>>, o: Officer) -> PageResult {
    o.require(Capability::WriteRecords)
        .map_err(fail(&o, &app))?;
    Ok(render(&ImportPage {
        page: o.page(&app, "records.import"),
        columns: tracenet_proto::files::CSV_COLUMNS.join(","),
    }))
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
