//! What the console and the API both do, once: check the caller's capability, call the node,
//! and write the access log. The web and API layers only parse input and present output, so both
//! get the same rules, the same validation and the same errors.

use tracenet_proto::v1 as pb;

use crate::app::App;
use crate::auth::{Capability, Principal};
use crate::error::{FieldProblem, GatewayError};

/// Where a call came from, for the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The web console.
    Console,
    /// The JSON API.
    Api,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Console => "console",
            Via::Api => "api",
        }
    }
}

/// The caller of one operation.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// Who.
    pub who: &'a Principal,
    /// Through what.
    pub via: Via,
}

impl Caller<'_> {
    /// Refuses unless the caller's roles grant `cap`.
    pub fn require(&self, cap: Capability) -> Result<(), GatewayError> {
        if self.who.can(cap) {
            Ok(())
        } else {
            Err(GatewayError::Forbidden)
        }
    }
}

async fn log(app: &App, c: Caller<'_>, action: &str, target: &str) -> Result<(), GatewayError> {
    app.store
        .log_access(app.now(), &c.who.name, c.via.as_str(), action, target)
        .await?;
    Ok(())
}

/// A page of this node's records.
pub async fn list_records(
    app: &App,
    c: Caller<'_>,
    page_size: u32,
    page_token: String,
    newest_first: bool,
) -> Result<pb::ListRecordsResponse, GatewayError> {
    c.require(Capability::ReadRecords)?;
    let page = app
        .node
        .api()
        .list_records(pb::ListRecordsRequest {
            page_size: page_size.clamp(1, 200),
            page_token,
            newest_first,
        })
        .await?
        .into_inner();
    log(
        app,
        c,
        "list records",
        &format!("{} records", page.records.len()),
    )
    .await?;
    Ok(page)
}

/// The most records the console's list filters and sorts in one view (the newest recorded
/// first); the page says when a node holds more.
pub const LIST_SCAN_LIMIT: usize = 5000;

/// This node's records, newest recorded first, up to `limit` (logged once); `true` when that
/// is all of them.
pub async fn scan_records(
    app: &App,
    c: Caller<'_>,
    limit: usize,
) -> Result<(Vec<pb::RecordResponse>, bool), GatewayError> {
    c.require(Capability::ReadRecords)?;
    let mut out = Vec::new();
    let mut token = String::new();
    let complete = loop {
        let page = app
            .node
            .api()
            .list_records(pb::ListRecordsRequest {
                page_size: 200,
                page_token: token,
                newest_first: true,
            })
            .await?
            .into_inner();
        out.extend(page.records);
        if page.next_page_token.is_empty() {
            break true;
        }
        if out.len() >= limit {
            break false;
        }
        token = page.next_page_token;
    };
    out.truncate(limit);
    log(app, c, "list records", &format!("{} records", out.len())).await?;
    Ok((out, complete))
}

/// One record (logged as viewed).
pub async fn get_record(
    app: &App,
    c: Caller<'_>,
    id: &str,
) -> Result<pb::RecordResponse, GatewayError> {
    c.require(Capability::ReadRecords)?;
    let r = app
        .node
        .api()
        .get_record(pb::GetRecordRequest { id: id.to_owned() })
        .await?
        .into_inner();
    log(app, c, "view record", id).await?;
    Ok(r)
}

/// Records a new seizure.
pub async fn create_record(
    app: &App,
    c: Caller<'_>,
    record: pb::SeizureRecord,
) -> Result<pb::RecordResponse, GatewayError> {
    c.require(Capability::WriteRecords)?;
    let r = app
        .node
        .api()
        .create_record(pb::CreateRecordRequest {
            record: Some(record),
        })
        .await?
        .into_inner();
    let id = r.record.as_ref().map(|r| r.id.clone()).unwrap_or_default();
    log(app, c, "create record", &id).await?;
    Ok(r)
}

