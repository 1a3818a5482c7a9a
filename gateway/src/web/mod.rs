//! The web console: server-rendered pages (askama templates checked at compile time), plain
//! HTML forms, no JavaScript framework. This module holds what every page shares: the page
//! chrome (navigation by role, language switch), the session extractor that turns the cookie into
//! a [`Principal`] (or sends the browser to the login page), rendering, the translated error page,
//! and the router. Each page family has its own module.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::app::App;
use crate::auth::{Capability, Principal};
use crate::error::{FieldProblem, GatewayError};
use crate::i18n::Lang;
use crate::ops::{Caller, Via};

mod admin;
mod analysis;
mod assistance;
mod dashboard;
mod directory;
pub mod forms;
mod received;
mod records;
mod search;
pub mod session;
mod statistics;
mod traces;
mod watches;

pub use admin::{create_token, valid_username};

/// The session cookie's name for this gateway (`tn_session_fra_pol`). Browsers keep cookies
/// per host, not per port, so two gateways on one host need different names. Over HTTPS it
/// carries the `__Host-` prefix (see [`cookie_name`]).
pub fn session_cookie(app: &App) -> String {
    cookie_name("tn_session", app.node_id(), app.secure_cookies)
}

/// A per-node cookie name: `{base}_{node id in lower case}`, with the `__Host-` prefix when served
/// over HTTPS, so the browser accepts it only from this host, `Secure`, with `Path=/` and no
/// `Domain` (a sibling subdomain cannot plant or overwrite it).
pub fn cookie_name(base: &str, node_id: &str, https: bool) -> String {
    let prefix = if https { "__Host-" } else { "" };
    format!(
        "{prefix}{base}_{}",
        node_id.to_ascii_lowercase().replace('-', "_")
    )
}
/// Language cookie name.
pub const LANG_COOKIE: &str = "tn_lang";

/// A navigation link.
#[derive(Debug, Clone)]
pub struct NavItem {
    /// Target.
    pub href: &'static str,
    /// Translated label.
    pub label: &'static str,
    /// Whether it is the current section.
    pub active: bool,
}

/// An entry of the language switch.
#[derive(Debug, Clone)]
pub struct LangLink {
    /// `en` or `fr`.
    pub code: &'static str,
    /// Whether it is the current language.
    pub active: bool,
}

/// What every page shows around its content.
#[derive(Debug, Clone)]
pub struct Page {
    /// The language the page is in.
    pub lang: Lang,
    /// Translated title.
    pub title: String,
    /// The logged-in user.
    pub user: Option<String>,
    /// The session's CSRF token (for every form).
    pub csrf: String,
    /// The node's id.
    pub node_id: String,
    /// Navigation allowed by the user's roles.
    pub nav: Vec<NavItem>,
    /// Language switch.
    pub langs: Vec<LangLink>,
    /// Current path, URL-encoded, for the language switch to come back to.
    pub back: String,
    /// A one-line message after an action.
    pub flash: Option<String>,
}

impl Page {
    /// The translation of `key` in the page's language.
    pub fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }

    /// A number formatted for the page's language.
    pub fn num(&self, n: &u64) -> String {
        self.lang.number(*n)
    }
}

const SECTIONS: &[(&str, &str, Capability)] = &[
    ("/", "nav.dashboard", Capability::ReadDirectory),
    ("/records", "nav.records", Capability::ReadRecords),
    ("/search", "nav.search", Capability::ReadRecords),
    ("/traces", "nav.traces", Capability::Trace),
    ("/received", "nav.received", Capability::Lookup),
    ("/watches", "nav.watches", Capability::Lookup),
    ("/analysis", "nav.analysis", Capability::Analyse),
    ("/statistics", "nav.statistics", Capability::Analyse),
    ("/directory", "nav.directory", Capability::ReadDirectory),
    ("/assistance", "nav.assistance", Capability::ReadDirectory),
    ("/policy", "nav.policy", Capability::Administer),
    ("/audit", "nav.audit", Capability::Administer),
    ("/admin/users", "nav.admin", Capability::Administer),
];

/// A logged-in console user, from the session cookie.
#[derive(Debug, Clone)]
pub struct Officer {
    /// Who.
    pub who: Principal,
    /// The session's CSRF token.
    pub csrf: String,
    /// The console language for this request.
    pub lang: Lang,
    /// The request path.
    pub path: String,
}

