//! Trace requests: the inbox and outgoing list with status and deadlines, the new-request form,
//! one request with its full status history, and the answer / restrict / decline form.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect};
use tracenet_proto::v1 as pb;

use super::forms::{self, FieldView};
use super::{Officer, Page, PageResult, fail, render};
use crate::app::App;
use crate::auth::Capability;
use crate::error::{FieldProblem, GatewayError};
use crate::i18n::Lang;
use crate::ops;

/// A row of a trace list.
#[derive(Debug)]
struct TraceRow {
    id: String,
    short_id: String,
    counterpart: String,
    serial: String,
    status: String,
    due: String,
    overdue: bool,
}

fn status_label(lang: Lang, s: i32) -> String {
    lang.enum_label(pb::TraceStatus::try_from(s).map_or("", |v| v.as_str_name()))
}

fn trace_row(lang: Lang, t: &pb::TraceRecord) -> TraceRow {
    let req = t.request.clone().unwrap_or_default();
    TraceRow {
        short_id: req.id.chars().take(12).collect(),
        id: urlencoding::encode(&req.id).into_owned(),
        counterpart: t.counterpart_node.clone(),
        serial: req.firearm.map(|f| f.serial_number).unwrap_or_default(),
        status: status_label(lang, t.status),
        due: if req.due_at > 0 {
            lang.datetime(req.due_at)
        } else {
            String::new()
        },
        overdue: t.overdue,
    }
}

#[derive(Template)]
#[template(path = "traces.html")]
struct ListPage {
    page: Page,
    incoming: Vec<TraceRow>,
    outgoing: Vec<TraceRow>,
}

/// Incoming and outgoing requests.
pub async fn list(State(app): State<Arc<App>>, o: Officer) -> PageResult {
    let all = ops::traces(&app, o.caller(), "")
        .await
        .map_err(fail(&o, &app))?;
    let (incoming, outgoing): (Vec<_>, Vec<_>) =
        all.iter().partition(|t| t.direction == "incoming");
    Ok(render(&ListPage {
        page: o.page(&app, "traces.title"),
        incoming: incoming.iter().map(|t| trace_row(o.lang, t)).collect(),
        outgoing: outgoing.iter().map(|t| trace_row(o.lang, t)).collect(),
    }))
}

#[derive(Template)]
#[template(path = "trace_new.html")]
struct NewPage {
    page: Page,
    fields: Vec<FieldView>,
    general: Vec<String>,
}

const TRACE_FIELDS: &[(&str, &str, bool)] = &[
    ("requested_country", "traces.requested_country", true),
    ("target_node", "traces.target_node", false),
    ("serial_number", "field.serial_number", true),
    ("manufacturer", "field.manufacturer", true),
    ("model", "field.model", false),
    ("category", "field.category", false),
    ("calibre", "field.calibre", false),
    (
        "country_of_manufacture",
        "field.country_of_manufacture",
        false,
    ),
    ("urgency", "traces.urgency", true),
    ("legal_basis", "inquiry.legal_basis", true),
    ("case_reference", "field.case_reference", false),
    ("reason", "traces.reason", true),
];

fn new_page(
    o: &Officer,
    app: &App,
    values: &HashMap<String, String>,
    problems: &[FieldProblem],
) -> NewPage {
    let mut general = Vec::new();
    let mut by_field = HashMap::new();
    for p in problems {
        let name = p.field.rsplit('.').next().unwrap_or("").to_owned();
        let reason = crate::i18n::node_text(o.lang, &p.reason);
        if TRACE_FIELDS.iter().any(|(f, _, _)| *f == name) {
            by_field.insert(name, reason);
        } else {
            general.push(format!("{}: {reason}", p.field));
        }
    }
    let fields = TRACE_FIELDS
        .iter()
        .map(|&(name, label, required)| {
            let value = values.get(name).cloned().unwrap_or_default();
            let options = match name {
                "requested_country" | "country_of_manufacture" => {
                    forms::country_options(o.lang, &value.to_ascii_uppercase())
                }
                "category" => {
                    forms::options(o.lang, "WEAPON_CATEGORY", &value, Some("common.choose"))
                }
                "urgency" => forms::options(
                    o.lang,
                    "URGENCY",
                    if value.is_empty() { "routine" } else { &value },
                    None,
                ),
                _ => Vec::new(),
            };
            FieldView {
                name,
                label: o.lang.t(label),
                error: by_field.remove(name),
                value,
                options,
                required,
            }
        })
        .collect();
    NewPage {
        page: o.page(app, "traces.new"),
        fields,
        general,
    }
}

