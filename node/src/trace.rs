//! The trace-request workflow's rules (ITI section VI), pure: due dates from the responder's
//! published response times, which status may follow which, and when a request is overdue.
//!
//! ```text
//! outgoing: SENT ─ack─► ACKNOWLEDGED ─response─► ANSWERED | RESTRICTED | DECLINED
//! incoming: RECEIVED ─auto─► ACKNOWLEDGED ─officer─► ANSWERED | RESTRICTED | DECLINED
//! interim:  ACKNOWLEDGED ⇄ MORE_INFORMATION_REQUESTED (asked ─► information provided)
//!           ACKNOWLEDGED ─► PARTIALLY_ANSWERED ─► ... ─► a final status
//! ```
//!
//! The interim statuses never end a request; an answer in parts numbers each message
//! ([`next_part`]) so each is applied once, in whatever order the deliveries arrive.

use serde::Deserialize;
use tracenet_proto::v1 as pb;

use crate::ids::NodeId;

/// Which side of a trace request this node is on. Stored as text in every trace record and in
/// the ledger's keys, so [`TraceDirection::as_str`] is part of the stored format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraceDirection {
    /// A request this node sent.
    Outgoing,
    /// A request this node received.
    Incoming,
}

impl TraceDirection {
    /// The stored and displayed spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            TraceDirection::Outgoing => "outgoing",
            TraceDirection::Incoming => "incoming",
        }
    }

    /// The direction spelled `s`, if any.
    pub fn parse(s: &str) -> Option<TraceDirection> {
        [TraceDirection::Outgoing, TraceDirection::Incoming]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

impl std::fmt::Display for TraceDirection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `direction` of traces this node sent (the stored spelling).
pub const OUTGOING: &str = TraceDirection::Outgoing.as_str();
/// `direction` of traces this node received (the stored spelling).
pub const INCOMING: &str = TraceDirection::Incoming.as_str();

/// A node's published trace service settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSettings {
    /// Days to answer a routine request (default 30).
    #[serde(default = "routine")]
    pub routine_days: u32,
    /// Days to answer an urgent request (default 7).
    #[serde(default = "urgent")]
    pub urgent_days: u32,
    /// Whom to contact when a request is overdue.
    #[serde(default)]
    pub escalation_contact: String,
    /// Answer incoming requests automatically from this node's own seizure records, where the
    /// sharing policy shares trace results with the requester (default false).
    #[serde(default)]
    pub auto_answer_from_records: bool,
}

fn routine() -> u32 {
    30
}
fn urgent() -> u32 {
    7
}

impl Default for TraceSettings {
    fn default() -> Self {
        TraceSettings {
            routine_days: routine(),
            urgent_days: urgent(),
            escalation_contact: String::new(),
            auto_answer_from_records: false,
        }
    }
}

/// When a request created at `created` (Unix seconds) is due.
pub fn due_at(created: i64, urgency: pb::Urgency, s: &TraceSettings) -> i64 {
    let days = match urgency {
        pb::Urgency::Urgent => s.urgent_days,
        _ => s.routine_days,
    };
    created + i64::from(days) * 86_400
}

/// A peer's trace request as this node keeps it: created when it arrived (`now`) and due by
/// this node's own published response times (`s`), never by the requester's clock or its say;
/// an urgency this node does not know counts as routine.
pub fn as_received(mut req: pb::TraceRequest, now: i64, s: &TraceSettings) -> pb::TraceRequest {
    let urgency = match pb::Urgency::try_from(req.urgency) {
        Ok(pb::Urgency::Urgent) => pb::Urgency::Urgent,
        _ => pb::Urgency::Routine,
    };
    req.urgency = urgency as i32;
    req.created_at = now;
    req.due_at = due_at(now, urgency, s);
    req
}

/// The proto name of a status (for messages).
pub fn status_name(status: pb::TraceStatus) -> &'static str {
    status.as_str_name()
}

/// Whether the status ends the workflow.
pub fn is_final(status: pb::TraceStatus) -> bool {
    matches!(
        status,
        pb::TraceStatus::Answered | pb::TraceStatus::Restricted | pb::TraceStatus::Declined
    )
}