impl Officer {
    /// The caller for operations.
    pub fn caller(&self) -> Caller<'_> {
        Caller {
            who: &self.who,
            via: Via::Console,
        }
    }

    /// The chrome of a page titled by catalogue key `title`.
    pub fn page(&self, app: &App, title: &str) -> Page {
        let section = SECTIONS
            .iter()
            .filter(|(href, _, _)| {
                *href == "/" && self.path == "/" || *href != "/" && self.path.starts_with(href)
            })
            .map(|(href, _, _)| *href)
            .next_back();
        Page {
            lang: self.lang,
            title: self.lang.t(title).to_owned(),
            user: Some(self.who.name.clone()),
            csrf: self.csrf.clone(),
            node_id: app.node_id().to_owned(),
            nav: SECTIONS
                .iter()
                .filter(|(_, _, cap)| self.who.can(*cap))
                .map(|(href, key, _)| NavItem {
                    href,
                    label: self.lang.t(key),
                    active: section == Some(*href),
                })
                .collect(),
            langs: lang_links(self.lang),
            back: urlencoding::encode(&self.path).into_owned(),
            flash: None,
        }
    }

    /// Refuses unless the user's roles grant `cap`.
    pub fn require(&self, cap: Capability) -> Result<(), GatewayError> {
        self.caller().require(cap)
    }
}

fn lang_links(current: Lang) -> Vec<LangLink> {
    Lang::ALL
        .iter()
        .map(|l| LangLink {
            code: l.code(),
            active: *l == current,
        })
        .collect()
}

/// A page for a visitor who is not logged in.
pub fn public_page(app: &App, lang: Lang, title: &str, path: &str) -> Page {
    Page {
        lang,
        title: lang.t(title).to_owned(),
        user: None,
        csrf: String::new(),
        node_id: app.node_id().to_owned(),
        nav: Vec::new(),
        langs: lang_links(lang),
        back: urlencoding::encode(path).into_owned(),
        flash: None,
    }
}

/// A cookie's value from the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The language for a request: the switch's cookie, else the user's preference, else the
/// browser's, else the configured default.
pub fn request_lang(app: &App, headers: &HeaderMap, preferred: Option<Lang>) -> Lang {
    cookie(headers, LANG_COOKIE)
        .and_then(Lang::parse)
        .or(preferred)
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::from_accept_language)
        })
        .unwrap_or(app.cfg.default_language)
}

/// Why a page cannot be shown: a redirect to the login page or an error page.
#[derive(Debug)]
pub enum Reject {
    /// Not logged in: go to the login page, then come back.
    Login(String),
    /// An error page in the given language.
    Error(Lang, GatewayError),
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        match self {
            Reject::Login(next) => {
                Redirect::to(&format!("/login?next={}", urlencoding::encode(&next))).into_response()
            }
            Reject::Error(lang, e) => error_page(lang, None, e, "/"),
        }
    }
}

impl FromRequestParts<Arc<App>> for Officer {
    type Rejection = Reject;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Reject> {
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let lang = request_lang(app, &parts.headers, None);
        let (user, sess) = match parts.extensions.remove::<session::Loaded>() {
            // Already loaded (and its CSRF token checked) by the guard.
            Some(session::Loaded(user, sess)) => (user, sess),
            None => {
                let sid = cookie(&parts.headers, &session_cookie(app))
                    .ok_or_else(|| Reject::Login(path.clone()))?
                    .to_owned();
                session::load(app, &sid)
                    .await
                    .map_err(|e| Reject::Error(lang, e))?
                    .ok_or_else(|| Reject::Login(path.clone()))?
            }
        };
        Ok(Officer {
            who: Principal {
                name: user.username.clone(),
                roles: user.roles.clone(),
            },
            csrf: sess.csrf,
            lang: request_lang(app, &parts.headers, user.language),
            path,
        })
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    page: Page,
    detail: String,
    problems: Vec<FieldProblem>,
    back: String,
}

/// The translated error page for `e`, with the right status.
pub fn error_page(lang: Lang, page: Option<Page>, e: GatewayError, back: &str) -> Response {
    let status = e.status();
    let mut page = page.unwrap_or_else(|| Page {
        lang,
        title: String::new(),
        user: None,
        csrf: String::new(),
        node_id: String::new(),
        nav: Vec::new(),
        langs: lang_links(lang),
        back: "%2F".into(),
        flash: None,
    });
    lang.t(e.title_key()).clone_into(&mut page.title);
    let detail = match &e {
        GatewayError::Throttled(s) => format!("{} {s} s", lang.t("error.retry_after")),
        GatewayError::Forbidden => lang.t("error.forbidden_detail").to_owned(),
        GatewayError::Csrf => lang.t("error.csrf_detail").to_owned(),
        GatewayError::NodeUnavailable => lang.t("error.node_unavailable_detail").to_owned(),
        GatewayError::Unauthenticated => lang.t("error.unauthenticated").to_owned(),
        GatewayError::Internal | GatewayError::Store => lang.t("error.internal_detail").to_owned(),
        other => other.detail(),
    };
    let problems = match e {
        GatewayError::Invalid(p) => p
            .into_iter()
            .map(|p| FieldProblem {
                reason: crate::i18n::node_text(lang, &p.reason),
                ..p
            })
            .collect(),
        _ => Vec::new(),
    };
    let body = ErrorPage {
        page,
        detail,
        problems,
        back: back.to_owned(),
    };
    (status, render(&body)).into_response()
}

/// Renders a template (a rendering failure is a bug: logged, shown as a bare 500).
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// A handler's outcome: a page, or an error shown in the officer's language.
pub type PageResult = Result<Response, Response>;

/// Turns an operation error into the error page for this officer.
/// The page is built only when there is an error: handlers call this on every fallible step.
pub fn fail<'a>(o: &'a Officer, app: &'a App) -> impl FnOnce(GatewayError) -> Response + 'a {
    move |e| error_page(o.lang, Some(o.page(app, "error.title")), e, &o.path)
}

async fn stylesheet() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=3600"),
            ),
        ],
        include_str!("../../static/app.css"),
    )
        .into_response()
}

