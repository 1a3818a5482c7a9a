//! This node's side of the trace workflow and of retraction, as its users drive them through the
//! local API: send a trace request, answer an incoming one, withdraw a shared record. Each
//! operation checks its input, records the change and queues the delivery in one durable step
//! (see [`crate::ledger`]), audits it, and wakes the outbox worker.

use tracenet_proto::v1 as pb;

use crate::audit::Event;
use crate::context::NodeContext;
use crate::country::CountryCode;
use crate::ids::{NodeId, RecordId, new_request_id};
use crate::ledger::{INCOMING, LedgerError, OUTGOING};
use crate::model::FieldError;
use crate::policy::{self, Requester};
use crate::store::StoreError;
use crate::trace;

/// Why a workflow step was refused.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// Input failed validation. Not retryable as is.
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    /// No known node serves the requested country. Not retryable until one is configured.
    #[error("no node is known for {0}")]
    NoNode(String),
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

fn text_ok(s: &str, max: usize) -> bool {
    s.chars().count() <= max && !s.chars().any(|c| c.is_control() && c != '\n')
}

fn audit(ctx: &NodeContext, events: Vec<Event>) -> Result<(), WorkflowError> {
    ctx.audit
        .append(events, ctx.clock.now_secs())
        .map(|_| ())
        .map_err(|e| WorkflowError::Audit(e.to_string()))
}

