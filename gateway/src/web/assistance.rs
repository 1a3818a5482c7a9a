//! The cooperation and assistance board: needs and offers of the federation's members with their
//! status (covered needs flagged), a need with the offers ranked for it and the reasons, a match
//! with its history and the steps the viewer may take, the need / offer / expert form, the expert
//! roster with search, and the board as CSV. The node decides what this member may see; every
//! write is a directory command signed by this node.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use tracenet_proto::assistance::{board_csv, category_name, status_name};
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::directory_command::Op;

use super::forms::SelectOption;
use super::{Officer, Page, PageResult, fail, render};
use crate::app::App;
use crate::auth::Capability;
use crate::error::GatewayError;
use crate::i18n::Lang;
use crate::ops;

/// The categories in the order the texts list them.
pub const CATEGORIES: [pb::AssistanceCategory; 11] = [
    pb::AssistanceCategory::Marking,
    pb::AssistanceCategory::RecordKeeping,
    pb::AssistanceCategory::TracingCapacity,
    pb::AssistanceCategory::StockpileManagement,
    pb::AssistanceCategory::BorderControl,
    pb::AssistanceCategory::TrainingIdentification,
    pb::AssistanceCategory::TrainingSeizureReporting,
    pb::AssistanceCategory::LegalAssistance,
    pb::AssistanceCategory::TechnicalAssistance,
    pb::AssistanceCategory::Experts,
    pb::AssistanceCategory::Other,
];

const PARTS: [&str; 5] = ["description", "scope", "timing", "languages", "contact"];
const EXPERT_PARTS: [&str; 4] = ["name", "description", "languages", "contact"];

fn cat_label(lang: Lang, c: i32) -> String {
    lang.enum_label(pb::AssistanceCategory::try_from(c).map_or("", |v| v.as_str_name()))
}

fn cats_label(lang: Lang, cs: &[i32]) -> String {
    cs.iter()
        .map(|c| cat_label(lang, *c))
        .collect::<Vec<_>>()
        .join(", ")
}

fn status_label(lang: Lang, s: i32) -> String {
    lang.enum_label(pb::AssistanceStatus::try_from(s).map_or("", |v| v.as_str_name()))
}

fn path_of(author: &str, id: &str) -> String {
    format!(
        "{}/{}",
        urlencoding::encode(author),
        urlencoding::encode(id)
    )
}

/// A need as a board row.
#[derive(Debug)]
struct NeedRow {
    href: String,
    author: String,
    country: String,
    id: String,
    category: String,
    title: String,
    priority: u32,
    regions: String,
    wanted_by: String,
    status: String,
    covered: bool,
    own: bool,
}

/// An offer as a board row.
#[derive(Debug)]
struct OfferRow {
    author: String,
    country: String,
    id: String,
    categories: String,
    title: String,
    donor: String,
    regions: String,
    until: String,
    status: String,
    capacity: String,
    own: bool,
}

/// A match as a row.
#[derive(Debug)]
struct MatchRow {
    href: String,
    id: String,
    donor: String,
    offer: String,
    requester: String,
    need: String,
    status: String,
    overdue: bool,
    party: bool,
}

fn need_row(lang: Lang, viewer: &str, n: &pb::AssistanceBoardNeed) -> NeedRow {
    let need = n.need.clone().unwrap_or_default();
    NeedRow {
        href: format!("/assistance/needs/{}", path_of(&n.author, &need.id)),
        author: n.author.clone(),
        country: n.country.clone(),
        id: need.id.clone(),
        category: cat_label(lang, need.category),
        title: need.title.clone(),
        priority: need.priority,
        regions: n.regions.join(", "),
        wanted_by: lang.date(&need.wanted_by),
        status: status_label(lang, n.status),
        covered: n.covered,
        own: n.author == viewer,
    }
}

