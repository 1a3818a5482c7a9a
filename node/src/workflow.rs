//! This node's side of the trace workflow and of retraction, as its users drive them through the
//! local API: send a trace request, answer an incoming one (by hand or automatically from the
//! node's own records), withdraw a shared record, pass a received record on.
//!
//! Each operation is a pure decision and a thin driver. The decisions (`decide_*`, `check_*`)
//! take the request, the roster view (peers, their trace settings, the policy in force), what
//! the driver read, and the time, and return the change to make: the trace record or response,
//! the outbox items to queue and the audit event. The drivers read, then `commit` appends the
//! audit event, writes the change and its deliveries in one durable ledger step (see
//! [`crate::ledger`]), and only then wakes the outbox worker and answers: nothing is queued for
//! delivery before it is audited (finding L2).

use std::collections::HashSet;

use tracenet_proto::v1 as pb;

use crate::audit::{Event, EventKind};
use crate::context::NodeContext;
use crate::country::CountryCode;
use crate::ids::{NodeId, RecordId, new_request_id};
use crate::ledger::LedgerError;
use crate::model::FieldError;
use crate::policy::matching::{self, Criteria, Selection};
use crate::policy::{self, Policy, Requester};
use crate::roster::RosterView;
use crate::store::{IndexQuery, StoreError};
use crate::trace::{self, TraceDirection};

/// Why a workflow step was refused.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// Input failed validation. Not retryable as is.
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    /// No known node serves the requested country. Not retryable until one is configured.
    #[error("no node is known for {0}")]
    NoNode(String),
    /// The requested State has designated no tracing node (for this weapon category) and no
    /// target node was chosen. Not retryable as is: choose one of `nodes` as the target node
    /// (or wait for the State to publish a designation).
    #[error(
        "{state} has designated no node to receive trace requests; choose one of its nodes as target_node: {}",
        nodes.join(", ")
    )]
    NoDesignation {
        /// The requested State.
        state: String,
        /// Its active nodes, in id order.
        nodes: Vec<String>,
    },
    /// The sharing policy does not allow this. Not retryable as is.
    #[error("{0}")]
    Policy(String),
    /// The ledger refused or failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The record store failed or has no such record.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit log failed; the step happened but was not audited. Retrying may help.
    #[error("audit log: {0}")]
    Audit(String),
}

fn field(field: &str, reason: &str) -> FieldError {
    FieldError {
        field: field.into(),
        reason: reason.into(),
    }
}

fn invalid(name: &str, reason: &str) -> WorkflowError {
    WorkflowError::Invalid(vec![field(name, reason)])
}

fn text_ok(s: &str, max: usize) -> bool {
    s.chars().count() <= max && !s.chars().any(|c| c.is_control() && c != '\n')
}

/// How a peer asking about traces is seen by the policy: its State or organisation (from its
/// node id), its member kind, regions and the agency kind the directory lists for it (none when
/// it lists none), purpose tracing.
fn trace_requester(roster: &RosterView, node: &NodeId) -> Requester {
    Requester {
        affiliation: node.affiliation().clone(),
        member_kind: roster.member_kind(node),
        regions: roster
            .peers
            .get(node)
            .map(|p| p.regions.clone())
            .unwrap_or_default(),
        agency_kind: roster
            .agency_kinds
            .get(node)
            .copied()
            .unwrap_or(pb::AgencyKind::Unspecified),
        purpose: pb::Purpose::Tracing,
    }
}

/// The node that sent an incoming trace request.
fn counterpart(existing: &pb::TraceRecord) -> Result<NodeId, WorkflowError> {
    NodeId::parse(&existing.counterpart_node).map_err(|e| WorkflowError::Policy(e.to_string()))
}

fn tracing_event(kind: EventKind, peer: &NodeId, request_id: &str, detail: String) -> Event {
    Event {
        peer: peer.to_string(),
        request_id: request_id.to_owned(),
        purpose: pb::Purpose::Tracing.as_str_name().into(),
        detail,
        ..Event::new(kind)
    }
}

// ---- sending a trace request ----

/// A trace request to send: the record to keep, its delivery, and its audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingTrace {
    /// The outgoing trace record.
    pub record: pb::TraceRecord,
    /// Its delivery.
    pub item: pb::OutboxItem,
    /// What to audit.
    pub event: Event,
}

/// Most items one trace request holds.
pub const MAX_ITEMS: usize = crate::limits::MAX_TRACE_ITEMS;

/// The items of a request as sent: `firearm` (the field older clients fill) first, then
/// `items` as given (an empty one is refused by [`check_items`], never dropped silently).
pub fn trace_items(
    firearm: Option<pb::FirearmIdentification>,
    items: Vec<pb::TraceItem>,
) -> Vec<pb::TraceItem> {
    firearm
        .map(|f| pb::TraceItem {
            item: Some(pb::trace_item::Item::Firearm(f)),
        })
        .into_iter()
        .chain(items)
        .collect()
}

/// The items of a request as received: its `items`, or (from a node that predates them) its
/// one `firearm`.
pub fn items_of(req: &pb::TraceRequest) -> Vec<pb::TraceItem> {
    if req.items.is_empty() {
        trace_items(req.firearm.clone(), Vec::new())
    } else {
        req.items.clone()
    }
}

/// The first firearm among `items` (what `TraceRequest.firearm` carries for older nodes, and
/// what routing by weapon category and automatic answers use).
pub fn first_firearm(items: &[pb::TraceItem]) -> Option<pb::FirearmIdentification> {
    items.iter().find_map(|i| match &i.item {
        Some(pb::trace_item::Item::Firearm(f)) => Some(f.clone()),
        _ => None,
    })
}

/// Checks every item, each problem under its field (`items[i].firearm.model`, ...). A firearm
/// is identified by its serial number, or, when the marking is obliterated, by what else is
/// known (manufacturer, model, category or other markings), or by a manufacturer and a model;
/// an ammunition lot by its calibre or manufacturer; a part by its kind.
pub fn check_items(items: &[pb::TraceItem], errors: &mut Vec<FieldError>) {
    if items.is_empty() {
        errors.push(field(
            "items",
            "name at least one firearm, ammunition lot or part",
        ));
    }
    if items.len() > MAX_ITEMS {
        errors.push(field("items", &format!("at most {MAX_ITEMS} items")));
    }
    let long = "is longer than 200 characters or has control characters";
    for (i, item) in items.iter().take(MAX_ITEMS).enumerate() {
        let p = |n: &str| format!("items[{i}].{n}");
        match &item.item {
            Some(pb::trace_item::Item::Firearm(f)) => {
                let obliterated = matches!(
                    pb::MarkingCondition::try_from(f.marking_condition),
                    Ok(pb::MarkingCondition::Obliterated | pb::MarkingCondition::PartlyObliterated)
                );
                let described = !f.manufacturer.trim().is_empty()
                    || !f.model.trim().is_empty()
                    || f.category != 0
                    || !f.other_markings.is_empty();
                if f.serial_number.trim().is_empty()
                    && !(obliterated && described)
                    && (f.manufacturer.trim().is_empty() || f.model.trim().is_empty())
                {
                    errors.push(field(
                        &p("firearm"),
                        "needs a serial number, or a manufacturer and a model, or (marking obliterated) what else is known of it",
                    ));
                }
                for (name, value) in [
                    ("serial_number", &f.serial_number),
                    ("manufacturer", &f.manufacturer),
                    ("model", &f.model),
                    ("calibre", &f.calibre),
                ] {
                    if !text_ok(value, 200) {
                        errors.push(field(&p(&format!("firearm.{name}")), long));
                    }
                }
                if !f.country_of_manufacture.is_empty()
                    && CountryCode::parse(&f.country_of_manufacture).is_err()
                {
                    errors.push(field(
                        &p("firearm.country_of_manufacture"),
                        "is not an ISO 3166 alpha-3 code",
                    ));
                }
                if let Some(m) = &f.import_marking
                    && !m.country.is_empty()
                    && CountryCode::parse(&m.country).is_err()
                {
                    errors.push(field(
                        &p("firearm.import_marking.country"),
                        "is not an ISO 3166 alpha-3 code",
                    ));
                }
                if f.other_markings.len() > crate::limits::MAX_MARKINGS {
                    errors.push(field(&p("firearm.other_markings"), "too many markings"));
                }
                for (j, m) in f.other_markings.iter().enumerate() {
                    if !text_ok(&m.text, 200) || !text_ok(&m.location, 200) {
                        errors.push(field(&p(&format!("firearm.other_markings[{j}]")), long));
                    }
                }
            }
            Some(pb::trace_item::Item::Ammunition(a)) => {
                if a.calibre.trim().is_empty() && a.manufacturer.trim().is_empty() {
                    errors.push(field(&p("ammunition"), "needs a calibre or a manufacturer"));
                }
                if !text_ok(&a.calibre, 200) || !text_ok(&a.manufacturer, 200) {
                    errors.push(field(&p("ammunition"), long));
                }
            }
            Some(pb::trace_item::Item::Part(part)) => {
                if part.kind.trim().is_empty() {
                    errors.push(field(&p("part.kind"), "is required"));
                }
                if !text_ok(&part.kind, 200) || !text_ok(&part.serial_number, 200) {
                    errors.push(field(&p("part"), long));
                }
            }
            None => errors.push(field(&format!("items[{i}]"), "is empty")),
        }
    }
}

