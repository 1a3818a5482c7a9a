//! Trace requests in the ledger: creating outgoing ones with their delivery, applying incoming
//! requests and responses once, recording this node's answers, and reading them back.
//!
//! Each change is one decision on the current record (made here, with the rules of
//! [`crate::trace`]) applied atomically by the storage together with the deliveries it queues.

use tracenet_proto::v1 as pb;

use super::{INCOMING, Ledger, LedgerError, OUTGOING, TraceUpdate, status_of};
use crate::ids::NodeId;
use crate::trace::{self, Transition};

impl Ledger {
    /// Stores a new outgoing trace request and its delivery, atomically and durably.
    pub fn create_outgoing(
        &self,
        rec: &pb::TraceRecord,
        item: &pb::OutboxItem,
    ) -> Result<(), LedgerError> {
        let id = rec
            .request
            .as_ref()
            .map(|r| r.id.clone())
            .unwrap_or_default();
        self.update(OUTGOING, &id, |current| {
            if current.is_some() {
                return Err(LedgerError::Conflict(format!("trace request {id} exists")));
            }
            let update = TraceUpdate {
                trace: Some(rec.clone()),
                outbox_put: vec![item.clone()],
                ..Default::default()
            };
            Ok((update, ()))
        })
    }

    /// Applies an incoming trace request once: stores it acknowledged, or reports a duplicate.
    pub fn receive_request(
        &self,
        req: &pb::TraceRequest,
        from: &NodeId,
        now: i64,
        escalation_contact: &str,
    ) -> Result<(bool, pb::TraceStatus), LedgerError> {
        self.update(INCOMING, &req.id, |current| match current {
            Some(existing) if existing.counterpart_node != from.as_str() => {
                Err(LedgerError::Conflict(format!(
                    "trace request id {} is taken by another requester",
                    req.id
                )))
            }
            Some(existing) => Ok((TraceUpdate::default(), (true, status_of(&existing)))),
            None => {
                let rec = trace::received(req, from, now, escalation_contact);
                let status = status_of(&rec);
                let update = TraceUpdate {
                    trace: Some(rec),
                    ..Default::default()
                };
                Ok((update, (false, status)))
            }
        })
    }

    /// Records this node's answer (final, or an interim message: a request for more
    /// information, a partial answer) to an incoming request and queues its delivery. The
    /// response's part must be the next one ([`trace::next_part`]): a concurrent answer makes
    /// the later one a conflict rather than two messages with one number.
    pub fn answer(
        &self,
        request_id: &str,
        response: &pb::TraceResponse,
        now: i64,
        item: &pb::OutboxItem,
    ) -> Result<pb::TraceRecord, LedgerError> {
        let outcome =
            pb::TraceStatus::try_from(response.outcome).unwrap_or(pb::TraceStatus::Unspecified);
        self.update(INCOMING, request_id, |current| {
            let Some(mut rec) = current else {
                return Err(LedgerError::NotFound(format!(
                    "no incoming trace request {request_id}"
                )));
            };
            if trace::next_part(&rec, outcome) != response.part {
                return Err(LedgerError::Conflict(format!(
                    "trace request {request_id} was answered meanwhile; reload it"
                )));
            }
            let note = match outcome {
                pb::TraceStatus::MoreInformationRequested => "more information requested",
                pb::TraceStatus::PartiallyAnswered => "answered in part",
                _ => "answered by an officer",
            };
            match trace::transition(&mut rec, outcome, now, note) {
                Ok(Transition::Advance) => {}
                Ok(Transition::Unchanged) | Err(_) => {
                    return Err(LedgerError::Conflict(format!(
                        "trace request {request_id} cannot go from {} to {}",
                        trace::status_name(status_of(&rec)),
                        trace::status_name(outcome)
                    )));
                }
            }
            if trace::is_final(outcome) {
                rec.response = Some(response.clone());
            }
            rec.messages.push(response.clone());
            let update = TraceUpdate {
                trace: Some(rec.clone()),
                outbox_put: vec![item.clone()],
                ..Default::default()
            };
            Ok((update, rec))
        })
    }

