//! Logging in and out, sessions and CSRF.
//!
//! - The session id is 32 random bytes in an `HttpOnly; SameSite=Strict` cookie (`Secure` when
//!   served over HTTPS); the store keeps only its SHA-256. A new id is issued at every login.
//! - Sessions end after `idle_minutes` without a request or `absolute_hours` after login, and
//!   when the user is disabled.
//! - Every console POST carries the session's CSRF token (the login form carries a pre-login
//!   token bound to a cookie); [`csrf_guard`] checks it before any handler runs. A POST whose
//!   `Origin` is another site is refused too.
//! - Failed logins are throttled per user name and per client address (rules in
//!   `auth::throttle`), counted before the password is checked; at most a few verifications run
//!   at once. Unknown and disabled names cost the same time as known ones.

use std::sync::Arc;

use askama::Template;
use axum::body::{Body, to_bytes};
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{
    LANG_COOKIE, Page, cookie, error_page, public_page, render, request_lang, session_cookie,
};
use crate::app::App;
use crate::auth::{password, random_secret, same_secret};
use crate::error::GatewayError;
use crate::i18n::Lang;
use crate::store::{Session, User};

/// The pre-login cookie's name for this gateway (see [`session_cookie`]).
fn prelogin_cookie(app: &App) -> String {
    super::cookie_name("tn_prelogin", app.node_id(), app.secure_cookies)
}
/// Largest form body the CSRF guard reads (file uploads are multipart and checked by their
/// handler).
const MAX_FORM: usize = 2 * 1024 * 1024;