/// Whether the status is an interim one: the responder asked for more information or answered
/// in part; the request stays open.
pub fn is_interim(status: pb::TraceStatus) -> bool {
    matches!(
        status,
        pb::TraceStatus::MoreInformationRequested | pb::TraceStatus::PartiallyAnswered
    )
}

fn rank(status: pb::TraceStatus) -> u8 {
    match status {
        pb::TraceStatus::Unspecified => 0,
        pb::TraceStatus::Sent | pb::TraceStatus::Received => 1,
        pb::TraceStatus::Acknowledged
        | pb::TraceStatus::MoreInformationRequested
        | pb::TraceStatus::PartiallyAnswered => 2,
        _ => 3,
    }
}

/// The part number of the responder's next message on `rec`: 0 for a final answer that is the
/// only message (as before answers came in parts, so older requesters read it unchanged), else
/// one more than the messages already sent.
pub fn next_part(rec: &pb::TraceRecord, outcome: pb::TraceStatus) -> u32 {
    if is_final(outcome) && rec.messages.is_empty() {
        0
    } else {
        u32::try_from(rec.messages.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }
}

/// The highest part number among the responder's messages held.
pub fn last_part(rec: &pb::TraceRecord) -> u32 {
    rec.messages.iter().map(|m| m.part).max().unwrap_or(0)
}

/// Back to ACKNOWLEDGED from MORE_INFORMATION_REQUESTED once the information is provided.
/// Refused from any other status.
pub fn resume(rec: &mut pb::TraceRecord, at: i64, note: &str) -> Result<(), BadTransition> {
    let from = pb::TraceStatus::try_from(rec.status).unwrap_or(pb::TraceStatus::Unspecified);
    if from != pb::TraceStatus::MoreInformationRequested {
        return Err(BadTransition {
            from: from.as_str_name(),
            to: pb::TraceStatus::Acknowledged.as_str_name(),
        });
    }
    rec.status = pb::TraceStatus::Acknowledged as i32;
    rec.history.push(pb::TraceStatusChange {
        status: pb::TraceStatus::Acknowledged as i32,
        at,
        note: note.to_owned(),
    });
    Ok(())
}

/// Why a status change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a trace request cannot go from {from} to {to}")]
pub struct BadTransition {
    /// Current status.
    pub from: &'static str,
    /// Requested status.
    pub to: &'static str,
}

/// What a status change amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The status moves forward.
    Advance,
    /// Already there (a repeated delivery): nothing to do.
    Unchanged,
}

/// Moves `rec` to `to` at `at`, recording it in the history. Statuses only move forward (the
/// interim ones may follow each other, and [`resume`] goes back from a request for more
/// information); a final status never changes.
pub fn transition(
    rec: &mut pb::TraceRecord,
    to: pb::TraceStatus,
    at: i64,
    note: &str,
) -> Result<Transition, BadTransition> {
    let from = pb::TraceStatus::try_from(rec.status).unwrap_or(pb::TraceStatus::Unspecified);
    if from == to {
        return Ok(Transition::Unchanged);
    }
    // A late acknowledgement after an answer or interim message arrived is not an error, just
    // old news.
    if to == pb::TraceStatus::Acknowledged && (is_final(from) || is_interim(from)) {
        return Ok(Transition::Unchanged);
    }
    let sideways = rank(to) == rank(from) && is_interim(to);
    if is_final(from) || (rank(to) <= rank(from) && !sideways) {
        return Err(BadTransition {
            from: from.as_str_name(),
            to: to.as_str_name(),
        });
    }
    rec.status = to as i32;
    rec.history.push(pb::TraceStatusChange {
        status: to as i32,
        at,
        note: note.to_owned(),
    });
    Ok(Transition::Advance)
}