    /// Records the information this node sends for one of its outgoing requests (the responder
    /// asked for it) and queues its delivery: back to ACKNOWLEDGED. The part must be the next.
    pub fn provide_information(
        &self,
        info: &pb::TraceInformation,
        now: i64,
        item: &pb::OutboxItem,
    ) -> Result<pb::TraceRecord, LedgerError> {
        let id = info.request_id.clone();
        self.update(OUTGOING, &id, |current| {
            let Some(mut rec) = current else {
                return Err(LedgerError::NotFound(format!(
                    "no trace request {id} was sent"
                )));
            };
            let next = u32::try_from(rec.information.len())
                .unwrap_or(u32::MAX)
                .saturating_add(1);
            if info.part != next {
                return Err(LedgerError::Conflict(format!(
                    "information on {id} was sent meanwhile; reload it"
                )));
            }
            trace::resume(&mut rec, now, "information provided").map_err(|_| {
                LedgerError::Conflict(format!(
                    "trace request {id} is not waiting for more information"
                ))
            })?;
            rec.information.push(info.clone());
            let update = TraceUpdate {
                trace: Some(rec.clone()),
                outbox_put: vec![item.clone()],
                ..Default::default()
            };
            Ok((update, rec))
        })
    }

    /// Applies information from the requester of an incoming request once per part; only the
    /// node that sent the request may. The latest information moves a request waiting for it
    /// back to ACKNOWLEDGED.
    pub fn receive_information(
        &self,
        info: &pb::TraceInformation,
        from: &NodeId,
        now: i64,
    ) -> Result<(bool, pb::TraceStatus), LedgerError> {
        self.update(INCOMING, &info.request_id, |current| {
            let Some(mut rec) = current else {
                return Err(LedgerError::NotFound(format!(
                    "no trace request {} was received",
                    info.request_id
                )));
            };
            // Checked against who actually sent the request, not what the message says.
            if rec.counterpart_node != from.as_str() {
                return Err(LedgerError::NotFound(format!(
                    "trace request {} was not received from {from}",
                    info.request_id
                )));
            }
            if rec.information.iter().any(|i| i.part == info.part) {
                return Ok((TraceUpdate::default(), (true, status_of(&rec))));
            }
            let latest = rec.information.iter().all(|i| i.part < info.part);
            if latest && status_of(&rec) == pb::TraceStatus::MoreInformationRequested {
                let _ = trace::resume(&mut rec, now, &format!("information from {from}"));
            }
            rec.information.push(info.clone());
            rec.information.sort_by_key(|i| i.part);
            let status = status_of(&rec);
            let update = TraceUpdate {
                trace: Some(rec),
                ..Default::default()
            };
            Ok((update, (false, status)))
        })
    }

    /// Notes a follow-on trace (`follow_on`) started from the outgoing trace `request_id`.
    pub fn note_follow_on(&self, request_id: &str, follow_on: &str) -> Result<(), LedgerError> {
        self.update(OUTGOING, request_id, |current| {
            let Some(mut rec) = current else {
                return Err(LedgerError::NotFound(format!(
                    "no trace request {request_id} was sent"
                )));
            };
            if !rec.follow_ons.iter().any(|f| f == follow_on) {
                rec.follow_ons.push(follow_on.to_owned());
            }
            let update = TraceUpdate {
                trace: Some(rec),
                ..Default::default()
            };
            Ok((update, ()))
        })
    }

    /// Applies a response to one of our outgoing requests once (per part, for an answer in
    /// parts); only the node it was sent to may answer it. A part older than one already held
    /// is kept but does not move the status back.
    pub fn receive_response(
        &self,
        resp: &pb::TraceResponse,
        from: &NodeId,
        now: i64,
    ) -> Result<(bool, pb::TraceStatus), LedgerError> {
        let outcome =
            pb::TraceStatus::try_from(resp.outcome).unwrap_or(pb::TraceStatus::Unspecified);
        if !trace::is_final(outcome) && !trace::is_interim(outcome) {
            return Err(LedgerError::Conflict(
                "a response must answer (in full or in part), restrict, decline or ask for more information".into(),
            ));
        }
        if resp.part == 0 && !trace::is_final(outcome) {
            return Err(LedgerError::Conflict(
                "an interim response needs a part number".into(),
            ));
        }
        self.update(OUTGOING, &resp.request_id, |current| {
            let Some(mut rec) = current else {
                return Err(LedgerError::NotFound(format!(
                    "no trace request {} was sent",
                    resp.request_id
                )));
            };
            if rec.counterpart_node != from.as_str() {
                return Err(LedgerError::NotFound(format!(
                    "trace request {} was not sent to {from}",
                    resp.request_id
                )));
            }
            let held = if resp.part == 0 {
                rec.response.is_some()
            } else {
                rec.messages.iter().any(|m| m.part == resp.part)
            };
            if held {
                return Ok((TraceUpdate::default(), (true, status_of(&rec))));
            }
            let latest = resp.part == 0 || resp.part > trace::last_part(&rec);
            if latest {
                trace::transition(&mut rec, outcome, now, &format!("response from {from}"))
                    .map_err(|e| LedgerError::Conflict(e.to_string()))?;
            }
            if trace::is_final(outcome) {
                rec.response = Some(resp.clone());
            }
            rec.messages.push(resp.clone());
            rec.messages.sort_by_key(|m| m.part);
            let status = status_of(&rec);
            let update = TraceUpdate {
                trace: Some(rec),
                ..Default::default()
            };
            Ok((update, (false, status)))
        })
    }

