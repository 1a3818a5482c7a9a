//! The JSON API for national systems, under `/api/v1`: bearer tokens scoped by role (cookies
//! are ignored here, so there is no CSRF surface), records in the canonical proto3 JSON mapping,
//! fields at their default value (false, 0, empty) omitted as that mapping does, cursor
//! pagination (`page_size`, `page_token` → `next_page_token`), and every error as
//! `application/problem+json` with the same validation messages the console shows. The OpenAPI
//! document is served at `/api/v1/openapi.json`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tracenet_proto::v1 as pb;

use crate::app::App;
use crate::auth::{Capability, Principal};
use crate::error::GatewayError;
use crate::ops::{self, Caller, Via};

mod openapi;

/// An error as `application/problem+json` (RFC 9457).
#[derive(Debug)]
pub struct Problem(pub GatewayError);

impl From<GatewayError> for Problem {
    fn from(e: GatewayError) -> Self {
        Problem(e)
    }
}

/// A problem+json response from its parts (`kind` names the problem type).
fn problem_response(
    status: StatusCode,
    kind: &str,
    title: &str,
    detail: &str,
    extra: Option<Value>,
) -> Response {
    let mut body = json!({
        "type": format!("https://tracenet.example/problems/{kind}"),
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    if let Some(errors) = extra {
        body["errors"] = errors;
    }
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    resp
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let e = self.0;
        let extra = match &e {
            GatewayError::Invalid(problems) => Some(json!(problems)),
            _ => None,
        };
        let mut resp = problem_response(e.status(), e.kind(), &e.to_string(), &e.detail(), extra);
        let h = resp.headers_mut();
        match e {
            GatewayError::Unauthenticated => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"tracenet\""),
                );
            }
            GatewayError::Throttled(s) => {
                if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                    h.insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        resp
    }
}

/// The caller of an API request, from its bearer token.
#[derive(Debug, Clone)]
pub struct ApiCaller(pub Principal);

impl ApiCaller {
    fn caller(&self) -> Caller<'_> {
        Caller {
            who: &self.0,
            via: Via::Api,
        }
    }
}

impl FromRequestParts<Arc<App>> for ApiCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Problem> {
        let secret = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(GatewayError::Unauthenticated)?;
        match app.store.token(secret).map_err(GatewayError::from)? {
            Some(t) if !t.revoked => Ok(ApiCaller(Principal {
                name: format!("token:{}", t.name),
                roles: t.roles,
            })),
            _ => Err(GatewayError::Unauthenticated.into()),
        }
    }
}

type ApiResult = Result<Response, Problem>;

fn ok(v: impl serde::Serialize) -> ApiResult {
    Ok(axum::Json(v).into_response())
}

fn created(v: impl serde::Serialize) -> ApiResult {
    Ok((axum::http::StatusCode::CREATED, axum::Json(v)).into_response())
}

/// Parses a JSON body, turning any mistake into a 400 that says where it is.
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Problem> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = if path == "." {
            format!("request body: {inner}")
        } else {
            format!("request body, field {path}: {inner}")
        };
        GatewayError::BadRequest(msg).into()
    })
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    #[serde(default)]
    page_size: Option<u32>,
    #[serde(default)]
    page_token: String,
    #[serde(default)]
    order: String,
}

async fn list_records(
    State(app): State<Arc<App>>,
    c: ApiCaller,
    Query(q): Query<PageQuery>,
) -> ApiResult {
    let newest = match q.order.as_str() {
        "" | "oldest" => false,
        "newest" => true,
        _ => {
            return Err(GatewayError::BadRequest("order must be oldest or newest".into()).into());
        }
    };
    let page = ops::list_records(
        &app,
        c.caller(),
        q.page_size.unwrap_or(50),
        q.page_token,
        newest,
    )
    .await?;
    ok(json!({ "items": page.records, "next_page_token": page.next_page_token }))
}

async fn create_record(State(app): State<Arc<App>>, c: ApiCaller, bytes: Bytes) -> ApiResult {
    c.caller().require(Capability::WriteRecords)?;
    let record: pb::SeizureRecord = body(&bytes)?;
    created(ops::create_record(&app, c.caller(), record).await?)
}

async fn get_record(
    State(app): State<Arc<App>>,
    c: ApiCaller,
    Path(id): Path<String>,
) -> ApiResult {
    ok(ops::get_record(&app, c.caller(), &id).await?)
}

#[derive(Debug, Deserialize)]
struct UpdateBody {
    record: pb::SeizureRecord,
    #[serde(default)]
    expected_revision: u64,
}