/// Checks a trace request from this node (`me`) and plans it: to the node the requested State
/// designates for the weapon's category, or the target node chosen (which must be that State's),
/// due by that node's published response times, under the id `request_id`, created `now`.
/// Never to a node picked by the sender's own ordering: without a designation or a choice, the
/// request is refused with the list of that State's nodes.
pub fn decide_send(
    me: &NodeId,
    roster: &RosterView,
    req: pb::SendTraceRequestRequest,
    request_id: String,
    now: i64,
) -> Result<OutgoingTrace, WorkflowError> {
    let mut errors = Vec::new();
    let country = CountryCode::parse(&req.requested_country);
    match &country {
        Err(e) => errors.push(field("requested_country", &e.to_string())),
        Ok(c) if me.is_of_state(*c) => {
            errors.push(field("requested_country", "is this node's own country"))
        }
        Ok(_) => {}
    }
    let items = trace_items(req.firearm.clone(), req.items.clone());
    check_items(&items, &mut errors);
    for (name, value) in [
        ("case_reference", &req.case_reference),
        ("legal_basis", &req.legal_basis),
    ] {
        if !text_ok(value, 200) {
            errors.push(field(
                name,
                "is longer than 200 characters or has control characters",
            ));
        }
    }
    if !req.seizure_record_id.is_empty() && RecordId::parse(&req.seizure_record_id).is_err() {
        errors.push(field("seizure_record_id", "is not a record id"));
    }
    if req.follows_on.len() > crate::limits::MAX_ID {
        errors.push(field("follows_on", "is not a trace request id"));
    }
    if req.reason.trim().is_empty() || !text_ok(&req.reason, 2000) {
        errors.push(field("reason", "is required (at most 2000 characters)"));
    }
    let urgency = pb::Urgency::try_from(req.urgency).unwrap_or(pb::Urgency::Unspecified);
    if req.urgency != 0 && urgency == pb::Urgency::Unspecified {
        errors.push(field("urgency", "unknown value"));
    }
    let chosen = match req.target_node.trim() {
        "" => None,
        t => match (NodeId::parse(t), &country) {
            (Err(e), _) => {
                errors.push(field("target_node", &e.to_string()));
                None
            }
            (Ok(n), Ok(c)) if !n.is_of_state(*c) => {
                errors.push(field("target_node", &format!("is not a node of {c}")));
                None
            }
            (Ok(n), _) => Some(n),
        },
    };
    if !errors.is_empty() {
        return Err(WorkflowError::Invalid(errors));
    }
    let country = country.map_err(|e| WorkflowError::NoNode(e.to_string()))?;
    let firearm = first_firearm(&items);
    let category = firearm
        .as_ref()
        .and_then(|f| pb::WeaponCategory::try_from(f.category).ok())
        .unwrap_or(pb::WeaponCategory::Unspecified);
    let target = route_trace(roster, country, category, chosen.as_ref())?;
    let settings = &roster
        .peers
        .get(&target)
        .ok_or_else(|| WorkflowError::NoNode(target.to_string()))?
        .trace;
    let target = &target;
    let request = pb::TraceRequest {
        id: request_id,
        requester_node: me.to_string(),
        requested_country: country.to_string(),
        firearm,
        items,
        follows_on: req.follows_on.clone(),
        reason: req.reason.trim().to_owned(),
        legal_basis: req.legal_basis,
        urgency: if urgency == pb::Urgency::Unspecified {
            pb::Urgency::Routine as i32
        } else {
            urgency as i32
        },
        case_reference: req.case_reference,
        created_at: now,
        due_at: trace::due_at(now, urgency, settings),
    };
    let mut record = trace::new_record(
        request.clone(),
        TraceDirection::Outgoing,
        target,
        &settings.escalation_contact,
        pb::TraceStatusChange {
            status: pb::TraceStatus::Sent as i32,
            at: now,
            note: format!("queued for {target}"),
        },
    );
    record.seizure_record_id = req.seizure_record_id;
    let event = tracing_event(
        EventKind::TraceRequestSent,
        target,
        &request.id,
        format!("trace request to {country}"),
    );
    let item = pb::OutboxItem {
        id: format!("treq:{}", request.id),
        target_node: target.to_string(),
        payload: Some(pb::outbox_item::Payload::TraceRequest(request)),
        created_at: now,
        ..Default::default()
    };
    Ok(OutgoingTrace {
        record,
        item,
        event,
    })
}

/// The node a trace request to State `state` about a weapon of `category` goes to: the target
/// chosen (an active peer of that State), else the node the State designates in the directory,
/// else refused with the list of its nodes. Never the first in some order.
pub fn route_trace(
    roster: &RosterView,
    state: CountryCode,
    category: pb::WeaponCategory,
    chosen: Option<&NodeId>,
) -> Result<NodeId, WorkflowError> {
    let nodes = roster.nodes_of_state(state);
    if let Some(n) = chosen {
        if nodes.contains(n) {
            return Ok(n.clone());
        }
        return Err(invalid(
            "target_node",
            &format!("{n} is not an active node of {state}"),
        ));
    }
    match roster.designated_tracing_node(state, category) {
        Some(n) if nodes.contains(n) => Ok(n.clone()),
        _ if nodes.is_empty() => Err(WorkflowError::NoNode(state.to_string())),
        _ => Err(WorkflowError::NoDesignation {
            state: state.to_string(),
            nodes: nodes.iter().map(ToString::to_string).collect(),
        }),
    }
}

// ---- answering a trace request ----