fn offer_row(lang: Lang, viewer: &str, o: &pb::AssistanceBoardOffer) -> OfferRow {
    let offer = o.offer.clone().unwrap_or_default();
    OfferRow {
        author: o.author.clone(),
        country: o.country.clone(),
        id: offer.id.clone(),
        categories: cats_label(lang, &offer.categories),
        title: offer.title.clone(),
        donor: offer.donor.clone(),
        regions: if offer.any_region {
            lang.t("assistance.any_region").to_owned()
        } else {
            o.regions.join(", ")
        },
        until: lang.date(&offer.until),
        status: status_label(lang, o.status),
        capacity: if offer.capacity > 0 {
            format!("{}/{}", o.active_matches, offer.capacity)
        } else {
            o.active_matches.to_string()
        },
        own: o.author == viewer,
    }
}

fn match_row(lang: Lang, m: &pb::AssistanceBoardMatch) -> MatchRow {
    let x = m.r#match.clone().unwrap_or_default();
    let (donor, id) = x.id.split_once('/').unwrap_or(("", ""));
    MatchRow {
        href: format!("/assistance/matches/{}", path_of(donor, id)),
        id: x.id.clone(),
        donor: x.donor.clone(),
        offer: x.offer_id.clone(),
        requester: x.requester.clone(),
        need: x.need_id.clone(),
        status: status_label(lang, x.status),
        overdue: m.overdue,
        party: m.party,
    }
}

#[derive(Template)]
#[template(path = "assistance.html")]
struct BoardPage {
    page: Page,
    q: String,
    categories: Vec<SelectOption>,
    whole_board: bool,
    can_write: bool,
    needs: Vec<NeedRow>,
    offers: Vec<OfferRow>,
    matches: Vec<MatchRow>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct BoardQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    category: String,
}

fn category_options(lang: Lang, selected: &str, with_all: bool) -> Vec<SelectOption> {
    let mut out = Vec::new();
    if with_all {
        out.push(SelectOption {
            value: String::new(),
            label: lang.t("assistance.all_categories").to_owned(),
            selected: selected.is_empty(),
        });
    }
    out.extend(CATEGORIES.iter().map(|c| {
        let v = category_name(*c as i32);
        SelectOption {
            selected: v == selected,
            label: lang.enum_label(c.as_str_name()),
            value: v,
        }
    }));
    out
}

fn category_of(name: &str) -> Option<pb::AssistanceCategory> {
    CATEGORIES
        .iter()
        .copied()
        .find(|c| category_name(*c as i32) == name)
}

async fn board(app: &App, o: &Officer) -> Result<pb::AssistanceBoardResponse, GatewayError> {
    ops::assistance_board(app, o.caller()).await
}

/// The board: needs, offers and matches, filtered by text and category.
pub async fn show(
    State(app): State<Arc<App>>,
    o: Officer,
    Query(q): Query<BoardQuery>,
) -> PageResult {
    let b = board(&app, &o).await.map_err(fail(&o, &app))?;
    let needle = q.q.trim().to_lowercase();
    let cat = category_of(&q.category).map(|c| c as i32);
    let hit =
        |parts: &[&str]| needle.is_empty() || parts.join(" ").to_lowercase().contains(&needle);
    let needs = b
        .needs
        .iter()
        .filter(|n| {
            let need = n.need.clone().unwrap_or_default();
            cat.is_none_or(|c| need.category == c)
                && hit(&[
                    &n.author,
                    &need.title,
                    &need.description,
                    &n.regions.join(" "),
                ])
        })
        .map(|n| need_row(o.lang, app.node_id(), n))
        .collect();
    let offers = b
        .offers
        .iter()
        .filter(|x| {
            let offer = x.offer.clone().unwrap_or_default();
            cat.is_none_or(|c| offer.categories.contains(&c))
                && hit(&[&x.author, &offer.title, &offer.description, &offer.donor])
        })
        .map(|x| offer_row(o.lang, app.node_id(), x))
        .collect();
    Ok(render(&BoardPage {
        page: o.page(&app, "assistance.title"),
        categories: category_options(o.lang, &q.category, true),
        whole_board: b.whole_board,
        can_write: o.who.can(Capability::Administer),
        needs,
        offers,
        matches: b.matches.iter().map(|m| match_row(o.lang, m)).collect(),
        q: q.q,
    }))
}