/// Replaces a record; `expected_revision` (when not 0) guards against lost updates.
pub async fn update_record(
    app: &App,
    c: Caller<'_>,
    id: &str,
    mut record: pb::SeizureRecord,
    expected_revision: u64,
) -> Result<pb::RecordResponse, GatewayError> {
    c.require(Capability::WriteRecords)?;
    if !record.id.is_empty() && record.id != id {
        return Err(GatewayError::Invalid(vec![FieldProblem {
            field: "id".into(),
            line: 0,
            reason: "does not match the address".into(),
        }]));
    }
    id.clone_into(&mut record.id);
    let r = app
        .node
        .api()
        .update_record(pb::UpdateRecordRequest {
            record: Some(record),
            expected_revision,
        })
        .await?
        .into_inner();
    log(app, c, "update record", id).await?;
    Ok(r)
}

/// The largest message the node's local API takes by default (its `max_message_bytes`).
pub const NODE_MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// Refuses a request the node could not take in one message (413 naming the limit), instead of
/// sending it and failing with an internal error.
pub fn check_message_size(req: &impl prost::Message) -> Result<(), GatewayError> {
    let size = req.encoded_len();
    if size > NODE_MAX_MESSAGE {
        return Err(GatewayError::TooLarge(format!(
            "the batch encodes to {size} bytes; the node takes at most {NODE_MAX_MESSAGE} bytes \
             (4 MiB) per call: send it as several smaller batches"
        )));
    }
    Ok(())
}

/// Writes a batch of records atomically (all or none), checking them first.
pub async fn import_batch(
    app: &App,
    c: Caller<'_>,
    records: Vec<pb::SeizureRecord>,
) -> Result<pb::ImportBatchResponse, GatewayError> {
    c.require(Capability::WriteRecords)?;
    if records.is_empty() {
        return Err(GatewayError::BadRequest("records is empty".into()));
    }
    if records.len() > crate::jobs::BATCH * 10 {
        return Err(GatewayError::BadRequest(format!(
            "at most {} records per call",
            crate::jobs::BATCH * 10
        )));
    }
    let n = records.len();
    let req = pb::ImportBatchRequest {
        records,
        ..Default::default()
    };
    check_message_size(&req)?;
    let r = app.node.api().import_batch(req).await?.into_inner();
    log(app, c, "import records", &format!("{n} records")).await?;
    Ok(r)
}

/// Has the node check records without writing anything (a dry run) and returns every problem it
/// finds, with the given source lines (0 for a form).
pub async fn check_records(
    app: &App,
    c: Caller<'_>,
    records: Vec<pb::SeizureRecord>,
    source_lines: Vec<u64>,
) -> Result<Vec<FieldProblem>, GatewayError> {
    c.require(Capability::WriteRecords)?;
    let req = pb::ImportBatchRequest {
        records,
        source_lines,
        dry_run: true,
    };
    check_message_size(&req)?;
    match app.node.api().import_batch(req).await {
        Ok(_) => Ok(Vec::new()),
        Err(s) => match crate::node::from_status(s) {
            GatewayError::Invalid(p) => Ok(p),
            other => Err(other),
        },
    }
}

/// Local search by serial number.
pub async fn search(
    app: &App,
    c: Caller<'_>,
    serial: &str,
    normalised: bool,
    kind: &str,
) -> Result<Vec<pb::RecordResponse>, GatewayError> {
    c.require(Capability::ReadRecords)?;
    if serial.trim().is_empty() {
        return Err(GatewayError::Invalid(vec![FieldProblem {
            field: "serial_number".into(),
            line: 0,
            reason: "enter a serial number".into(),
        }]));
    }
    let kind = lookup_kind(kind).ok_or_else(|| {
        GatewayError::BadRequest(
            "kind must be serial, ballistic_reference, headstamp, ammunition_lot or shipment_id"
                .into(),
        )
    })?;
    let r = app
        .node
        .api()
        .search_by_serial(pb::SearchBySerialRequest {
            serial_number: serial.trim().to_owned(),
            r#match: if normalised {
                pb::SerialMatch::Normalised
            } else {
                pb::SerialMatch::Exact
            } as i32,
            limit: 100,
            kind: kind as i32,
        })
        .await?
        .into_inner();
    log(app, c, "search serial", serial).await?;
    Ok(r.records)
}

/// What an officer states for a federated request.
#[derive(Debug, Clone, Default)]
pub struct Inquiry {
    /// The purpose (a `Purpose` value).
    pub purpose: i32,
    /// The legal basis.
    pub legal_basis: String,
    /// The case reference.
    pub case_reference: String,
}

