//! What the peer service decides about each delivery, pure: whether the payload may come from
//! this caller (a trace request names its caller as requester and this node's country, a trace
//! response its caller as responder, a retraction its caller as owner or as the node that passed
//! the copy on; passed-on records are checked in [`crate::provenance`]), and what is audited when
//! it is applied. The
//! service in [`super`] reads and writes around these.

use tonic::Status;
use tracenet_proto::v1 as pb;

use crate::audit::{Event, EventKind};
use crate::country::CountryCode;
use crate::disclose::purpose_name;
use crate::ids::NodeId;
use crate::provenance::{Held, may_retract};

/// The longest request id a trace request may carry, in bytes.
pub const MAX_REQUEST_ID: usize = 128;

fn event(kind: EventKind, who: &NodeId, rctx: &pb::RequestContext, detail: String) -> Event {
    Event {
        peer: who.to_string(),
        request_id: rctx.request_id.clone(),
        purpose: purpose_name(rctx),
        detail,
        ..Event::new(kind)
    }
}

/// What `who` sent was refused (what is audited before the refusal is answered), with the
/// signed context it came with, when it had one.
pub fn refusal_event(who: &NodeId, reason: String, envelope: Option<pb::SignedContext>) -> Event {
    Event {
        peer: who.to_string(),
        detail: reason,
        envelope,
        ..Event::new(EventKind::Refusal)
    }
}

/// Whether `caller` may deliver this trace request to a node of country `own`.
pub fn check_trace_request(
    caller: &NodeId,
    own: Option<CountryCode>,
    req: &pb::TraceRequest,
) -> Result<(), Status> {
    if req.requester_node != caller.as_str() {
        return Err(Status::permission_denied(format!(
            "trace request names requester {} but the caller is {caller}",
            req.requester_node.chars().take(64).collect::<String>()
        )));
    }
    // A State's node traces for its State only; an organisation's node for none.
    let Some(own) = own else {
        return Err(Status::invalid_argument(
            "this node is an organisation's: it answers no trace requests",
        ));
    };
    if req.requested_country != own.as_str() {
        return Err(Status::invalid_argument(format!(
            "this node traces for {own}, not {}",
            req.requested_country.chars().take(8).collect::<String>()
        )));
    }
    if req.id.is_empty() || req.id.len() > MAX_REQUEST_ID {
        return Err(Status::invalid_argument("request id must be 1-128 bytes"));
    }
    Ok(())
}

/// Whether a trace request `caller` delivers is one already held (a repeated delivery of the
/// same item, e.g. a retry after the sender was killed before it saw the acknowledgement), given
/// what is held under its id. The id held for another requester is refused: it is not a repeat.
pub fn repeated_request(held: Option<&pb::TraceRecord>, caller: &NodeId) -> Result<bool, Status> {
    match held {
        None => Ok(false),
        Some(t) if t.counterpart_node == caller.as_str() => Ok(true),
        Some(_) => Err(Status::failed_precondition(
            "this trace request id is taken by another requester",
        )),
    }
}

/// The trace request `request_id` this node received, if it came from `caller`. Refused
/// alike whether it does not exist or came from another node, so a caller learns nothing of
/// others' requests.
pub fn received_from<'a>(
    held: Option<&'a pb::TraceRecord>,
    caller: &NodeId,
    request_id: &str,
) -> Result<&'a pb::TraceRecord, Status> {
    with_counterpart(held, caller, request_id, "received from")
}

/// The trace request `request_id` this node sent, if it went to `caller`; refused alike
/// whether it does not exist or went to another node.
pub fn sent_to<'a>(
    held: Option<&'a pb::TraceRecord>,
    caller: &NodeId,
    request_id: &str,
) -> Result<&'a pb::TraceRecord, Status> {
    with_counterpart(held, caller, request_id, "sent to")
}

/// `held` if `caller` is its counterpart, else NOT_FOUND saying it was not `relation` `caller`.
fn with_counterpart<'a>(
    held: Option<&'a pb::TraceRecord>,
    caller: &NodeId,
    request_id: &str,
    relation: &str,
) -> Result<&'a pb::TraceRecord, Status> {
    held.filter(|t| t.counterpart_node == caller.as_str())
        .ok_or_else(|| {
            Status::not_found(format!(
                "no trace request {} was {relation} {caller}",
                request_id.chars().take(128).collect::<String>()
            ))
        })
}