/// Checks an answer's own fields (before anything is read): its outcome and remarks.
pub fn check_answer(req: &pb::AnswerTraceRequestRequest) -> Result<pb::TraceStatus, WorkflowError> {
    let outcome = pb::TraceStatus::try_from(req.outcome).unwrap_or(pb::TraceStatus::Unspecified);
    let mut errors = Vec::new();
    if !trace::is_final(outcome) && !trace::is_interim(outcome) {
        errors.push(field(
            "outcome",
            "must be TRACE_STATUS_ANSWERED, TRACE_STATUS_RESTRICTED, TRACE_STATUS_DECLINED, TRACE_STATUS_PARTIALLY_ANSWERED or TRACE_STATUS_MORE_INFORMATION_REQUESTED",
        ));
    }
    if !text_ok(&req.remarks, 2000) {
        errors.push(field("remarks", "is too long"));
    }
    if outcome == pb::TraceStatus::MoreInformationRequested && req.remarks.trim().is_empty() {
        errors.push(field("remarks", "say what information is needed"));
    }
    if !req.next_country.is_empty() && CountryCode::parse(&req.next_country).is_err() {
        errors.push(field("next_country", "is not an ISO 3166 alpha-3 code"));
    }
    if errors.is_empty() {
        Ok(outcome)
    } else {
        Err(WorkflowError::Invalid(errors))
    }
}

/// A trace response to send: the response, its delivery, and its audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceAnswer {
    /// The response.
    pub response: pb::TraceResponse,
    /// Its delivery to the requester.
    pub item: pb::OutboxItem,
    /// What to audit: a disclosure when answered, a trace response otherwise.
    pub event: Event,
}

/// Answers, restricts or declines the incoming request `existing` as `me`. Answering needs a
/// policy rule sharing trace results with the requester; its handling codes go with the
/// response (the strictest codes when no rule applies). A chain of custody is sent only with
/// an answer.
pub fn decide_answer(
    me: &NodeId,
    roster: &RosterView,
    existing: &pb::TraceRecord,
    req: pb::AnswerTraceRequestRequest,
    outcome: pb::TraceStatus,
    now: i64,
) -> Result<TraceAnswer, WorkflowError> {
    let requester_node = counterpart(existing)?;
    // Interim messages stop one short of what a requester accepts, leaving room for the final.
    if trace::is_interim(outcome)
        && trace::next_part(existing, outcome) >= crate::limits::MAX_TRACE_MESSAGES
    {
        return Err(invalid(
            "outcome",
            "this request has had as many messages as a requester accepts: answer in full, restrict or decline",
        ));
    }
    let requester = trace_requester(roster, &requester_node);
    let grant = policy::grant(&roster.policy, &requester, pb::DataClass::TraceResult);
    // A partial answer discloses trace results as a full one does.
    let answered = matches!(
        outcome,
        pb::TraceStatus::Answered | pb::TraceStatus::PartiallyAnswered
    );
    if answered && grant.is_none() {
        return Err(WorkflowError::Policy(format!(
            "sharing policy v{} shares no trace results with {}: restrict or decline instead",
            roster.policy.version(),
            requester.affiliation
        )));
    }
    let handling = grant.as_ref().map_or_else(
        || pb::Handling {
            purpose_bound: true,
            no_court_use_without_consent: true,
            no_onward_without_consent: true,
            ..Default::default()
        },
        |g| g.handling.clone(),
    );
    let response = pb::TraceResponse {
        request_id: req.request_id.clone(),
        responder_node: me.to_string(),
        outcome: outcome as i32,
        chain_of_custody: if answered {
            req.chain_of_custody
        } else {
            Vec::new()
        },
        remarks: req.remarks,
        handling: Some(handling),
        answered_at: now,
        part: trace::next_part(existing, outcome),
        next_country: if answered {
            req.next_country
        } else {
            String::new()
        },
    };
    let event = Event {
        policy_version: grant
            .as_ref()
            .map_or(roster.policy.version(), |g| g.policy_version),
        policy_rule: grant.map(|g| g.rule_id).unwrap_or_default(),
        ..tracing_event(
            if answered {
                EventKind::Disclosure
            } else {
                EventKind::TraceResponse
            },
            &requester_node,
            &req.request_id,
            format!("trace response: {}", outcome.as_str_name()),
        )
    };
    // One delivery per message: the id (the idempotency key) names the part.
    let delivery_id = match response.part {
        0 => format!("tresp:{}", req.request_id),
        n => format!("tresp:{}:{n}", req.request_id),
    };
    let item = pb::OutboxItem {
        id: delivery_id,
        target_node: requester_node.to_string(),
        payload: Some(pb::outbox_item::Payload::TraceResponse(response.clone())),
        created_at: now,
        ..Default::default()
    };
    Ok(TraceAnswer {
        response,
        item,
        event,
    })
}

/// What an automatic answer searches this node's records for, and for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// The requested serial (never partial) and manufacturer.
    pub criteria: Criteria,
    /// The requester as the policy sees it (purpose tracing).
    pub requester: Requester,
}

/// Most records an automatic answer reads.
pub const AUTO_ANSWER_RECORDS: usize = 5;

/// Whether the incoming request `existing` may be answered automatically, and if so what to
/// search for: it is still open, the policy shares trace results with the requester, and it
/// names a complete serial number (a partial one is left for an officer: an automatic answer
/// must not become a wildcard lookup).
pub fn auto_answer_search(
    roster: &RosterView,
    existing: &pb::TraceRecord,
) -> Result<Option<Search>, WorkflowError> {
    let status = pb::TraceStatus::try_from(existing.status).unwrap_or(pb::TraceStatus::Unspecified);
    if trace::is_final(status) {
        return Ok(None);
    }
    let requester = trace_requester(roster, &counterpart(existing)?);
    if policy::grant(&roster.policy, &requester, pb::DataClass::TraceResult).is_none() {
        return Ok(None);
    }
    let firearm = existing
        .request
        .as_ref()
        .and_then(|r| r.firearm.clone())
        .unwrap_or_default();
    Ok(
        Criteria::serial(&firearm.serial_number, &firearm.manufacturer)
            .filter(|c| !matches!(c, Criteria::Serial { wanted, .. } if wanted.has_wildcards()))
            .map(|criteria| Search {
                criteria,
                requester,
            }),
    )
}

/// The automatic answer to `request_id` from the records found for `search`: for each record
/// not withdrawn that the seizure rule for this requester lets match (on its disclosed view,
/// as a lookup by the same requester would), where and when it was recorded as seized, at the
/// precision that rule discloses; none when no record qualifies.
pub fn auto_answer_reply(
    request_id: &str,
    policy: &Policy,
    search: &Search,
    found: Vec<pb::SeizureRecord>,
    withdrawn: &HashSet<String>,
) -> Option<pb::AnswerTraceRequestRequest> {
    let chain: Vec<pb::CustodyLink> = found
        .into_iter()
        .filter(|r| !withdrawn.contains(&r.id))
        .filter_map(|r| {
            match matching::select(
                policy,
                &search.requester,
                pb::DataClass::Seizure,
                &search.criteria,
                &r,
            ) {
                Selection::Hit(d) => Some(*d),
                Selection::Miss | Selection::Denied(_) => None,
            }
        })
        .map(|d| {
            let ev = d.view.event.unwrap_or_default();
            let place = ev.place.unwrap_or_default();
            pb::CustodyLink {
                role: "seized_by_authorities".into(),
                name: String::new(),
                country: place.country,
                date: ev.date,
                details: if d.hit_only {
                    "held in the national seizure records; ask for details".into()
                } else {
                    "recorded in the national seizure records".into()
                },
            }
        })
        .collect();
    (!chain.is_empty()).then(|| pb::AnswerTraceRequestRequest {
        request_id: request_id.to_owned(),
        outcome: pb::TraceStatus::Answered as i32,
        chain_of_custody: chain,
        remarks: "Answered automatically from national seizure records".into(),
        ..Default::default()
    })
}

// ---- retraction and onward transmission ----

/// The record a retraction names.
pub fn check_retract(id: &str) -> Result<RecordId, WorkflowError> {
    RecordId::parse(id.trim()).map_err(|e| invalid("id", &e.to_string()))
}

/// A withdrawal: one retraction per peer that received the record, and its audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct Retraction {
    /// One delivery per recipient.
    pub items: Vec<pb::OutboxItem>,
    /// What to audit.
    pub event: Event,
}