impl Inquiry {
    /// What an officer typed: the purpose by name (`tracing` or `PURPOSE_TRACING`), the legal
    /// basis and the case reference (checked when the request is built).
    pub fn stated(purpose: &str, legal_basis: &str, case_reference: &str) -> Inquiry {
        Inquiry {
            purpose: purpose_number(purpose),
            legal_basis: legal_basis.to_owned(),
            case_reference: case_reference.to_owned(),
        }
    }
}

fn inquiry(app: &App, q: Inquiry) -> Result<pb::Inquiry, GatewayError> {
    let mut problems = Vec::new();
    if matches!(
        pb::Purpose::try_from(q.purpose),
        Err(_) | Ok(pb::Purpose::Unspecified)
    ) {
        problems.push(FieldProblem {
            field: "purpose".into(),
            line: 0,
            reason: "choose a purpose".into(),
        });
    }
    if q.legal_basis.trim().is_empty() {
        problems.push(FieldProblem {
            field: "legal_basis".into(),
            line: 0,
            reason: "state the legal basis".into(),
        });
    }
    if !problems.is_empty() {
        return Err(GatewayError::Invalid(problems));
    }
    Ok(pb::Inquiry {
        agency_kind: app.cfg.agency().map_or(0, |a| a as i32),
        purpose: q.purpose,
        legal_basis: q.legal_basis.trim().to_owned(),
        case_reference: q.case_reference.trim().to_owned(),
        deadline_ms: app.cfg.federated_deadline_ms,
        via_hub: false,
    })
}

/// The number of a purpose given as `tracing` or `PURPOSE_TRACING` (0 when unknown).
pub fn purpose_number(s: &str) -> i32 {
    let upper = s.trim().to_ascii_uppercase();
    let full = if upper.starts_with("PURPOSE_") {
        upper
    } else {
        format!("PURPOSE_{upper}")
    };
    pb::Purpose::from_str_name(&full).map_or(0, |p| p as i32)
}

/// A hit/no-hit lookup as an officer's form or a national system's JSON states it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct LookupInput {
    /// The serial number as marked (matched normalised).
    pub serial_number: String,
    /// The manufacturer, to narrow the match.
    pub manufacturer: String,
    /// The purpose, `tracing` or `PURPOSE_TRACING`.
    pub purpose: String,
    /// The legal basis.
    pub legal_basis: String,
    /// The case reference.
    pub case_reference: String,
    /// Ask this node's hub to fan the lookup out across the region (sealed end to end).
    pub via_hub: bool,
    /// What `serial_number` is: `serial` (or empty), `ballistic_reference` (the identifier of
    /// a cartridge case or bullet in a national ballistic system), `headstamp`,
    /// `ammunition_lot` or `shipment_id` (a container, air waybill, bill of lading, parcel
    /// tracking number, vehicle registration, vessel or flight).
    pub kind: String,
}

/// The `LookupKind` a lookup form or body names (`serial`, `ballistic_reference`, or the full
/// protocol name); `None` when it names none of them.
pub fn lookup_kind(s: &str) -> Option<pb::LookupKind> {
    let upper = s.trim().to_ascii_uppercase();
    if upper.is_empty() {
        return Some(pb::LookupKind::Serial);
    }
    let full = if upper.starts_with("LOOKUP_KIND_") {
        upper
    } else {
        format!("LOOKUP_KIND_{upper}")
    };
    pb::LookupKind::from_str_name(&full).filter(|k| *k != pb::LookupKind::Unspecified)
}

/// Hit/no-hit across the federation. Every missing input is reported at once.
pub async fn lookup(
    app: &App,
    c: Caller<'_>,
    input: &LookupInput,
) -> Result<pb::FederatedLookupResponse, GatewayError> {
    c.require(Capability::Lookup)?;
    let (serial, kind, mut inquiry) = checked_lookup(
        app,
        &input.serial_number,
        &input.kind,
        Inquiry::stated(&input.purpose, &input.legal_basis, &input.case_reference),
    )?;
    inquiry.via_hub = input.via_hub;
    let r = app
        .node
        .api()
        .federated_lookup(pb::FederatedLookupRequest {
            inquiry: Some(inquiry),
            serial_number: serial,
            manufacturer: input.manufacturer.trim().to_owned(),
            kind: kind as i32,
        })
        .await?
        .into_inner();
    log(app, c, "federated lookup", &input.serial_number).await?;
    Ok(r)
}

