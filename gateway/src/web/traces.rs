//! Trace requests: the inbox and outgoing list with status and deadlines, the new-request form,
//! one request with its full status history, and the answer / restrict / decline form.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Form, Path, Query, State};
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
        // The first item's identifier: a firearm's or part's serial, an ammunition lot's calibre.
        serial: req
            .firearm
            .map(|f| f.serial_number)
            .or_else(|| {
                req.items.first().and_then(|i| match &i.item {
                    Some(pb::trace_item::Item::Firearm(f)) => Some(f.serial_number.clone()),
                    Some(pb::trace_item::Item::Part(p)) => Some(p.serial_number.clone()),
                    Some(pb::trace_item::Item::Ammunition(a)) => Some(a.calibre.clone()),
                    None => None,
                })
            })
            .unwrap_or_default(),
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
    /// The marking practices the State of manufacture publishes: (publisher, manufacturer,
    /// convention, import marking, notes).
    practices: Vec<(String, String, String, String, String)>,
    /// The State whose practices these are (its name).
    practices_of: String,
}

const TRACE_FIELDS: &[(&str, &str, bool)] = &[
    ("requested_country", "traces.requested_country", true),
    ("target_node", "traces.target_node", false),
    ("serial_number", "field.serial_number", false),
    ("manufacturer", "field.manufacturer", false),
    ("model", "field.model", false),
    ("category", "field.category", false),
    ("calibre", "field.calibre", false),
    (
        "country_of_manufacture",
        "field.country_of_manufacture",
        false,
    ),
    ("year_of_manufacture", "field.year_of_manufacture", false),
    ("import_country", "traces.import_country", false),
    ("import_year", "traces.import_year", false),
    ("marking_condition", "field.marking_condition", false),
    ("other_marking", "traces.other_marking", false),
    (
        "other_marking_location",
        "traces.other_marking_location",
        false,
    ),
    ("ammunition_calibre", "traces.ammunition_calibre", false),
    (
        "ammunition_manufacturer",
        "traces.ammunition_manufacturer",
        false,
    ),
    ("ammunition_quantity", "traces.ammunition_quantity", false),
    ("ammunition_headstamp", "field.ammunition_headstamp", false),
    ("ammunition_lot", "field.ammunition_lot", false),
    ("part_kind", "traces.part_kind", false),
    ("part_serial_number", "traces.part_serial_number", false),
    ("seizure_record_id", "traces.seizure_record", false),
    ("follows_on", "traces.follows_on", false),
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
                "requested_country" | "country_of_manufacture" | "import_country" => {
                    forms::country_options(o.lang, &value.to_ascii_uppercase())
                }
                "category" => {
                    forms::options(o.lang, "WEAPON_CATEGORY", &value, Some("common.choose"))
                }
                "marking_condition" => {
                    forms::options(o.lang, "MARKING_CONDITION", &value, Some("common.choose"))
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
        practices: Vec::new(),
        practices_of: String::new(),
    }
}

/// The marking practices the members of State `country` publish in the directory (none when
/// the node has no directory).
async fn practices(
    app: &App,
    o: &Officer,
    country: &str,
) -> Vec<(String, String, String, String, String)> {
    if country.is_empty() {
        return Vec::new();
    }
    let Ok(view) = ops::directory(app, o.caller()).await else {
        return Vec::new();
    };
    let state = view.state.unwrap_or_default();
    let mut out = Vec::new();
    for (node, m) in &state.members {
        if m.country != country {
            continue;
        }
        if let Some(e) = state.entries.get(node) {
            out.extend(e.marking_practices.iter().map(|p| {
                (
                    node.clone(),
                    p.manufacturer.clone(),
                    p.convention.clone(),
                    p.import_marking.clone(),
                    p.notes.clone(),
                )
            }));
        }
    }
    out.sort();
    out
}

/// What the new-request form may be filled from: a lookup hit (serial, manufacturer, model,
/// country of manufacture), one of this node's seizure records, or an answered trace whose
/// answer names the next State (a follow-on).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct Prefill {
    serial: String,
    manufacturer: String,
    model: String,
    country: String,
    record: String,
    follows_on: String,
    requested: String,
}