/// A trace request applied (or recognised as a repeated delivery).
pub fn trace_request_event(
    who: &NodeId,
    rctx: &pb::RequestContext,
    req: &pb::TraceRequest,
    duplicate: bool,
) -> Event {
    Event {
        request_id: req.id.clone(),
        ..event(
            EventKind::RequestReceived,
            who,
            rctx,
            if duplicate {
                "trace request (repeated delivery, already applied)".into()
            } else {
                "trace request received and acknowledged".into()
            },
        )
    }
}

/// Whether `caller` may deliver this trace response: it must be the responder.
pub fn check_trace_response(caller: &NodeId, resp: &pb::TraceResponse) -> Result<(), Status> {
    if resp.responder_node != caller.as_str() {
        return Err(Status::permission_denied(
            "the response names another responder",
        ));
    }
    Ok(())
}

/// Whether the response part `part` is already held on `t` (0: the one final answer).
pub fn response_held(t: &pb::TraceRecord, part: u32) -> bool {
    if part == 0 {
        t.response.is_some()
    } else {
        t.messages.iter().any(|m| m.part == part)
    }
}

/// Whether `caller` may deliver this information: it must be the requester it names (whether
/// it is the requester of that trace is checked against the trace held, in the ledger).
pub fn check_trace_information(caller: &NodeId, info: &pb::TraceInformation) -> Result<(), Status> {
    if info.requester_node != caller.as_str() {
        return Err(Status::permission_denied(
            "the information names another requester",
        ));
    }
    Ok(())
}

/// Information for a trace request applied (or recognised as a repeated delivery).
pub fn trace_information_event(
    who: &NodeId,
    rctx: &pb::RequestContext,
    info: &pb::TraceInformation,
    repeated: bool,
) -> Event {
    Event {
        request_id: info.request_id.clone(),
        ..event(
            EventKind::Delivery,
            who,
            rctx,
            if repeated {
                format!(
                    "trace information part {} (repeated delivery, already applied)",
                    info.part
                )
            } else {
                format!("trace information part {} received", info.part)
            },
        )
    }
}

/// A trace response applied (`repeated`: one was already held, this delivery changes nothing).
pub fn trace_response_event(
    who: &NodeId,
    rctx: &pb::RequestContext,
    resp: &pb::TraceResponse,
    repeated: bool,
) -> Event {
    let outcome = pb::TraceStatus::try_from(resp.outcome)
        .unwrap_or(pb::TraceStatus::Unspecified)
        .as_str_name();
    Event {
        request_id: resp.request_id.clone(),
        ..event(
            EventKind::Delivery,
            who,
            rctx,
            if repeated {
                format!("trace response (repeated delivery, already applied): {outcome}")
            } else {
                format!("trace response received: {outcome}")
            },
        )
    }
}

/// A passed-on record kept, or not, given what was held (see [`Held`]).
pub fn forwarded_event(
    who: &NodeId,
    rctx: &pb::RequestContext,
    copy: &pb::ReceivedRecord,
    held: Held,
) -> Event {
    let reference = copy.reference.clone().unwrap_or_default();
    let again = match held {
        Held::New => "",
        Held::Replace => " (replacing an earlier passed-on copy)",
        Held::Same => " (repeated delivery, already held)",
        Held::FromOwner => " (not kept: the copy received from the owner is kept)",
    };
    Event {
        record_refs: vec![reference.reference],
        ..event(
            EventKind::Delivery,
            who,
            rctx,
            format!(
                "record of {} passed on by {who}{again}",
                reference.owner_node
            ),
        )
    }
}

/// Whether `caller` may retract the copy held of this record: its owner may, and the node that
/// passed the copy held here on to us (relaying the owner's retraction).
pub fn check_retraction(
    caller: &NodeId,
    reference: &pb::RecordRef,
    held: Option<&pb::ReceivedRecord>,
) -> Result<(), Status> {
    if !may_retract(caller, reference, held) {
        return Err(Status::permission_denied(
            "only a record's owner, or the node that passed the copy on, may retract it",
        ));
    }
    Ok(())
}

