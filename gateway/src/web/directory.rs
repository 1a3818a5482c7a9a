//! The directory pages: members and their national points of contact (searchable), and for the
//! administrator this node's own sharing policy, its contact points (editable, published through
//! the directory) and a preview of exactly what a chosen member and purpose would receive of a
//! chosen record.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use tracenet_proto::v1 as pb;

use super::forms::{self, SelectOption};
use super::{Officer, Page, PageResult, fail, render};
use crate::app::App;
use crate::auth::Capability;
use crate::error::GatewayError;
use crate::i18n::Lang;
use crate::ops;
use tracenet_ids::NodeId;

/// A member row.
#[derive(Debug)]
struct MemberRow {
    node_id: String,
    organisation: String,
    kind: String,
    member_states: String,
    tracing: String,
    role: String,
    status: String,
    regions: String,
    policy_version: String,
    contacts: Vec<String>,
}

#[derive(Template)]
#[template(path = "directory.html")]
struct MembersPage {
    page: Page,
    q: String,
    applied: u64,
    leader: String,
    members: Vec<MemberRow>,
}

#[derive(Debug, Deserialize)]
pub(super) struct SearchQuery {
    #[serde(default)]
    q: String,
}

fn contact_line(c: &pb::ContactPoint) -> String {
    [
        c.function.as_str(),
        c.organisation.as_str(),
        c.email.as_str(),
        c.phone.as_str(),
        &c.languages.join("/"),
        c.working_hours.as_str(),
    ]
    .iter()
    .filter(|s| !s.is_empty())
    .copied()
    .collect::<Vec<_>>()
    .join(" · ")
}

/// The member kind shown: the directory's, or a national agency for a State's node listed
/// without one (as the nodes evaluate policies).
fn kind_label(lang: Lang, m: &pb::Member) -> String {
    let listed = pb::MemberKind::try_from(m.kind).unwrap_or_default();
    let kind = match (
        listed,
        NodeId::parse(&m.node_id).ok().and_then(|n| n.state()),
    ) {
        (pb::MemberKind::Unspecified, Some(_)) => pb::MemberKind::NationalAgency,
        (k, _) => k,
    };
    lang.enum_label(kind.as_str_name())
}

/// For each node, what it is designated for by its State's latest tracing designation: "all"
/// weapon categories (the default) and/or the categories listed for it.
fn tracing_roles(lang: Lang, state: &pb::DirectoryState) -> HashMap<String, String> {
    let mut latest: HashMap<String, (i64, &str, &pb::TracingDesignation)> = HashMap::new();
    for (writer, e) in &state.entries {
        let (Some(d), Some(c)) = (
            e.tracing_designation.as_ref(),
            NodeId::parse(writer).ok().and_then(|n| n.state()),
        ) else {
            continue;
        };
        let newer = latest
            .get(c.as_str())
            .is_none_or(|(at, by, _)| (*at, *by) < (d.published_at, writer.as_str()));
        if newer {
            latest.insert(c.to_string(), (d.published_at, writer.as_str(), d));
        }
    }
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (_, _, d) in latest.values() {
        out.entry(d.node_id.clone())
            .or_default()
            .push(lang.t("directory.tracing").to_owned());
        for c in &d.categories {
            let cat = pb::WeaponCategory::try_from(c.category).unwrap_or_default();
            out.entry(c.node_id.clone())
                .or_default()
                .push(lang.enum_label(cat.as_str_name()));
        }
    }
    out.into_iter().map(|(k, v)| (k, v.join(", "))).collect()
}

fn member_rows(lang: Lang, view: &pb::DirectoryView, q: &str) -> Vec<MemberRow> {
    let state = view.state.clone().unwrap_or_default();
    let tracing = tracing_roles(lang, &state);
    let needle = q.trim().to_lowercase();
    let mut ids: Vec<&String> = state.members.keys().collect();
    ids.sort();
    ids.into_iter()
        .filter_map(|id| {
            let m = state.members.get(id)?;
            let entries = state.entries.get(id).cloned().unwrap_or_default();
            let row = MemberRow {
                node_id: m.node_id.clone(),
                organisation: m.organisation.clone(),
                kind: kind_label(lang, m),
                member_states: m.member_states.join(", "),
                tracing: tracing.get(&m.node_id).cloned().unwrap_or_default(),
                role: lang
                    .enum_label(pb::MemberRole::try_from(m.role).map_or("", |r| r.as_str_name())),
                status: lang.enum_label(
                    pb::MemberStatus::try_from(m.status).map_or("", |s| s.as_str_name()),
                ),
                regions: m.regions.join(", "),
                policy_version: entries
                    .policies
                    .last()
                    .and_then(|p| p.policy.as_ref())
                    .map_or(String::new(), |p| format!("v{}", p.version)),
                contacts: entries.contacts.iter().map(contact_line).collect(),
            };
            let hay = format!(
                "{} {} {} {} {} {} {}",
                row.node_id,
                row.organisation,
                row.kind,
                row.member_states,
                m.country,
                row.regions,
                row.contacts.join(" ")
            )
            .to_lowercase();
            (needle.is_empty() || hay.contains(&needle)).then_some(row)
        })
        .collect()
}

