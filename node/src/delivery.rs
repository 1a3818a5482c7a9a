//! The outbox worker: delivers queued trace requests, trace responses and retractions to their
//! nodes, retrying with exponential back-off until the node acknowledges, and giving up only on
//! refusals of the item itself ([`retryable`]): a peer suspended or not yet in the roster, a key
//! not yet replicated, clock skew are waited out, the last error kept on the item. Each attempt
//! carries a freshly signed context whose envelope id is the item id and a random suffix,
//! stored with the attempt count before the attempt is sent, so no attempt reuses an envelope
//! id, whatever crash comes between, and the receiver's replay guard neither refuses a retry
//! nor has to be loosened for one. The receiver
//! applies the payload once by its own id (trace request or response id, record reference) and
//! acknowledges a repeated delivery again, signed for the new envelope, so a delivery whose
//! acknowledgement was lost is harmless to repeat and its "already received" answer is success.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracenet_proto::v1 as pb;

use crate::audit::{Event, EventKind};
use crate::client::ClientError;
use crate::config::RetryPolicy;
use crate::context::NodeContext;
use crate::envelope::SignedRequest;
use crate::ids::{NodeId, new_request_id};
use crate::ledger::Delivered;
use crate::roster::Barred;

/// Delay before the next attempt after `failures` failed ones: base × 2^(failures−1), capped,
/// plus up to 1/8 of it spread by the item id so retries to one peer do not arrive in lockstep.
pub fn retry_delay_ms(policy: RetryPolicy, failures: u32, item_id: &str) -> u64 {
    let exp = failures.saturating_sub(1).min(30);
    let delay = policy
        .base_ms
        .saturating_mul(1u64 << exp)
        .min(policy.max_ms);
    let spread = item_id
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    delay + spread % (delay / 8 + 1)
}

/// Whether a refusal may succeed later or never will. Only refusals of the item itself are
/// final: it is malformed or too large (`InvalidArgument`, `OutOfRange`), the receiver has no
/// such operation (`Unimplemented`), or its state rules the item out (`FailedPrecondition`,
/// `NotFound`: e.g. a response to a request it never sent, a record it may not receive).
///
/// Everything else is retried with back-off, the last error kept on the item for people to
/// see: the receiver down, slow or overloaded; our key not yet replicated to it or our clock
/// skewed (both `Unavailable` from the receiver); this node suspended, or not yet listed in the
/// receiver's replica (`PermissionDenied`); a signature it cannot check yet (a key change still
/// replicating, `Unauthenticated`); and `AlreadyExists`, the replay guard refusing an envelope
/// id, which says nothing of whether the item was applied (the next attempt has a fresh
/// envelope, and a receiver acknowledges an applied item again as a duplicate).
pub fn retryable(code: tonic::Code) -> bool {
    !matches!(
        code,
        tonic::Code::Ok
            | tonic::Code::InvalidArgument
            | tonic::Code::OutOfRange
            | tonic::Code::Unimplemented
            | tonic::Code::FailedPrecondition
            | tonic::Code::NotFound
            | tonic::Code::DataLoss
    )
}

/// Why `target` cannot be dialled now, from what the roster says of it: revoked is final;
/// suspended or not listed yet (the directory still replicating) waits for the roster.
fn undialable(target: &NodeId, barred: Option<Barred>) -> tonic::Status {
    match barred {
        Some(Barred::Revoked) => tonic::Status::failed_precondition(format!(
            "{target} is revoked; nothing is delivered to it"
        )),
        Some(b) => tonic::Status::unavailable(format!(
            "{target} is {}; delivery waits until the directory lists it as active",
            b.as_str()
        )),
        None => tonic::Status::unavailable(format!(
            "{target} is not in this node's roster yet; delivery waits for the directory"
        )),
    }
}

