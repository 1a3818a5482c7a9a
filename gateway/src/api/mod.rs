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

/// Parses a JSON body, turning any mistake into a 400 that says where it is. The body is read
/// directly first: the path-tracking reader (used only to name the field of a mistake) hides
/// borrowed strings from pbjson, which then refused 64-bit numbers written as strings, the
/// form the proto3 JSON mapping writes them in.
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Problem> {
    if let Ok(mut v) = serde_json::from_slice::<Value>(bytes) {
        integral_numbers(&mut v);
        if let Ok(t) = serde_json::from_value(v) {
            return Ok(t);
        }
    }
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

/// The default page size of lists.
pub const PAGE_DEFAULT: u32 = 50;
/// The largest page of records or trace requests.
pub const PAGE_MAX: u32 = 200;
/// The largest page of audit entries.
pub const AUDIT_MAX_PAGE: u32 = 1000;

/// A `page_size` within `1..=max` (`default` when absent); anything else is a 400, as the
/// OpenAPI document declares (never silently clamped).
fn page_size(asked: Option<u32>, default: u32, max: u32) -> Result<u32, Problem> {
    match asked {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => {
            Err(GatewayError::BadRequest(format!("page_size must be between 1 and {max}")).into())
        }
    }
}

/// An optional choice from a fixed list: absent is `None`; present, it must be one of `allowed`
/// (an empty value is refused like any other value not in the list).
fn choice<'a>(
    name: &str,
    value: Option<&'a str>,
    allowed: &[&str],
) -> Result<Option<&'a str>, Problem> {
    match value {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v)),
        Some(_) => {
            Err(GatewayError::BadRequest(format!("{name} must be {}", allowed.join(" or "))).into())
        }
    }
}

/// The longest serial number searched for (in characters), as the node takes it.
pub const SERIAL_MAX: usize = 256;

/// A serial to search for has a letter or digit (A-Z, 0-9) and at most [`SERIAL_MAX`]
/// characters, as the OpenAPI document declares.
fn check_serial(serial: &str) -> Result<(), Problem> {
    if serial.chars().count() > SERIAL_MAX || !serial.chars().any(|c| c.is_ascii_alphanumeric()) {
        return Err(GatewayError::BadRequest(format!(
            "serial must have a letter or digit (A-Z, 0-9) and at most {SERIAL_MAX} characters"
        ))
        .into());
    }
    Ok(())
}

/// A record id as the OpenAPI document declares it: 32 lower-case hexadecimal digits.
fn is_record_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A page token made of 1 to 19 digits (0 when empty), as the document declares.
fn numeric_token(token: &str) -> Result<u64, Problem> {
    if token.is_empty() {
        return Ok(0);
    }
    if token.len() > 19 || !token.bytes().all(|b| b.is_ascii_digit()) {
        return Err(GatewayError::BadRequest("invalid page_token".into()).into());
    }
    token
        .parse()
        .map_err(|_| GatewayError::BadRequest("invalid page_token".into()).into())
}

/// A 400 unless `id` is a record id.
fn check_record_id(id: &str) -> Result<(), Problem> {
    if is_record_id(id) {
        Ok(())
    } else {
        Err(GatewayError::BadRequest(format!(
            "'{}' is not a record id (32 hexadecimal digits)",
            id.chars().take(64).collect::<String>()
        ))
        .into())
    }
}

/// A calendar date `YYYY-MM-DD` from 1900 to 2199 (the node's range), or empty.
fn is_filter_date(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<u32>().ok());
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    let digits = [0..4, 5..7, 8..10].into_iter().all(|r| {
        s.get(r)
            .is_some_and(|x| x.bytes().all(|c| c.is_ascii_digit()))
    });
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let max = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    digits && (1900..=2199).contains(&y) && (1..=12).contains(&m) && (1..=max).contains(&d)
}