/// Members and contact points, filtered by `q`.
pub async fn members(
    State(app): State<Arc<App>>,
    o: Officer,
    Query(q): Query<SearchQuery>,
) -> PageResult {
    let mut page = o.page(&app, "directory.title");
    let view = match ops::directory(&app, o.caller()).await {
        Ok(v) => v,
        // A node running without a directory (a single-node setup): say so, show nothing.
        Err(GatewayError::Conflict(m)) if m.contains("no directory") => {
            page.flash = Some(o.lang.t("directory.disabled").to_owned());
            pb::DirectoryView::default()
        }
        Err(e) => return Err(fail(&o, &app)(e)),
    };
    Ok(render(&MembersPage {
        page,
        members: member_rows(o.lang, &view, &q.q),
        q: q.q,
        applied: view.applied_index,
        leader: view.leader.clone(),
    }))
}

/// A preview outcome as shown.
#[derive(Debug)]
struct PreviewView {
    allowed: bool,
    refusal: String,
    rule: String,
    version: u64,
    fields: Vec<(String, String)>,
    withheld: String,
    handling: String,
}

#[derive(Template)]
#[template(path = "policy.html")]
struct PolicyPage {
    page: Page,
    version: u64,
    legal_basis: String,
    rules: Vec<(String, String, String, String)>,
    record_id: String,
    member_options: Vec<SelectOption>,
    agencies: Vec<SelectOption>,
    purposes: Vec<SelectOption>,
    preview: Option<PreviewView>,
    contacts: Vec<pb::ContactPoint>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct PreviewForm {
    #[serde(default)]
    record_id: String,
    #[serde(default)]
    requester_node: String,
    #[serde(default)]
    agency_kind: String,
    #[serde(default)]
    purpose: String,
}

fn rule_rows(lang: Lang, p: &pb::SharingPolicy) -> Vec<(String, String, String, String)> {
    p.rules
        .iter()
        .map(|r| {
            let aud = r.audience.clone().unwrap_or_default();
            let mut audience: Vec<String> = aud.countries.clone();
            audience.extend(aud.regions.iter().cloned());
            let agencies: Vec<String> = aud
                .agency_kinds
                .iter()
                .map(|a| {
                    lang.enum_label(pb::AgencyKind::try_from(*a).map_or("", |v| v.as_str_name()))
                })
                .collect();
            if !agencies.is_empty() {
                audience.push(format!("({})", agencies.join(", ")));
            }
            let purposes = r
                .purposes
                .iter()
                .map(|x| lang.enum_label(pb::Purpose::try_from(*x).map_or("", |v| v.as_str_name())))
                .collect::<Vec<_>>()
                .join(", ");
            let fields = r
                .fields
                .iter()
                .map(|f| {
                    let t = pb::FieldTreatment::try_from(f.treatment)
                        .unwrap_or(pb::FieldTreatment::Unspecified);
                    match t {
                        pb::FieldTreatment::Allow => lang.policy_field(&f.field),
                        other => format!(
                            "{} ({})",
                            lang.policy_field(&f.field),
                            lang.enum_label(other.as_str_name())
                        ),
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            // A rule without field rules shares whole items of its data classes (trace
            // results, say): name those rather than leave the cell empty.
            let fields = if fields.is_empty() {
                r.data_classes
                    .iter()
                    .map(|c| {
                        lang.enum_label(pb::DataClass::try_from(*c).map_or("", |v| v.as_str_name()))
                    })
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                fields
            };
            (r.id.clone(), audience.join(", "), purposes, fields)
        })
        .collect()
}

async fn policy_page(
    app: &App,
    o: &Officer,
    f: &PreviewForm,
    preview: Option<PreviewView>,
) -> Result<PolicyPage, GatewayError> {
    o.require(Capability::Administer)?;
    let view = ops::directory(app, o.caller()).await?;
    let state = view.state.unwrap_or_default();
    let own = state
        .entries
        .get(app.node_id())
        .cloned()
        .unwrap_or_default();
    let policy = own
        .policies
        .last()
        .and_then(|p| p.policy.clone())
        .unwrap_or_default();
    let mut contacts = own.contacts.clone();
    contacts.push(pb::ContactPoint::default());
    let mut ids: Vec<&String> = state
        .members
        .keys()
        .filter(|k| k.as_str() != app.node_id())
        .collect();
    ids.sort();
    let member_options = ids
        .into_iter()
        .map(|id| SelectOption {
            value: id.clone(),
            label: id.clone(),
            selected: *id == f.requester_node,
        })
        .collect();
    let purpose = if f.purpose.is_empty() {
        "tracing"
    } else {
        &f.purpose
    };
    let agency = if f.agency_kind.is_empty() {
        "police"
    } else {
        &f.agency_kind
    };
    Ok(PolicyPage {
        page: o.page(app, "policy.title"),
        version: policy.version,
        legal_basis: policy.legal_basis.clone(),
        rules: rule_rows(o.lang, &policy),
        record_id: f.record_id.clone(),
        member_options,
        agencies: forms::options(o.lang, "AGENCY_KIND", agency, None),
        purposes: forms::options(o.lang, "PURPOSE", purpose, None),
        preview,
        contacts,
    })
}

/// The policy page (`?record_id=` fills the preview form).
pub async fn policy(
    State(app): State<Arc<App>>,
    o: Officer,
    Query(f): Query<PreviewForm>,
) -> PageResult {
    let page = policy_page(&app, &o, &f, None)
        .await
        .map_err(fail(&o, &app))?;
    Ok(render(&page))
}

fn preview_view(lang: Lang, r: pb::PreviewDisclosureResponse) -> PreviewView {
    let fields = r
        .record
        .as_ref()
        .map(|rec| {
            let values = forms::display_values(lang, rec);
            tracenet_proto::files::CSV_COLUMNS
                .iter()
                .filter_map(|c| {
                    let v = values.get(*c)?;
                    (!v.is_empty()).then(|| (lang.t(&format!("field.{c}")).to_owned(), v.clone()))
                })
                .collect()
        })
        .unwrap_or_default();
    let handling = r
        .handling
        .as_ref()
        .map_or(String::new(), |h| forms::handling_label(lang, h));
    PreviewView {
        allowed: r.allowed,
        refusal: crate::i18n::refusal(lang, &r.refusal),
        rule: r.policy_rule,
        version: r.policy_version,
        fields,
        withheld: r
            .redacted_fields
            .iter()
            .map(|f| lang.policy_field(f))
            .collect::<Vec<_>>()
            .join(", "),
        handling,
    }
}

/// Runs the preview and shows it under the form.
pub async fn preview(
    State(app): State<Arc<App>>,
    o: Officer,
    Form(f): Form<PreviewForm>,
) -> PageResult {
    o.require(Capability::Administer).map_err(fail(&o, &app))?;
    let req = pb::PreviewDisclosureRequest {
        record_id: f.record_id.trim().to_owned(),
        requester_node: f.requester_node.trim().to_owned(),
        agency_kind: forms::enum_number("AGENCY_KIND", &f.agency_kind),
        purpose: forms::enum_number("PURPOSE", &f.purpose),
    };
    let r = ops::preview(&app, o.caller(), req)
        .await
        .map_err(fail(&o, &app))?;
    let page = policy_page(&app, &o, &f, Some(preview_view(o.lang, r)))
        .await
        .map_err(fail(&o, &app))?;
    Ok(render(&page))
}

/// Publishes the contact points from the form (empty rows are dropped).
pub async fn publish_contacts(
    State(app): State<Arc<App>>,
    o: Officer,
    Form(v): Form<HashMap<String, String>>,
) -> PageResult {
    o.require(Capability::Administer).map_err(fail(&o, &app))?;
    let mut contacts = Vec::new();
    for i in 0..50 {
        let get = |k: &str| {
            v.get(&format!("{k}_{i}"))
                .map_or(String::new(), |s| s.trim().to_owned())
        };
        let c = pb::ContactPoint {
            function: get("function"),
            organisation: get("organisation"),
            email: get("email"),
            phone: get("phone"),
            languages: get("languages")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            working_hours: get("hours"),
        };
        if c != pb::ContactPoint::default() {
            contacts.push(c);
        }
    }
    ops::publish_contacts(&app, o.caller(), contacts)
        .await
        .map_err(fail(&o, &app))?;
    Ok(Redirect::to("/policy").into_response())
}
