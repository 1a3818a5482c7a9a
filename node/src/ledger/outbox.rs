//! The durable outbox: deliveries to other nodes waiting for their turn, what is due, and what a
//! delivery (or a failed attempt) changes.
//!
//! An item stays until its receiver acknowledges it; a delivery given up on stays too, marked
//! `dead`, for people to see. What an acknowledgement of a trace request means for the trace is
//! decided here and applied atomically with the item's removal.

use tracenet_proto::v1 as pb;

use super::{Ledger, LedgerError, OUTGOING, TraceUpdate};
use crate::trace::{self, Transition};

/// What delivering an outbox item changes once the peer has acknowledged it.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivered {
    /// A trace request reached the requested node, which reports this status.
    TraceRequest {
        /// The request.
        request_id: String,
        /// Status reported by the receiver.
        status: pb::TraceStatus,
    },
    /// Nothing further to record (responses, retractions).
    Nothing,
}

impl Ledger {
    /// Queues deliveries (durably).
    pub fn enqueue(&self, items: &[pb::OutboxItem]) -> Result<(), LedgerError> {
        self.storage.put_outbox(items)
    }

    /// Items due at `now_ms`, at most `limit`.
    pub fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<pb::OutboxItem>, LedgerError> {
        let mut out = Vec::new();
        for item in self.storage.outbox() {
            let item = item?;
            if !item.dead && item.next_attempt_at_ms <= now_ms {
                out.push(item);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The earliest time anything is due, if anything is pending.
    pub fn next_due_ms(&self) -> Result<Option<i64>, LedgerError> {
        let mut next: Option<i64> = None;
        for item in self.storage.outbox() {
            let item = item?;
            if !item.dead {
                next =
                    Some(next.map_or(item.next_attempt_at_ms, |n| n.min(item.next_attempt_at_ms)));
            }
        }
        Ok(next)
    }

    /// All outbox items (pending and given up).
    pub fn outbox_items(&self) -> Result<Vec<pb::OutboxItem>, LedgerError> {
        self.storage.outbox().collect()
    }

    /// Number of deliveries still to make.
    pub fn pending(&self) -> Result<u64, LedgerError> {
        Ok(self.outbox_items()?.iter().filter(|i| !i.dead).count() as u64)
    }

    /// Counts an attempt and records its envelope id durably, before the attempt is sent: an
    /// envelope id is then never sent twice, whatever crash follows. Returns the item as stored,
    /// which the attempt's outcome ([`Ledger::delivered`], [`Ledger::failed`]) continues from.
    pub fn begin_attempt(
        &self,
        item: &pb::OutboxItem,
        envelope_id: &str,
    ) -> Result<pb::OutboxItem, LedgerError> {
        let mut started = item.clone();
        started.attempts = started.attempts.saturating_add(1);
        started.last_envelope_id = envelope_id.to_owned();
        self.storage.put_outbox(std::slice::from_ref(&started))?;
        Ok(started)
    }

    /// Removes a delivered item and applies what its acknowledgement means, atomically.
    ///
    /// An acknowledgement moves an outgoing trace to ACKNOWLEDGED and no further, whatever
    /// status it reports: a final status (answered, restricted, declined) comes only with a
    /// response, so a receiver cannot close the sender's trace by its word in an ack.
    pub fn delivered(&self, item_id: &str, effect: Delivered, now: i64) -> Result<(), LedgerError> {
        let Delivered::TraceRequest { request_id, status } = effect else {
            return self.storage.remove_outbox(item_id);
        };
        if status != pb::TraceStatus::Acknowledged {
            tracing::debug!(reported = ?status, "acknowledgement status taken as ACKNOWLEDGED");
        }
        let status = pb::TraceStatus::Acknowledged;
        self.update(OUTGOING, &request_id, |current| {
            let mut update = TraceUpdate {
                outbox_remove: vec![item_id.to_owned()],
                ..Default::default()
            };
            if let Some(mut rec) = current
                && trace::transition(&mut rec, status, now, "acknowledged by the requested node")
                    == Ok(Transition::Advance)
            {
                update.trace = Some(rec);
            }
            Ok((update, ()))
        })
    }

    /// Schedules another attempt, or gives up on an item (`dead`), recording the error; a
    /// trace request given up on shows the error on the trace. `item` is the item as
    /// [`Ledger::begin_attempt`] stored it (the attempt is already counted).
    pub fn failed(
        &self,
        item: &pb::OutboxItem,
        error: &str,
        next_attempt_at_ms: Option<i64>,
    ) -> Result<(), LedgerError> {
        let mut updated = item.clone();
        updated.last_error = error.to_owned();
        match next_attempt_at_ms {
            Some(t) => updated.next_attempt_at_ms = t,
            None => updated.dead = true,
        }
        let request_id = match &updated.payload {
            Some(pb::outbox_item::Payload::TraceRequest(req)) if updated.dead => req.id.clone(),
            _ => return self.storage.put_outbox(std::slice::from_ref(&updated)),
        };
        self.update(OUTGOING, &request_id, |current| {
            let update = TraceUpdate {
                trace: current.map(|mut rec| {
                    rec.delivery_error = error.to_owned();
                    rec
                }),
                outbox_put: vec![updated.clone()],
                ..Default::default()
            };
            Ok((update, ()))
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::ledger::testing::{item, ledger, node, request};

    #[test]
    fn an_outgoing_request_moves_with_its_deliveries() {
        let l = ledger();
        let rec = pb::TraceRecord {
            request: Some(request("t2")),
            status: pb::TraceStatus::Sent as i32,
            direction: OUTGOING.into(),
            counterpart_node: "DEU-CUS".into(),
            ..Default::default()
        };
        let it = item(
            "treq:t2",
            pb::outbox_item::Payload::TraceRequest(request("t2")),
        );
        l.create_outgoing(&rec, &it).unwrap();
        assert_eq!(l.due(0, 10).unwrap().len(), 1);
        l.failed(&it, "unavailable", Some(500)).unwrap();
        assert!(l.due(100, 10).unwrap().is_empty());
        assert_eq!(l.next_due_ms().unwrap(), Some(500));
        l.delivered(
            "treq:t2",
            Delivered::TraceRequest {
                request_id: "t2".into(),
                status: pb::TraceStatus::Acknowledged,
            },
            20,
        )
        .unwrap();
        assert_eq!(l.pending().unwrap(), 0);
        let got = l.get_trace(OUTGOING, "t2", 30).unwrap().unwrap();
        assert_eq!(got.status, pb::TraceStatus::Acknowledged as i32);

        // Only the requested node may answer, and only once.
        let resp = pb::TraceResponse {
            request_id: "t2".into(),
            outcome: pb::TraceStatus::Answered as i32,
            ..Default::default()
        };
        assert!(matches!(
            l.receive_response(&resp, &node("ITA-POL"), 40),
            Err(LedgerError::NotFound(_))
        ));
        assert_eq!(
            l.receive_response(&resp, &node("DEU-CUS"), 40).unwrap(),
            (false, pb::TraceStatus::Answered)
        );
        assert!(l.receive_response(&resp, &node("DEU-CUS"), 41).unwrap().0);
    }

    #[test]
    fn an_ack_never_closes_a_trace_and_attempts_are_counted_before_sending() {
        let l = ledger();
        let rec = pb::TraceRecord {
            request: Some(request("t9")),
            status: pb::TraceStatus::Sent as i32,
            direction: OUTGOING.into(),
            counterpart_node: "DEU-CUS".into(),
            ..Default::default()
        };
        let it = item(
            "treq:t9",
            pb::outbox_item::Payload::TraceRequest(request("t9")),
        );
        l.create_outgoing(&rec, &it).unwrap();
        let started = l.begin_attempt(&it, "treq:t9#n1").unwrap();
        let stored = l.outbox_items().unwrap().remove(0);
        assert_eq!(
            (stored.attempts, stored.last_envelope_id.as_str()),
            (1, "treq:t9#n1")
        );
        l.failed(&started, "Unavailable: down", Some(10)).unwrap();
        let again = l
            .begin_attempt(&l.outbox_items().unwrap()[0], "treq:t9#n2")
            .unwrap();
        assert_eq!(again.attempts, 2);
        // The receiver claims DECLINED in its ack: the trace is only acknowledged.
        l.delivered(
            "treq:t9",
            Delivered::TraceRequest {
                request_id: "t9".into(),
                status: pb::TraceStatus::Declined,
            },
            20,
        )
        .unwrap();
        let got = l.get_trace(OUTGOING, "t9", 30).unwrap().unwrap();
        assert_eq!(got.status, pb::TraceStatus::Acknowledged as i32);
        // So a real answer still lands.
        let resp = pb::TraceResponse {
            request_id: "t9".into(),
            outcome: pb::TraceStatus::Answered as i32,
            ..Default::default()
        };
        assert_eq!(
            l.receive_response(&resp, &node("DEU-CUS"), 40).unwrap(),
            (false, pb::TraceStatus::Answered)
        );
    }

    #[test]
    fn due_items_are_limited_and_delivering_other_payloads_just_removes_them() {
        let l = ledger();
        let retract = |id: &str, at: i64| pb::OutboxItem {
            next_attempt_at_ms: at,
            ..item(
                id,
                pb::outbox_item::Payload::Retract(pb::RecordRef::default()),
            )
        };
        l.enqueue(&[retract("a", 5), retract("b", 1), retract("c", 9)])
            .unwrap();
        let ids = |v: Vec<pb::OutboxItem>| v.into_iter().map(|i| i.id).collect::<Vec<_>>();
        assert_eq!(ids(l.due(5, 10).unwrap()), vec!["a", "b"]);
        assert_eq!(ids(l.due(100, 2).unwrap()), vec!["a", "b"]);
        assert_eq!(l.next_due_ms().unwrap(), Some(1));
        l.failed(&retract("b", 1), "refused", None).unwrap();
        assert_eq!(l.next_due_ms().unwrap(), Some(5));
        assert_eq!(
            (l.pending().unwrap(), l.outbox_items().unwrap().len()),
            (2, 3)
        );
        l.delivered("a", Delivered::Nothing, 6).unwrap();
        assert_eq!(ids(l.outbox_items().unwrap()), vec!["b", "c"]);
    }
}