/// Withdraws our record `id` (owned by `me`) and tells every peer in `recipients`.
pub fn decide_retract(me: &NodeId, id: RecordId, recipients: &[String], now: i64) -> Retraction {
    let id_text = id.to_string();
    let items = recipients
        .iter()
        .map(|peer| pb::OutboxItem {
            id: format!("retract:{id_text}:{peer}"),
            target_node: peer.clone(),
            payload: Some(pb::outbox_item::Payload::Retract(pb::RecordRef {
                owner_node: me.to_string(),
                reference: id_text.clone(),
            })),
            created_at: now,
            ..Default::default()
        })
        .collect();
    let event = Event {
        peer: recipients.join(","),
        detail: format!(
            "record withdrawn; {} recipient(s) notified",
            recipients.len()
        ),
        record_refs: vec![id_text],
        ..Event::new(EventKind::Retraction)
    };
    Retraction { items, event }
}

/// The node a received record is to be passed on to: a known peer.
pub fn check_forward_target(roster: &RosterView, to_node: &str) -> Result<NodeId, WorkflowError> {
    let to = NodeId::parse(to_node.trim()).map_err(|e| invalid("to_node", &e.to_string()))?;
    if !roster.peers.contains_key(&to) {
        return Err(WorkflowError::NoNode(to.to_string()));
    }
    Ok(to)
}

/// A received record passed on: its delivery and its audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct Forward {
    /// The delivery to the new recipient.
    pub item: pb::OutboxItem,
    /// What to audit.
    pub event: Event,
}

/// Passes the received `copy` of `reference` on to `to`, only where its owner's handling codes
/// allow onward transmission to `to`'s country (denied when they say nothing), the copy carries
/// the owner's signed statement (which travels with it), and `to` is not the owner.
pub fn decide_forward(
    reference: &pb::RecordRef,
    to: &NodeId,
    copy: pb::ReceivedRecord,
    now: i64,
) -> Result<Forward, WorkflowError> {
    if to.as_str() == reference.owner_node {
        return Err(invalid("to_node", "is the record's owner"));
    }
    if let Err(why) = crate::provenance::check_onward(copy.handling.as_ref(), to.state()) {
        return Err(WorkflowError::Policy(format!(
            "originator-controlled: {why}; passing this record on needs the consent of {}",
            reference.owner_node
        )));
    }
    if copy.owner_disclosure.is_none() {
        return Err(WorkflowError::Policy(
            "this copy carries no signed statement of its owner; ask the owner to share it".into(),
        ));
    }
    let item = pb::OutboxItem {
        id: format!(
            "forward:{}:{}:{to}",
            reference.owner_node, reference.reference
        ),
        target_node: to.to_string(),
        payload: Some(pb::outbox_item::Payload::Forward(copy)),
        created_at: now,
        ..Default::default()
    };
    let event = Event {
        peer: to.to_string(),
        detail: format!("received record of {} passed on", reference.owner_node),
        record_refs: vec![reference.reference.clone()],
        ..Event::new(EventKind::OnwardTransmission)
    };
    Ok(Forward { item, event })
}

// ---- drivers (blocking; run off the async threads) ----

/// Applies a decided step in its fixed order: the audit event (durable), then the ledger write
/// (the change and the deliveries it queues, durable), then waking the outbox worker. Audited
/// first (finding L2) so that nothing is queued for delivery, or changed, that the audit log has
/// not seen, even if the node dies between the two writes (see [`crate::audit::audit_then`]).
/// The caller answers only after this returns, so nothing is reported done that is not recorded.
fn commit<T>(
    ctx: &NodeContext,
    write: impl FnOnce(&NodeContext) -> Result<T, LedgerError>,
    event: Event,
) -> Result<T, WorkflowError> {
    let now = ctx.clock.now_secs();
    let audited = event.clone();
    let out = crate::audit::audit_then(
        || {
            ctx.audit
                .append(vec![audited], now)
                .map(drop)
                .map_err(|e| WorkflowError::Audit(e.to_string()))
        },
        || write(ctx).map_err(WorkflowError::from),
    );
    match &out {
        Ok(_) => ctx.outbox_wakeup.notify_one(),
        // The audit log says the step was about to happen; say it did not, so the log stays
        // truthful. Best effort: the step itself already failed and is reported as such.
        Err(WorkflowError::Ledger(e)) => {
            if let Err(a) = ctx.audit.append(vec![not_carried_out(event, e)], now) {
                tracing::error!(error = %a, "audit of a step that failed was not completed");
            }
        }
        Err(_) => {}
    }
    out
}

/// The audit event saying that an audited step then failed in the ledger.
fn not_carried_out(mut event: Event, error: &LedgerError) -> Event {
    event.detail = format!("not carried out ({error}): {}", event.detail);
    event
}

/// Checks and sends a trace request to the node of the requested State.
pub fn send_trace_request(
    ctx: &NodeContext,
    req: pb::SendTraceRequestRequest,
) -> Result<pb::TraceRecord, WorkflowError> {
    let roster = ctx.roster.view();
    let now = ctx.clock.now_secs();
    // What the request links to must exist here: this node's own record and trace.
    let mut errors = Vec::new();
    let seizure = match RecordId::parse(&req.seizure_record_id) {
        Ok(id) if !req.seizure_record_id.is_empty() => {
            let held = ctx.store.get(id)?;
            if held.is_none() {
                errors.push(field("seizure_record_id", "no such record at this node"));
            }
            held
        }
        _ => None,
    };
    if !req.follows_on.is_empty()
        && ctx
            .ledger
            .get_trace(TraceDirection::Outgoing.as_str(), &req.follows_on, now)?
            .is_none()
    {
        errors.push(field(
            "follows_on",
            "no such trace request was sent from this node",
        ));
    }
    let follows_on = req.follows_on.clone();
    let planned = decide_send(&ctx.node_id, &roster, req, new_request_id(), now);
    let OutgoingTrace {
        record,
        item,
        event,
    } = match planned {
        Err(WorkflowError::Invalid(mut more)) => {
            more.extend(errors);
            return Err(WorkflowError::Invalid(more));
        }
        Err(e) => return Err(e),
        Ok(_) if !errors.is_empty() => return Err(WorkflowError::Invalid(errors)),
        Ok(p) => p,
    };
    commit(ctx, |c| c.ledger.create_outgoing(&record, &item), event)?;
    let id = record
        .request
        .as_ref()
        .map(|r| r.id.clone())
        .unwrap_or_default();
    // The links below are for people reading the records; the request itself is sent.
    if !follows_on.is_empty()
        && let Err(e) = ctx.ledger.note_follow_on(&follows_on, &id)
    {
        tracing::warn!(error = %e, "could not link the follow-on trace");
    }
    if let Some(stored) = seizure {
        note_tracing(ctx, stored, |t| t.trace_requested = true);
    }
    Ok(record)
}

/// How a seizure record's tracing status changes with an answer: traced once answered (in full),
/// illicit origin established when the chain of custody names a point of diversion. Never
/// undoes what is already recorded.
// `clone`: `TracingStatus` is `Copy` only while it holds flags alone; it may grow other fields.
#[allow(clippy::clone_on_copy)]
pub fn tracing_after(
    current: &pb::TracingStatus,
    response: &pb::TraceResponse,
) -> pb::TracingStatus {
    let mut t = current.clone();
    t.trace_requested = true;
    if response.outcome == pb::TraceStatus::Answered as i32 {
        t.traced = true;
    }
    let diversion = |role: &str| {
        let r: String = role
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        r == "pointofdiversion"
    };
    if matches!(
        pb::TraceStatus::try_from(response.outcome),
        Ok(pb::TraceStatus::Answered | pb::TraceStatus::PartiallyAnswered)
    ) && response.chain_of_custody.iter().any(|l| diversion(&l.role))
    {
        t.illicit_origin_established = true;
    }
    t
}