/// The new-request form.
pub async fn new_form(State(app): State<Arc<App>>, o: Officer) -> PageResult {
    o.require(Capability::Trace).map_err(fail(&o, &app))?;
    Ok(render(&new_page(&o, &app, &HashMap::new(), &[])))
}

/// Sends a trace request.
pub async fn send(
    State(app): State<Arc<App>>,
    o: Officer,
    Form(v): Form<HashMap<String, String>>,
) -> PageResult {
    o.require(Capability::Trace).map_err(fail(&o, &app))?;
    let get = |k: &str| v.get(k).map_or(String::new(), |s| s.trim().to_owned());
    let mut problems = Vec::new();
    for (name, _, required) in TRACE_FIELDS {
        if *required && get(name).is_empty() {
            problems.push(FieldProblem {
                field: (*name).to_owned(),
                line: 0,
                reason: o.lang.t("common.required").to_owned(),
            });
        }
    }
    if !problems.is_empty() {
        let page = new_page(&o, &app, &v, &problems);
        return Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response());
    }
    let req = pb::SendTraceRequestRequest {
        firearm: Some(pb::FirearmIdentification {
            serial_number: get("serial_number"),
            manufacturer: get("manufacturer"),
            model: get("model"),
            category: forms::enum_number("WEAPON_CATEGORY", &get("category")),
            calibre: get("calibre"),
            country_of_manufacture: get("country_of_manufacture").to_ascii_uppercase(),
            ..Default::default()
        }),
        requested_country: get("requested_country").to_ascii_uppercase(),
        reason: get("reason"),
        legal_basis: get("legal_basis"),
        urgency: forms::enum_number("URGENCY", &get("urgency")),
        case_reference: get("case_reference"),
        target_node: get("target_node").to_ascii_uppercase(),
    };
    match ops::send_trace(&app, o.caller(), req).await {
        Ok(t) => {
            let id = t.request.map(|r| r.id).unwrap_or_default();
            Ok(Redirect::to(&format!("/traces/{}", urlencoding::encode(&id))).into_response())
        }
        Err(GatewayError::Invalid(p)) => {
            let page = new_page(&o, &app, &v, &p);
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
        Err(GatewayError::Conflict(m) | GatewayError::BadRequest(m)) => {
            // Without a designation, the refusal lists the State's nodes to choose from.
            let field = if m.contains("target_node") {
                "target_node"
            } else {
                "requested_country"
            };
            let p = [FieldProblem {
                field: field.into(),
                line: 0,
                reason: m,
            }];
            let page = new_page(&o, &app, &v, &p);
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
        Err(e) => Err(fail(&o, &app)(e)),
    }
}

/// An answer as shown.
#[derive(Debug)]
struct AnswerView {
    outcome: String,
    remarks: String,
    custody: Vec<String>,
    handling: String,
}

#[derive(Template)]
#[template(path = "trace.html")]
struct DetailPage {
    page: Page,
    id: String,
    direction: String,
    counterpart: String,
    status: String,
    status_code: String,
    due: String,
    overdue: bool,
    facts: Vec<(String, String)>,
    answer: Option<AnswerView>,
    delivery_error: String,
    escalation: String,
    history: Vec<(String, String, String)>,
    can_answer: bool,
}

/// One request with its history, and the answer form for an open incoming request.
pub async fn show(State(app): State<Arc<App>>, o: Officer, Path(id): Path<String>) -> PageResult {
    let t = ops::trace(&app, o.caller(), &id)
        .await
        .map_err(fail(&o, &app))?;
    let lang = o.lang;
    let req = t.request.clone().unwrap_or_default();
    let fa = req.firearm.clone().unwrap_or_default();
    let mut facts = vec![
        (
            lang.t("field.serial_number").to_owned(),
            fa.serial_number.clone(),
        ),
        (
            lang.t("field.manufacturer").to_owned(),
            fa.manufacturer.clone(),
        ),
        (lang.t("field.model").to_owned(), fa.model.clone()),
        (lang.t("field.calibre").to_owned(), fa.calibre.clone()),
        (lang.t("traces.reason").to_owned(), req.reason.clone()),
        (
            lang.t("inquiry.legal_basis").to_owned(),
            req.legal_basis.clone(),
        ),
        (
            lang.t("field.case_reference").to_owned(),
            req.case_reference.clone(),
        ),
        (
            lang.t("traces.urgency").to_owned(),
            lang.enum_label(pb::Urgency::try_from(req.urgency).map_or("", |u| u.as_str_name())),
        ),
    ];
    facts.retain(|(_, v)| !v.is_empty());
    let answer = t.response.as_ref().map(|r| AnswerView {
        outcome: status_label(lang, r.outcome),
        remarks: crate::i18n::node_text(lang, &r.remarks),
        custody: r
            .chain_of_custody
            .iter()
            .map(|c| {
                [
                    &c.role,
                    &c.name,
                    &c.country,
                    &lang.date(&c.date),
                    &c.details,
                ]
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" · ")
            })
            .collect(),
        handling: r
            .handling
            .as_ref()
            .map_or(String::new(), |h| forms::handling_label(lang, h)),
    });
    let status = pb::TraceStatus::try_from(t.status).unwrap_or(pb::TraceStatus::Unspecified);
    let can_answer = t.direction == "incoming"
        && matches!(
            status,
            pb::TraceStatus::Received | pb::TraceStatus::Acknowledged
        );
    let mut page = o.page(&app, "traces.detail");
    page.title = format!(
        "{} {}",
        page.title,
        req.id.chars().take(12).collect::<String>()
    );
    Ok(render(&DetailPage {
        page,
        id: urlencoding::encode(&req.id).into_owned(),
        direction: lang
            .t(if t.direction == "incoming" {
                "traces.direction.incoming"
            } else {
                "traces.direction.outgoing"
            })
            .to_owned(),
        counterpart: t.counterpart_node.clone(),
        status: status_label(lang, t.status),
        status_code: status.as_str_name().to_owned(),
        due: if req.due_at > 0 {
            lang.datetime(req.due_at)
        } else {
            String::new()
        },
        overdue: t.overdue,
        facts,
        answer,
        delivery_error: t.delivery_error.clone(),
        escalation: t.escalation_contact.clone(),
        history: t
            .history
            .iter()
            .map(|h| {
                (
                    lang.datetime(h.at),
                    status_label(lang, h.status),
                    crate::i18n::node_text(lang, &h.note),
                )
            })
            .collect(),
        can_answer,
    }))
}