/// Runs until `shutdown`, delivering whatever is due and sleeping until the next item is due
/// or `wakeup` is notified.
pub async fn run(ctx: NodeContext, wakeup: Arc<Notify>, shutdown: CancellationToken) {
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let now = ctx.clock.now_millis();
        let due = {
            let c = ctx.clone();
            tokio::task::spawn_blocking(move || c.ledger.due(now, 64)).await
        };
        match due {
            Ok(Ok(items)) => {
                let mut tasks = tokio::task::JoinSet::new();
                for item in items {
                    tasks.spawn(attempt(ctx.clone(), item));
                }
                while tasks.join_next().await.is_some() {}
            }
            Ok(Err(e)) => tracing::error!(error = %e, "outbox unreadable"),
            Err(_) => tracing::error!("outbox task failed"),
        }
        let next = ctx.ledger.next_due_ms().ok().flatten();
        let now = ctx.clock.now_millis();
        let wait = match next {
            Some(t) if t <= now => continue,
            Some(t) => Duration::from_millis((t - now) as u64).min(Duration::from_secs(60)),
            None => Duration::from_secs(60),
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = wakeup.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Checks that an acknowledgement was signed by the node we delivered to, for this envelope.
fn verify_ack(
    ctx: &NodeContext,
    target: &NodeId,
    envelope_id: &str,
    mut ack: pb::DeliveryAck,
) -> Result<pb::DeliveryAck, tonic::Status> {
    let sig = ack.signature.take();
    ctx.roster
        .keys()
        .verify_response(target, envelope_id, &ack.encode_to_vec(), sig.as_ref())
        .map_err(|e| tonic::Status::unauthenticated(format!("acknowledgement refused: {e}")))?;
    Ok(ack)
}

/// The longest envelope id a receiver accepts, in bytes.
const MAX_ENVELOPE_ID: usize = 128;

/// The envelope id of one attempt: the item id (cut to fit, on a character boundary) for the
/// receiver's logs, `#`, and a random `nonce` that makes every attempt's envelope new.
fn envelope_id(item_id: &str, nonce: &str) -> String {
    let room = MAX_ENVELOPE_ID.saturating_sub(nonce.len() + 1);
    let mut cut = item_id.len().min(room);
    while !item_id.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}#{nonce}", &item_id[..cut])
}

/// Puts a fresh signed context with id `envelope_id`, bound to the request's body, into
/// `request`.
fn envelope<R: SignedRequest>(
    ctx: &NodeContext,
    envelope_id: &str,
    purpose: pb::Purpose,
    request: &mut R,
) {
    let rc = pb::RequestContext {
        request_id: envelope_id.to_owned(),
        requester_node: ctx.node_id.to_string(),
        agency_kind: pb::AgencyKind::Unspecified as i32,
        purpose: purpose as i32,
        legal_basis: String::new(),
        case_reference: String::new(),
        issued_at: ctx.clock.now_secs(),
        body_sha256: Vec::new(),
    };
    request.sign_with(&ctx.signing, rc);
}

async fn attempt(ctx: NodeContext, item: pb::OutboxItem) {
    // The attempt is counted and its envelope id stored before anything is sent.
    let eid = envelope_id(&item.id, &new_request_id());
    let c = ctx.clone();
    let started = tokio::task::spawn_blocking(move || c.ledger.begin_attempt(&item, &eid)).await;
    let item = match started {
        Ok(Ok(item)) => item,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "outbox update failed; attempt not made");
            return;
        }
        Err(_) => {
            tracing::error!("outbox task failed");
            return;
        }
    };
    let result = deliver(&ctx, &item, &item.last_envelope_id).await;
    let now = ctx.clock.now_secs();
    let c = ctx.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let status = match result {
            // Audited before the item leaves the outbox (see `audit::audit_then`): if the audit
            // fails, the item stays and the next attempt (a repeated delivery) audits again.
            Ok(effect) => {
                let event = Event {
                    peer: item.target_node.clone(),
                    request_id: item.id.clone(),
                    detail: format!("delivered after {} attempt(s)", item.attempts),
                    ..Event::new(EventKind::Delivery)
                };
                match c.audit.append(vec![event], now) {
                    Ok(_) => return c.ledger.delivered(&item.id, effect, now),
                    Err(e) => {
                        tracing::error!(error = %e, "audit of a delivery failed; delivering again");
                        tonic::Status::unavailable(format!("audit log: {e}"))
                    }
                }
            }
            Err(status) => status,
        };
        let reason = format!("{:?}: {}", status.code(), status.message());
        let next = retryable(status.code()).then(|| {
            c.clock.now_millis() + retry_delay_ms(c.retry, item.attempts, &item.id) as i64
        });
        if next.is_none() {
            tracing::warn!(item = %item.id, peer = %item.target_node, %reason, "delivery refused for good");
        }
        c.ledger.failed(&item, &reason, next)
    })
    .await;
    if let Ok(Err(e)) = outcome {
        tracing::error!(error = %e, "outbox update failed");
    }
}