/// A new trace record: `request`, exchanged with `counterpart` in `direction`, whose history
/// starts with `first` (which sets its status).
pub fn new_record(
    request: pb::TraceRequest,
    direction: TraceDirection,
    counterpart: &NodeId,
    escalation_contact: &str,
    first: pb::TraceStatusChange,
) -> pb::TraceRecord {
    pb::TraceRecord {
        request: Some(request),
        status: first.status,
        history: vec![first],
        direction: direction.as_str().to_owned(),
        counterpart_node: counterpart.to_string(),
        escalation_contact: escalation_contact.to_owned(),
        ..Default::default()
    }
}

/// The record of a trace request received from `from` at `now`: received, and acknowledged
/// automatically on receipt (ITI: acknowledge within a reasonable time).
pub fn received(
    request: &pb::TraceRequest,
    from: &NodeId,
    now: i64,
    escalation_contact: &str,
) -> pb::TraceRecord {
    let mut rec = new_record(
        request.clone(),
        TraceDirection::Incoming,
        from,
        escalation_contact,
        pb::TraceStatusChange {
            status: pb::TraceStatus::Received as i32,
            at: now,
            note: format!("received from {from}"),
        },
    );
    // RECEIVED always moves forward to ACKNOWLEDGED, so this cannot be refused.
    let _ = transition(
        &mut rec,
        pb::TraceStatus::Acknowledged,
        now,
        "acknowledged automatically",
    );
    rec
}

