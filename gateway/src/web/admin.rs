//! Administration: the node's audit log (filterable), the gateway's access log, users (add,
//! disable, enable) and API tokens (create, shown once; revoke).

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use tracenet_proto::v1 as pb;

use super::forms::SelectOption;
use super::{Officer, Page, PageResult, fail, render};
use crate::app::App;
use crate::auth::{Capability, Role, password, random_secret};
use crate::error::GatewayError;
use crate::i18n::Lang;
use crate::ops;
use crate::store::{AccessEntry, ApiToken, User};

/// An audit row as shown.
#[derive(Debug)]
struct AuditRow {
    seq: u64,
    at: String,
    kind: String,
    peer: String,
    purpose: String,
    rule: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    page: Page,
    kinds: Vec<SelectOption>,
    kind: String,
    peer: String,
    entries: Vec<AuditRow>,
    next_after: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub(super) struct AuditQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    peer: String,
    #[serde(default)]
    after: u64,
}

const AUDIT_KINDS: &[&str] = &[
    "disclosure",
    "denial",
    "refusal",
    "request_received",
    "request_sent",
    "trace_request_sent",
    "delivery",
    "onward_transmission",
    "retraction",
    "retraction_applied",
    "retention_purge",
    "watch_change",
    "watch_alert",
];
const AUDIT_PAGE: u32 = 100;

/// The node's audit entries, oldest first, a page at a time.
pub async fn audit(
    State(app): State<Arc<App>>,
    o: Officer,
    Query(q): Query<AuditQuery>,
) -> PageResult {
    let entries = ops::audit(
        &app,
        o.caller(),
        pb::ListAuditRequest {
            kind: q.kind.trim().to_owned(),
            peer: q.peer.trim().to_owned(),
            after_seq: q.after,
            limit: AUDIT_PAGE,
        },
    )
    .await
    .map_err(fail(&o, &app))?;
    let next_after = (entries.len() == AUDIT_PAGE as usize)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    let mut kinds = vec![SelectOption {
        value: String::new(),
        label: o.lang.t("common.any").to_owned(),
        selected: q.kind.is_empty(),
    }];
    kinds.extend(AUDIT_KINDS.iter().map(|k| SelectOption {
        value: (*k).to_owned(),
        label: o.lang.audit_kind(k),
        selected: q.kind == *k,
    }));
    Ok(render(&AuditPage {
        page: o.page(&app, "audit.title"),
        kinds,
        kind: urlencoding::encode(&q.kind).into_owned(),
        peer: q.peer.clone(),
        entries: entries
            .into_iter()
            .map(|e| AuditRow {
                seq: e.seq,
                at: o.lang.datetime(e.at),
                kind: o.lang.audit_kind(&e.kind),
                peer: crate::i18n::node_text(o.lang, &e.peer),
                purpose: o.lang.enum_label(&e.purpose),
                rule: e.policy_rule,
                detail: crate::i18n::node_text(o.lang, &e.detail),
            })
            .collect(),
        next_after,
    }))
}

/// An access-log row as shown.
#[derive(Debug)]
struct AccessRow {
    seq: u64,
    at: String,
    who: String,
    via: String,
    action: String,
    target: String,
}

#[derive(Template)]
#[template(path = "access_log.html")]
struct AccessPage {
    page: Page,
    entries: Vec<AccessRow>,
    before: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub(super) struct BeforeQuery {
    #[serde(default)]
    before: u64,
}

/// Who viewed or exported what, newest first.
pub async fn access_log(
    State(app): State<Arc<App>>,
    o: Officer,
    Query(q): Query<BeforeQuery>,
) -> PageResult {
    o.require(Capability::Administer).map_err(fail(&o, &app))?;
    let entries: Vec<AccessEntry> = app
        .store
        .access_log(q.before, 200)
        .map_err(|e| fail(&o, &app)(e.into()))?;
    let before = (entries.len() == 200)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(render(&AccessPage {
        page: o.page(&app, "audit.access_log"),
        entries: entries
            .into_iter()
            .map(|e| AccessRow {
                seq: e.seq,
                at: o.lang.datetime(e.at),
                who: e.who,
                via: e.via,
                action: o.lang.access_action(&e.action),
                target: access_target(o.lang, &e.target),
            })
            .collect(),
        before,
    }))
}

/// An access-log target in `lang`: "41 records" reads "41 fiches" in French; ids and names
/// are shown as written.
fn access_target(lang: Lang, target: &str) -> String {
    match target.strip_suffix(" records") {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            lang.t("access.n_records").replace("{n}", n)
        }
        _ => target.to_owned(),
    }
}

