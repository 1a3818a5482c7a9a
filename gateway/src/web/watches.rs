//! The watch list: serial numbers an officer keeps on watch (added here or from the lookup
//! form), the alerts the node raised when a new hit appeared at a peer, and their
//! acknowledgement. The dashboard shows the alerts not yet acknowledged.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect};
use tracenet_proto::v1 as pb;

use super::forms::{self, SelectOption};
use super::{Officer, Page, PageResult, fail, render};
use crate::app::App;
use crate::auth::Capability;
use crate::error::GatewayError;
use crate::i18n::Lang;
use crate::ops;

/// One watch as listed: id, serial, manufacturer, who, since, last run, last problem, alerts.
type WatchRow = (String, String, String, String, String, String, String, u32);

/// One alert as listed: id, serial, holder, reference, raised, what the hit discloses,
/// acknowledged by (empty: open).
pub(super) type AlertRow = (String, String, String, String, String, String, String);

#[derive(Template)]
#[template(path = "watches.html")]
struct WatchesPage {
    page: Page,
    watches: Vec<WatchRow>,
    alerts: Vec<AlertRow>,
    purposes: Vec<SelectOption>,
    input: ops::WatchInput,
    errors: HashMap<String, String>,
}

/// The rows of alerts, as the watch page and the dashboard show them.
pub(super) fn alert_rows(lang: Lang, alerts: &[pb::WatchAlert]) -> Vec<AlertRow> {
    alerts
        .iter()
        .map(|a| {
            (
                a.id.clone(),
                a.value.clone(),
                a.node_id.clone(),
                a.reference.clone(),
                lang.datetime(a.raised_at),
                a.hit
                    .as_ref()
                    .map(|h| super::search::describe_hit(lang, h))
                    .unwrap_or_default(),
                a.acknowledged_by.clone(),
            )
        })
        .collect()
}

async fn page(
    app: &App,
    o: &Officer,
    input: ops::WatchInput,
    errors: HashMap<String, String>,
) -> Result<WatchesPage, GatewayError> {
    let lang = o.lang;
    let watches = ops::watches(app, o.caller())
        .await?
        .iter()
        .map(|w| {
            (
                w.id.clone(),
                w.value.clone(),
                w.manufacturer.clone(),
                w.created_by.clone(),
                lang.datetime(w.created_at),
                if w.last_run_at > 0 {
                    lang.datetime(w.last_run_at)
                } else {
                    lang.t("watch.not_yet").to_owned()
                },
                w.last_error.clone(),
                w.alert_count,
            )
        })
        .collect();
    let alerts = ops::watch_alerts(app, o.caller(), false).await?;
    Ok(WatchesPage {
        page: o.page(app, "watch.title"),
        watches,
        alerts: alert_rows(lang, &alerts.alerts),
        purposes: forms::options(lang, "PURPOSE", &input.purpose, Some("common.choose")),
        input,
        errors,
    })
}

/// The watch list with its alerts and the form to add a serial.
pub async fn show(State(app): State<Arc<App>>, o: Officer) -> PageResult {
    o.require(Capability::Lookup).map_err(fail(&o, &app))?;
    let input = ops::WatchInput {
        purpose: "criminal_investigation".into(),
        ..Default::default()
    };
    let p = page(&app, &o, input, HashMap::new())
        .await
        .map_err(fail(&o, &app))?;
    Ok(render(&p))
}

/// What the form posts (the lookup form's fields too, so a lookup can be kept on watch).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct WatchForm {
    kind: String,
    serial_number: String,
    manufacturer: String,
    purpose: String,
    legal_basis: String,
    case_reference: String,
    note: String,
}

/// Puts a serial on watch, or shows the form again with every problem.
pub async fn add(State(app): State<Arc<App>>, o: Officer, Form(f): Form<WatchForm>) -> PageResult {
    o.require(Capability::Lookup).map_err(fail(&o, &app))?;
    let input = ops::WatchInput {
        kind: f.kind,
        serial_number: f.serial_number,
        manufacturer: f.manufacturer,
        purpose: f.purpose,
        legal_basis: f.legal_basis,
        case_reference: f.case_reference,
        note: f.note,
    };
    match ops::add_watch(&app, o.caller(), &input).await {
        Ok(_) => Ok(Redirect::to("/watches").into_response()),
        Err(GatewayError::Invalid(problems)) => {
            let mut errors = HashMap::new();
            for p in problems {
                let msg = match p.field.as_str() {
                    "serial_number" | "value" => o.lang.t("lookup.need_serial"),
                    "purpose" => o.lang.t("inquiry.need_purpose"),
                    "legal_basis" => o.lang.t("inquiry.need_legal_basis"),
                    _ => "",
                };
                let text = if msg.is_empty() {
                    p.reason
                } else {
                    msg.to_owned()
                };
                errors.insert(p.field, text);
            }
            let p = page(&app, &o, input, errors)
                .await
                .map_err(fail(&o, &app))?;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, render(&p)).into_response())
        }
        Err(e) => Err(fail(&o, &app)(e)),
    }
}

/// Takes a serial off the watch list.
pub async fn remove(State(app): State<Arc<App>>, o: Officer, Path(id): Path<String>) -> PageResult {
    ops::remove_watch(&app, o.caller(), &id)
        .await
        .map_err(fail(&o, &app))?;
    Ok(Redirect::to("/watches").into_response())
}

/// Acknowledges an alert, then back to where the officer was (dashboard or watch list).
pub async fn acknowledge(
    State(app): State<Arc<App>>,
    o: Officer,
    Path(id): Path<String>,
) -> PageResult {
    ops::acknowledge_alert(&app, o.caller(), &id)
        .await
        .map_err(fail(&o, &app))?;
    Ok(Redirect::to("/watches#watch-alerts").into_response())
}