/// The 404 page, with the node's badge, and the navigation when the visitor is logged in.
async fn not_found(State(app): State<Arc<App>>, req: axum::extract::Request) -> Response {
    let (mut parts, _) = req.into_parts();
    let e = GatewayError::NotFound(String::new());
    let page = match Officer::from_request_parts(&mut parts, &app).await {
        Ok(o) => o.page(&app, e.title_key()),
        Err(_) => {
            let lang = request_lang(&app, &parts.headers, None);
            public_page(&app, lang, e.title_key(), "/")
        }
    };
    error_page(page.lang, Some(page), e, "/")
}

/// The console's routes.
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(dashboard::show))
        .route("/login", get(session::login_form).post(session::login))
        .route("/logout", post(session::logout))
        .route("/lang/{code}", get(session::switch_lang))
        .route("/static/app.css", get(stylesheet))
        .route("/records", get(records::list).post(records::create))
        .route("/records/new", get(records::new_form))
        .route(
            "/records/import",
            get(records::import_form).post(records::import),
        )
        .route(
            "/records/import/template.csv",
            get(records::import_template_download),
        )
        .route("/records/import/{job}", get(records::import_status))
        .route("/records/{id}", get(records::show).post(records::update))
        .route("/records/{id}/edit", get(records::edit_form))
        .route("/search", get(search::local))
        .route("/lookup", post(search::lookup))
        .route("/received", get(received::list))
        .route("/watches", get(watches::show).post(watches::add))
        .route("/watches/{id}/remove", post(watches::remove))
        .route("/watch-alerts/{id}/acknowledge", post(watches::acknowledge))
        .route("/traces", get(traces::list).post(traces::send))
        .route("/traces/new", get(traces::new_form))
        .route("/traces/{id}", get(traces::show))
        .route("/traces/{id}/answer", post(traces::answer))
        .route("/traces/{id}/information", post(traces::inform))
        .route("/analysis", get(analysis::form).post(analysis::run))
        .route("/analysis/export", post(analysis::export))
        .route("/statistics", get(statistics::page))
        .route("/assistance", get(assistance::show))
        .route("/assistance/export.csv", get(assistance::export))
        .route("/assistance/new", get(assistance::new_form))
        .route("/assistance/entries", post(assistance::publish))
        .route("/assistance/experts", get(assistance::experts))
        .route("/assistance/needs/{author}/{id}", get(assistance::need))
        .route(
            "/assistance/needs/{author}/{id}/propose",
            post(assistance::propose),
        )
        .route(
            "/assistance/matches/{donor}/{id}",
            get(assistance::show_match),
        )
        .route(
            "/assistance/matches/{donor}/{id}/step",
            post(assistance::step),
        )
        .route("/directory", get(directory::members))
        .route("/policy", get(directory::policy))
        .route("/policy/preview", post(directory::preview))
        .route("/policy/contacts", post(directory::publish_contacts))
        .route("/audit", get(admin::audit))
        .route("/admin/users", get(admin::users).post(admin::add_user))
        .route("/admin/users/{name}", post(admin::change_user))
        .route("/admin/tokens", get(admin::tokens).post(admin::add_token))
        .route("/admin/tokens/{key}/revoke", post(admin::revoke_token))
        .route("/admin/access-log", get(admin::access_log))
        .fallback(not_found)
}