async fn update_record(
    State(app): State<Arc<App>>,
    c: ApiCaller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    c.caller().require(Capability::WriteRecords)?;
    let b: UpdateBody = body(&bytes)?;
    ok(ops::update_record(&app, c.caller(), &id, b.record, b.expected_revision).await?)
}

#[derive(Debug, Deserialize)]
struct BatchBody {
    records: Vec<pb::SeizureRecord>,
}

async fn import_batch(State(app): State<Arc<App>>, c: ApiCaller, bytes: Bytes) -> ApiResult {
    c.caller().require(Capability::WriteRecords)?;
    let b: BatchBody = body(&bytes)?;
    ok(ops::import_batch(&app, c.caller(), b.records).await?)
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    #[serde(default)]
    serial: String,
    #[serde(default, rename = "match")]
    how: String,
}

async fn search(
    State(app): State<Arc<App>>,
    c: ApiCaller,
    Query(q): Query<SearchQuery>,
) -> ApiResult {
    let normalised = match q.how.as_str() {
        "" | "normalised" => true,
        "exact" => false,
        _ => {
            return Err(
                GatewayError::BadRequest("match must be exact or normalised".into()).into(),
            );
        }
    };
    ok(json!({ "items": ops::search(&app, c.caller(), &q.serial, normalised).await? }))
}

async fn lookup(State(app): State<Arc<App>>, c: ApiCaller, bytes: Bytes) -> ApiResult {
    c.caller().require(Capability::Lookup)?;
    let input: ops::LookupInput = body(&bytes)?;
    ok(ops::lookup(&app, c.caller(), &input).await?)
}

#[derive(Debug, Deserialize)]
struct TracesQuery {
    #[serde(default)]
    direction: String,
    #[serde(default)]
    page_size: Option<u32>,
    #[serde(default)]
    page_token: String,
}

async fn list_traces(
    State(app): State<Arc<App>>,
    c: ApiCaller,
    Query(q): Query<TracesQuery>,
) -> ApiResult {
    let all = ops::traces(&app, c.caller(), &q.direction).await?;
    let start: usize = if q.page_token.is_empty() {
        0
    } else {
        q.page_token
            .parse()
            .map_err(|_| GatewayError::BadRequest("invalid page_token".into()))?
    };
    let size = q.page_size.unwrap_or(50).clamp(1, 200) as usize;
    let end = start.saturating_add(size).min(all.len());
    let items = all.get(start.min(all.len())..end).unwrap_or(&[]);
    let next = if end < all.len() {
        end.to_string()
    } else {
        String::new()
    };
    ok(json!({ "items": items, "next_page_token": next }))
}

async fn send_trace(State(app): State<Arc<App>>, c: ApiCaller, bytes: Bytes) -> ApiResult {
    c.caller().require(Capability::Trace)?;
    let req: pb::SendTraceRequestRequest = body(&bytes)?;
    created(ops::send_trace(&app, c.caller(), req).await?)
}

async fn get_trace(State(app): State<Arc<App>>, c: ApiCaller, Path(id): Path<String>) -> ApiResult {
    ok(ops::trace(&app, c.caller(), &id).await?)
}

async fn answer_trace(
    State(app): State<Arc<App>>,
    c: ApiCaller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    c.caller().require(Capability::Trace)?;
    let mut req: pb::AnswerTraceRequestRequest = body(&bytes)?;
    if !req.request_id.is_empty() && req.request_id != id {
        return Err(
            GatewayError::BadRequest("request_id does not match the address".into()).into(),
        );
    }
    req.request_id = id;
    ok(ops::answer_trace(&app, c.caller(), req).await?)
}

#[derive(Debug, Deserialize)]
struct AnalysisBody {
    #[serde(default)]
    filter: Option<pb::RecordFilter>,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    legal_basis: String,
}

async fn analysis(State(app): State<Arc<App>>, c: ApiCaller, bytes: Bytes) -> ApiResult {
    c.caller().require(Capability::Analyse)?;
    let b: AnalysisBody = body(&bytes)?;
    let inquiry = ops::Inquiry {
        purpose: ops::purpose_number(&b.purpose),
        legal_basis: b.legal_basis,
        case_reference: String::new(),
    };
    let r = ops::analyse(&app, c.caller(), b.filter.unwrap_or_default(), inquiry).await?;
    let limited = ops::limited_members(&r);
    let mut v = serde_json::to_value(&r).map_err(|_| GatewayError::Internal)?;
    // Say when a member's answer was cut at the limit, so totals are not read as complete.
    v["limit_per_member"] = json!(ops::ANALYSIS_LIMIT);
    v["limited_members"] = json!(limited);
    ok(v)
}

