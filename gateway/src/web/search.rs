//! Search: local search by serial number (exact or normalised) and the federated hit/no-hit
//! lookup, which shows which members hold a match and which did not answer in time.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use tracenet_proto::v1 as pb;

use super::forms::{self, SelectOption};
use super::{Officer, Page, PageResult, fail, render};
use crate::app::App;
use crate::auth::Capability;
use crate::error::GatewayError;
use crate::i18n::Lang;
use crate::ops;

/// A local result row.
#[derive(Debug)]
struct Found {
    id: String,
    national_ref: String,
    date: String,
    serial: String,
    manufacturer: String,
}

/// One member's answer to a lookup.
#[derive(Debug)]
struct Answer {
    node: String,
    hit: bool,
    /// Each hit in one line, and the address of the trace form filled from it (empty for users
    /// who do not trace).
    hits: Vec<(String, String)>,
}

/// A member that did not answer.
#[derive(Debug)]
struct Failed {
    node: String,
    reason: String,
}

/// A lookup's outcome as shown.
#[derive(Debug)]
struct LookupView {
    request_id: String,
    answers: Vec<Answer>,
    failed: Vec<Failed>,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    page: Page,
    serial: String,
    normalised: bool,
    /// The identifier kind searched for (`serial` or another lookup kind).
    search_kind: String,
    searched: bool,
    search_error: Option<String>,
    local: Vec<Found>,
    can_lookup: bool,
    purposes: Vec<SelectOption>,
    lookup_serial: String,
    lookup_manufacturer: String,
    /// The lookup kind chosen (`serial` or `ballistic_reference`).
    lookup_kind: String,
    via_hub: bool,
    legal_basis: String,
    case_reference: String,
    errors: HashMap<String, String>,
    lookup: Option<LookupView>,
}