/// A lookup's (or a watch's) value, kind and inquiry, checked together: every problem is
/// reported at once.
fn checked_lookup(
    app: &App,
    value: &str,
    kind: &str,
    asked: Inquiry,
) -> Result<(String, pb::LookupKind, pb::Inquiry), GatewayError> {
    let value = value.trim();
    let mut problems = Vec::new();
    if value.is_empty() {
        problems.push(serial_problem());
    }
    let kind = lookup_kind(kind);
    if kind.is_none() {
        problems.push(FieldProblem {
            field: "kind".into(),
            line: 0,
            reason: "must be serial, ballistic_reference, headstamp, ammunition_lot or shipment_id"
                .into(),
        });
    }
    let inquiry = match inquiry(app, asked) {
        Ok(i) => Some(i),
        Err(GatewayError::Invalid(p)) => {
            problems.extend(p);
            None
        }
        Err(e) => return Err(e),
    };
    match (kind, inquiry) {
        (Some(kind), Some(inquiry)) if problems.is_empty() => Ok((value.to_owned(), kind, inquiry)),
        _ => Err(GatewayError::Invalid(problems)),
    }
}

fn serial_problem() -> FieldProblem {
    FieldProblem {
        field: "serial_number".into(),
        line: 0,
        reason: "enter a serial number".into(),
    }
}

/// Most records one member returns to one analysis query (the nodes' own cap, `MAX_QUERY`):
/// a member that returned this many may hold more, which [`limited_members`] tells.
pub const ANALYSIS_LIMIT: u32 = 1000;

/// The members whose answer reached [`ANALYSIS_LIMIT`], so more of their records may match than
/// the answer holds.
pub fn limited_members(r: &pb::FederatedQueryResponse) -> Vec<String> {
    r.answers
        .iter()
        .filter(|a| a.records.len() >= ANALYSIS_LIMIT as usize)
        .map(|a| a.node_id.clone())
        .collect()
}

/// Route and concealment query across the federation (this node's own records included).
pub async fn analyse(
    app: &App,
    c: Caller<'_>,
    filter: pb::RecordFilter,
    q: Inquiry,
) -> Result<pb::FederatedQueryResponse, GatewayError> {
    c.require(Capability::Analyse)?;
    let inquiry = inquiry(app, q)?;
    let mut r = app
        .node
        .api()
        .federated_query(pb::FederatedQueryRequest {
            inquiry: Some(inquiry),
            filter: Some(filter.clone()),
            limit_per_peer: ANALYSIS_LIMIT,
            include_local: true,
        })
        .await?
        .into_inner();
    if !c.who.can(Capability::ReadRecords) {
        // An analyst may not read records: only what the analysis shows leaves the gateway.
        for a in &mut r.answers {
            for d in &mut a.records {
                *d = analysis_view(std::mem::take(d));
            }
        }
    }
    let target = format!(
        "route {} mode {} concealment {} {}..{}",
        filter.route_country,
        filter.transport_mode,
        filter.concealment_method,
        filter.date_from,
        filter.date_to
    );
    log(app, c, "route query", &target).await?;
    Ok(r)
}

/// What a route and concealment analysis needs of a record, and nothing more: the owner, the
/// date, the route's countries, transport mode, concealment method, the weapon categories (one
/// per firearm, so counts hold), the withheld-field list and the handling codes. Persons, case
/// references, notes, serial numbers, places and every other field are dropped. Callers without
/// the record-read capability (analysts) get only this, whoever owns the record.
pub fn analysis_view(d: pb::DisclosedRecord) -> pb::DisclosedRecord {
    let rec = d.record.unwrap_or_default();
    let t = rec.trafficking.unwrap_or_default();
    pb::DisclosedRecord {
        reference: d.reference.map(|r| pb::RecordRef {
            owner_node: r.owner_node,
            ..Default::default()
        }),
        record: Some(pb::SeizureRecord {
            event: rec.event.map(|e| pb::SeizureEvent {
                date: e.date,
                ..Default::default()
            }),
            firearms: rec
                .firearms
                .into_iter()
                .map(|f| pb::FirearmIdentification {
                    category: f.category,
                    ..Default::default()
                })
                .collect(),
            trafficking: Some(pb::TraffickingFacts {
                route: t
                    .route
                    .into_iter()
                    .map(|p| pb::RoutePoint {
                        country: p.country,
                        point: String::new(),
                    })
                    .collect(),
                transport_mode: t.transport_mode,
                concealment_method: t.concealment_method,
                ..Default::default()
            }),
            ..Default::default()
        }),
        handling: d.handling,
        policy_version: d.policy_version,
        policy_rule: d.policy_rule,
        signature: None,
        redacted_fields: d.redacted_fields,
        hit_only: d.hit_only,
        contact: d.contact,
        // The owner's signed statement holds the whole disclosed view: never in this view.
        owner_disclosure: None,
    }
}