/// The form's values from a seizure record: its first firearm with every ITI field, its first
/// ammunition lot and part, and its case reference.
fn from_record(values: &mut HashMap<String, String>, r: &pb::SeizureRecord) {
    let mut put = |k: &str, v: String| {
        if !v.is_empty() {
            values.insert(k.to_owned(), v);
        }
    };
    if let Some(f) = r.firearms.first() {
        put("serial_number", f.serial_number.clone());
        put("manufacturer", f.manufacturer.clone());
        put("model", f.model.clone());
        put("calibre", f.calibre.clone());
        put("country_of_manufacture", f.country_of_manufacture.clone());
        put("requested_country", f.country_of_manufacture.clone());
        if f.year_of_manufacture > 0 {
            put("year_of_manufacture", f.year_of_manufacture.to_string());
        }
        if let Some(m) = &f.import_marking {
            put("import_country", m.country.clone());
            if m.year > 0 {
                put("import_year", m.year.to_string());
            }
        }
        if let Some(m) = f.other_markings.first() {
            put("other_marking", m.text.clone());
            put("other_marking_location", m.location.clone());
        }
        put("category", forms::enum_short("WEAPON_CATEGORY", f.category));
        put(
            "marking_condition",
            forms::enum_short("MARKING_CONDITION", f.marking_condition),
        );
    }
    if let Some(a) = r.ammunition.first() {
        put("ammunition_calibre", a.calibre.clone());
        put("ammunition_manufacturer", a.manufacturer.clone());
        if a.quantity > 0 {
            put("ammunition_quantity", a.quantity.to_string());
        }
        put("ammunition_headstamp", a.headstamp.clone());
        put("ammunition_lot", a.lot.clone());
    }
    if let Some(p) = r.parts.first() {
        put("part_kind", p.kind.clone());
        put("part_serial_number", p.serial_number.clone());
    }
    put("case_reference", r.case_reference.clone());
    put("seizure_record_id", r.id.clone());
}

/// The new-request form, filled from a lookup hit, a seizure record or a follow-on, with the
/// marking practices of the State of manufacture beside it.
pub async fn new_form(
    State(app): State<Arc<App>>,
    o: Officer,
    Query(q): Query<Prefill>,
) -> PageResult {
    o.require(Capability::Trace).map_err(fail(&o, &app))?;
    let mut values = HashMap::new();
    if !q.record.is_empty() {
        let r = ops::get_record(&app, o.caller(), &q.record)
            .await
            .map_err(fail(&o, &app))?;
        if let Some(rec) = r.record {
            from_record(&mut values, &rec);
        }
    }
    for (k, v) in [
        ("serial_number", &q.serial),
        ("manufacturer", &q.manufacturer),
        ("model", &q.model),
        ("country_of_manufacture", &q.country),
        ("requested_country", &q.country),
        ("follows_on", &q.follows_on),
        ("requested_country", &q.requested),
    ] {
        if !v.trim().is_empty() {
            values.insert(k.to_owned(), v.trim().to_ascii_uppercase_if(k));
        }
    }
    let mut page = new_page(&o, &app, &values, &[]);
    let made_in = values
        .get("country_of_manufacture")
        .cloned()
        .unwrap_or_default();
    page.practices = practices(&app, &o, &made_in).await;
    page.practices_of = o.lang.country_name(&made_in).unwrap_or(&made_in).to_owned();
    Ok(render(&page))
}

/// Country codes are written in capitals; other prefilled values as given.
trait UpperIfCountry {
    fn to_ascii_uppercase_if(&self, key: &str) -> String;
}