/// The board as CSV, for the biennial reports.
pub async fn export(State(app): State<Arc<App>>, o: Officer) -> PageResult {
    let b = board(&app, &o).await.map_err(fail(&o, &app))?;
    let csv = board_csv(&b).map_err(|_| fail(&o, &app)(GatewayError::Internal))?;
    ops::log_export(&app, o.caller(), "assistance board CSV")
        .await
        .map_err(fail(&o, &app))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"assistance-board.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}

/// A ranked offer as shown on a need.
#[derive(Debug)]
struct SuggestionView {
    offer_author: String,
    offer_id: String,
    title: String,
    score: i32,
    reasons: Vec<String>,
    own: bool,
}

/// A history line.
#[derive(Debug)]
struct HistoryView {
    status: String,
    by: String,
    at: String,
    note: String,
}

fn history(lang: Lang, h: &[pb::AssistanceHistoryItem]) -> Vec<HistoryView> {
    h.iter()
        .map(|x| HistoryView {
            status: status_label(lang, x.status),
            by: x.by.clone(),
            at: if x.at > 0 {
                lang.datetime(x.at)
            } else {
                String::new()
            },
            note: x.note.clone(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "assistance_need.html")]
struct NeedPage {
    page: Page,
    row: NeedRow,
    need: pb::AssistanceNeed,
    whole: bool,
    covered_by: String,
    languages: String,
    public: String,
    history: Vec<HistoryView>,
    suggestions: Vec<SuggestionView>,
    matches: Vec<MatchRow>,
    can_propose: bool,
}

fn reason_label(lang: Lang, code: &str) -> String {
    lang.t_or(&format!("assistance.reason.{code}"), code)
}

fn parts_label(lang: Lang, parts: &[String]) -> String {
    parts
        .iter()
        .map(|p| lang.t_or(&format!("assistance.part.{p}"), p))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One need: its details as this member may see them, its history, the offers ranked for it
/// with the reasons, its matches, and (for a donor) the proposal form.
pub async fn need(
    State(app): State<Arc<App>>,
    o: Officer,
    Path((author, id)): Path<(String, String)>,
) -> PageResult {
    let b = board(&app, &o).await.map_err(fail(&o, &app))?;
    let n = b
        .needs
        .iter()
        .find(|n| n.author == author && n.need.as_ref().is_some_and(|x| x.id == id))
        .ok_or_else(|| fail(&o, &app)(GatewayError::NotFound(format!("need {author}/{id}"))))?;
    let need = n.need.clone().unwrap_or_default();
    let title = |oa: &str, oid: &str| {
        b.offers
            .iter()
            .find(|x| x.author == oa && x.offer.as_ref().is_some_and(|y| y.id == oid))
            .and_then(|x| x.offer.as_ref())
            .map(|y| y.title.clone())
            .unwrap_or_default()
    };
    let suggestions: Vec<SuggestionView> = b
        .suggestions
        .iter()
        .filter(|s| s.need_author == author && s.need_id == id)
        .map(|s| SuggestionView {
            title: title(&s.offer_author, &s.offer_id),
            offer_author: s.offer_author.clone(),
            offer_id: s.offer_id.clone(),
            score: s.score,
            reasons: s.reasons.iter().map(|r| reason_label(o.lang, r)).collect(),
            own: s.offer_author == app.node_id(),
        })
        .collect();
    let can_propose = o.who.can(Capability::Administer)
        && author != app.node_id()
        && suggestions.iter().any(|s| s.own);
    let matches = b
        .matches
        .iter()
        .filter(|m| {
            m.r#match
                .as_ref()
                .is_some_and(|x| x.requester == author && x.need_id == id)
        })
        .map(|m| match_row(o.lang, m))
        .collect();
    Ok(render(&NeedPage {
        page: o.page(&app, "assistance.need_title"),
        row: need_row(o.lang, app.node_id(), n),
        whole: n.whole,
        covered_by: n.covered_by.clone(),
        languages: need.languages.join(", "),
        public: parts_label(o.lang, &need.public_parts),
        history: history(o.lang, &n.history),
        suggestions,
        matches,
        can_propose,
        need,
    }))
}

#[derive(Template)]
#[template(path = "assistance_match.html")]
struct MatchPage {
    page: Page,
    row: MatchRow,
    wanted_by: String,
    history: Vec<HistoryView>,
    lessons: Vec<(String, String, String)>,
    can_accept: bool,
    steps: Vec<(String, String)>,
    can_lessons: bool,
}

/// One match: its history, lessons learned, and the steps this member may record.
pub async fn show_match(
    State(app): State<Arc<App>>,
    o: Officer,
    Path((donor, id)): Path<(String, String)>,
) -> PageResult {
    use pb::AssistanceStatus as S;
    let b = board(&app, &o).await.map_err(fail(&o, &app))?;
    let full = format!("{donor}/{id}");
    let m = b
        .matches
        .iter()
        .find(|m| m.r#match.as_ref().is_some_and(|x| x.id == full))
        .ok_or_else(|| fail(&o, &app)(GatewayError::NotFound(format!("match {full}"))))?;
    let x = m.r#match.clone().unwrap_or_default();
    let status = S::try_from(x.status).unwrap_or(S::Unspecified);
    let me = app.node_id();
    let writer = o.who.can(Capability::Administer) && m.party;
    let can_accept = writer && x.requester == me && status == S::Proposed;
    let mut steps = Vec::new();
    if writer {
        if status == S::Matched {
            steps.push((
                "in-progress".to_owned(),
                status_label(o.lang, S::InProgress as i32),
            ));
        }
        if matches!(status, S::Matched | S::InProgress) {
            steps.push((
                "delivered".to_owned(),
                status_label(o.lang, S::Delivered as i32),
            ));
        }
        if !matches!(status, S::Closed | S::Declined) {
            steps.push(("close".to_owned(), status_label(o.lang, S::Closed as i32)));
        }
    }
    Ok(render(&MatchPage {
        page: o.page(&app, "assistance.match_title"),
        row: match_row(o.lang, m),
        wanted_by: o.lang.date(&m.wanted_by),
        history: history(o.lang, &x.history),
        lessons: x
            .lessons
            .iter()
            .map(|l| (l.by.clone(), o.lang.datetime(l.at), l.text.clone()))
            .collect(),
        can_accept,
        steps,
        can_lessons: writer && matches!(status, S::Delivered | S::Closed),
    }))
}

#[derive(Debug, Deserialize)]
pub(super) struct StepForm {
    step: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    lessons: String,
}

fn step_status(s: &str) -> Option<pb::AssistanceStatus> {
    use pb::AssistanceStatus as S;
    Some(match s {
        "accept" => S::Matched,
        "decline" => S::Declined,
        "in-progress" => S::InProgress,
        "delivered" => S::Delivered,
        "close" => S::Closed,
        "lessons" => S::Unspecified,
        _ => return None,
    })
}

/// Records a step of a match (accept, decline, in progress, delivered, close, lessons).
pub async fn step(
    State(app): State<Arc<App>>,
    o: Officer,
    Path((donor, id)): Path<(String, String)>,
    Form(f): Form<StepForm>,
) -> PageResult {
    let status = step_status(&f.step).ok_or_else(|| {
        fail(&o, &app)(GatewayError::BadRequest(format!("unknown step {}", f.step)))
    })?;
    let full = format!("{donor}/{id}");
    let s = pb::AssistanceStep {
        match_id: full.clone(),
        status: status as i32,
        note: f.note.trim().to_owned(),
        lessons: if status == pb::AssistanceStatus::Unspecified {
            f.lessons.trim().to_owned()
        } else {
            String::new()
        },
    };
    ops::assistance_write(
        &app,
        o.caller(),
        Op::AssistanceStep(s),
        "assistance step",
        &full,
    )
    .await
    .map_err(fail(&o, &app))?;
    Ok(Redirect::to(&format!("/assistance/matches/{}", path_of(&donor, &id))).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct ProposeForm {
    id: String,
    offer_id: String,
    #[serde(default)]
    note: String,
}

/// As a donor, proposes one of this member's offers for a need.
pub async fn propose(
    State(app): State<Arc<App>>,
    o: Officer,
    Path((author, need)): Path<(String, String)>,
    Form(f): Form<ProposeForm>,
) -> PageResult {
    let p = pb::AssistanceProposal {
        id: f.id.trim().to_owned(),
        offer_id: f.offer_id.trim().to_owned(),
        requester: author.clone(),
        need_id: need.clone(),
        note: f.note.trim().to_owned(),
    };
    let target = format!("{}/{} -> {author}/{need}", app.node_id(), p.offer_id);
    let mid = p.id.clone();
    ops::assistance_write(
        &app,
        o.caller(),
        Op::ProposeAssistance(p),
        "assistance proposal",
        &target,
    )
    .await
    .map_err(fail(&o, &app))?;
    Ok(Redirect::to(&format!(
        "/assistance/matches/{}",
        path_of(app.node_id(), &mid)
    ))
    .into_response())
}

/// A text input of the form.
#[derive(Debug)]
struct TextField {
    name: String,
    label: String,
    value: String,
    input: &'static str,
}

/// The text inputs of each kind: name and input type.
fn text_fields(kind: &str) -> &'static [(&'static str, &'static str)] {
    match kind {
        "offer" => &[
            ("id", "text"),
            ("title", "text"),
            ("donor", "text"),
            ("description", "textarea"),
            ("capacity", "number"),
            ("regions", "text"),
            ("conditions", "textarea"),
            ("until", "date"),
            ("languages", "text"),
            ("contact", "text"),
        ],
        "expert" => &[
            ("id", "text"),
            ("name_or_function", "text"),
            ("languages", "text"),
            ("region", "text"),
            ("availability", "text"),
            ("consent_note", "text"),
            ("contact", "text"),
        ],
        _ => &[
            ("id", "text"),
            ("title", "text"),
            ("description", "textarea"),
            ("scope", "text"),
            ("wanted_by", "date"),
            ("languages", "text"),
            ("contact", "text"),
            ("region", "text"),
        ],
    }
}

/// The yes/no inputs of each kind.
fn flag_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "offer" => &["any_region", "any_category"],
        "expert" => &["consent"],
        _ => &[],
    }
}

/// A checkbox of the form.
#[derive(Debug)]
struct Check {
    name: String,
    label: String,
    checked: bool,
}

#[derive(Template)]
#[template(path = "assistance_form.html")]
struct EntryForm {
    page: Page,
    kind: String,
    error: String,
    texts: Vec<TextField>,
    checks: Vec<Check>,
    categories: Vec<SelectOption>,
    category_checks: Vec<Check>,
    part_checks: Vec<Check>,
    priorities: Vec<SelectOption>,
    statuses: Vec<SelectOption>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct NewQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    id: String,
}

type Fields = Vec<(String, String)>;

fn get(f: &Fields, k: &str) -> String {
    f.iter()
        .find(|(n, _)| n == k)
        .map_or(String::new(), |(_, v)| v.trim().to_owned())
}

fn on(f: &Fields, k: &str) -> bool {
    f.iter().any(|(n, v)| n == k && !v.is_empty())
}

fn split(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The form's values of an existing entry (editing), as field name → value.
fn values_of(e: &pb::AssistanceEntry) -> Fields {
    use pb::assistance_entry::Entry;
    let mut v: Fields = Vec::new();
    let mut put = |k: &str, s: String| v.push((k.to_owned(), s));
    let (cats, parts): (Vec<i32>, Vec<String>) = match e.entry.as_ref() {
        Some(Entry::Need(n)) => {
            put("id", n.id.clone());
            put("title", n.title.clone());
            put("description", n.description.clone());
            put("priority", n.priority.to_string());
            put("scope", n.scope.clone());
            put("wanted_by", n.wanted_by.clone());
            put("languages", n.languages.join(", "));
            put("contact", n.contact.clone());
            put("region", n.region.clone());
            put("status", status_name(n.status));
            put("category", category_name(n.category));
            (vec![], n.public_parts.clone())
        }
        Some(Entry::Offer(o)) => {
            put("id", o.id.clone());
            put("title", o.title.clone());
            put("description", o.description.clone());
            put("donor", o.donor.clone());
            put("capacity", o.capacity.to_string());
            put("regions", o.regions.join(", "));
            put("conditions", o.conditions.clone());
            put("until", o.until.clone());
            put("languages", o.languages.join(", "));
            put("contact", o.contact.clone());
            put("status", status_name(o.status));
            if o.any_region {
                put("any_region", "on".into());
            }
            if o.any_category {
                put("any_category", "on".into());
            }
            (o.categories.clone(), o.public_parts.clone())
        }
        Some(Entry::Expert(x)) => {
            put("id", x.id.clone());
            put("name_or_function", x.name_or_function.clone());
            put("languages", x.languages.join(", "));
            put("region", x.region.clone());
            put("availability", x.availability.clone());
            put("consent_note", x.consent_note.clone());
            put("contact", x.contact.clone());
            if x.consent {
                put("consent", "on".into());
            }
            (x.expertise.clone(), x.public_parts.clone())
        }
        None => (vec![], vec![]),
    };
    for c in cats {
        v.push((format!("cat_{}", category_name(c)), "on".into()));
    }
    for p in parts {
        v.push((format!("public_{p}"), "on".into()));
    }
    v
}

fn entry_form(o: &Officer, app: &App, kind: &str, f: &Fields, error: String) -> EntryForm {
    let lang = o.lang;
    let parts: &[&str] = if kind == "expert" {
        &EXPERT_PARTS
    } else {
        &PARTS
    };
    let status = get(f, "status");
    EntryForm {
        page: o.page(app, &format!("assistance.new_{kind}")),
        kind: kind.to_owned(),
        error,
        texts: text_fields(kind)
            .iter()
            .map(|(name, input)| TextField {
                name: (*name).to_owned(),
                label: lang.t_or(&format!("assistance.field.{name}"), name),
                value: get(f, name),
                input,
            })
            .collect(),
        checks: flag_fields(kind)
            .iter()
            .map(|name| Check {
                name: (*name).to_owned(),
                label: lang.t_or(&format!("assistance.field.{name}"), name),
                checked: on(f, name),
            })
            .collect(),
        categories: category_options(lang, &get(f, "category"), false),
        category_checks: CATEGORIES
            .iter()
            .map(|c| {
                let name = format!("cat_{}", category_name(*c as i32));
                Check {
                    checked: on(f, &name),
                    label: lang.enum_label(c.as_str_name()),
                    name,
                }
            })
            .collect(),
        part_checks: parts
            .iter()
            .map(|p| {
                let name = format!("public_{p}");
                Check {
                    checked: on(f, &name),
                    label: lang.t_or(&format!("assistance.part.{p}"), p),
                    name,
                }
            })
            .collect(),
        priorities: (1..=3)
            .map(|p| SelectOption {
                value: p.to_string(),
                label: lang.t_or(&format!("assistance.priority.p{p}"), &p.to_string()),
                selected: get(f, "priority") == p.to_string(),
            })
            .collect(),
        statuses: ["open", "closed"]
            .iter()
            .map(|s| SelectOption {
                value: (*s).to_owned(),
                label: status_label(
                    lang,
                    if *s == "open" {
                        pb::AssistanceStatus::Open as i32
                    } else {
                        pb::AssistanceStatus::Closed as i32
                    },
                ),
                selected: status == *s,
            })
            .collect(),
    }
}

fn kind_of(k: &str) -> &'static str {
    match k {
        "offer" => "offer",
        "expert" => "expert",
        _ => "need",
    }
}

/// The form for a new need, offer or expert entry (`?kind=`), or to edit one (`&id=`).
pub async fn new_form(
    State(app): State<Arc<App>>,
    o: Officer,
    Query(q): Query<NewQuery>,
) -> PageResult {
    o.require(Capability::Administer).map_err(fail(&o, &app))?;
    let kind = kind_of(&q.kind);
    let mut values: Fields = vec![
        ("priority".into(), "2".into()),
        ("status".into(), "open".into()),
    ];
    if !q.id.is_empty() {
        let b = board(&app, &o).await.map_err(fail(&o, &app))?;
        let me = app.node_id();
        use pb::assistance_entry::Entry;
        let found = match kind {
            "offer" => b
                .offers
                .iter()
                .find(|x| x.author == me && x.offer.as_ref().is_some_and(|y| y.id == q.id))
                .and_then(|x| x.offer.clone())
                .map(Entry::Offer),
            "expert" => b
                .experts
                .iter()
                .find(|x| x.author == me && x.expert.as_ref().is_some_and(|y| y.id == q.id))
                .and_then(|x| x.expert.clone())
                .map(Entry::Expert),
            _ => b
                .needs
                .iter()
                .find(|x| x.author == me && x.need.as_ref().is_some_and(|y| y.id == q.id))
                .and_then(|x| x.need.clone())
                .map(Entry::Need),
        };
        if let Some(e) = found {
            values = values_of(&pb::AssistanceEntry { entry: Some(e) });
        }
    }
    Ok(render(&entry_form(&o, &app, kind, &values, String::new())))
}

fn parse_entry(kind: &str, f: &Fields) -> pb::AssistanceEntry {
    use pb::assistance_entry::Entry;
    let cats: Vec<i32> = CATEGORIES
        .iter()
        .filter(|c| on(f, &format!("cat_{}", category_name(**c as i32))))
        .map(|c| *c as i32)
        .collect();
    let parts: &[&str] = if kind == "expert" {
        &EXPERT_PARTS
    } else {
        &PARTS
    };
    let public: Vec<String> = parts
        .iter()
        .filter(|p| on(f, &format!("public_{p}")))
        .map(|p| (*p).to_owned())
        .collect();
    let status = if get(f, "status") == "closed" {
        pb::AssistanceStatus::Closed
    } else {
        pb::AssistanceStatus::Open
    } as i32;
    let entry = match kind {
        "offer" => Entry::Offer(pb::AssistanceOffer {
            id: get(f, "id"),
            categories: cats,
            title: get(f, "title"),
            description: get(f, "description"),
            donor: get(f, "donor"),
            capacity: get(f, "capacity").parse().unwrap_or(0),
            regions: split(&get(f, "regions")),
            any_region: on(f, "any_region"),
            any_category: on(f, "any_category"),
            conditions: get(f, "conditions"),
            until: get(f, "until"),
            languages: split(&get(f, "languages")),
            contact: get(f, "contact"),
            public_parts: public,
            status,
        }),
        "expert" => Entry::Expert(pb::AssistanceExpert {
            id: get(f, "id"),
            name_or_function: get(f, "name_or_function"),
            expertise: cats,
            languages: split(&get(f, "languages")),
            region: get(f, "region"),
            availability: get(f, "availability"),
            consent: on(f, "consent"),
            consent_note: get(f, "consent_note"),
            contact: get(f, "contact"),
            public_parts: public,
        }),
        _ => Entry::Need(pb::AssistanceNeed {
            id: get(f, "id"),
            category: category_of(&get(f, "category")).map_or(0, |c| c as i32),
            title: get(f, "title"),
            description: get(f, "description"),
            priority: get(f, "priority").parse().unwrap_or(0),
            scope: get(f, "scope"),
            wanted_by: get(f, "wanted_by"),
            languages: split(&get(f, "languages")),
            contact: get(f, "contact"),
            region: get(f, "region"),
            public_parts: public,
            status,
        }),
    };
    pb::AssistanceEntry { entry: Some(entry) }
}

/// Publishes the entry from the form; a refusal shows on the form with what was typed.
pub async fn publish(State(app): State<Arc<App>>, o: Officer, Form(f): Form<Fields>) -> PageResult {
    o.require(Capability::Administer).map_err(fail(&o, &app))?;
    let kind = kind_of(&get(&f, "kind"));
    let entry = parse_entry(kind, &f);
    let target = format!("{kind} {}/{}", app.node_id(), get(&f, "id"));
    match ops::assistance_write(
        &app,
        o.caller(),
        Op::PublishAssistance(entry),
        "publish assistance entry",
        &target,
    )
    .await
    {
        Ok(()) => {
            let to = if kind == "need" {
                format!(
                    "/assistance/needs/{}",
                    path_of(app.node_id(), &get(&f, "id"))
                )
            } else if kind == "expert" {
                "/assistance/experts".to_owned()
            } else {
                "/assistance".to_owned()
            };
            Ok(Redirect::to(&to).into_response())
        }
        Err(GatewayError::Conflict(why)) => {
            let why = why.trim_start_matches("assistance: ").to_owned();
            Ok(render(&entry_form(&o, &app, kind, &f, why)))
        }
        Err(e) => Err(fail(&o, &app)(e)),
    }
}

/// An expert as a roster row.
#[derive(Debug)]
struct ExpertRow {
    author: String,
    country: String,
    id: String,
    name: String,
    expertise: String,
    languages: String,
    region: String,
    availability: String,
    contact: String,
    own: bool,
}

#[derive(Template)]
#[template(path = "assistance_experts.html")]
struct ExpertsPage {
    page: Page,
    q: String,
    categories: Vec<SelectOption>,
    experts: Vec<ExpertRow>,
    can_write: bool,
}

/// The expert roster, searchable by text (name, language, region) and expertise.
pub async fn experts(
    State(app): State<Arc<App>>,
    o: Officer,
    Query(q): Query<BoardQuery>,
) -> PageResult {
    let b = board(&app, &o).await.map_err(fail(&o, &app))?;
    let needle = q.q.trim().to_lowercase();
    let cat = category_of(&q.category).map(|c| c as i32);
    let experts = b
        .experts
        .iter()
        .filter_map(|x| {
            let e = x.expert.clone().unwrap_or_default();
            let row = ExpertRow {
                author: x.author.clone(),
                country: x.country.clone(),
                id: e.id.clone(),
                name: e.name_or_function.clone(),
                expertise: cats_label(o.lang, &e.expertise),
                languages: e.languages.join(", "),
                region: e.region.clone(),
                availability: e.availability.clone(),
                contact: e.contact.clone(),
                own: x.author == app.node_id(),
            };
            let hay = format!(
                "{} {} {} {} {} {}",
                row.author, row.name, row.expertise, row.languages, row.region, row.availability
            )
            .to_lowercase();
            (cat.is_none_or(|c| e.expertise.contains(&c))
                && (needle.is_empty() || hay.contains(&needle)))
            .then_some(row)
        })
        .collect();
    Ok(render(&ExpertsPage {
        page: o.page(&app, "assistance.experts_title"),
        categories: category_options(o.lang, &q.category, true),
        can_write: o.who.can(Capability::Administer),
        experts,
        q: q.q,
    }))
}
