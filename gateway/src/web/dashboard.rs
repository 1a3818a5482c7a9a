//! The dashboard: counts, incoming trace requests still waiting for an answer (with their
//! deadlines, overdue first), and the most recent seizures, each shown only to roles that may see
//! them.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use tracenet_proto::v1 as pb;

use super::{Officer, Page, PageResult, fail, render};
use crate::app::App;
use crate::auth::Capability;
use crate::ops;

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    page: Page,
    /// (label, value, link: empty when the user cannot open the page it would lead to).
    counts: Vec<(String, String, String)>,
    show_traces: bool,
    pending: Vec<(String, String, String, String, bool, String)>,
    show_records: bool,
    /// Watch-list alerts not yet acknowledged (`None`: the user keeps no watch list).
    alerts: Option<Vec<super::watches::AlertRow>>,
    recent: Vec<(String, String, String, String, String)>,
}

/// The dashboard.
pub async fn show(State(app): State<Arc<App>>, o: Officer) -> PageResult {
    let lang = o.lang;
    let info = ops::node_info(&app).await.map_err(fail(&o, &app))?;
    let mut counts = Vec::new();
    let show_records = o.who.can(Capability::ReadRecords);
    let show_traces = o.who.can(Capability::Trace);
    let link = |cap: Capability, href: &str| {
        if o.who.can(cap) {
            href.to_owned()
        } else {
            String::new()
        }
    };
    if show_records {
        counts.push((
            lang.t("dashboard.records").to_owned(),
            lang.number(info.record_count),
            "/records".to_owned(),
        ));
    }
    counts.push((
        lang.t("dashboard.peers").to_owned(),
        lang.number(info.peers.len() as u64),
        link(Capability::ReadDirectory, "/directory"),
    ));
    counts.push((
        lang.t("dashboard.outbox").to_owned(),
        lang.number(info.outbox_pending),
        link(Capability::Trace, "/traces#outgoing-traces"),
    ));
    counts.push((
        lang.t("dashboard.policy").to_owned(),
        format!("v{}", info.policy_version),
        link(Capability::Administer, "/policy"),
    ));
    // This member's assistance matches past the date their need was wanted by (a node without a
    // directory has no board: nothing to show).
    if let Ok(b) = ops::assistance_board(&app, o.caller()).await {
        let overdue = b.matches.iter().filter(|m| m.party && m.overdue).count();
        if overdue > 0 {
            counts.push((
                lang.t("dashboard.assistance_overdue").to_owned(),
                lang.number(overdue as u64),
                "/assistance".to_owned(),
            ));
        }
    }
    // New hits on watched serials come first: they are what changed since the officer looked.
    let mut alerts = None;
    if o.who.can(Capability::Lookup) {
        let open = ops::watch_alerts(&app, o.caller(), true)
            .await
            .map_err(fail(&o, &app))?;
        counts.insert(
            0,
            (
                lang.t("dashboard.watch_alerts").to_owned(),
                lang.number(u64::from(open.unacknowledged)),
                "/watches#watch-alerts".to_owned(),
            ),
        );
        alerts = Some(super::watches::alert_rows(lang, &open.alerts));
    }
    let mut pending = Vec::new();
    if show_traces {
        let mut incoming: Vec<pb::TraceRecord> = ops::traces(&app, o.caller(), "incoming")
            .await
            .map_err(fail(&o, &app))?
            .into_iter()
            .filter(|t| {
                matches!(
                    pb::TraceStatus::try_from(t.status),
                    Ok(pb::TraceStatus::Received | pb::TraceStatus::Acknowledged)
                )
            })
            .collect();
        incoming.sort_by_key(|t| (!t.overdue, t.request.as_ref().map_or(0, |r| r.due_at)));
        counts.insert(
            0,
            (
                lang.t("dashboard.pending").to_owned(),
                lang.number(incoming.len() as u64),
                "/traces#incoming-traces".to_owned(),
            ),
        );
        pending = incoming
            .iter()
            .map(|t| {
                let r = t.request.clone().unwrap_or_default();
                (
                    r.id.clone(),
                    t.counterpart_node.clone(),
                    r.firearm.map(|f| f.serial_number).unwrap_or_default(),
                    lang.enum_label(
                        pb::TraceStatus::try_from(t.status).map_or("", |s| s.as_str_name()),
                    ),
                    t.overdue,
                    if r.due_at > 0 {
                        lang.datetime(r.due_at)
                    } else {
                        String::new()
                    },
                )
            })
            .collect();
    }
    let mut recent = Vec::new();
    if show_records {
        let page = ops::list_records(&app, o.caller(), 10, String::new(), true)
            .await
            .map_err(fail(&o, &app))?;
        recent = page
            .records
            .iter()
            .filter_map(|r| r.record.as_ref())
            .map(|r| {
                let t = r.trafficking.clone().unwrap_or_default();
                (
                    r.id.clone(),
                    r.national_ref.clone(),
                    lang.date(&r.event.clone().unwrap_or_default().date),
                    r.firearms
                        .first()
                        .map(|f| f.serial_number.clone())
                        .unwrap_or_default(),
                    lang.enum_label(
                        pb::TransportMode::try_from(t.transport_mode)
                            .map_or("", |m| m.as_str_name()),
                    ),
                )
            })
            .collect();
    }
    Ok(render(&Dashboard {
        page: o.page(&app, "dashboard.title"),
        counts,
        show_traces,
        pending,
        show_records,
        alerts,
        recent,
    }))
}