async fn members(State(app): State<Arc<App>>, c: ApiCaller) -> ApiResult {
    let view = ops::directory(&app, c.caller()).await?;
    let state = view.state.unwrap_or_default();
    let mut items: Vec<Value> = state
        .members
        .values()
        .map(|m| {
            let entries = state.entries.get(&m.node_id).cloned().unwrap_or_default();
            json!({
                "node_id": m.node_id,
                "country": m.country,
                "organisation": m.organisation,
                "role": pb::MemberRole::try_from(m.role).map_or("", |r| r.as_str_name()),
                "status": pb::MemberStatus::try_from(m.status).map_or("", |s| s.as_str_name()),
                "regions": m.regions,
                "contacts": entries.contacts,
                "policy_version": entries.policies.last().and_then(|p| p.policy.as_ref()).map_or(0, |p| p.version),
            })
        })
        .collect();
    items.sort_by(|a, b| a["node_id"].as_str().cmp(&b["node_id"].as_str()));
    ok(json!({ "items": items, "applied_index": view.applied_index }))
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    peer: String,
    #[serde(default)]
    page_size: Option<u32>,
    #[serde(default)]
    page_token: String,
}

async fn audit(
    State(app): State<Arc<App>>,
    c: ApiCaller,
    Query(q): Query<AuditQuery>,
) -> ApiResult {
    let after = if q.page_token.is_empty() {
        0
    } else {
        q.page_token
            .parse()
            .map_err(|_| GatewayError::BadRequest("invalid page_token".into()))?
    };
    let size = q.page_size.unwrap_or(100).clamp(1, 1000);
    let entries = ops::audit(
        &app,
        c.caller(),
        pb::ListAuditRequest {
            kind: q.kind,
            peer: q.peer,
            after_seq: after,
            limit: size,
        },
    )
    .await?;
    let next = if entries.len() == size as usize {
        entries.last().map_or(String::new(), |e| e.seq.to_string())
    } else {
        String::new()
    };
    ok(json!({ "items": entries, "next_page_token": next }))
}

async fn preview(State(app): State<Arc<App>>, c: ApiCaller, bytes: Bytes) -> ApiResult {
    c.caller().require(Capability::Administer)?;
    let req: pb::PreviewDisclosureRequest = body(&bytes)?;
    ok(ops::preview(&app, c.caller(), req).await?)
}

async fn openapi_doc() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::document().to_string(),
    )
        .into_response()
}

async fn not_found() -> Problem {
    Problem(GatewayError::NotFound("no such API route".into()))
}

/// Largest JSON body the API reads (a batch the node can take encodes to under 4 MiB; JSON of
/// the same records is rarely more than twice that).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// Turns the framework's own refusals (a query string that does not parse: 400, a body over
/// [`MAX_BODY`]: 413, a method the route does not have: 405) into problem+json like every other
/// API error, keeping their status and their text as the detail.
async fn problem_for_rejections(resp: Response) -> Response {
    let status = resp.status();
    let already = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if already || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let kind = match status {
        StatusCode::BAD_REQUEST => "bad-request".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => "too-large".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed".to_owned(),
        other => other
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
            .replace(' ', "-"),
    };
    let title = status.canonical_reason().unwrap_or("error");
    let detail = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the request body is larger than {MAX_BODY} bytes")
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            format!("this route accepts {allow}")
        }
        _ if text.is_empty() => title.to_owned(),
        _ => text,
    };
    let mut out = problem_response(status, &kind, title, &detail, None);
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

/// The API's routes (mounted under `/api/v1`).
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/openapi.json", get(openapi_doc))
        .route("/records", get(list_records).post(create_record))
        .route("/records/batch", post(import_batch))
        .route("/records/{id}", get(get_record).put(update_record))
        .route("/search", get(search))
        .route("/lookup", post(lookup))
        .route("/traces", get(list_traces).post(send_trace))
        .route("/traces/{id}", get(get_trace))
        .route("/traces/{id}/answer", post(answer_trace))
        .route("/analysis", post(analysis))
        .route("/directory/members", get(members))
        .route("/audit", get(audit))
        .route("/policy/preview", post(preview))
        .fallback(not_found)
        .layer(axum::middleware::map_response(problem_for_rejections))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
}