/// Checks and sends a trace request to the node of the requested State.
pub fn send_trace_request(
    ctx: &NodeContext,
    req: pb::SendTraceRequestRequest,
) -> Result<pb::TraceRecord, WorkflowError> {
    let mut errors = Vec::new();
    let country = CountryCode::parse(&req.requested_country);
    match &country {
        Err(e) => errors.push(field("requested_country", &e.to_string())),
        Ok(c) if *c == ctx.country => {
            errors.push(field("requested_country", "is this node's own country"))
        }
        Ok(_) => {}
    }
    let firearm = req.firearm.clone().unwrap_or_default();
    if firearm.serial_number.trim().is_empty()
        && (firearm.manufacturer.trim().is_empty() || firearm.model.trim().is_empty())
    {
        errors.push(field(
            "firearm",
            "needs a serial number, or a manufacturer and a model",
        ));
    }
    for (name, value) in [
        ("firearm.serial_number", &firearm.serial_number),
        ("firearm.manufacturer", &firearm.manufacturer),
        ("firearm.model", &firearm.model),
        ("firearm.calibre", &firearm.calibre),
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
    if req.reason.trim().is_empty() || !text_ok(&req.reason, 2000) {
        errors.push(field("reason", "is required (at most 2000 characters)"));
    }
    let urgency = pb::Urgency::try_from(req.urgency).unwrap_or(pb::Urgency::Unspecified);
    if req.urgency != 0 && urgency == pb::Urgency::Unspecified {
        errors.push(field("urgency", "unknown value"));
    }
    if !errors.is_empty() {
        return Err(WorkflowError::Invalid(errors));
    }
    let country = country.map_err(|e| WorkflowError::NoNode(e.to_string()))?;
    let target = ctx
        .peers
        .known()
        .into_iter()
        .find(|n| n.country() == country)
        .ok_or_else(|| WorkflowError::NoNode(country.to_string()))?;
    let settings = ctx.roster.trace_settings(&target).unwrap_or_default();
    let now = ctx.clock.now_secs();
    let request = pb::TraceRequest {
        id: new_request_id(),
        requester_node: ctx.node_id.to_string(),
        requested_country: country.to_string(),
        firearm: Some(firearm),
        reason: req.reason.trim().to_owned(),
        legal_basis: req.legal_basis,
        urgency: if urgency == pb::Urgency::Unspecified {
            pb::Urgency::Routine as i32
        } else {
            urgency as i32
        },
        case_reference: req.case_reference,
        created_at: now,
        due_at: trace::due_at(now, urgency, &settings),
    };
    let record = pb::TraceRecord {
        request: Some(request.clone()),
        status: pb::TraceStatus::Sent as i32,
        history: vec![pb::TraceStatusChange {
            status: pb::TraceStatus::Sent as i32,
            at: now,
            note: format!("queued for {target}"),
        }],
        direction: OUTGOING.into(),
        counterpart_node: target.to_string(),
        escalation_contact: settings.escalation_contact.clone(),
        ..Default::default()
    };
    let item = pb::OutboxItem {
        id: format!("treq:{}", request.id),
        target_node: target.to_string(),
        payload: Some(pb::outbox_item::Payload::TraceRequest(request.clone())),
        created_at: now,
        ..Default::default()
    };
    ctx.ledger.create_outgoing(&record, &item)?;
    audit(
        ctx,
        vec![Event {
            kind: "trace_request_sent",
            peer: target.to_string(),
            request_id: request.id.clone(),
            purpose: pb::Purpose::Tracing.as_str_name().into(),
            detail: format!("trace request to {country}"),
            ..Default::default()
        }],
    )?;
    ctx.outbox_wakeup.notify_one();
    Ok(record)
}

/// Answers, restricts or declines an incoming trace request and queues the response.
pub fn answer_trace_request(
    ctx: &NodeContext,
    req: pb::AnswerTraceRequestRequest,
) -> Result<pb::TraceRecord, WorkflowError> {
    let outcome = pb::TraceStatus::try_from(req.outcome).unwrap_or(pb::TraceStatus::Unspecified);
    if !trace::is_final(outcome) {
        return Err(WorkflowError::Invalid(vec![field(
            "outcome",
            "must be TRACE_STATUS_ANSWERED, TRACE_STATUS_RESTRICTED or TRACE_STATUS_DECLINED",
        )]));
    }
    if !text_ok(&req.remarks, 4000) {
        return Err(WorkflowError::Invalid(vec![field(
            "remarks",
            "is too long",
        )]));
    }
    let now = ctx.clock.now_secs();
    let existing = ctx
        .ledger
        .get_trace(INCOMING, &req.request_id, now)?
        .ok_or_else(|| {
            LedgerError::NotFound(format!("no incoming trace request {}", req.request_id))
        })?;
    let requester_node = NodeId::parse(&existing.counterpart_node)
        .map_err(|e| WorkflowError::Policy(e.to_string()))?;
    let requester = Requester {
        country: requester_node.country(),
        regions: ctx.roster.regions(&requester_node),
        agency_kind: pb::AgencyKind::Unspecified,
        purpose: pb::Purpose::Tracing,
    };
    let grant = policy::grant(&ctx.roster.policy(), &requester, pb::DataClass::TraceResult);
    if outcome == pb::TraceStatus::Answered && grant.is_none() {
        return Err(WorkflowError::Policy(format!(
            "sharing policy v{} shares no trace results with {}: restrict or decline instead",
            ctx.roster.policy().version(),
            requester.country
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
        responder_node: ctx.node_id.to_string(),
        outcome: outcome as i32,
        chain_of_custody: if outcome == pb::TraceStatus::Answered {
            req.chain_of_custody
        } else {
            Vec::new()
        },
        remarks: req.remarks,
        handling: Some(handling),
        answered_at: now,
    };
    let item = pb::OutboxItem {
        id: format!("tresp:{}", req.request_id),
        target_node: requester_node.to_string(),
        payload: Some(pb::outbox_item::Payload::TraceResponse(response.clone())),
        created_at: now,
        ..Default::default()
    };
    let record = ctx.ledger.answer(&req.request_id, &response, now, &item)?;
    audit(
        ctx,
        vec![Event {
            kind: if outcome == pb::TraceStatus::Answered {
                "disclosure"
            } else {
                "trace_response"
            },
            peer: requester_node.to_string(),
            request_id: req.request_id,
            purpose: pb::Purpose::Tracing.as_str_name().into(),
            detail: format!("trace response: {}", outcome.as_str_name()),
            policy_version: grant
                .as_ref()
                .map_or(ctx.roster.policy().version(), |g| g.policy_version),
            policy_rule: grant.map(|g| g.rule_id).unwrap_or_default(),
            record_refs: Vec::new(),
        }],
    )?;
    ctx.outbox_wakeup.notify_one();
    Ok(record)
}

/// Withdraws one of our records from sharing and tells every node that received it.
pub fn retract(ctx: &NodeContext, id: &str) -> Result<Vec<String>, WorkflowError> {
    let id = RecordId::parse(id.trim())
        .map_err(|e| WorkflowError::Invalid(vec![field("id", &e.to_string())]))?;
    if ctx.store.get(id)?.is_none() {
        return Err(StoreError::NotFound(id).into());
    }
    let id_text = id.to_string();
    let peers = ctx.ledger.disclosed_to(&id_text)?;
    let now = ctx.clock.now_secs();
    let items: Vec<pb::OutboxItem> = peers
        .iter()
        .map(|peer| pb::OutboxItem {
            id: format!("retract:{id_text}:{peer}"),
            target_node: peer.clone(),
            payload: Some(pb::outbox_item::Payload::Retract(pb::RecordRef {
                owner_node: ctx.node_id.to_string(),
                reference: id_text.clone(),
            })),
            created_at: now,
            ..Default::default()
        })
        .collect();
    ctx.ledger.withdraw(&id_text, &items)?;
    audit(
        ctx,
        vec![Event {
            kind: "retraction",
            peer: peers.join(","),
            detail: format!("record withdrawn; {} recipient(s) notified", peers.len()),
            record_refs: vec![id_text],
            ..Default::default()
        }],
    )?;
    ctx.outbox_wakeup.notify_one();
    Ok(peers)
}

/// Passes a received record on to `to_node`, unless its handling codes reserve onward
/// transmission to the originator's consent.
pub fn forward_received(
    ctx: &NodeContext,
    reference: &pb::RecordRef,
    to_node: &str,
) -> Result<(), WorkflowError> {
    let to = NodeId::parse(to_node.trim())
        .map_err(|e| WorkflowError::Invalid(vec![field("to_node", &e.to_string())]))?;
    if !ctx.peers.known().contains(&to) {
        return Err(WorkflowError::NoNode(to.to_string()));
    }
    let copy = ctx
        .ledger
        .list_received()?
        .into_iter()
        .find(|r| r.reference.as_ref() == Some(reference))
        .ok_or_else(|| LedgerError::NotFound("no such received record".into()))?;
    let handling = copy.handling.clone().unwrap_or_default();
    if handling.no_onward_without_consent {
        return Err(WorkflowError::Policy(format!(
            "originator-controlled: passing this record on needs the consent of {}",
            reference.owner_node
        )));
    }
    if to.as_str() == reference.owner_node {
        return Err(WorkflowError::Invalid(vec![field(
            "to_node",
            "is the record's owner",
        )]));
    }
    let now = ctx.clock.now_secs();
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
    ctx.ledger.enqueue(&[item])?;
    audit(
        ctx,
        vec![Event {
            kind: "onward_transmission",
            peer: to.to_string(),
            detail: format!("received record of {} passed on", reference.owner_node),
            record_refs: vec![reference.reference.clone()],
            ..Default::default()
        }],
    )?;
    ctx.outbox_wakeup.notify_one();
    Ok(())
}

/// Answers an incoming trace request automatically if this node is configured to, its policy
/// shares trace results with the requester, and its own records hold the weapon. Returns whether
/// it answered. The answer says where and when the weapon was recorded as seized here.
pub fn auto_answer(ctx: &NodeContext, request_id: &str) -> Result<bool, WorkflowError> {
    if !ctx.trace_settings.auto_answer_from_records {
        return Ok(false);
    }
    let now = ctx.clock.now_secs();
    let Some(rec) = ctx.ledger.get_trace(INCOMING, request_id, now)? else {
        return Ok(false);
    };
    if trace::is_final(
        pb::TraceStatus::try_from(rec.status).unwrap_or(pb::TraceStatus::Unspecified),
    ) {
        return Ok(false);
    }
    let requester =
        NodeId::parse(&rec.counterpart_node).map_err(|e| WorkflowError::Policy(e.to_string()))?;
    let asker = Requester {
        country: requester.country(),
        regions: ctx.roster.regions(&requester),
        agency_kind: pb::AgencyKind::Unspecified,
        purpose: pb::Purpose::Tracing,
    };
    if policy::grant(&ctx.roster.policy(), &asker, pb::DataClass::TraceResult).is_none() {
        return Ok(false);
    }
    let firearm = rec
        .request
        .as_ref()
        .and_then(|r| r.firearm.clone())
        .unwrap_or_default();
    let Some(serial) = crate::serial::normalise(&firearm.serial_number) else {
        return Ok(false);
    };
    let maker = crate::serial::manufacturer_key(&firearm.manufacturer);
    let held: Vec<pb::SeizureRecord> = ctx
        .store
        .find(&crate::store::IndexQuery::Serial(serial), 5)?
        .into_iter()
        .filter_map(|s| s.record)
        .filter(|r| {
            maker.is_empty()
                || r.firearms
                    .iter()
                    .any(|f| crate::serial::manufacturer_key(&f.manufacturer) == maker)
        })
        .collect();
    if held.is_empty() {
        return Ok(false);
    }
    let chain = held
        .iter()
        .map(|r| {
            let ev = r.event.clone().unwrap_or_default();
            let place = ev.place.unwrap_or_default();
            pb::CustodyLink {
                role: "seized_by_authorities".into(),
                name: String::new(),
                country: place.country,
                date: ev.date,
                details: "recorded in the national seizure records".into(),
            }
        })
        .collect();
    answer_trace_request(
        ctx,
        pb::AnswerTraceRequestRequest {
            request_id: request_id.to_owned(),
            outcome: pb::TraceStatus::Answered as i32,
            chain_of_custody: chain,
            remarks: "Answered automatically from national seizure records".into(),
        },
    )?;
    Ok(true)
}