async fn deliver(
    ctx: &NodeContext,
    item: &pb::OutboxItem,
    eid: &str,
) -> Result<Delivered, tonic::Status> {
    let target = NodeId::parse(&item.target_node)
        .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
    let mut client = ctx.peers.get(&target).map_err(|e| match e {
        ClientError::UnknownPeer(_) => {
            undialable(&target, ctx.roster.view().barred.get(&target).copied())
        }
        other => tonic::Status::unavailable(other.to_string()),
    })?;
    let timeout = ctx.fanout_deadline.max(Duration::from_secs(5));
    let call = async {
        match &item.payload {
            Some(pb::outbox_item::Payload::TraceRequest(req)) => {
                let mut msg = pb::SubmitTraceRequestMessage {
                    context: None,
                    request: Some(req.clone()),
                };
                envelope(ctx, eid, pb::Purpose::Tracing, &mut msg);
                let ack = client.submit_trace_request(msg).await?.into_inner();
                let ack = verify_ack(ctx, &target, eid, ack)?;
                Ok(Delivered::TraceRequest {
                    request_id: req.id.clone(),
                    status: pb::TraceStatus::try_from(ack.status)
                        .unwrap_or(pb::TraceStatus::Acknowledged),
                })
            }
            Some(pb::outbox_item::Payload::TraceResponse(resp)) => {
                let mut msg = pb::SubmitTraceResponseMessage {
                    context: None,
                    response: Some(resp.clone()),
                };
                envelope(ctx, eid, pb::Purpose::Tracing, &mut msg);
                let ack = client.submit_trace_response(msg).await?.into_inner();
                verify_ack(ctx, &target, eid, ack)?;
                Ok(Delivered::Nothing)
            }
            Some(pb::outbox_item::Payload::TraceInformation(info)) => {
                let mut msg = pb::SubmitTraceInformationMessage {
                    context: None,
                    information: Some(info.clone()),
                };
                envelope(ctx, eid, pb::Purpose::Tracing, &mut msg);
                let ack = client.submit_trace_information(msg).await?.into_inner();
                verify_ack(ctx, &target, eid, ack)?;
                Ok(Delivered::Nothing)
            }
            Some(pb::outbox_item::Payload::Retract(reference)) => {
                let mut msg = pb::RetractRequest {
                    context: None,
                    reference: Some(reference.clone()),
                };
                envelope(ctx, eid, pb::Purpose::CriminalInvestigation, &mut msg);
                let ack = client.retract(msg).await?.into_inner();
                verify_ack(ctx, &target, eid, ack)?;
                Ok(Delivered::Nothing)
            }
            Some(pb::outbox_item::Payload::Forward(copy)) => {
                let mut msg = pb::ShareForwardedRequest {
                    context: None,
                    record: Some(copy.clone()),
                };
                envelope(ctx, eid, pb::Purpose::CriminalInvestigation, &mut msg);
                let ack = client.share_forwarded(msg).await?.into_inner();
                verify_ack(ctx, &target, eid, ack)?;
                Ok(Delivered::Nothing)
            }
            None => Err(tonic::Status::invalid_argument("empty outbox item")),
        }
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| tonic::Status::deadline_exceeded("delivery timed out"))?
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_the_cap_with_bounded_spread() {
        let p = RetryPolicy {
            base_ms: 100,
            max_ms: 1000,
        };
        let d: Vec<u64> = (1..=6).map(|n| retry_delay_ms(p, n, "x")).collect();
        for (i, base) in [100u64, 200, 400, 800, 1000, 1000].iter().enumerate() {
            assert!(d[i] >= *base && d[i] <= base + base / 8, "{d:?}");
        }
        assert!(retry_delay_ms(p, 200, "y") <= 1000 + 125);
    }

    #[test]
    fn only_transient_refusals_are_retried() {
        assert!(retryable(tonic::Code::Unavailable));
        assert!(retryable(tonic::Code::DeadlineExceeded));
        // This node suspended at the receiver, or not yet in its replica: the roster changes.
        assert!(retryable(tonic::Code::PermissionDenied));
        assert!(retryable(tonic::Code::Unauthenticated));
        assert!(!retryable(tonic::Code::InvalidArgument));
        assert!(!retryable(tonic::Code::OutOfRange));
        assert!(!retryable(tonic::Code::FailedPrecondition));
        assert!(!retryable(tonic::Code::NotFound));
        // A seen envelope id is not final: the next attempt comes in a new envelope.
        assert!(retryable(tonic::Code::AlreadyExists));
    }

    #[test]
    fn an_unlisted_peer_is_waited_for_unless_revoked() {
        let n = NodeId::parse("FRA-POL").unwrap();
        for b in [None, Some(Barred::Suspended), Some(Barred::NotMember)] {
            assert!(retryable(undialable(&n, b).code()), "{b:?}");
        }
        let revoked = undialable(&n, Some(Barred::Revoked));
        assert!(!retryable(revoked.code()));
        assert!(revoked.message().contains("revoked"));
        // The receiver's transient envelope refusals are retried too.
        for e in [
            crate::envelope::EnvelopeError::UnknownKey("DEU-CUS".into()),
            crate::envelope::EnvelopeError::Stale {
                issued_at: 0,
                now: 1000,
            },
            crate::envelope::EnvelopeError::Busy,
            crate::envelope::EnvelopeError::Replayed("x".into()),
        ] {
            assert!(retryable(tonic::Status::from(e.clone()).code()), "{e:?}");
        }
    }

    #[test]
    fn every_attempt_has_a_new_envelope_id_that_a_receiver_accepts() {
        let a = envelope_id("treq:t1", &new_request_id());
        let b = envelope_id("treq:t1", &new_request_id());
        assert_ne!(a, b, "a retry must not reuse an envelope id");
        assert!(a.starts_with("treq:t1#"), "{a}");
        // Item ids carry peer-chosen request ids of up to 128 bytes: still within the limit,
        // cut on a character boundary.
        let long = format!("tresp:{}", "é".repeat(100));
        let id = envelope_id(&long, &new_request_id());
        assert!(id.len() <= MAX_ENVELOPE_ID, "{}", id.len());
        assert!(id.starts_with("tresp:é"));
    }
}