/// A retraction applied (`existed`: a copy was held and is now deleted), relayed to the nodes
/// this one had passed the copy on to (`relayed_to`).
pub fn retraction_event(
    who: &NodeId,
    rctx: &pb::RequestContext,
    reference: &pb::RecordRef,
    existed: bool,
    relayed_to: &[String],
) -> Event {
    let mut detail = if existed {
        "received copy deleted".to_owned()
    } else {
        "no copy held (already deleted or never received)".to_owned()
    };
    if existed && !relayed_to.is_empty() {
        detail.push_str(&format!(
            "; retraction relayed to {}",
            relayed_to.join(", ")
        ));
    }
    Event {
        record_refs: vec![reference.reference.clone()],
        ..event(EventKind::RetractionApplied, who, rctx, detail)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use tonic::Code;

    use super::*;
    use crate::fixtures::{context, country, node};

    fn trace_request(requester: &str, requested: &str, id: &str) -> pb::TraceRequest {
        pb::TraceRequest {
            id: id.into(),
            requester_node: requester.into(),
            requested_country: requested.into(),
            ..Default::default()
        }
    }

    fn code<T: std::fmt::Debug>(r: Result<T, Status>) -> Code {
        r.unwrap_err().code()
    }

    #[test]
    fn only_the_counterpart_may_add_to_a_trace_and_others_learn_nothing_of_it() {
        let fra_trace = pb::TraceRecord {
            counterpart_node: "FRA-POL".into(),
            ..Default::default()
        };
        let (fra, deu) = (node("FRA-POL"), node("DEU-BKA"));
        assert!(received_from(Some(&fra_trace), &fra, "t1").is_ok());
        assert!(sent_to(Some(&fra_trace), &fra, "t1").is_ok());
        // Another node is refused exactly as if the request did not exist.
        for check in [received_from, sent_to] {
            let other = check(Some(&fra_trace), &deu, "t1").unwrap_err();
            let none = check(None, &deu, "t1").unwrap_err();
            assert_eq!(other.code(), Code::NotFound);
            assert_eq!(other.message(), none.message());
            assert!(!other.message().contains("FRA-POL"), "{other:?}");
        }
    }

    #[test]
    fn a_trace_request_must_come_from_its_requester_for_this_country() {
        let (deu, fra) = (node("DEU-BKA"), Some(country("FRA")));
        assert!(check_trace_request(&deu, fra, &trace_request("DEU-BKA", "FRA", "t1")).is_ok());
        // Naming another requester than the certificate says is refused.
        let spoofed = check_trace_request(&deu, fra, &trace_request("ITA-POL", "FRA", "t1"));
        assert_eq!(code(spoofed), Code::PermissionDenied);
        // A request for another country is not this node's to answer.
        let elsewhere = check_trace_request(&deu, fra, &trace_request("DEU-BKA", "ESP", "t1"));
        assert_eq!(code(elsewhere), Code::InvalidArgument);
        for id in [String::new(), "x".repeat(MAX_REQUEST_ID + 1)] {
            let bad = check_trace_request(&deu, fra, &trace_request("DEU-BKA", "FRA", &id));
            assert_eq!(code(bad), Code::InvalidArgument);
        }
        let longest = "x".repeat(MAX_REQUEST_ID);
        assert!(check_trace_request(&deu, fra, &trace_request("DEU-BKA", "FRA", &longest)).is_ok());
        // An organisation's node answers no trace requests, whatever its seat.
        let hub = check_trace_request(&deu, None, &trace_request("DEU-BKA", "FRA", "t1"));
        assert_eq!(code(hub), Code::InvalidArgument);
    }

    #[test]
    fn a_refused_requester_name_is_cut_short_in_the_message() {
        let long = format!("ITA-{}", "X".repeat(500));
        let s = check_trace_request(
            &node("DEU-BKA"),
            Some(country("FRA")),
            &trace_request(&long, "FRA", "t"),
        )
        .unwrap_err();
        assert!(s.message().len() < 200, "{}", s.message());
    }

    #[test]
    fn only_the_responder_delivers_its_response() {
        let resp = pb::TraceResponse {
            request_id: "t1".into(),
            responder_node: "DEU-BKA".into(),
            outcome: pb::TraceStatus::Declined as i32,
            ..Default::default()
        };
        assert!(check_trace_response(&node("DEU-BKA"), &resp).is_ok());
        assert_eq!(
            code(check_trace_response(&node("ITA-POL"), &resp)),
            Code::PermissionDenied
        );
        let ctx = context("DEU-BKA", pb::Purpose::Tracing);
        let e = trace_response_event(&node("DEU-BKA"), &ctx, &resp, false);
        assert_eq!(e.kind, EventKind::Delivery);
        assert_eq!(e.request_id, "t1");
        assert_eq!(e.detail, "trace response received: TRACE_STATUS_DECLINED");
        let again = trace_response_event(&node("DEU-BKA"), &ctx, &resp, true);
        assert_eq!(
            again.detail,
            "trace response (repeated delivery, already applied): TRACE_STATUS_DECLINED"
        );
    }

    #[test]
    fn only_the_owner_retracts() {
        let reference = pb::RecordRef {
            owner_node: "DEU-BKA".into(),
            reference: "r1".into(),
        };
        assert!(check_retraction(&node("DEU-BKA"), &reference, None).is_ok());
        assert_eq!(
            code(check_retraction(&node("ITA-POL"), &reference, None)),
            Code::PermissionDenied
        );
        let passed_on = pb::ReceivedRecord {
            forwarded_by: "ITA-POL".into(),
            ..Default::default()
        };
        assert!(check_retraction(&node("ITA-POL"), &reference, Some(&passed_on)).is_ok());
        let ctx = context("DEU-BKA", pb::Purpose::CriminalInvestigation);
        let e = retraction_event(&node("DEU-BKA"), &ctx, &reference, false, &[]);
        assert_eq!(e.kind, EventKind::RetractionApplied);
        let relayed = retraction_event(
            &node("DEU-BKA"),
            &ctx,
            &reference,
            true,
            &["ITA-POL".into()],
        );
        assert_eq!(
            relayed.detail,
            "received copy deleted; retraction relayed to ITA-POL"
        );
        assert_eq!(
            (e.request_id.as_str(), e.record_refs.as_slice()),
            ("req-1", &["r1".to_owned()][..])
        );
    }

    #[test]
    fn passed_on_records_are_audited_with_what_was_kept() {
        let caller = node("DEU-BKA");
        let kept = pb::ReceivedRecord {
            reference: Some(pb::RecordRef {
                owner_node: "ITA-POL".into(),
                reference: "r1".into(),
            }),
            forwarded_by: "DEU-BKA".into(),
            ..Default::default()
        };
        let ctx = context("DEU-BKA", pb::Purpose::CriminalInvestigation);
        let e = forwarded_event(&caller, &ctx, &kept, Held::New);
        assert_eq!(e.detail, "record of ITA-POL passed on by DEU-BKA");
        assert_eq!(e.purpose, "PURPOSE_CRIMINAL_INVESTIGATION");
        let again = forwarded_event(&caller, &ctx, &kept, Held::Same);
        assert_eq!(
            again.detail,
            "record of ITA-POL passed on by DEU-BKA (repeated delivery, already held)"
        );
        let direct = forwarded_event(&caller, &ctx, &kept, Held::FromOwner);
        assert!(direct.detail.contains("not kept"), "{}", direct.detail);
    }

    #[test]
    fn a_redelivered_item_is_recognised_as_the_same_delivery() {
        let held = pb::TraceRecord {
            counterpart_node: "DEU-BKA".into(),
            ..Default::default()
        };
        assert!(!repeated_request(None, &node("DEU-BKA")).unwrap());
        assert!(repeated_request(Some(&held), &node("DEU-BKA")).unwrap());
        assert_eq!(
            code(repeated_request(Some(&held), &node("ITA-POL"))),
            Code::FailedPrecondition
        );
    }

    #[test]
    fn trace_request_events_say_whether_the_delivery_repeated() {
        let ctx = context("DEU-BKA", pb::Purpose::Tracing);
        let req = trace_request("DEU-BKA", "FRA", "t1");
        let first = trace_request_event(&node("DEU-BKA"), &ctx, &req, false);
        let again = trace_request_event(&node("DEU-BKA"), &ctx, &req, true);
        assert_eq!(
            (first.kind, first.request_id.as_str()),
            (EventKind::RequestReceived, "t1")
        );
        assert_ne!(first.detail, again.detail);
        assert_eq!(
            refusal_event(&node("DEU-BKA"), "stale".into(), None).kind,
            EventKind::Refusal
        );
    }
}