/// Updates the tracing status of this node's record `stored` with `change`, if it changes;
/// best effort (a record the current rules no longer accept is left as it is, logged).
#[allow(clippy::clone_on_copy)]
fn note_tracing(
    ctx: &NodeContext,
    stored: pb::StoredRecord,
    change: impl FnOnce(&mut pb::TracingStatus),
) {
    let Some(mut rec) = stored.record else {
        return;
    };
    let before = rec.tracing.clone().unwrap_or_default();
    let mut after = before.clone();
    change(&mut after);
    if after == before {
        return;
    }
    rec.tracing = Some(after);
    let outcome = crate::model::validate(rec)
        .map_err(|e| e.to_string())
        .and_then(|valid| {
            ctx.store
                .update(valid, Some(stored.revision), ctx.clock.now_secs())
                .map_err(|e| e.to_string())
        });
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "the seizure record's tracing status was not updated");
    }
}

/// After a response to one of this node's requests was applied: the seizure record the request
/// was made from follows it (see [`tracing_after`]).
pub fn response_applied(ctx: &NodeContext, resp: &pb::TraceResponse) -> Result<(), WorkflowError> {
    let Some(trace) = ctx.ledger.get_trace(
        TraceDirection::Outgoing.as_str(),
        &resp.request_id,
        ctx.clock.now_secs(),
    )?
    else {
        return Ok(());
    };
    let Ok(id) = RecordId::parse(&trace.seizure_record_id) else {
        return Ok(());
    };
    if let Some(stored) = ctx.store.get(id)? {
        note_tracing(ctx, stored, |t| *t = tracing_after(t, resp));
    }
    Ok(())
}

/// Checks what a requester sends when asked for more information, and plans its delivery.
pub fn decide_information(
    me: &NodeId,
    existing: &pb::TraceRecord,
    req: pb::ProvideTraceInformationRequest,
    now: i64,
) -> Result<(pb::TraceInformation, pb::OutboxItem, Event), WorkflowError> {
    let mut errors = Vec::new();
    if req.text.trim().is_empty() && req.items.is_empty() {
        errors.push(field("text", "give the information asked for"));
    }
    if !text_ok(&req.text, 2000) {
        errors.push(field(
            "text",
            "is longer than 2000 characters or has control characters",
        ));
    }
    if !req.items.is_empty() {
        check_items(&req.items, &mut errors);
    }
    if pb::TraceStatus::try_from(existing.status) != Ok(pb::TraceStatus::MoreInformationRequested) {
        errors.push(field(
            "request_id",
            "the responder has not asked for more information",
        ));
    }
    if !errors.is_empty() {
        return Err(WorkflowError::Invalid(errors));
    }
    let responder = counterpart(existing)?;
    let part = u32::try_from(existing.information.len())
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    let info = pb::TraceInformation {
        request_id: req.request_id.clone(),
        requester_node: me.to_string(),
        part,
        text: req.text.trim().to_owned(),
        items: req.items,
        sent_at: now,
    };
    let item = pb::OutboxItem {
        id: format!("tinfo:{}:{part}", req.request_id),
        target_node: responder.to_string(),
        payload: Some(pb::outbox_item::Payload::TraceInformation(info.clone())),
        created_at: now,
        ..Default::default()
    };
    let event = tracing_event(
        EventKind::TraceRequestSent,
        &responder,
        &req.request_id,
        format!("more information for the trace request (part {part})"),
    );
    Ok((info, item, event))
}

/// Sends the information the responder asked for on one of this node's requests.
pub fn provide_information(
    ctx: &NodeContext,
    req: pb::ProvideTraceInformationRequest,
) -> Result<pb::TraceRecord, WorkflowError> {
    let now = ctx.clock.now_secs();
    let existing = ctx
        .ledger
        .get_trace(TraceDirection::Outgoing.as_str(), &req.request_id, now)?
        .ok_or_else(|| LedgerError::NotFound(format!("no trace request {}", req.request_id)))?;
    let (info, item, event) = decide_information(&ctx.node_id, &existing, req, now)?;
    commit(
        ctx,
        |c| c.ledger.provide_information(&info, now, &item),
        event,
    )
}

/// Answers, restricts or declines an incoming trace request and queues the response.
pub fn answer_trace_request(
    ctx: &NodeContext,
    req: pb::AnswerTraceRequestRequest,
) -> Result<pb::TraceRecord, WorkflowError> {
    let outcome = check_answer(&req)?;
    let now = ctx.clock.now_secs();
    let existing = ctx
        .ledger
        .get_trace(TraceDirection::Incoming.as_str(), &req.request_id, now)?
        .ok_or_else(|| {
            LedgerError::NotFound(format!("no incoming trace request {}", req.request_id))
        })?;
    let request_id = req.request_id.clone();
    let roster = ctx.roster.view();
    let TraceAnswer {
        response,
        item,
        event,
    } = decide_answer(&ctx.node_id, &roster, &existing, req, outcome, now)?;
    commit(
        ctx,
        |c| c.ledger.answer(&request_id, &response, now, &item),
        event,
    )
}

/// Answers an incoming trace request automatically if this node is configured to, its policy
/// shares trace results with the requester, and its own records hold the weapon. Returns whether
/// it answered. The answer says where and when the weapon was recorded as seized here.
pub fn auto_answer(ctx: &NodeContext, request_id: &str) -> Result<bool, WorkflowError> {
    // Checked before any read: most nodes answer by hand.
    if !ctx.trace_settings.auto_answer_from_records {
        return Ok(false);
    }
    let Some(existing) = ctx.ledger.get_trace(
        TraceDirection::Incoming.as_str(),
        request_id,
        ctx.clock.now_secs(),
    )?
    else {
        return Ok(false);
    };
    let view = ctx.roster.view();
    let Some(search) = auto_answer_search(&view, &existing)? else {
        return Ok(false);
    };
    let Criteria::Serial { wanted, .. } = &search.criteria else {
        return Ok(false);
    };
    let found: Vec<pb::SeizureRecord> = ctx
        .store
        .find(&IndexQuery::Serial(wanted.clone()), AUTO_ANSWER_RECORDS)?
        .into_iter()
        .filter_map(|s| s.record)
        .collect();
    let mut withdrawn = HashSet::new();
    for r in &found {
        if ctx.ledger.is_withdrawn(&r.id)? {
            withdrawn.insert(r.id.clone());
        }
    }
    let Some(answer) = auto_answer_reply(request_id, &view.policy, &search, found, &withdrawn)
    else {
        return Ok(false);
    };
    answer_trace_request(ctx, answer)?;
    Ok(true)
}

/// Withdraws one of our records from sharing and tells every node that received it.
pub fn retract(ctx: &NodeContext, id: &str) -> Result<Vec<String>, WorkflowError> {
    let id = check_retract(id)?;
    if ctx.store.get(id)?.is_none() {
        return Err(StoreError::NotFound(id).into());
    }
    let recipients = ctx.ledger.disclosed_to(&id.to_string())?;
    let Retraction { items, event } =
        decide_retract(&ctx.node_id, id, &recipients, ctx.clock.now_secs());
    commit(ctx, |c| c.ledger.withdraw(&id.to_string(), &items), event)?;
    Ok(recipients)
}