/// Logs an export (e.g. analysis results downloaded as CSV).
pub async fn log_export(app: &App, c: Caller<'_>, what: &str) -> Result<(), GatewayError> {
    log(app, c, "export", what).await
}

/// Trace requests asked of the node per page.
const TRACE_PAGE: u32 = 500;
/// Most trace requests the console reads for one list (oldest first).
const MAX_TRACES: usize = 20_000;
/// Received copies asked of the node per page.
const RECEIVED_PAGE: u32 = 500;
/// Most received copies the console reads for one list.
const MAX_RECEIVED: usize = 20_000;

/// Copies of other members' records this node received, each with its owner's handling codes
/// and `expires_at` (when the node purges it under the owner's retention; 0: no limit stated).
/// The node pages its list; the pages are followed up to a bound on what the console holds.
pub async fn received(app: &App, c: Caller<'_>) -> Result<Vec<pb::ReceivedRecord>, GatewayError> {
    c.require(Capability::Lookup)?;
    let mut records = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = app
            .node
            .api()
            .list_received(pb::ListReceivedRequest {
                page_size: RECEIVED_PAGE,
                page_token,
            })
            .await?
            .into_inner();
        records.extend(page.records);
        if page.next_page_token.is_empty() || records.len() >= MAX_RECEIVED {
            break;
        }
        page_token = page.next_page_token;
    }
    log(app, c, "received records", &records.len().to_string()).await?;
    Ok(records)
}

/// Trace requests, `outgoing`, `incoming` or both (empty).
pub async fn traces(
    app: &App,
    c: Caller<'_>,
    direction: &str,
) -> Result<Vec<pb::TraceRecord>, GatewayError> {
    c.require(Capability::Trace)?;
    if !matches!(direction, "" | "outgoing" | "incoming") {
        return Err(GatewayError::BadRequest(
            "direction must be outgoing or incoming".into(),
        ));
    }
    // The node pages its list; follow the pages, up to a bound on what the console holds.
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = app
            .node
            .api()
            .list_trace_requests(pb::ListTraceRequestsRequest {
                direction: direction.to_owned(),
                page_size: TRACE_PAGE,
                page_token,
            })
            .await?
            .into_inner();
        all.extend(page.traces);
        if page.next_page_token.is_empty() || all.len() >= MAX_TRACES {
            return Ok(all);
        }
        page_token = page.next_page_token;
    }
}

/// One trace request with its history (logged as viewed).
pub async fn trace(app: &App, c: Caller<'_>, id: &str) -> Result<pb::TraceRecord, GatewayError> {
    let all = traces(app, c, "").await?;
    let t = all
        .into_iter()
        .find(|t| t.request.as_ref().is_some_and(|r| r.id == id))
        .ok_or_else(|| GatewayError::NotFound(format!("trace request {id}")))?;
    log(app, c, "view trace request", id).await?;
    Ok(t)
}

/// Sends a trace request.
pub async fn send_trace(
    app: &App,
    c: Caller<'_>,
    req: pb::SendTraceRequestRequest,
) -> Result<pb::TraceRecord, GatewayError> {
    c.require(Capability::Trace)?;
    let t = app.node.api().send_trace_request(req).await?.into_inner();
    let id = t.request.as_ref().map(|r| r.id.clone()).unwrap_or_default();
    log(app, c, "send trace request", &id).await?;
    Ok(t)
}

/// Answers, restricts or declines an incoming trace request.
pub async fn answer_trace(
    app: &App,
    c: Caller<'_>,
    req: pb::AnswerTraceRequestRequest,
) -> Result<pb::TraceRecord, GatewayError> {
    c.require(Capability::Trace)?;
    let id = req.request_id.clone();
    let t = app.node.api().answer_trace_request(req).await?.into_inner();
    log(app, c, "answer trace request", &id).await?;
    Ok(t)
}