    /// Trace requests in one direction (or both), oldest first, with `overdue` computed at `now`.
    pub fn list_traces(
        &self,
        direction: &str,
        now: i64,
    ) -> Result<Vec<pb::TraceRecord>, LedgerError> {
        let mut out = self.storage.traces(direction)?;
        for rec in &mut out {
            rec.overdue = trace::is_overdue(rec, now);
        }
        out.sort_by_key(|r| r.request.as_ref().map_or(0, |q| q.created_at));
        Ok(out)
    }

    /// One trace request.
    pub fn get_trace(
        &self,
        direction: &str,
        request_id: &str,
        now: i64,
    ) -> Result<Option<pb::TraceRecord>, LedgerError> {
        Ok(self.storage.trace(direction, request_id)?.map(|mut r| {
            r.overdue = trace::is_overdue(&r, now);
            r
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::ledger::testing::{item, ledger, node, request};

    #[test]
    fn an_incoming_request_is_applied_once_and_acknowledged() {
        let l = ledger();
        let (dup, status) = l
            .receive_request(&request("t1"), &node("FRA-POL"), 10, "desk")
            .unwrap();
        assert!(!dup);
        assert_eq!(status, pb::TraceStatus::Acknowledged);
        let (dup, _) = l
            .receive_request(&request("t1"), &node("FRA-POL"), 11, "desk")
            .unwrap();
        assert!(dup);
        assert_eq!(l.list_traces(INCOMING, 12).unwrap().len(), 1);
        // Another requester cannot reuse the id.
        assert!(matches!(
            l.receive_request(&request("t1"), &node("ITA-POL"), 12, ""),
            Err(LedgerError::Conflict(_))
        ));
    }

    #[test]
    fn answering_twice_is_refused_and_a_dead_delivery_shows_on_the_trace() {
        let l = ledger();
        l.receive_request(&request("t3"), &node("FRA-POL"), 1, "")
            .unwrap();
        let resp = pb::TraceResponse {
            request_id: "t3".into(),
            outcome: pb::TraceStatus::Declined as i32,
            ..Default::default()
        };
        let it = item(
            "tresp:t3",
            pb::outbox_item::Payload::TraceResponse(resp.clone()),
        );
        l.answer("t3", &resp, 2, &it).unwrap();
        assert!(matches!(
            l.answer("t3", &resp, 3, &it),
            Err(LedgerError::Conflict(_))
        ));
        assert!(matches!(
            l.answer("nope", &resp, 3, &it),
            Err(LedgerError::NotFound(_))
        ));

        let rec = pb::TraceRecord {
            request: Some(request("t4")),
            status: pb::TraceStatus::Sent as i32,
            direction: OUTGOING.into(),
            counterpart_node: "DEU-CUS".into(),
            ..Default::default()
        };
        let it = item(
            "treq:t4",
            pb::outbox_item::Payload::TraceRequest(request("t4")),
        );
        l.create_outgoing(&rec, &it).unwrap();
        l.failed(&it, "refused: permission denied", None).unwrap();
        let got = l.get_trace(OUTGOING, "t4", 0).unwrap().unwrap();
        assert_eq!(got.delivery_error, "refused: permission denied");
        assert!(
            l.due(i64::MAX, 10)
                .unwrap()
                .iter()
                .all(|i| i.id != "treq:t4")
        );
    }

    #[test]
    fn creating_an_outgoing_request_twice_is_refused_and_queues_nothing() {
        let l = ledger();
        let rec = pb::TraceRecord {
            request: Some(request("t5")),
            direction: OUTGOING.into(),
            ..Default::default()
        };
        let first = item(
            "treq:t5",
            pb::outbox_item::Payload::TraceRequest(request("t5")),
        );
        l.create_outgoing(&rec, &first).unwrap();
        let second = item(
            "treq:t5-again",
            pb::outbox_item::Payload::TraceRequest(request("t5")),
        );
        assert!(matches!(
            l.create_outgoing(&rec, &second),
            Err(LedgerError::Conflict(_))
        ));
        assert_eq!(l.outbox_items().unwrap(), vec![first]);
        // A response that does not end the workflow is refused before anything is read.
        let resp = pb::TraceResponse {
            request_id: "t5".into(),
            outcome: pb::TraceStatus::Acknowledged as i32,
            ..Default::default()
        };
        assert!(matches!(
            l.receive_response(&resp, &node("DEU-CUS"), 1),
            Err(LedgerError::Conflict(_))
        ));
    }
}