impl SearchPage {
    fn new(o: &Officer, app: &App) -> SearchPage {
        SearchPage {
            page: o.page(app, "search.title"),
            serial: String::new(),
            normalised: true,
            search_kind: "serial".into(),
            searched: false,
            search_error: None,
            local: Vec::new(),
            can_lookup: o.who.can(Capability::Lookup),
            purposes: forms::options(o.lang, "PURPOSE", "criminal_investigation", None),
            lookup_serial: String::new(),
            lookup_manufacturer: String::new(),
            lookup_kind: "serial".into(),
            via_hub: false,
            legal_basis: String::new(),
            case_reference: String::new(),
            errors: HashMap::new(),
            lookup: None,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct SearchQuery {
    #[serde(default)]
    serial: String,
    #[serde(default)]
    normalised: String,
    #[serde(default)]
    kind: String,
}

/// The search page, with local results when a serial was given.
pub async fn local(
    State(app): State<Arc<App>>,
    o: Officer,
    Query(q): Query<SearchQuery>,
) -> PageResult {
    o.require(Capability::ReadRecords).map_err(fail(&o, &app))?;
    let mut page = SearchPage::new(&o, &app);
    if !q.serial.trim().is_empty() {
        page.serial.clone_from(&q.serial);
        page.normalised = q.normalised == "1";
        page.searched = true;
        page.search_kind.clone_from(&q.kind);
        match ops::search(&app, o.caller(), &q.serial, page.normalised, &q.kind).await {
            Ok(found) => {
                page.local = found
                    .iter()
                    .filter_map(|r| r.record.as_ref())
                    .map(|r| found_row(o.lang, r))
                    .collect();
            }
            Err(GatewayError::BadRequest(m)) => page.search_error = Some(m),
            Err(e) => return Err(fail(&o, &app)(e)),
        }
    }
    Ok(render(&page))
}

fn found_row(lang: Lang, r: &pb::SeizureRecord) -> Found {
    let fa = r.firearms.first().cloned().unwrap_or_default();
    Found {
        id: r.id.clone(),
        national_ref: r.national_ref.clone(),
        date: lang.date(&r.event.clone().unwrap_or_default().date),
        serial: fa.serial_number,
        manufacturer: fa.manufacturer,
    }
}

/// What a hit discloses, in one line (only fields the holder's policy let through). A "hit
/// only" answer says who holds the record and whom to ask instead.
pub(super) fn describe_hit(lang: Lang, h: &pb::LookupHit) -> String {
    if h.hit_only {
        let reference = h.reference.clone().unwrap_or_default();
        let mut line = format!(
            "{} {}: {}",
            lang.t("lookup.held_by"),
            reference.owner_node,
            lang.t("lookup.ask_them")
        );
        if !h.contact.is_empty() {
            line.push_str(&format!(" · {}: {}", lang.t("lookup.contact"), h.contact));
        }
        if !reference.reference.is_empty() {
            line.push_str(&format!(
                " · {} {}",
                lang.t("lookup.reference"),
                reference.reference
            ));
        }
        return line;
    }
    let r = h.disclosed.clone().unwrap_or_default();
    let mut parts = Vec::new();
    // A loss report first: "Reported stolen · from a dealer · 14 March 2025 · FRA", as much of
    // it as the holder's rule disclosed.
    if let Some(loss) = &r.loss {
        let mut said = vec![match pb::LossKind::try_from(loss.kind) {
            Ok(k) if k != pb::LossKind::Unspecified => lang.enum_label(k.as_str_name()),
            _ => lang.t("lookup.reported_missing").to_owned(),
        }];
        if let Ok(s) = pb::LossSource::try_from(loss.source) {
            said.push(lang.enum_label(s.as_str_name()));
        }
        if !loss.date.is_empty() {
            said.push(lang.date(&loss.date));
        }
        if let Some(p) = &loss.place {
            said.push(p.country.clone());
        }
        parts.push(
            said.into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" · "),
        );
    }
    if let Some(f) = r.firearms.first() {
        parts.push(
            [
                f.serial_number.as_str(),
                f.manufacturer.as_str(),
                f.model.as_str(),
            ]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" "),
        );
    }
    if let Some(a) = r.ammunition.first() {
        let lot: Vec<&str> = [a.calibre.as_str(), a.headstamp.as_str(), a.lot.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        if !lot.is_empty() {
            parts.push(format!("{} {}", lang.t("lookup.ammunition"), lot.join(" ")));
        }
    }
    if let Some(sh) = &r.shipment {
        let ids: Vec<&str> = sh.identifiers.iter().map(|i| i.value.as_str()).collect();
        let shown: Vec<&str> = ids
            .into_iter()
            .chain([sh.online_platform.as_str(), sh.vendor_handle.as_str()])
            .filter(|s| !s.is_empty())
            .collect();
        if !shown.is_empty() {
            parts.push(format!(
                "{} {}",
                lang.t("lookup.kind_shipment"),
                shown.join(", ")
            ));
        }
    }
    if !r.ballistic_references.is_empty() {
        parts.push(format!(
            "{} {}",
            lang.t("field.ballistic_references"),
            r.ballistic_references.join(", ")
        ));
    }
    if let Some(ev) = &r.event
        && !ev.date.is_empty()
    {
        parts.push(lang.date(&ev.date));
    }
    // Case facts, where the holder's policy disclosed them.
    let status = r.firearms.first().map_or(0, |f| f.status);
    let facts = [
        pb::WeaponStatus::try_from(status).map(|v| v.as_str_name()),
        pb::ProceedingsStatus::try_from(r.proceedings_status).map(|v| v.as_str_name()),
        pb::Disposition::try_from(r.disposition).map(|v| v.as_str_name()),
    ];
    parts.extend(
        facts
            .into_iter()
            .flatten()
            .map(|name| lang.enum_label(name))
            .filter(|label| !label.is_empty()),
    );
    if let Some(t) = &r.trafficking
        && !t.route.is_empty()
    {
        parts.push(
            t.route
                .iter()
                .map(|p| p.country.as_str())
                .collect::<Vec<_>>()
                .join(" → "),
        );
    }
    if let Some(reference) = &h.reference {
        parts.push(format!(
            "{} {}",
            lang.t("lookup.reference"),
            reference.reference
        ));
    }
    if !h.redacted_fields.is_empty() {
        parts.push(format!(
            "{}: {}",
            lang.t("lookup.withheld"),
            h.redacted_fields.join(", ")
        ));
    }
    parts.join(" · ")
}

/// The trace form's address filled from a hit: the firearm as disclosed (serial, manufacturer,
/// model, country of manufacture, which is also the State asked by default), else what was
/// looked up.
fn trace_link(h: &pb::LookupHit, asked: &ops::LookupInput) -> String {
    // Compared as officers write serials: case, spaces and separators aside.
    let key = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_uppercase()
    };
    let wanted = key(&asked.serial_number);
    let disclosed = h.disclosed.as_ref().and_then(|r| {
        r.firearms
            .iter()
            .find(|f| key(&f.serial_number) == wanted)
            .or(r.firearms.first())
            .cloned()
    });
    let f = disclosed.unwrap_or_else(|| pb::FirearmIdentification {
        serial_number: asked.serial_number.trim().to_owned(),
        manufacturer: asked.manufacturer.trim().to_owned(),
        ..Default::default()
    });
    let serial = if f.serial_number.is_empty() {
        asked.serial_number.trim()
    } else {
        f.serial_number.as_str()
    };
    format!(
        "/traces/new?serial={}&manufacturer={}&model={}&country={}",
        urlencoding::encode(serial),
        urlencoding::encode(&f.manufacturer),
        urlencoding::encode(&f.model),
        urlencoding::encode(&f.country_of_manufacture),
    )
}

/// Runs a federated lookup and shows every member's answer.
pub async fn lookup(
    State(app): State<Arc<App>>,
    o: Officer,
    Form(f): Form<ops::LookupInput>,
) -> PageResult {
    o.require(Capability::Lookup).map_err(fail(&o, &app))?;
    let mut page = SearchPage::new(&o, &app);
    page.purposes = forms::options(o.lang, "PURPOSE", &f.purpose, Some("common.choose"));
    page.lookup_serial.clone_from(&f.serial_number);
    page.lookup_manufacturer.clone_from(&f.manufacturer);
    page.lookup_kind.clone_from(&f.kind);
    page.via_hub = f.via_hub;
    page.legal_basis.clone_from(&f.legal_basis);
    page.case_reference.clone_from(&f.case_reference);
    match ops::lookup(&app, o.caller(), &f).await {
        Ok(r) => {
            page.lookup = Some(LookupView {
                request_id: r.request_id.clone(),
                answers: r
                    .answers
                    .iter()
                    .map(|a| Answer {
                        node: a.node_id.clone(),
                        hit: a.hit,
                        hits: a
                            .hits
                            .iter()
                            .map(|h| {
                                // A "hit only" row shows nothing of the record, not even
                                // the serial typed: its follow-up is a request to the holder.
                                let link = if o.who.can(Capability::Trace) && !h.hit_only {
                                    trace_link(h, &f)
                                } else {
                                    String::new()
                                };
                                (describe_hit(o.lang, h), link)
                            })
                            .collect(),
                    })
                    .collect(),
                failed: r
                    .failed
                    .iter()
                    .map(|x| Failed {
                        node: x.node_id.clone(),
                        reason: x.reason.clone(),
                    })
                    .collect(),
            });
            Ok(render(&page))
        }
        Err(GatewayError::Invalid(problems)) => {
            for p in problems {
                let msg = match p.field.as_str() {
                    "serial_number" => o.lang.t("lookup.need_serial"),
                    "kind" => o.lang.t("lookup.bad_kind"),
                    "purpose" => o.lang.t("inquiry.need_purpose"),
                    "legal_basis" => o.lang.t("inquiry.need_legal_basis"),
                    _ => "",
                };
                let text = if msg.is_empty() {
                    p.reason
                } else {
                    msg.to_owned()
                };
                page.errors.insert(p.field, text);
            }
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
        Err(e) => Err(fail(&o, &app)(e)),
    }
}