/// Sends the information the responder of one of this node's trace requests asked for.
pub async fn provide_information(
    app: &App,
    c: Caller<'_>,
    req: pb::ProvideTraceInformationRequest,
) -> Result<pb::TraceRecord, GatewayError> {
    c.require(Capability::Trace)?;
    let id = req.request_id.clone();
    let t = app
        .node
        .api()
        .provide_trace_information(req)
        .await?
        .into_inner();
    log(app, c, "provide trace information", &id).await?;
    Ok(t)
}

/// The directory as the node's replica holds it, read page by page (each page is bounded by the
/// node, so a large directory never exceeds the message limit).
pub async fn directory(app: &App, c: Caller<'_>) -> Result<pb::DirectoryView, GatewayError> {
    c.require(Capability::ReadDirectory)?;
    let mut page_after = String::new();
    let mut whole: Option<pb::DirectoryView> = None;
    loop {
        let page = app
            .node
            .api()
            .get_directory(pb::GetDirectoryRequest {
                linearizable: false,
                page_after: page_after.clone(),
                page_size: 0,
            })
            .await?
            .into_inner();
        let next = page.next_page_after.clone();
        match &mut whole {
            None => whole = Some(page),
            Some(w) => {
                let into = w.state.get_or_insert_default();
                let from = page.state.unwrap_or_default();
                into.members.extend(from.members);
                into.entries.extend(from.entries);
                into.proofs.extend(from.proofs);
                into.revocations = from.revocations;
                into.assistance_matches = from.assistance_matches;
            }
        }
        // Node ids only grow from page to page; anything else would loop.
        if next.is_empty() || next <= page_after {
            break;
        }
        page_after = next;
    }
    let mut whole = whole.unwrap_or_default();
    whole.next_page_after.clear();
    Ok(whole)
}

/// Publishes this node's contact points in the directory.
pub async fn publish_contacts(
    app: &App,
    c: Caller<'_>,
    contacts: Vec<pb::ContactPoint>,
) -> Result<(), GatewayError> {
    c.require(Capability::Administer)?;
    let r = app
        .node
        .api()
        .propose_directory(pb::ProposeDirectoryRequest {
            command: Some(pb::DirectoryCommand {
                op: Some(pb::directory_command::Op::PublishContacts(
                    pb::ContactPoints { contacts },
                )),
                ..Default::default()
            }),
        })
        .await?
        .into_inner();
    if !r.applied {
        return Err(GatewayError::Conflict(r.refusal));
    }
    log(app, c, "publish contact points", app.node_id()).await
}

/// The assistance board as this node may see it (the node applies who sees what: its own
/// entries whole, the rest as their authors made public, whole for the secretariat and a
/// region's hub).
pub async fn assistance_board(
    app: &App,
    c: Caller<'_>,
) -> Result<pb::AssistanceBoardResponse, GatewayError> {
    c.require(Capability::ReadDirectory)?;
    Ok(app
        .node
        .api()
        .assistance_board(pb::AssistanceBoardRequest {})
        .await?
        .into_inner())
}

/// Proposes an assistance command written by this node (a need, offer or expert entry, a
/// proposal, a step of a match), logged with `what` and `target`.
pub async fn assistance_write(
    app: &App,
    c: Caller<'_>,
    op: pb::directory_command::Op,
    what: &str,
    target: &str,
) -> Result<(), GatewayError> {
    c.require(Capability::Administer)?;
    let r = app
        .node
        .api()
        .propose_directory(pb::ProposeDirectoryRequest {
            command: Some(pb::DirectoryCommand {
                op: Some(op),
                ..Default::default()
            }),
        })
        .await?
        .into_inner();
    if !r.applied {
        return Err(GatewayError::Conflict(r.refusal));
    }
    log(app, c, what, target).await
}

/// What a member asking for a purpose would receive of one record.
pub async fn preview(
    app: &App,
    c: Caller<'_>,
    req: pb::PreviewDisclosureRequest,
) -> Result<pb::PreviewDisclosureResponse, GatewayError> {
    c.require(Capability::Administer)?;
    let target = format!("{} for {}", req.record_id, req.requester_node);
    let r = app.node.api().preview_disclosure(req).await?.into_inner();
    log(app, c, "policy preview", &target).await?;
    Ok(r)
}