/// Whether a request is past due and still open.
pub fn is_overdue(rec: &pb::TraceRecord, now: i64) -> bool {
    let status = pb::TraceStatus::try_from(rec.status).unwrap_or(pb::TraceStatus::Unspecified);
    let due = rec.request.as_ref().map_or(i64::MAX, |r| r.due_at);
    !is_final(status) && now > due
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use pb::TraceStatus as S;

    #[test]
    fn a_received_request_is_dated_and_due_by_the_receiver() {
        let s = TraceSettings {
            routine_days: 30,
            urgent_days: 2,
            ..TraceSettings::default()
        };
        let forged = pb::TraceRequest {
            created_at: i64::MIN,
            due_at: 1,
            urgency: 99,
            ..Default::default()
        };
        let kept = as_received(forged, 1000, &s);
        assert_eq!((kept.created_at, kept.due_at), (1000, 1000 + 30 * 86_400));
        assert_eq!(kept.urgency, pb::Urgency::Routine as i32);
        let urgent = pb::TraceRequest {
            urgency: pb::Urgency::Urgent as i32,
            due_at: i64::MAX,
            ..Default::default()
        };
        assert_eq!(as_received(urgent, 10, &s).due_at, 10 + 2 * 86_400);
    }

    fn rec(status: S, due: i64) -> pb::TraceRecord {
        pb::TraceRecord {
            request: Some(pb::TraceRequest {
                due_at: due,
                ..Default::default()
            }),
            status: status as i32,
            ..Default::default()
        }
    }

    #[test]
    fn directions_keep_their_stored_spelling() {
        for (d, s) in [
            (TraceDirection::Outgoing, "outgoing"),
            (TraceDirection::Incoming, "incoming"),
        ] {
            assert_eq!(d.as_str(), s);
            assert_eq!(TraceDirection::parse(s), Some(d));
        }
        assert_eq!(TraceDirection::parse(""), None);
    }

    #[test]
    fn due_dates_follow_the_published_response_times() {
        let s = TraceSettings {
            routine_days: 30,
            urgent_days: 2,
            escalation_contact: String::new(),
            auto_answer_from_records: false,
        };
        assert_eq!(due_at(1000, pb::Urgency::Urgent, &s), 1000 + 2 * 86_400);
        assert_eq!(due_at(1000, pb::Urgency::Routine, &s), 1000 + 30 * 86_400);
        assert_eq!(
            due_at(1000, pb::Urgency::Unspecified, &s),
            1000 + 30 * 86_400
        );
    }

    #[test]
    fn statuses_only_move_forward_and_final_is_final() {
        let mut r = rec(S::Sent, 0);
        assert_eq!(
            transition(&mut r, S::Acknowledged, 1, "ack").unwrap(),
            Transition::Advance
        );
        assert_eq!(
            transition(&mut r, S::Acknowledged, 2, "ack").unwrap(),
            Transition::Unchanged
        );
        assert!(transition(&mut r, S::Sent, 3, "").is_err());
        assert_eq!(
            transition(&mut r, S::Answered, 4, "").unwrap(),
            Transition::Advance
        );
        assert!(transition(&mut r, S::Declined, 5, "").is_err());
        assert_eq!(
            transition(&mut r, S::Acknowledged, 6, "late ack").unwrap(),
            Transition::Unchanged
        );
        let statuses: Vec<i32> = r.history.iter().map(|h| h.status).collect();
        assert_eq!(statuses, vec![S::Acknowledged as i32, S::Answered as i32]);

        // A response may overtake the acknowledgement.
        let mut r = rec(S::Sent, 0);
        assert_eq!(
            transition(&mut r, S::Restricted, 1, "").unwrap(),
            Transition::Advance
        );
    }

    #[test]
    fn interim_statuses_keep_the_request_open_and_resume_after_information() {
        let mut r = rec(S::Acknowledged, 0);
        assert_eq!(
            transition(&mut r, S::MoreInformationRequested, 1, "asked").unwrap(),
            Transition::Advance
        );
        // A late acknowledgement does not undo the question.
        assert_eq!(
            transition(&mut r, S::Acknowledged, 2, "late").unwrap(),
            Transition::Unchanged
        );
        assert_eq!(r.status, S::MoreInformationRequested as i32);
        resume(&mut r, 3, "information provided").unwrap();
        assert_eq!(r.status, S::Acknowledged as i32);
        assert!(resume(&mut r, 4, "again").is_err());
        transition(&mut r, S::PartiallyAnswered, 5, "part 1").unwrap();
        transition(&mut r, S::MoreInformationRequested, 6, "asked again").unwrap();
        transition(&mut r, S::Answered, 7, "").unwrap();
        assert!(transition(&mut r, S::PartiallyAnswered, 8, "").is_err());
        assert!(is_interim(S::PartiallyAnswered) && !is_final(S::PartiallyAnswered));
    }

    #[test]
    fn parts_are_numbered_from_one_unless_the_answer_is_whole() {
        let mut r = rec(S::Acknowledged, 0);
        assert_eq!(next_part(&r, S::Answered), 0);
        assert_eq!(next_part(&r, S::MoreInformationRequested), 1);
        r.messages.push(pb::TraceResponse {
            part: 1,
            ..Default::default()
        });
        assert_eq!(next_part(&r, S::Answered), 2);
        assert_eq!(last_part(&r), 1);
    }

    #[test]
    fn a_received_request_is_acknowledged_on_receipt() {
        let from = NodeId::parse("FRA-POL").unwrap();
        let req = pb::TraceRequest {
            id: "t1".into(),
            due_at: 99,
            ..Default::default()
        };
        let r = received(&req, &from, 10, "desk");
        assert_eq!(r.request.as_ref(), Some(&req));
        assert_eq!(r.status, S::Acknowledged as i32);
        assert_eq!(
            (r.direction.as_str(), r.counterpart_node.as_str()),
            (INCOMING, "FRA-POL")
        );
        assert_eq!(r.escalation_contact, "desk");
        let steps: Vec<(i32, i64, &str)> = r
            .history
            .iter()
            .map(|h| (h.status, h.at, h.note.as_str()))
            .collect();
        assert_eq!(
            steps,
            vec![
                (S::Received as i32, 10, "received from FRA-POL"),
                (S::Acknowledged as i32, 10, "acknowledged automatically")
            ]
        );
        assert!(r.response.is_none() && !r.overdue && r.delivery_error.is_empty());
    }

    #[test]
    fn overdue_means_past_due_and_still_open() {
        assert!(is_overdue(&rec(S::Acknowledged, 100), 101));
        assert!(!is_overdue(&rec(S::Acknowledged, 100), 100));
        assert!(!is_overdue(&rec(S::Answered, 100), 1000));
        assert!(is_overdue(&rec(S::Sent, 100), 1000));
    }
}
