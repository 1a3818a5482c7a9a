//! Copies of other members' records held by this node: owner, reference, the owner's rule and
//! handling codes, who passed the copy on (if not the owner), when it arrived and when the node
//! purges it under the owner's retention.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use tracenet_proto::v1 as pb;

use super::{Officer, Page, PageResult, fail, forms, render};
use crate::app::App;
use crate::i18n::Lang;
use crate::ops;

/// A row of the received list.
#[derive(Debug)]
struct Row {
    owner: String,
    reference: String,
    serial: String,
    rule: String,
    handling: String,
    forwarded_by: String,
    received_at: String,
    expires_at: String,
}

fn row(lang: Lang, r: &pb::ReceivedRecord) -> Row {
    let reference = r.reference.clone().unwrap_or_default();
    Row {
        owner: reference.owner_node,
        reference: reference.reference.chars().take(12).collect(),
        serial: r
            .record
            .as_ref()
            .and_then(|rec| rec.firearms.first())
            .map(|f| f.serial_number.clone())
            .unwrap_or_default(),
        rule: r.policy_rule.clone(),
        handling: r
            .handling
            .as_ref()
            .map_or(String::new(), |h| forms::handling_label(lang, h)),
        forwarded_by: r.forwarded_by.clone(),
        received_at: lang.datetime(r.received_at),
        expires_at: if r.expires_at > 0 {
            lang.datetime(r.expires_at)
        } else {
            lang.t("received.no_limit").to_owned()
        },
    }
}

#[derive(Template)]
#[template(path = "received.html")]
struct ListPage {
    page: Page,
    rows: Vec<Row>,
}

/// Every received copy, soonest purged first (copies without a limit last).
pub async fn list(State(app): State<Arc<App>>, o: Officer) -> PageResult {
    let mut all = ops::received(&app, o.caller())
        .await
        .map_err(fail(&o, &app))?;
    all.sort_by_key(|r| (r.expires_at == 0, r.expires_at));
    Ok(render(&ListPage {
        page: o.page(&app, "received.title"),
        rows: all.iter().map(|r| row(o.lang, r)).collect(),
    }))
}