/// The node's audit entries (logged as viewed).
pub async fn audit(
    app: &App,
    c: Caller<'_>,
    req: pb::ListAuditRequest,
) -> Result<Vec<pb::AuditEntry>, GatewayError> {
    c.require(Capability::Administer)?;
    let target = format!(
        "kind={} peer={} after={}",
        req.kind, req.peer, req.after_seq
    );
    let r = app.node.api().list_audit(req).await?.into_inner();
    log(app, c, "view audit", &target).await?;
    Ok(r.entries)
}

/// Most years in one SDG 16.4.2 series (the node's own cap).
pub const STATISTICS_MAX_YEARS: u32 = 50;

/// Statistical tables of a period: this node's own (with the SDG 16.4.2 series when
/// `series_from` is set), or a peer's under its statistics rule (`peer_node`). Aggregates only:
/// the analyst capability suffices.
pub async fn statistics(
    app: &App,
    c: Caller<'_>,
    req: pb::StatisticsLocalRequest,
) -> Result<pb::StatisticsLocalResponse, GatewayError> {
    c.require(Capability::Analyse)?;
    let target = format!(
        "year {} quarter {} peer {} series_from {}",
        req.year,
        req.quarter,
        if req.peer_node.is_empty() {
            "-"
        } else {
            &req.peer_node
        },
        req.series_from
    );
    let r = app.node.api().statistics_tables(req).await?.into_inner();
    log(app, c, "statistics", &target).await?;
    Ok(r)
}