/// Passes a received record on to `to_node`, unless its handling codes reserve onward
/// transmission to the originator's consent.
pub fn forward_received(
    ctx: &NodeContext,
    reference: &pb::RecordRef,
    to_node: &str,
) -> Result<(), WorkflowError> {
    let to = check_forward_target(&ctx.roster.view(), to_node)?;
    let copy = ctx
        .ledger
        .list_received()?
        .into_iter()
        .find(|r| r.reference.as_ref() == Some(reference))
        .ok_or_else(|| LedgerError::NotFound("no such received record".into()))?;
    let Forward { item, event } = decide_forward(reference, &to, copy, ctx.clock.now_secs())?;
    commit(
        ctx,
        |c| {
            c.ledger.note_onward(reference, &to)?;
            c.ledger.enqueue(&[item])
        },
        event,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::fixtures::{country, designate, node, policy, record, roster};

    const NOW: i64 = 1_700_000_000;

    fn send(requested: &str) -> pb::SendTraceRequestRequest {
        pb::SendTraceRequestRequest {
            requested_country: requested.into(),
            firearm: Some(pb::FirearmIdentification {
                serial_number: "AB-1234".into(),
                manufacturer: "Glock".into(),
                ..Default::default()
            }),
            reason: "  seized at the border  ".into(),
            urgency: pb::Urgency::Urgent as i32,
            ..Default::default()
        }
    }

    fn fields(e: WorkflowError) -> Vec<String> {
        match e {
            WorkflowError::Invalid(errs) => errs.into_iter().map(|e| e.field).collect(),
            other => vec![format!("not a validation error: {other:?}")],
        }
    }

    fn firearm_item(f: pb::FirearmIdentification) -> pb::TraceItem {
        pb::TraceItem {
            item: Some(pb::trace_item::Item::Firearm(f)),
        }
    }

    #[test]
    fn items_keep_the_old_firearm_first_and_an_obliterated_serial_may_be_traced() {
        let mut r = roster(&["DEU-BKA"]);
        designate(&mut r, "DEU", "DEU-BKA");
        let mut req = send("DEU");
        req.items = vec![
            firearm_item(pb::FirearmIdentification {
                manufacturer: "Synthetic Arms".into(),
                marking_condition: pb::MarkingCondition::Obliterated as i32,
                ..Default::default()
            }),
            pb::TraceItem {
                item: Some(pb::trace_item::Item::Ammunition(pb::AmmunitionItem {
                    calibre: "9x19".into(),
                    ..Default::default()
                })),
            },
        ];
        let out = decide_send(&node("FRA-POL"), &r, req, "t".into(), NOW).unwrap();
        let sent = out.record.request.unwrap();
        assert_eq!(sent.items.len(), 3);
        assert_eq!(sent.firearm.unwrap().serial_number, "AB-1234");
        // Read back as items by a node that gets only `firearm` from an older sender.
        let old = pb::TraceRequest {
            firearm: Some(pb::FirearmIdentification {
                serial_number: "X1".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(items_of(&old).len(), 1);
        // Intact marking without a serial, an empty item, an ammunition lot with nothing to
        // trace and a part without a kind: every problem at once.
        let mut bad = send("DEU");
        bad.firearm = None;
        bad.items = vec![
            firearm_item(pb::FirearmIdentification {
                manufacturer: "Synthetic Arms".into(),
                country_of_manufacture: "XXX".into(),
                ..Default::default()
            }),
            pb::TraceItem {
                item: Some(pb::trace_item::Item::Ammunition(
                    pb::AmmunitionItem::default(),
                )),
            },
            pb::TraceItem {
                item: Some(pb::trace_item::Item::Part(pb::PartItem::default())),
            },
        ];
        let e = decide_send(&node("FRA-POL"), &r, bad, "t".into(), NOW).unwrap_err();
        assert_eq!(
            fields(e),
            [
                "items[0].firearm",
                "items[0].firearm.country_of_manufacture",
                "items[1].ammunition",
                "items[2].part.kind"
            ]
        );
    }

    #[test]
    fn the_seizure_follows_the_answer_and_never_goes_back() {
        let link = |role: &str| pb::CustodyLink {
            role: role.into(),
            ..Default::default()
        };
        let partial = pb::TraceResponse {
            outcome: pb::TraceStatus::PartiallyAnswered as i32,
            chain_of_custody: vec![link("manufacturer")],
            ..Default::default()
        };
        let t = tracing_after(&pb::TracingStatus::default(), &partial);
        assert!(t.trace_requested && !t.traced && !t.illicit_origin_established);
        let full = pb::TraceResponse {
            outcome: pb::TraceStatus::Answered as i32,
            chain_of_custody: vec![link("Point of diversion")],
            ..Default::default()
        };
        let t = tracing_after(&t, &full);
        assert!(t.traced && t.illicit_origin_established);
        let declined = pb::TraceResponse {
            outcome: pb::TraceStatus::Declined as i32,
            ..Default::default()
        };
        assert_eq!(tracing_after(&t, &declined), t);
    }

    #[test]
    fn an_interim_answer_is_numbered_and_a_question_needs_words() {
        let ask = pb::AnswerTraceRequestRequest {
            request_id: "t".into(),
            outcome: pb::TraceStatus::MoreInformationRequested as i32,
            next_country: "nowhere".into(),
            ..Default::default()
        };
        assert_eq!(
            fields(check_answer(&ask).unwrap_err()),
            ["remarks", "next_country"]
        );
        let mut existing = pb::TraceRecord {
            request: Some(pb::TraceRequest {
                id: "t".into(),
                ..Default::default()
            }),
            direction: "incoming".into(),
            counterpart_node: "FRA-POL".into(),
            status: pb::TraceStatus::Acknowledged as i32,
            ..Default::default()
        };
        let r = roster(&["FRA-POL"]);
        let asked = pb::AnswerTraceRequestRequest {
            remarks: "Which slide?".into(),
            next_country: String::new(),
            ..ask
        };
        let out = decide_answer(
            &node("DEU-BKA"),
            &r,
            &existing,
            asked,
            pb::TraceStatus::MoreInformationRequested,
            NOW,
        )
        .unwrap();
        assert_eq!(out.response.part, 1);
        assert_eq!(out.item.id, "tresp:t:1");
        existing.messages.push(out.response);
        let info = decide_information(
            &node("FRA-POL"),
            &pb::TraceRecord {
                status: pb::TraceStatus::Acknowledged as i32,
                ..existing.clone()
            },
            pb::ProvideTraceInformationRequest {
                request_id: "t".into(),
                text: "The upper one".into(),
                items: vec![],
            },
            NOW,
        );
        assert_eq!(fields(info.unwrap_err()), ["request_id"]);
    }

    #[test]
    fn a_trace_request_goes_to_the_node_the_requested_state_designates() {
        let mut r = roster(&["DEU-BKA", "ITA-CUS", "ITA-POL"]);
        designate(&mut r, "ITA", "ITA-POL");
        let out = decide_send(&node("FRA-POL"), &r, send("ITA"), "t1".into(), NOW).unwrap();
        assert_eq!(out.record.counterpart_node, "ITA-POL");
        assert_eq!(out.record.direction, "outgoing");
        assert_eq!(out.record.status, pb::TraceStatus::Sent as i32);
        assert_eq!(out.record.escalation_contact, "desk@ITA-POL");
        let req = out.record.request.as_ref().unwrap();
        assert_eq!(
            (req.id.as_str(), req.requester_node.as_str()),
            ("t1", "FRA-POL")
        );
        assert_eq!(req.reason, "seized at the border");
        // Urgent: due after the responder's published urgent time (2 days in the fixture).
        assert_eq!(req.due_at, NOW + 2 * 86_400);
        assert_eq!(out.item.id, "treq:t1");
        assert_eq!(out.item.target_node, "ITA-POL");
        assert_eq!(out.event.kind, EventKind::TraceRequestSent);
        assert_eq!(
            (out.event.peer.as_str(), out.event.request_id.as_str()),
            ("ITA-POL", "t1")
        );
    }

    #[test]
    fn without_a_designation_the_sender_chooses_among_the_states_nodes() {
        let r = roster(&["BEL-CUS", "BEL-FPJ", "ECOWAS-HUB"]);
        // Never the first node in sort order: the sender is told which nodes exist.
        let e = decide_send(&node("FRA-POL"), &r, send("BEL"), "t".into(), NOW).unwrap_err();
        assert!(
            matches!(&e, WorkflowError::NoDesignation { state, nodes }
                if state == "BEL" && nodes == &["BEL-CUS", "BEL-FPJ"]),
            "{e:?}"
        );
        assert!(e.to_string().contains("BEL-CUS, BEL-FPJ"), "{e}");
        // A chosen node of that State is used.
        let mut chosen = send("BEL");
        chosen.target_node = "BEL-FPJ".into();
        let out = decide_send(&node("FRA-POL"), &r, chosen, "t".into(), NOW).unwrap();
        assert_eq!(out.item.target_node, "BEL-FPJ");
        // A chosen node of another State, or an organisation's, is refused.
        for other in ["ECOWAS-HUB", "DEU-BKA", "not a node"] {
            let mut wrong = send("BEL");
            wrong.target_node = other.into();
            let e = decide_send(&node("FRA-POL"), &r, wrong, "t".into(), NOW);
            assert_eq!(fields(e.unwrap_err()), ["target_node"], "{other}");
        }
        // A chosen node of that State that is not an active peer is refused too.
        let mut gone = send("BEL");
        gone.target_node = "BEL-OLD".into();
        let e = decide_send(&node("FRA-POL"), &r, gone, "t".into(), NOW);
        assert_eq!(fields(e.unwrap_err()), ["target_node"]);
    }

    #[test]
    fn a_designation_per_weapon_category_overrides_the_default() {
        let mut r = roster(&["BEL-CUS", "BEL-FPJ"]);
        designate(&mut r, "BEL", "BEL-FPJ");
        if let Some(p) = r.tracing_points.get_mut(&country("BEL")) {
            p.by_category
                .insert(pb::WeaponCategory::Shotgun as i32, node("BEL-CUS"));
        }
        let mut shotgun = send("BEL");
        if let Some(f) = shotgun.firearm.as_mut() {
            f.category = pb::WeaponCategory::Shotgun as i32;
        }
        let out = decide_send(&node("FRA-POL"), &r, shotgun, "t".into(), NOW).unwrap();
        assert_eq!(out.item.target_node, "BEL-CUS");
        let out = decide_send(&node("FRA-POL"), &r, send("BEL"), "t".into(), NOW).unwrap();
        assert_eq!(out.item.target_node, "BEL-FPJ");
    }

    #[test]
    fn a_trace_request_lists_every_problem_before_looking_for_a_node() {
        let r = roster(&["DEU-BKA"]);
        let mut bad = send("FRA");
        bad.firearm = None;
        bad.reason = String::new();
        bad.urgency = 99;
        let e = decide_send(&node("FRA-POL"), &r, bad, "t".into(), NOW);
        assert_eq!(
            fields(e.unwrap_err()),
            ["requested_country", "items", "reason", "urgency"]
        );
        let nobody = decide_send(&node("FRA-POL"), &r, send("ESP"), "t".into(), NOW);
        assert!(matches!(nobody, Err(WorkflowError::NoNode(c)) if c == "ESP"));
    }

    fn incoming(from: &str, status: pb::TraceStatus) -> pb::TraceRecord {
        pb::TraceRecord {
            request: Some(pb::TraceRequest {
                id: "t9".into(),
                firearm: Some(pb::FirearmIdentification {
                    serial_number: record(1, "").firearms[0].serial_number.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: status as i32,
            direction: "incoming".into(),
            counterpart_node: from.into(),
            ..Default::default()
        }
    }

    fn answer(outcome: pb::TraceStatus) -> pb::AnswerTraceRequestRequest {
        pb::AnswerTraceRequestRequest {
            request_id: "t9".into(),
            outcome: outcome as i32,
            chain_of_custody: vec![pb::CustodyLink::default()],
            remarks: "ok".into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_answer_needs_a_final_outcome_and_short_remarks() {
        assert!(check_answer(&answer(pb::TraceStatus::Acknowledged)).is_err());
        let mut long = answer(pb::TraceStatus::Declined);
        long.remarks = "x".repeat(4001);
        assert_eq!(fields(check_answer(&long).unwrap_err()), ["remarks"]);
        assert_eq!(
            check_answer(&answer(pb::TraceStatus::Declined)).unwrap(),
            pb::TraceStatus::Declined
        );
    }

    #[test]
    fn answering_is_a_disclosure_under_the_granting_rule() {
        let r = roster(&["DEU-BKA"]);
        let existing = incoming("DEU-BKA", pb::TraceStatus::Acknowledged);
        let out = decide_answer(
            &node("FRA-POL"),
            &r,
            &existing,
            answer(pb::TraceStatus::Answered),
            pb::TraceStatus::Answered,
            NOW,
        )
        .unwrap();
        assert_eq!(out.event.kind, EventKind::Disclosure);
        assert_eq!(
            (out.event.policy_version, out.event.policy_rule.as_str()),
            (7, "deu")
        );
        assert_eq!(out.response.chain_of_custody.len(), 1);
        assert!(
            out.response
                .handling
                .as_ref()
                .unwrap()
                .no_onward_without_consent
        );
        assert_eq!(out.item.id, "tresp:t9");
        assert_eq!(out.item.target_node, "DEU-BKA");
    }

    #[test]
    fn a_trace_result_rule_for_one_agency_kind_applies_to_the_kind_the_directory_lists() {
        // FRA shares trace results with DEU customs only.
        let customs_only = Policy::parse(pb::SharingPolicy {
            owner_country: "FRA".into(),
            version: 2,
            legal_basis: "Synthetic".into(),
            rules: vec![pb::PolicyRule {
                id: "deu-customs".into(),
                audience: Some(pb::Audience {
                    countries: vec!["DEU".into()],
                    agency_kinds: vec![pb::AgencyKind::Customs as i32],
                    ..Default::default()
                }),
                purposes: vec![pb::Purpose::Tracing as i32],
                data_classes: vec![pb::DataClass::TraceResult as i32],
                ..Default::default()
            }],
        })
        .unwrap();
        let existing = incoming("DEU-BKA", pb::TraceStatus::Acknowledged);
        let answer_as = |kind: Option<pb::AgencyKind>| {
            let mut r = roster(&["DEU-BKA"]);
            r.policy = std::sync::Arc::new(customs_only.clone());
            if let Some(kind) = kind {
                r.agency_kinds.insert(node("DEU-BKA"), kind);
            }
            decide_answer(
                &node("FRA-POL"),
                &r,
                &existing,
                answer(pb::TraceStatus::Answered),
                pb::TraceStatus::Answered,
                NOW,
            )
        };
        let granted = answer_as(Some(pb::AgencyKind::Customs)).unwrap();
        assert_eq!(granted.event.policy_rule, "deu-customs");
        assert!(answer_as(Some(pb::AgencyKind::Police)).is_err());
        // A member the directory lists no kind for is not customs.
        assert!(answer_as(None).is_err());
    }

    #[test]
    fn answering_without_a_rule_is_refused_but_declining_is_not() {
        let r = roster(&["ITA-POL"]);
        let existing = incoming("ITA-POL", pb::TraceStatus::Acknowledged);
        let refused = decide_answer(
            &node("FRA-POL"),
            &r,
            &existing,
            answer(pb::TraceStatus::Answered),
            pb::TraceStatus::Answered,
            NOW,
        );
        assert!(matches!(refused, Err(WorkflowError::Policy(m)) if m.contains("v7")));
        let declined = decide_answer(
            &node("FRA-POL"),
            &r,
            &existing,
            answer(pb::TraceStatus::Declined),
            pb::TraceStatus::Declined,
            NOW,
        )
        .unwrap();
        assert_eq!(declined.event.kind, EventKind::TraceResponse);
        assert_eq!(declined.event.policy_version, 7);
        assert!(declined.event.policy_rule.is_empty());
        // No chain of custody leaves without an answer; the strictest handling codes apply.
        assert!(declined.response.chain_of_custody.is_empty());
        let h = declined.response.handling.unwrap();
        assert!(h.purpose_bound && h.no_court_use_without_consent && h.no_onward_without_consent);
    }

    #[test]
    fn only_open_requests_the_policy_answers_are_answered_automatically() {
        let r = roster(&["DEU-BKA", "ITA-POL"]);
        let open = incoming("DEU-BKA", pb::TraceStatus::Acknowledged);
        let search = auto_answer_search(&r, &open).unwrap().unwrap();
        assert!(matches!(&search.criteria, Criteria::Serial { maker, .. } if maker.is_empty()));
        assert_eq!(search.requester.purpose, pb::Purpose::Tracing);
        let done = incoming("DEU-BKA", pb::TraceStatus::Answered);
        assert_eq!(auto_answer_search(&r, &done).unwrap(), None);
        let not_shared = incoming("ITA-POL", pb::TraceStatus::Acknowledged);
        assert_eq!(auto_answer_search(&r, &not_shared).unwrap(), None);
        let mut no_serial = open.clone();
        no_serial.request.as_mut().unwrap().firearm = None;
        assert_eq!(auto_answer_search(&r, &no_serial).unwrap(), None);
        // A partial serial is never answered automatically (no wildcard lookups by trace).
        let mut partial = open.clone();
        if let Some(f) = partial.request.as_mut().unwrap().firearm.as_mut() {
            f.serial_number = "AB12****".into();
        }
        assert_eq!(auto_answer_search(&r, &partial).unwrap(), None);
    }

    fn search_for(rec: &pb::SeizureRecord, maker: &str) -> Search {
        Search {
            criteria: Criteria::serial(&rec.firearms[0].serial_number, maker).unwrap(),
            requester: trace_requester(&roster(&["DEU-BKA"]), &node("DEU-BKA")),
        }
    }

    #[test]
    fn an_automatic_answer_names_each_seizure_of_the_requested_make() {
        let rec = record(1, "00000000000000000000000000000001");
        let p = policy();
        let none = HashSet::new();
        let search = search_for(&rec, &rec.firearms[0].manufacturer);
        let reply = auto_answer_reply("t9", &p, &search, vec![rec.clone()], &none).unwrap();
        assert_eq!(reply.outcome, pb::TraceStatus::Answered as i32);
        assert_eq!(reply.chain_of_custody.len(), 1);
        let other = search_for(&rec, "nosuchmaker");
        assert_eq!(auto_answer_reply("t9", &p, &other, vec![rec], &none), None);
    }

    #[test]
    fn an_automatic_answer_discloses_only_what_the_seizure_rule_does() {
        // The fixture's seizure rule shares serials and makers only: no date, no place.
        let rec = record(1, "00000000000000000000000000000001");
        let p = policy();
        let search = search_for(&rec, "");
        let reply =
            auto_answer_reply("t9", &p, &search, vec![rec.clone()], &HashSet::new()).unwrap();
        let link = &reply.chain_of_custody[0];
        assert!(link.date.is_empty() && link.country.is_empty(), "{link:?}");
        // A withdrawn record is not answered from.
        let withdrawn = HashSet::from([rec.id.clone()]);
        assert_eq!(
            auto_answer_reply("t9", &p, &search, vec![rec.clone()], &withdrawn),
            None
        );
        // A requester the seizure rule does not cover gets nothing from the records.
        let ita = Search {
            requester: trace_requester(&roster(&["ITA-POL"]), &node("ITA-POL")),
            ..search
        };
        assert_eq!(
            auto_answer_reply("t9", &p, &ita, vec![rec], &HashSet::new()),
            None
        );
    }

    #[test]
    fn a_retraction_reaches_every_recipient_and_is_audited_once() {
        let id = check_retract(" 00000000000000000000000000000001 ").unwrap();
        let out = decide_retract(
            &node("FRA-POL"),
            id,
            &["DEU-BKA".into(), "ITA-POL".into()],
            NOW,
        );
        let targets: Vec<&str> = out.items.iter().map(|i| i.target_node.as_str()).collect();
        assert_eq!(targets, ["DEU-BKA", "ITA-POL"]);
        assert_eq!(out.items[0].id, format!("retract:{id}:DEU-BKA"));
        assert_eq!(out.event.kind, EventKind::Retraction);
        assert_eq!(out.event.peer, "DEU-BKA,ITA-POL");
        assert!(check_retract("nope").is_err());
    }

    #[test]
    fn originator_controlled_records_are_never_passed_on() {
        let r = roster(&["DEU-BKA", "ITA-POL"]);
        assert!(matches!(
            check_forward_target(&r, "ESP-GC"),
            Err(WorkflowError::NoNode(_))
        ));
        let to = check_forward_target(&r, " ITA-POL ").unwrap();
        let reference = pb::RecordRef {
            owner_node: "DEU-BKA".into(),
            reference: "r1".into(),
        };
        let mut copy = pb::ReceivedRecord {
            reference: Some(reference.clone()),
            handling: Some(pb::Handling {
                no_onward_without_consent: true,
                allow_onward: true,
                ..Default::default()
            }),
            owner_disclosure: Some(pb::SignedDisclosure::default()),
            ..Default::default()
        };
        let refused = |copy: &pb::ReceivedRecord| {
            matches!(
                decide_forward(&reference, &to, copy.clone(), NOW),
                Err(WorkflowError::Policy(_))
            )
        };
        assert!(refused(&copy));
        // Saying nothing denies; so does a permission for other countries only.
        copy.handling = None;
        assert!(refused(&copy));
        copy.handling = Some(pb::Handling {
            allow_onward: true,
            onward_countries: vec!["ESP".into()],
            ..Default::default()
        });
        assert!(refused(&copy));
        copy.handling = Some(pb::Handling {
            allow_onward: true,
            onward_countries: vec!["ITA".into()],
            ..Default::default()
        });
        // A copy kept without its owner's statement cannot prove where it came from.
        let mut unsigned = copy.clone();
        unsigned.owner_disclosure = None;
        assert!(refused(&unsigned));
        let owner = node("DEU-BKA");
        assert_eq!(
            fields(decide_forward(&reference, &owner, copy.clone(), NOW).unwrap_err()),
            ["to_node"]
        );
        let out = decide_forward(&reference, &to, copy, NOW).unwrap();
        assert_eq!(out.item.id, "forward:DEU-BKA:r1:ITA-POL");
        assert_eq!(out.event.kind, EventKind::OnwardTransmission);
        assert_eq!(out.event.record_refs, ["r1"]);
    }

    #[test]
    fn an_audited_step_that_then_fails_is_audited_as_not_carried_out() {
        let event = tracing_event(
            EventKind::Disclosure,
            &node("FRA-POL"),
            "t1",
            "trace result disclosed".into(),
        );
        let note = not_carried_out(
            event.clone(),
            &LedgerError::Conflict("already answered".into()),
        );
        assert_eq!(
            (note.kind, note.peer.as_str(), note.request_id.as_str()),
            (event.kind, "FRA-POL", "t1")
        );
        assert_eq!(
            note.detail,
            "not carried out (already answered): trace result disclosed"
        );
    }

    #[test]
    fn the_fixture_policy_is_the_roster_policy() {
        assert_eq!(roster(&[]).policy.version(), policy().version());
    }
}