/// Answers, restricts or declines an incoming request.
pub async fn answer(
    State(app): State<Arc<App>>,
    o: Officer,
    Path(id): Path<String>,
    Form(v): Form<HashMap<String, String>>,
) -> PageResult {
    o.require(Capability::Trace).map_err(fail(&o, &app))?;
    let get = |k: &str| v.get(k).map_or(String::new(), |s| s.trim().to_owned());
    let outcome = match get("outcome").as_str() {
        "answered" => pb::TraceStatus::Answered,
        "restricted" => pb::TraceStatus::Restricted,
        "declined" => pb::TraceStatus::Declined,
        _ => {
            return Err(fail(&o, &app)(GatewayError::Invalid(vec![FieldProblem {
                field: "outcome".into(),
                line: 0,
                reason: o.lang.t("common.required").to_owned(),
            }])));
        }
    };
    let link = pb::CustodyLink {
        role: get("custody_role"),
        name: get("custody_name"),
        country: get("custody_country").to_ascii_uppercase(),
        date: get("custody_date"),
        details: get("custody_details"),
    };
    let has_link = !(link.role.is_empty() && link.name.is_empty() && link.details.is_empty());
    let req = pb::AnswerTraceRequestRequest {
        request_id: id.clone(),
        outcome: outcome as i32,
        chain_of_custody: if has_link { vec![link] } else { Vec::new() },
        remarks: get("remarks"),
    };
    ops::answer_trace(&app, o.caller(), req)
        .await
        .map_err(fail(&o, &app))?;
    Ok(Redirect::to(&format!("/traces/{}", urlencoding::encode(&id))).into_response())
}