/// The node's summary (for the dashboard).
pub async fn node_info(app: &App) -> Result<pb::NodeInfo, GatewayError> {
    Ok(app
        .node
        .api()
        .get_node_info(pb::GetNodeInfoRequest {})
        .await?
        .into_inner())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn analysis_view_keeps_routes_and_drops_persons_references_and_notes() {
        let full = pb::DisclosedRecord {
            reference: Some(pb::RecordRef {
                owner_node: "FRA-POL".into(),
                reference: "secret-ref".into(),
            }),
            record: Some(pb::SeizureRecord {
                national_ref: "FR-2025-1".into(),
                event: Some(pb::SeizureEvent {
                    date: "2025-06-01".into(),
                    place: Some(pb::Place {
                        locality: "Synthetic town".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                persons: vec![pb::Person {
                    name: "Synthetic Person".into(),
                    ..Default::default()
                }],
                firearms: vec![pb::FirearmIdentification {
                    serial_number: "SN-1".into(),
                    category: 1,
                    ..Default::default()
                }],
                trafficking: Some(pb::TraffickingFacts {
                    route: vec![pb::RoutePoint {
                        country: "TUR".into(),
                        point: "a farm".into(),
                    }],
                    transport_mode: pb::TransportMode::Road as i32,
                    concealment_method: pb::ConcealmentMethod::MixedWithCargo as i32,
                    concealment_details: "under the seat".into(),
                    ..Default::default()
                }),
                case_reference: "CASE-1".into(),
                notes: "informant said".into(),
                ..Default::default()
            }),
            redacted_fields: vec!["persons".into()],
            ..Default::default()
        };
        let v = analysis_view(full);
        let rec = v.record.clone().unwrap();
        assert!(rec.persons.is_empty() && rec.case_reference.is_empty() && rec.notes.is_empty());
        assert!(rec.national_ref.is_empty());
        assert_eq!(rec.event.clone().unwrap().date, "2025-06-01");
        assert!(rec.event.unwrap().place.is_none());
        assert_eq!(rec.firearms.len(), 1);
        assert!(rec.firearms[0].serial_number.is_empty());
        assert_eq!(rec.firearms[0].category, 1);
        let t = rec.trafficking.unwrap();
        assert_eq!(t.route[0].country, "TUR");
        assert!(t.route[0].point.is_empty() && t.concealment_details.is_empty());
        assert_eq!(t.transport_mode, pb::TransportMode::Road as i32);
        let r = v.reference.unwrap();
        assert_eq!(
            (r.owner_node.as_str(), r.reference.as_str()),
            ("FRA-POL", "")
        );
        assert_eq!(v.redacted_fields, vec!["persons".to_owned()]);
    }

    #[test]
    fn purposes_are_read_by_short_or_full_name() {
        assert_eq!(purpose_number("tracing"), pb::Purpose::Tracing as i32);
        assert_eq!(
            purpose_number("PURPOSE_BORDER_RISK_ANALYSIS"),
            pb::Purpose::BorderRiskAnalysis as i32
        );
        assert_eq!(
            purpose_number(" criminal_investigation "),
            pb::Purpose::CriminalInvestigation as i32
        );
        assert_eq!(purpose_number("gossip"), 0);
        assert_eq!(purpose_number(""), 0);
    }
}

/// A serial number put on watch, as the console form or the JSON API states it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchInput {
    /// What `serial_number` is, as a lookup names it (`serial`, `ballistic_reference`,
    /// `headstamp`, `ammunition_lot`, `shipment_id`; empty: serial).
    pub kind: String,
    /// The serial number as marked, or the value of the kind (matched like a lookup).
    pub serial_number: String,
    /// The manufacturer, to narrow the match.
    pub manufacturer: String,
    /// The purpose the scheduled lookups state, `tracing` or `PURPOSE_TRACING`.
    pub purpose: String,
    /// The legal basis they state.
    pub legal_basis: String,
    /// The case reference.
    pub case_reference: String,
    /// A note for colleagues.
    pub note: String,
}

/// Puts a serial number on the node's watch list. Every missing input is reported at once.
pub async fn add_watch(
    app: &App,
    c: Caller<'_>,
    input: &WatchInput,
) -> Result<pb::WatchEntry, GatewayError> {
    c.require(Capability::Lookup)?;
    let (serial, kind, inquiry) = checked_lookup(
        app,
        &input.serial_number,
        &input.kind,
        Inquiry::stated(&input.purpose, &input.legal_basis, &input.case_reference),
    )?;
    let entry = app
        .node
        .api()
        .add_watch(pb::AddWatchRequest {
            // A watch kind has the number of the lookup kind it re-runs.
            kind: kind as i32,
            value: serial,
            manufacturer: input.manufacturer.trim().to_owned(),
            inquiry: Some(inquiry),
            created_by: c.who.name.clone(),
            note: input.note.trim().to_owned(),
        })
        .await?
        .into_inner();
    log(app, c, "add watch", &entry.id).await?;
    Ok(entry)
}

/// The node's watch list.
pub async fn watches(app: &App, c: Caller<'_>) -> Result<Vec<pb::WatchEntry>, GatewayError> {
    c.require(Capability::Lookup)?;
    Ok(app
        .node
        .api()
        .list_watches(pb::ListWatchesRequest {})
        .await?
        .into_inner()
        .watches)
}

/// Takes a value off the watch list.
pub async fn remove_watch(app: &App, c: Caller<'_>, id: &str) -> Result<(), GatewayError> {
    c.require(Capability::Lookup)?;
    app.node
        .api()
        .remove_watch(pb::RemoveWatchRequest { id: id.to_owned() })
        .await?;
    log(app, c, "remove watch", id).await?;
    Ok(())
}

/// Watch-list alerts, newest first (only those not yet acknowledged, if asked).
pub async fn watch_alerts(
    app: &App,
    c: Caller<'_>,
    unacknowledged_only: bool,
) -> Result<pb::ListWatchAlertsResponse, GatewayError> {
    c.require(Capability::Lookup)?;
    Ok(app
        .node
        .api()
        .list_watch_alerts(pb::ListWatchAlertsRequest {
            unacknowledged_only,
            limit: 0,
        })
        .await?
        .into_inner())
}

/// Acknowledges a watch-list alert in the caller's name.
pub async fn acknowledge_alert(
    app: &App,
    c: Caller<'_>,
    id: &str,
) -> Result<pb::WatchAlert, GatewayError> {
    c.require(Capability::Lookup)?;
    let a = app
        .node
        .api()
        .acknowledge_watch_alert(pb::AcknowledgeWatchAlertRequest {
            id: id.to_owned(),
            acknowledged_by: c.who.name.clone(),
        })
        .await?
        .into_inner();
    log(app, c, "acknowledge watch alert", id).await?;
    Ok(a)
}