fn set_cookie(app: &App, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let secure = if app.secure_cookies { "; Secure" } else { "" };
    let age = max_age.map_or(String::new(), |a| format!("; Max-Age={a}"));
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict{secure}{age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// The user and session for a session id, if the session is still valid (touching it).
pub async fn load(app: &App, sid: &str) -> Result<Option<(User, Session)>, GatewayError> {
    let Some(mut sess) = app.store.session(sid)? else {
        return Ok(None);
    };
    let now = app.now();
    let idle = i64::from(app.cfg.session.idle_minutes) * 60;
    let absolute = i64::from(app.cfg.session.absolute_hours) * 3600;
    let user = app.store.user(&sess.username)?;
    let valid = now - sess.last_seen <= idle && now - sess.created_at <= absolute;
    match user {
        Some(u) if valid && !u.disabled => {
            if now - sess.last_seen >= 30 {
                sess.last_seen = now;
                app.store.touch_session(sid, &sess)?;
            }
            Ok(Some((u, sess)))
        }
        _ => {
            app.store.end_session(sid).await?;
            Ok(None)
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    page: Page,
    csrf: String,
    next: String,
    username: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Whether `path` is safe to send a browser back to: a path on this site and nothing else.
///
/// Accepted: a single leading `/` followed by anything but `/` or `\`, with no backslash, no
/// control character and no whitespace anywhere; the same must hold once percent-decoded (so
/// `/%2F/evil` and `/%09/evil` are refused). Browsers drop tabs and newlines from URLs and read
/// `\` as `/`, which would otherwise turn `/\t/evil.example` into `//evil.example`.
pub fn is_safe_path(path: &str) -> bool {
    fn shape_ok(p: &str) -> bool {
        p.starts_with('/')
            && !p.starts_with("//")
            && !p.contains('\\')
            && !p.chars().any(|c| c.is_control() || c.is_whitespace())
    }
    if !shape_ok(path) {
        return false;
    }
    match urlencoding::decode(path) {
        // Decoded, a query may hold spaces (`?q=a%20b`); the start and controls must still hold.
        Ok(decoded) => {
            decoded.starts_with('/')
                && !decoded.starts_with("//")
                && !decoded.starts_with("/\\")
                && !decoded.chars().any(char::is_control)
        }
        Err(_) => false,
    }
}

/// Only paths on this site may be returned to (no open redirect): `next` when
/// [`is_safe_path`] accepts it, else `/`.
fn safe_next(next: &str) -> String {
    if is_safe_path(next) {
        next.to_owned()
    } else {
        "/".to_owned()
    }
}

fn login_page(
    app: &App,
    lang: Lang,
    next: &str,
    username: &str,
    error: Option<String>,
    status: axum::http::StatusCode,
) -> Response {
    let Ok(token) = random_secret(32) else {
        return error_page(lang, None, GatewayError::Internal, "/");
    };
    let page = LoginPage {
        page: public_page(app, lang, "login.title", "/login"),
        csrf: token.clone(),
        next: safe_next(next),
        username: username.to_owned(),
        error,
    };
    let mut resp = (status, render(&page)).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(app, &prelogin_cookie(app), &token, Some(900)),
    );
    resp
}

/// The login form.
pub(super) async fn login_form(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    let lang = request_lang(&app, &headers, None);
    login_page(&app, lang, &q.next, "", None, axum::http::StatusCode::OK)
}

#[derive(Debug, Deserialize)]
pub(super) struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// The client's IP address, when the server recorded it (see `ClientAddr`).
#[derive(Debug, Clone, Copy)]
pub(super) struct ClientIp(Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<crate::ClientAddr>>()
                .map(|c| c.0.0.ip()),
        ))
    }
}

/// Checks a login; on success starts a fresh session and goes to `next`. The attempt is
/// counted (per name and per client address) before the password is verified, and at most a
/// few verifications run at once (`LoginGate`).
pub(super) async fn login(
    State(app): State<Arc<App>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let lang = request_lang(&app, &headers, None);
    let now = u64::try_from(app.now()).unwrap_or(0);
    let name = f.username.trim().to_owned();
    let Some(_slot) = app.login_gate.enter().await else {
        tracing::warn!(user = %name, "login refused: too many verifications at once");
        let mut resp = login_page(
            &app,
            lang,
            &f.next,
            &name,
            Some(format!("{} 1 s", lang.t("login.busy"))),
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return resp;
    };
    let throttled = app
        .throttle
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .begin(&name, ip, now);
    if let Err(wait) = throttled {
        tracing::warn!(user = %name, "login refused: throttled");
        let mut resp = login_page(
            &app,
            lang,
            &f.next,
            &name,
            Some(format!("{} {wait} s", lang.t("login.throttled"))),
            axum::http::StatusCode::TOO_MANY_REQUESTS,
        );
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    let user = match app.store.user(&name) {
        Ok(u) => u,
        Err(e) => return error_page(lang, None, e.into(), "/login"),
    };
    let pw = f.password.clone();
    // Every path costs one verification, so timing tells neither unknown nor disabled users.
    let ok_user = tokio::task::spawn_blocking(move || match user {
        Some(u) => {
            let matches = password::verify(&u.password_hash, &pw);
            (matches && !u.disabled).then_some(u)
        }
        None => {
            password::verify_dummy(&pw);
            None
        }
    })
    .await
    .ok()
    .flatten();
    let Some(user) = ok_user else {
        tracing::warn!(user = %name, "login failed");
        return login_page(
            &app,
            lang,
            &f.next,
            &name,
            Some(lang.t("login.failed").to_owned()),
            axum::http::StatusCode::UNAUTHORIZED,
        );
    };
    app.throttle
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .succeeded(&name, ip);
    let (Ok(sid), Ok(csrf)) = (random_secret(32), random_secret(32)) else {
        return error_page(lang, None, GatewayError::Internal, "/login");
    };
    let sess = Session {
        username: user.username.clone(),
        csrf,
        created_at: app.now(),
        last_seen: app.now(),
    };
    if let Err(e) = app.store.put_session(&sid, &sess).await {
        return error_page(lang, None, e.into(), "/login");
    }
    let _ = app
        .store
        .log_access(app.now(), &user.username, "console", "login", "")
        .await;
    tracing::info!(user = %user.username, "logged in");
    let mut resp = Redirect::to(&safe_next(&f.next)).into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(&app, &session_cookie(&app), &sid, None),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&app, &prelogin_cookie(&app), "", Some(0)),
    );
    resp
}

/// Ends the session.
pub(super) async fn logout(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Some(sid) = cookie(&headers, &session_cookie(&app)) {
        let _ = app.store.end_session(sid).await;
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&app, &session_cookie(&app), "", Some(0)),
    );
    resp
}

#[derive(Debug, Deserialize)]
pub(super) struct BackQuery {
    #[serde(default)]
    back: String,
}