fn role_options(lang: Lang) -> Vec<SelectOption> {
    Role::ALL
        .iter()
        .map(|r| SelectOption {
            value: r.as_str().to_owned(),
            label: lang.t(r.label_key()).to_owned(),
            selected: false,
        })
        .collect()
}

fn roles_label(lang: Lang, roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| lang.t(r.label_key()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn roles_from(v: &HashMap<String, String>) -> Vec<Role> {
    Role::ALL
        .into_iter()
        .filter(|r| {
            v.get(&format!("role_{}", r.as_str()))
                .is_some_and(|x| x == "1")
        })
        .collect()
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    page: Page,
    users: Vec<(String, String, bool)>,
    roles: Vec<SelectOption>,
    error: Option<String>,
}

fn users_page(app: &App, o: &Officer, error: Option<String>) -> Result<UsersPage, GatewayError> {
    o.require(Capability::Administer)?;
    let users = app
        .store
        .users()?
        .into_iter()
        .map(|u| {
            (
                u.username.clone(),
                roles_label(o.lang, &u.roles),
                u.disabled,
            )
        })
        .collect();
    Ok(UsersPage {
        page: o.page(app, "admin.users"),
        users,
        roles: role_options(o.lang),
        error,
    })
}

/// Users and the add-user form.
pub async fn users(State(app): State<Arc<App>>, o: Officer) -> PageResult {
    let page = users_page(&app, &o, None).map_err(fail(&o, &app))?;
    Ok(render(&page))
}

/// Checks a new user name: letters, digits, `.`, `-`, `_`, 1 to 64 characters.
pub fn valid_username(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Adds a user.
pub async fn add_user(
    State(app): State<Arc<App>>,
    o: Officer,
    Form(v): Form<HashMap<String, String>>,
) -> PageResult {
    o.require(Capability::Administer).map_err(fail(&o, &app))?;
    let name = v.get("username").map_or("", |s| s.trim()).to_owned();
    let pw = v.get("password").cloned().unwrap_or_default();
    let roles = roles_from(&v);
    let problem = if !valid_username(&name) {
        Some(o.lang.t("admin.bad_username"))
    } else if roles.is_empty() {
        Some(o.lang.t("admin.need_role"))
    } else {
        None
    };
    let result = match problem {
        Some(p) => Err(p.to_owned()),
        None => match tokio::task::spawn_blocking(move || password::hash(&pw)).await {
            Ok(Ok(hash)) => {
                let user = User {
                    username: name.clone(),
                    roles,
                    password_hash: hash,
                    language: None,
                    disabled: false,
                    created_at: app.now(),
                };
                match app.store.add_user(&user).await {
                    Ok(()) => Ok(()),
                    Err(crate::store::StoreError::UserExists(_)) => {
                        Err(o.lang.t("admin.user_exists").to_owned())
                    }
                    Err(e) => return Err(fail(&o, &app)(e.into())),
                }
            }
            Ok(Err(password::PasswordError::TooShort)) => {
                Err(o.lang.t("admin.password_short").to_owned())
            }
            _ => return Err(fail(&o, &app)(GatewayError::Internal)),
        },
    };
    match result {
        Ok(()) => {
            let _ = app
                .store
                .log_access(app.now(), &o.who.name, "console", "add user", &name)
                .await;
            Ok(Redirect::to("/admin/users").into_response())
        }
        Err(msg) => {
            let page = users_page(&app, &o, Some(msg)).map_err(fail(&o, &app))?;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
    }
}

/// Disables or enables a user (disabling ends their sessions).
pub async fn change_user(
    State(app): State<Arc<App>>,
    o: Officer,
    Path(name): Path<String>,
    Form(v): Form<HashMap<String, String>>,
) -> PageResult {
    o.require(Capability::Administer).map_err(fail(&o, &app))?;
    let mut user = app
        .store
        .user(&name)
        .map_err(|e| fail(&o, &app)(e.into()))?
        .ok_or_else(|| fail(&o, &app)(GatewayError::NotFound(name.clone())))?;
    match v.get("action").map(String::as_str) {
        Some("disable") if name == o.who.name => {
            return Err(fail(&o, &app)(GatewayError::Conflict(
                o.lang.t("admin.not_self").to_owned(),
            )));
        }
        Some("disable") => user.disabled = true,
        Some("enable") => user.disabled = false,
        _ => {
            return Err(fail(&o, &app)(GatewayError::BadRequest(
                "unknown action".into(),
            )));
        }
    }
    app.store
        .put_user(&user)
        .await
        .map_err(|e| fail(&o, &app)(e.into()))?;
    if user.disabled {
        let _ = app.store.end_sessions_of(&name).await;
    }
    let _ = app
        .store
        .log_access(
            app.now(),
            &o.who.name,
            "console",
            if user.disabled {
                "disable user"
            } else {
                "enable user"
            },
            &name,
        )
        .await;
    Ok(Redirect::to("/admin/users").into_response())
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    page: Page,
    tokens: Vec<(String, String, String, String, bool)>,
    roles: Vec<SelectOption>,
    created: Option<String>,
    error: Option<String>,
}

fn tokens_page(
    app: &App,
    o: &Officer,
    created: Option<String>,
    error: Option<String>,
) -> Result<TokensPage, GatewayError> {
    o.require(Capability::Administer)?;
    let tokens = app
        .store
        .tokens()?
        .into_iter()
        .map(|(k, t)| {
            (
                k,
                t.name,
                roles_label(o.lang, &t.roles),
                t.created_by,
                t.revoked,
            )
        })
        .collect();
    Ok(TokensPage {
        page: o.page(app, "admin.tokens"),
        tokens,
        roles: role_options(o.lang),
        created,
        error,
    })
}

/// API tokens and the create form.
pub async fn tokens(State(app): State<Arc<App>>, o: Officer) -> PageResult {
    let page = tokens_page(&app, &o, None, None).map_err(fail(&o, &app))?;
    Ok(render(&page))
}

/// Creates a token and shows it once.
pub async fn add_token(
    State(app): State<Arc<App>>,
    o: Officer,
    Form(v): Form<HashMap<String, String>>,
) -> PageResult {
    o.require(Capability::Administer).map_err(fail(&o, &app))?;
    let name = v.get("name").map_or("", |s| s.trim()).to_owned();
    let roles = roles_from(&v);
    if !valid_username(&name) || roles.is_empty() {
        let msg = o.lang.t(if roles.is_empty() {
            "admin.need_role"
        } else {
            "admin.bad_username"
        });
        let page = tokens_page(&app, &o, None, Some(msg.to_owned())).map_err(fail(&o, &app))?;
        return Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response());
    }
    let secret = create_token(&app, &o.who.name, &name, roles)
        .await
        .map_err(fail(&o, &app))?;
    let page = tokens_page(&app, &o, Some(secret), None).map_err(fail(&o, &app))?;
    Ok(render(&page))
}

/// Creates an API token; returns the secret (stored only as its hash).
pub async fn create_token(
    app: &App,
    creator: &str,
    name: &str,
    roles: Vec<Role>,
) -> Result<String, GatewayError> {
    let secret = format!(
        "tn_{}",
        random_secret(32).map_err(|_| GatewayError::Internal)?
    );
    let token = ApiToken {
        name: name.to_owned(),
        roles,
        created_by: creator.to_owned(),
        created_at: app.now(),
        revoked: false,
    };
    app.store.put_token(&secret, &token).await?;
    app.store
        .log_access(app.now(), creator, "console", "create token", name)
        .await?;
    Ok(secret)
}

/// Revokes a token.
pub async fn revoke_token(
    State(app): State<Arc<App>>,
    o: Officer,
    Path(key): Path<String>,
) -> PageResult {
    o.require(Capability::Administer).map_err(fail(&o, &app))?;
    let found = app
        .store
        .revoke_token(&key)
        .await
        .map_err(|e| fail(&o, &app)(e.into()))?;
    if !found {
        return Err(fail(&o, &app)(GatewayError::NotFound(key)));
    }
    let _ = app
        .store
        .log_access(app.now(), &o.who.name, "console", "revoke token", &key)
        .await;
    Ok(Redirect::to("/admin/tokens").into_response())
}