/// The checks the OpenAPI document declares for an analysis filter: a route country as an
/// exact ISO 3166-1 alpha-3 code, and dates as `YYYY-MM-DD`.
fn check_filter(f: &pb::RecordFilter) -> Result<(), Problem> {
    let mut problems = Vec::new();
    if !f.route_country.is_empty()
        && tracenet_ids::country::ALL
            .binary_search(&f.route_country.as_str())
            .is_err()
    {
        problems.push(format!(
            "filter.route_country: '{}' is not an ISO 3166-1 alpha-3 code (upper case)",
            f.route_country.chars().take(16).collect::<String>()
        ));
    }
    for (name, v) in [("date_from", &f.date_from), ("date_to", &f.date_to)] {
        if !is_filter_date(v) {
            problems.push(format!(
                "filter.{name} must be a date YYYY-MM-DD (1900 to 2199)"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(GatewayError::BadRequest(problems.join("; ")).into())
    }
}

/// The purposes the API takes, exactly as the OpenAPI document lists them.
const PURPOSES: [&str; 8] = [
    "criminal_investigation",
    "tracing",
    "border_risk_analysis",
    "statistics",
    "PURPOSE_CRIMINAL_INVESTIGATION",
    "PURPOSE_TRACING",
    "PURPOSE_BORDER_RISK_ANALYSIS",
    "PURPOSE_STATISTICS",
];

/// A purpose other than those listed is refused as an invalid field (the console is lenient,
/// the API exact).
fn check_purpose(purpose: &str, legal_basis: &str) -> Result<(), Problem> {
    let mut problems = Vec::new();
    if !PURPOSES.contains(&purpose) {
        problems.push(crate::error::FieldProblem {
            field: "purpose".into(),
            line: 0,
            reason: "choose a purpose".into(),
        });
    }
    if legal_basis.trim().is_empty() {
        problems.push(crate::error::FieldProblem {
            field: "legal_basis".into(),
            line: 0,
            reason: "state the legal basis".into(),
        });
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(GatewayError::Invalid(problems).into())
    }
}

/// Writes numbers with a zero fraction (`1741.0`) as integers: JSON Schema counts them as
/// integers, so the API reads them as such (pbjson alone refuses them for integer fields).
fn integral_numbers(v: &mut Value) {
    match v {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9_007_199_254_740_992.0
            {
                // Exact: |f| < 2^53.
                #[allow(clippy::cast_possible_truncation)]
                let i = f as i64;
                *v = Value::from(i);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        Value::Object(map) => map.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    #[serde(default)]
    page_size: Option<u32>,
    #[serde(default)]
    page_token: String,
    #[serde(default)]
    order: Option<String>,
}

async fn list_records(
    State(app): State<Arc<App>>,
    c: ApiCaller,
    Query(q): Query<PageQuery>,
) -> ApiResult {
    let newest = choice("order", q.order.as_deref(), &["oldest", "newest"])? == Some("newest");
    let size = page_size(q.page_size, PAGE_DEFAULT, PAGE_MAX)?;
    if !q.page_token.is_empty() && !is_record_id(&q.page_token) {
        return Err(GatewayError::BadRequest("invalid page_token".into()).into());
    }
    let page = ops::list_records(&app, c.caller(), size, q.page_token, newest).await?;
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
    check_record_id(&id)?;
    ok(ops::get_record(&app, c.caller(), &id).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
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
    check_record_id(&id)?;
    let b: UpdateBody = body(&bytes)?;
    ok(ops::update_record(&app, c.caller(), &id, b.record, b.expected_revision).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
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
    how: Option<String>,
    #[serde(default)]
    kind: String,
}

async fn search(
    State(app): State<Arc<App>>,
    c: ApiCaller,
    Query(q): Query<SearchQuery>,
) -> ApiResult {
    let normalised = choice("match", q.how.as_deref(), &["exact", "normalised"])? != Some("exact");
    if !q.serial.trim().is_empty() {
        check_serial(&q.serial)?;
    }
    ok(json!({ "items": ops::search(&app, c.caller(), &q.serial, normalised, &q.kind).await? }))
}

/// A lookup as the API takes it: [`ops::LookupInput`] with no unknown fields.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[derive(Default)]
struct ApiLookup {
    serial_number: String,
    manufacturer: String,
    purpose: String,
    legal_basis: String,
    case_reference: String,
    via_hub: bool,
    kind: String,
}

async fn lookup(State(app): State<Arc<App>>, c: ApiCaller, bytes: Bytes) -> ApiResult {
    c.caller().require(Capability::Lookup)?;
    let ApiLookup {
        serial_number,
        manufacturer,
        purpose,
        legal_basis,
        case_reference,
        via_hub,
        kind,
    } = body(&bytes)?;
    let input = ops::LookupInput {
        serial_number,
        manufacturer,
        purpose,
        legal_basis,
        case_reference,
        via_hub,
        kind,
    };
    if input.serial_number.trim().is_empty() || !PURPOSES.contains(&input.purpose.as_str()) {
        // Every missing input at once, as the console reports them.
        let mut problems = match check_purpose(&input.purpose, &input.legal_basis) {
            Err(Problem(GatewayError::Invalid(p))) => p,
            _ => Vec::new(),
        };
        if input.serial_number.trim().is_empty() {
            problems.insert(
                0,
                crate::error::FieldProblem {
                    field: "serial_number".into(),
                    line: 0,
                    reason: "enter a serial number".into(),
                },
            );
        }
        return Err(GatewayError::Invalid(problems).into());
    }
    ok(ops::lookup(&app, c.caller(), &input).await?)
}

async fn list_watches(State(app): State<Arc<App>>, c: ApiCaller) -> ApiResult {
    ok(json!({ "items": ops::watches(&app, c.caller()).await? }))
}

async fn add_watch(State(app): State<Arc<App>>, c: ApiCaller, bytes: Bytes) -> ApiResult {
    c.caller().require(Capability::Lookup)?;
    let input: ops::WatchInput = body(&bytes)?;
    created(ops::add_watch(&app, c.caller(), &input).await?)
}

/// A watch id as the node writes it: `w` and 16 lower-case hexadecimal digits.
fn check_watch_id(id: &str) -> Result<(), Problem> {
    let hex = id.strip_prefix('w').unwrap_or("");
    if hex.len() == 16 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(GatewayError::NotFound(format!("watch {id}")).into())
    }
}

async fn remove_watch(
    State(app): State<Arc<App>>,
    c: ApiCaller,
    Path(id): Path<String>,
) -> ApiResult {
    c.caller().require(Capability::Lookup)?;
    check_watch_id(&id)?;
    ops::remove_watch(&app, c.caller(), &id).await?;
    ok(json!({ "removed": id }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsQuery {
    #[serde(default)]
    unacknowledged: Option<bool>,
}

async fn list_watch_alerts(
    State(app): State<Arc<App>>,
    c: ApiCaller,
    Query(q): Query<AlertsQuery>,
) -> ApiResult {
    let r = ops::watch_alerts(&app, c.caller(), q.unacknowledged.unwrap_or(false)).await?;
    ok(json!({ "items": r.alerts, "unacknowledged": r.unacknowledged }))
}

async fn acknowledge_alert(
    State(app): State<Arc<App>>,
    c: ApiCaller,
    Path(id): Path<String>,
) -> ApiResult {
    c.caller().require(Capability::Lookup)?;
    if !(id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))) {
        return Err(GatewayError::NotFound(format!("alert {id}")).into());
    }
    ok(ops::acknowledge_alert(&app, c.caller(), &id).await?)
}

#[derive(Debug, Deserialize)]
struct TracesQuery {
    #[serde(default)]
    direction: Option<String>,
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
    let direction = choice(
        "direction",
        q.direction.as_deref(),
        &["outgoing", "incoming"],
    )?;
    let size = page_size(q.page_size, PAGE_DEFAULT, PAGE_MAX)? as usize;
    let all = ops::traces(&app, c.caller(), direction.unwrap_or("")).await?;
    let start = numeric_token(&q.page_token)? as usize;
    let end = start.saturating_add(size).min(all.len());
    let items = all.get(start.min(all.len())..end).unwrap_or(&[]);
    let next = if end < all.len() {
        end.to_string()
    } else {
        String::new()
    };
    ok(json!({ "items": items, "next_page_token": next }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceivedQuery {
    #[serde(default)]
    page_size: Option<u32>,
    #[serde(default)]
    page_token: String,
}

/// Received copies, each with its expiry under the owner's retention.
async fn list_received(
    State(app): State<Arc<App>>,
    c: ApiCaller,
    Query(q): Query<ReceivedQuery>,
) -> ApiResult {
    let size = page_size(q.page_size, PAGE_DEFAULT, PAGE_MAX)? as usize;
    let all = ops::received(&app, c.caller()).await?;
    let start = numeric_token(&q.page_token)? as usize;
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
        return Err(GatewayError::Invalid(vec![crate::error::FieldProblem {
            field: "request_id".into(),
            line: 0,
            reason: "does not match the address".into(),
        }])
        .into());
    }
    req.request_id = id;
    ok(ops::answer_trace(&app, c.caller(), req).await?)
}

async fn provide_information(
    State(app): State<Arc<App>>,
    c: ApiCaller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    c.caller().require(Capability::Trace)?;
    let mut req: pb::ProvideTraceInformationRequest = body(&bytes)?;
    if !req.request_id.is_empty() && req.request_id != id {
        return Err(GatewayError::Invalid(vec![crate::error::FieldProblem {
            field: "request_id".into(),
            line: 0,
            reason: "does not match the address".into(),
        }])
        .into());
    }
    req.request_id = id;
    ok(ops::provide_information(&app, c.caller(), req).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
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
    if let Some(f) = &b.filter {
        check_filter(f)?;
    }
    check_purpose(&b.purpose, &b.legal_basis)?;
    let inquiry = ops::Inquiry::stated(&b.purpose, &b.legal_basis, "");
    let r = ops::analyse(&app, c.caller(), b.filter.unwrap_or_default(), inquiry).await?;
    let limited = ops::limited_members(&r);
    let mut v = serde_json::to_value(&r).map_err(|_| GatewayError::Internal)?;
    // Say when a member's answer was cut at the limit, so totals are not read as complete.
    v["limit_per_member"] = json!(ops::ANALYSIS_LIMIT);
    v["limited_members"] = json!(limited);
    ok(v)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatisticsQuery {
    #[serde(default)]
    year: Option<u32>,
    #[serde(default)]
    quarter: Option<u32>,
    #[serde(default)]
    peer: String,
    #[serde(default)]
    series_from: Option<u32>,
    #[serde(default)]
    regional: Option<bool>,
    #[serde(default)]
    route_report: Option<bool>,
}

/// Checks a statistics query as the OpenAPI document declares it.
fn statistics_request(q: StatisticsQuery) -> Result<pb::StatisticsLocalRequest, Problem> {
    let mut problems = Vec::new();
    let mut bad = |field: &str, reason: &str| {
        problems.push(crate::error::FieldProblem {
            field: field.into(),
            line: 0,
            reason: reason.into(),
        });
    };
    let year = q.year.unwrap_or(0);
    if !(1900..=2199).contains(&year) {
        bad("year", "a year from 1900 to 2199");
    }
    let quarter = q.quarter.unwrap_or(0);
    if quarter > 4 {
        bad("quarter", "1 to 4, or 0 for the whole year");
    }
    let series_from = q.series_from.unwrap_or(0);
    if series_from != 0 && (series_from > year || year - series_from >= ops::STATISTICS_MAX_YEARS) {
        bad("series_from", "at most the year, and within 50 years of it");
    }
    let peer = q.peer.trim().to_owned();
    if !peer.is_empty() && tracenet_ids::NodeId::parse(&peer).is_err() {
        bad("peer", "a member node id such as DEU-BKA");
    }
    let regional = q.regional.unwrap_or(false);
    if regional && !peer.is_empty() {
        bad(
            "regional",
            "not with peer: regional tables are this hub's region's",
        );
    }
    let route_report = q.route_report.unwrap_or(false);
    if route_report && peer.is_empty() {
        bad(
            "route_report",
            "needs peer: a route report is asked of a member",
        );
    }
    if !problems.is_empty() {
        return Err(GatewayError::Invalid(problems).into());
    }
    Ok(pb::StatisticsLocalRequest {
        year,
        quarter,
        peer_node: peer,
        series_from: if q.peer.trim().is_empty() && !regional {
            series_from
        } else {
            0
        },
        inquiry: route_report.then(|| pb::Inquiry {
            purpose: pb::Purpose::BorderRiskAnalysis as i32,
            ..Default::default()
        }),
        regional,
        deadline_ms: 0,
    })
}

async fn statistics(
    State(app): State<Arc<App>>,
    c: ApiCaller,
    Query(q): Query<StatisticsQuery>,
) -> ApiResult {
    c.caller().require(Capability::Analyse)?;
    let req = statistics_request(q)?;
    ok(ops::statistics(&app, c.caller(), req).await?)
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

async fn assistance_board(State(app): State<Arc<App>>, c: ApiCaller) -> ApiResult {
    ok(ops::assistance_board(&app, c.caller()).await?)
}

/// What an assistance write answers once the directory applied it.
fn applied(what: &str, id: &str) -> ApiResult {
    ok(json!({ "applied": true, "kind": what, "id": id }))
}

async fn publish_assistance(State(app): State<Arc<App>>, c: ApiCaller, bytes: Bytes) -> ApiResult {
    c.caller().require(Capability::Administer)?;
    let e: pb::AssistanceEntry = body(&bytes)?;
    use pb::assistance_entry::Entry;
    let (kind, id) = match e.entry.as_ref() {
        Some(Entry::Need(n)) => ("need", n.id.clone()),
        Some(Entry::Offer(o)) => ("offer", o.id.clone()),
        Some(Entry::Expert(x)) => ("expert", x.id.clone()),
        None => {
            return Err(GatewayError::BadRequest(
                "the body needs one of need, offer or expert".into(),
            )
            .into());
        }
    };
    let target = format!("{kind} {}/{id}", app.node_id());
    ops::assistance_write(
        &app,
        c.caller(),
        pb::directory_command::Op::PublishAssistance(e),
        "publish assistance entry",
        &target,
    )
    .await?;
    applied(kind, &format!("{}/{id}", app.node_id()))
}

async fn propose_assistance(State(app): State<Arc<App>>, c: ApiCaller, bytes: Bytes) -> ApiResult {
    c.caller().require(Capability::Administer)?;
    let p: pb::AssistanceProposal = body(&bytes)?;
    let id = format!("{}/{}", app.node_id(), p.id);
    let target = format!("{} -> {}/{}", p.offer_id, p.requester, p.need_id);
    ops::assistance_write(
        &app,
        c.caller(),
        pb::directory_command::Op::ProposeAssistance(p),
        "assistance proposal",
        &target,
    )
    .await?;
    applied("match", &id)
}

async fn assistance_step(State(app): State<Arc<App>>, c: ApiCaller, bytes: Bytes) -> ApiResult {
    c.caller().require(Capability::Administer)?;
    let s: pb::AssistanceStep = body(&bytes)?;
    let id = s.match_id.clone();
    ops::assistance_write(
        &app,
        c.caller(),
        pb::directory_command::Op::AssistanceStep(s),
        "assistance step",
        &id,
    )
    .await?;
    applied("step", &id)
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
    let after = numeric_token(&q.page_token)?;
    let size = page_size(q.page_size, 100, AUDIT_MAX_PAGE)?;
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
    check_record_id(&req.record_id)?;
    if tracenet_ids::NodeId::parse(&req.requester_node).is_err() {
        return Err(GatewayError::BadRequest(
            "requester_node must be a member's node id such as DEU-CUS".into(),
        )
        .into());
    }
    if matches!(
        pb::Purpose::try_from(req.purpose),
        Err(_) | Ok(pb::Purpose::Unspecified)
    ) {
        return Err(GatewayError::BadRequest("purpose is required".into()).into());
    }
    ok(ops::preview(&app, c.caller(), req).await?)
}

async fn openapi_doc(State(app): State<Arc<App>>) -> Response {
    let country = app.node_id().split('-').next().unwrap_or("FRA").to_owned();
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::document(&country).to_string(),
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
        .route("/received", get(list_received))
        .route("/watches", get(list_watches).post(add_watch))
        .route("/watches/{id}", axum::routing::delete(remove_watch))
        .route("/watch-alerts", get(list_watch_alerts))
        .route("/watch-alerts/{id}/acknowledge", post(acknowledge_alert))
        .route("/traces", get(list_traces).post(send_trace))
        .route("/traces/{id}", get(get_trace))
        .route("/traces/{id}/answer", post(answer_trace))
        .route("/traces/{id}/information", post(provide_information))
        .route("/analysis", post(analysis))
        .route("/statistics", get(statistics))
        .route("/directory/members", get(members))
        .route("/assistance/board", get(assistance_board))
        .route("/assistance/entries", post(publish_assistance))
        .route("/assistance/proposals", post(propose_assistance))
        .route("/assistance/steps", post(assistance_step))
        .route("/audit", get(audit))
        .route("/policy/preview", post(preview))
        .fallback(not_found)
        .layer(axum::middleware::map_response(problem_for_rejections))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// 64-bit numbers as strings (as responses write them), as numbers, and integral numbers
    /// written with a fraction are all read.
    #[test]
    fn bodies_read_numbers_in_every_form_json_schema_allows() {
        let json = br#"{"ammunition":[{"quantity":"90"},{"quantity":7},{"quantity":1741.0}]}"#;
        let r: pb::SeizureRecord = body(&Bytes::from_static(json)).unwrap();
        let q: Vec<u64> = r.ammunition.iter().map(|a| a.quantity).collect();
        assert_eq!(q, vec![90, 7, 1741]);
        let bad =
            body::<pb::SeizureRecord>(&Bytes::from_static(br#"{"ammunition":[{"quantity":1.5}]}"#));
        assert!(bad.is_err());
    }

    #[test]
    fn declared_formats_are_checked_exactly() {
        assert!(is_record_id("0123456789abcdef0123456789abcdef"));
        assert!(!is_record_id("0123456789ABCDEF0123456789abcdef"));
        assert!(is_filter_date("2024-02-29"));
        assert!(!is_filter_date("2023-02-29"));
        assert!(!is_filter_date("1899-12-31"));
        assert!(!is_filter_date("2024-1-011"));
        assert!(numeric_token("+5").is_err());
        assert_eq!(numeric_token("").ok(), Some(0));
    }
}