/// Switches the console language (a cookie), and remembers it for a logged-in user.
pub(super) async fn switch_lang(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Query(q): Query<BackQuery>,
) -> Response {
    let Some(lang) = Lang::parse(&code) else {
        let lang = request_lang(&app, &headers, None);
        return error_page(
            lang,
            None,
            GatewayError::NotFound(format!("language {code}")),
            "/",
        );
    };
    if let Some(sid) = cookie(&headers, &session_cookie(&app))
        && let Ok(Some((mut user, _))) = load(&app, sid).await
        && user.language != Some(lang)
    {
        user.language = Some(lang);
        let _ = app.store.put_user(&user).await;
    }
    let mut resp = Redirect::to(&safe_next(&q.back)).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&app, LANG_COOKIE, lang.code(), Some(365 * 24 * 3600)),
    );
    resp
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded_pairs(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn form_urlencoded_pairs(body: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    body.split(|b| *b == b'&').filter_map(|pair| {
        let text = std::str::from_utf8(pair).ok()?;
        let (k, v) = text.split_once('=').unwrap_or((text, ""));
        let dec = |s: &str| {
            urlencoding::decode(&s.replace('+', " "))
                .ok()
                .map(|c| c.into_owned())
        };
        Some((dec(k)?, dec(v)?))
    })
}

/// Whether the request's `Origin` (when sent) is this site.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

/// The expected CSRF token for a console POST: the session's, or the pre-login cookie's.
/// A session the CSRF guard has already loaded, handed to the handler's `Officer` extractor
/// in the request's extensions so the store is read once per request.
#[derive(Debug, Clone)]
pub struct Loaded(pub User, pub Session);

async fn expected_token(
    app: &App,
    headers: &HeaderMap,
    path: &str,
) -> Option<(String, Option<Loaded>)> {
    if path == "/login" {
        return cookie(headers, &prelogin_cookie(app))
            .filter(|v| !v.is_empty())
            .map(|v| (v.to_owned(), None));
    }
    let sid = cookie(headers, &session_cookie(app))?;
    let (user, sess) = load(app, sid).await.ok().flatten()?;
    Some((sess.csrf.clone(), Some(Loaded(user, sess))))
}

/// Refuses any console POST without the right CSRF token (before the handler runs). Multipart
/// uploads are checked by their handler with [`check_token`], which reads the same field.
pub async fn csrf_guard(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    if req.method() != Method::POST || req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let lang = request_lang(&app, req.headers(), None);
    if !same_origin(req.headers()) {
        return error_page(lang, None, GatewayError::Csrf, "/");
    }
    let path = req.uri().path().to_owned();
    let Some((expected, loaded)) = expected_token(&app, req.headers(), &path).await else {
        if path == "/login" {
            return error_page(lang, None, GatewayError::Csrf, "/login");
        }
        return Redirect::to("/login").into_response();
    };
    if let Some(l) = loaded {
        req.extensions_mut().insert(l);
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if content_type.starts_with("multipart/form-data") {
        return next.run(req).await;
    }
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return error_page(lang, None, GatewayError::Csrf, "/");
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_FORM).await else {
        return error_page(
            lang,
            None,
            GatewayError::BadRequest("form too large".into()),
            "/",
        );
    };
    let sent = form_field(&bytes, "csrf").unwrap_or_default();
    if !same_secret(&sent, &expected) {
        tracing::warn!(path = %path, "form refused: CSRF token missing or wrong");
        return error_page(lang, None, GatewayError::Csrf, "/");
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Checks a token sent in a multipart form against the session's.
pub fn check_token(sent: &str, expected: &str) -> Result<(), GatewayError> {
    if same_secret(sent, expected) {
        Ok(())
    } else {
        Err(GatewayError::Csrf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next("/records?x=1"), "/records?x=1");
        assert_eq!(safe_next("//evil.example/"), "/");
        assert_eq!(safe_next("https://evil.example/"), "/");
        assert_eq!(safe_next("/\\evil"), "/");
    }

    #[test]
    fn hostile_return_paths_are_refused() {
        for ok in [
            "/",
            "/records",
            "/records?page=abc%2Bdef",
            "/search?serial=a%20b",
            "/records/FRA-POL-1/edit",
        ] {
            assert!(is_safe_path(ok), "{ok:?} should be accepted");
        }
        for bad in [
            "",
            "records",
            "//x",
            "//evil.example/",
            "/\\x",
            "/\\/evil.example",
            "\\\\evil.example",
            "https://x",
            "http:/x",
            "javascript:alert(1)",
            "/\t/evil.example/",
            "/\t/evil.example",
            "\t//evil.example",
            "/\r\nSet-Cookie: x=1",
            "/\nx",
            "/ /evil.example",
            "/records\u{0}",
            "/records\u{85}x",
            "/records\u{2028}x",
            "/%2F/evil",
            "/%2f/evil",
            "/%5C/evil",
            "/%5cevil",
            "/%09/evil.example/",
            "/%0D%0Ax",
            "/records%0A",
            "/%ff%fe",
        ] {
            assert!(!is_safe_path(bad), "{bad:?} should be refused");
            assert_eq!(safe_next(bad), "/", "{bad:?}");
        }
    }

    #[test]
    fn https_cookie_names_carry_the_host_prefix() {
        assert_eq!(
            super::super::cookie_name("tn_session", "FRA-POL", false),
            "tn_session_fra_pol"
        );
        assert_eq!(
            super::super::cookie_name("tn_prelogin", "FRA-POL", true),
            "__Host-tn_prelogin_fra_pol"
        );
    }

    #[test]
    fn form_fields_are_decoded() {
        let body = b"a=1&csrf=ab%2Bc&x=hello+world";
        assert_eq!(form_field(body, "csrf").as_deref(), Some("ab+c"));
        assert_eq!(form_field(body, "x").as_deref(), Some("hello world"));
        assert_eq!(form_field(body, "missing"), None);
    }

    #[test]
    fn foreign_origins_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(
            same_origin(&h),
            "no Origin header: same-site form posts may omit it"
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
    }
}