impl UpperIfCountry for str {
    fn to_ascii_uppercase_if(&self, key: &str) -> String {
        if key.ends_with("country") || key == "country_of_manufacture" {
            self.to_ascii_uppercase()
        } else {
            self.to_owned()
        }
    }
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
    let number = |k: &str| get(k).parse::<u32>().unwrap_or(0);
    let firearm = pb::FirearmIdentification {
        serial_number: get("serial_number"),
        manufacturer: get("manufacturer"),
        model: get("model"),
        category: forms::enum_number("WEAPON_CATEGORY", &get("category")),
        calibre: get("calibre"),
        country_of_manufacture: get("country_of_manufacture").to_ascii_uppercase(),
        year_of_manufacture: number("year_of_manufacture"),
        import_marking: (!get("import_country").is_empty() || number("import_year") > 0).then(
            || pb::ImportMarking {
                country: get("import_country").to_ascii_uppercase(),
                year: number("import_year"),
            },
        ),
        other_markings: if get("other_marking").is_empty() {
            Vec::new()
        } else {
            vec![pb::Marking {
                text: get("other_marking"),
                location: get("other_marking_location"),
            }]
        },
        marking_condition: forms::enum_number("MARKING_CONDITION", &get("marking_condition")),
        ..Default::default()
    };
    let mut items = Vec::new();
    if firearm != pb::FirearmIdentification::default() {
        items.push(pb::TraceItem {
            item: Some(pb::trace_item::Item::Firearm(firearm)),
        });
    }
    if [
        "ammunition_calibre",
        "ammunition_manufacturer",
        "ammunition_headstamp",
        "ammunition_lot",
    ]
    .iter()
    .any(|k| !get(k).is_empty())
    {
        items.push(pb::TraceItem {
            item: Some(pb::trace_item::Item::Ammunition(pb::AmmunitionItem {
                calibre: get("ammunition_calibre"),
                manufacturer: get("ammunition_manufacturer"),
                quantity: get("ammunition_quantity").parse().unwrap_or(0),
                headstamp: get("ammunition_headstamp"),
                lot: get("ammunition_lot"),
                ..Default::default()
            })),
        });
    }
    if !get("part_kind").is_empty() || !get("part_serial_number").is_empty() {
        items.push(pb::TraceItem {
            item: Some(pb::trace_item::Item::Part(pb::PartItem {
                kind: get("part_kind"),
                serial_number: get("part_serial_number"),
                quantity: 1,
                ..Default::default()
            })),
        });
    }
    let req = pb::SendTraceRequestRequest {
        items,
        seizure_record_id: get("seizure_record_id"),
        follows_on: get("follows_on"),
        requested_country: get("requested_country").to_ascii_uppercase(),
        reason: get("reason"),
        legal_basis: get("legal_basis"),
        urgency: forms::enum_number("URGENCY", &get("urgency")),
        case_reference: get("case_reference"),
        target_node: get("target_node").to_ascii_uppercase(),
        ..Default::default()
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
    /// The items traced, one line each.
    items: Vec<String>,
    /// The responder's messages: (part, outcome, remarks, chain of custody, next State).
    messages: Vec<(u32, String, String, Vec<String>, String)>,
    /// What the requester sent when asked: (part, text).
    information: Vec<(u32, String)>,
    /// Outgoing, waiting for more information: the form to send it.
    can_inform: bool,
    /// Outgoing, answered with a next State: where a follow-on trace would go.
    follow_on_to: String,
    /// The trace this one follows on from, and those that follow on from it (ids).
    follows_on: String,
    follow_ons: Vec<String>,
    /// The seizure record it was made from.
    seizure: String,
}

/// One custody link, in one line.
fn custody_line(lang: Lang, c: &pb::CustodyLink) -> String {
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
}

/// One trace item, in one line.
fn item_line(lang: Lang, i: &pb::TraceItem) -> String {
    let join = |parts: Vec<String>| {
        parts
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" · ")
    };
    match &i.item {
        Some(pb::trace_item::Item::Firearm(f)) => join(vec![
            lang.t("traces.item.firearm").to_owned(),
            f.serial_number.clone(),
            f.manufacturer.clone(),
            f.model.clone(),
            f.calibre.clone(),
            f.country_of_manufacture.clone(),
            if f.year_of_manufacture > 0 {
                f.year_of_manufacture.to_string()
            } else {
                String::new()
            },
            f.import_marking
                .as_ref()
                .map(|m| {
                    format!(
                        "{} {} {}",
                        lang.t("traces.import_country"),
                        m.country,
                        m.year
                    )
                })
                .unwrap_or_default(),
            f.other_markings
                .iter()
                .map(|m| format!("{} ({})", m.text, m.location))
                .collect::<Vec<_>>()
                .join(", "),
            lang.enum_label(
                pb::MarkingCondition::try_from(f.marking_condition).map_or("", |c| {
                    if f.marking_condition == 0 {
                        ""
                    } else {
                        c.as_str_name()
                    }
                }),
            ),
        ]),
        Some(pb::trace_item::Item::Ammunition(a)) => join(vec![
            lang.t("traces.item.ammunition").to_owned(),
            a.calibre.clone(),
            a.manufacturer.clone(),
            if a.quantity > 0 {
                lang.number(a.quantity)
            } else {
                String::new()
            },
        ]),
        Some(pb::trace_item::Item::Part(p)) => join(vec![
            lang.t("traces.item.part").to_owned(),
            p.kind.clone(),
            p.serial_number.clone(),
        ]),
        None => String::new(),
    }
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
            .map(|c| custody_line(lang, c))
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
            pb::TraceStatus::Received
                | pb::TraceStatus::Acknowledged
                | pb::TraceStatus::PartiallyAnswered
        );
    let outgoing = t.direction != "incoming";
    let items = if req.items.is_empty() {
        req.firearm
            .clone()
            .map(|f| {
                vec![pb::TraceItem {
                    item: Some(pb::trace_item::Item::Firearm(f)),
                }]
            })
            .unwrap_or_default()
    } else {
        req.items.clone()
    };
    let follow_on_to = if outgoing && status == pb::TraceStatus::Answered {
        t.response
            .as_ref()
            .map(|r| r.next_country.clone())
            .unwrap_or_default()
    } else {
        String::new()
    };
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
        items: items.iter().map(|i| item_line(lang, i)).collect(),
        messages: t
            .messages
            .iter()
            .map(|m| {
                (
                    m.part,
                    status_label(lang, m.outcome),
                    crate::i18n::node_text(lang, &m.remarks),
                    m.chain_of_custody
                        .iter()
                        .map(|c| custody_line(lang, c))
                        .collect(),
                    m.next_country.clone(),
                )
            })
            .collect(),
        information: t
            .information
            .iter()
            .map(|i| (i.part, i.text.clone()))
            .collect(),
        can_inform: outgoing && status == pb::TraceStatus::MoreInformationRequested,
        follow_on_to,
        follows_on: req.follows_on.clone(),
        follow_ons: t.follow_ons.clone(),
        seizure: t.seizure_record_id.clone(),
    }))
}

/// Sends the information the responder asked for.
pub async fn inform(
    State(app): State<Arc<App>>,
    o: Officer,
    Path(id): Path<String>,
    Form(v): Form<HashMap<String, String>>,
) -> PageResult {
    o.require(Capability::Trace).map_err(fail(&o, &app))?;
    let text = v.get("text").map_or(String::new(), |s| s.trim().to_owned());
    ops::provide_information(
        &app,
        o.caller(),
        pb::ProvideTraceInformationRequest {
            request_id: id.clone(),
            text,
            items: Vec::new(),
        },
    )
    .await
    .map_err(fail(&o, &app))?;
    Ok(Redirect::to(&format!("/traces/{}", urlencoding::encode(&id))).into_response())
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
        "partially_answered" => pb::TraceStatus::PartiallyAnswered,
        "more_information_requested" => pb::TraceStatus::MoreInformationRequested,
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
        next_country: get("next_country").to_ascii_uppercase(),
    };
    ops::answer_trace(&app, o.caller(), req)
        .await
        .map_err(fail(&o, &app))?;
    Ok(Redirect::to(&format!("/traces/{}", urlencoding::encode(&id))).into_response())
}
