//! The exchange ledger: trace requests (outgoing and incoming), the durable outbox of
//! deliveries, copies of records received from other nodes, which peers received which of our
//! records, and which records were withdrawn.
//!
//! Every change that must lead to a delivery writes the delivery into the outbox in the same
//! sled transaction, and is flushed before the call returns: if the node acknowledges it, it will
//! be delivered, however often the node restarts. Receiving is idempotent on the request id, so a
//! retried delivery is applied once.

use prost::Message;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, abort};
use tracenet_proto::v1 as pb;

use crate::ids::NodeId;
use crate::trace::{self, TraceDirection, Transition};

const FORMAT_V1: u8 = 1;
/// `direction` of traces this node sent.
pub const OUTGOING: &str = TraceDirection::Outgoing.as_str();
/// `direction` of traces this node received.
pub const INCOMING: &str = TraceDirection::Incoming.as_str();

/// Ledger failures.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The storage engine failed. Nothing was changed; retrying may help.
    #[error("ledger storage: {0}")]
    Engine(#[from] sled::Error),
    /// Stored bytes do not decode. Not retryable.
    #[error("ledger entry {0} is unreadable")]
    Corrupt(String),
    /// No such trace request (or not from that node). Not retryable.
    #[error("{0}")]
    NotFound(String),
    /// The change contradicts the current state (e.g. answering twice). Not retryable.
    #[error("{0}")]
    Conflict(String),
}

fn enc<M: Message>(m: &M) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + m.encoded_len());
    v.push(FORMAT_V1);
    m.encode(&mut v).ok();
    v
}

fn dec<M: Message + Default>(what: &str, v: &[u8]) -> Result<M, LedgerError> {
    match v.split_first() {
        Some((&FORMAT_V1, body)) => M::decode(body).map_err(|_| LedgerError::Corrupt(what.into())),
        _ => Err(LedgerError::Corrupt(what.into())),
    }
}

fn trace_key(direction: &str, request_id: &str) -> Vec<u8> {
    format!("{direction}:{request_id}").into_bytes()
}

fn pair_key(a: &str, b: &str) -> Vec<u8> {
    let mut k = a.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(b.as_bytes());
    k
}

fn unwrap_tx<T>(r: Result<T, TransactionError<LedgerError>>) -> Result<T, LedgerError> {
    r.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => LedgerError::Engine(e),
    })
}

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

/// The exchange ledger.
#[derive(Debug)]
pub struct Ledger {
    db: sled::Db,
    traces: sled::Tree,
    outbox: sled::Tree,
    received: sled::Tree,
    disclosed: sled::Tree,
    withdrawn: sled::Tree,
}

impl Ledger {
    /// Opens the ledger's trees in the node's database.
    pub fn open(db: &sled::Db) -> Result<Ledger, LedgerError> {
        Ok(Ledger {
            db: db.clone(),
            traces: db.open_tree("traces")?,
            outbox: db.open_tree("outbox")?,
            received: db.open_tree("received")?,
            disclosed: db.open_tree("disclosed_to")?,
            withdrawn: db.open_tree("withdrawn")?,
        })
    }

    fn flush(&self) -> Result<(), LedgerError> {
        self.db.flush()?;
        Ok(())
    }

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
        let key = trace_key(OUTGOING, &id);
        unwrap_tx(
            (&self.traces, &self.outbox).transaction(|(traces, outbox)| {
                if traces.get(&key)?.is_some() {
                    return abort(LedgerError::Conflict(format!("trace request {id} exists")));
                }
                traces.insert(key.as_slice(), enc(rec))?;
                outbox.insert(item.id.as_bytes(), enc(item))?;
                Ok(())
            }),
        )?;
        self.flush()
    }

    /// Applies an incoming trace request once: stores it acknowledged, or reports a duplicate.
    pub fn receive_request(
        &self,
        req: &pb::TraceRequest,
        from: &NodeId,
        now: i64,
        escalation_contact: &str,
    ) -> Result<(bool, pb::TraceStatus), LedgerError> {
        let key = trace_key(INCOMING, &req.id);
        let out = unwrap_tx(self.traces.transaction(|traces| {
            if let Some(v) = traces.get(&key)? {
                let existing: pb::TraceRecord =
                    dec(&req.id, &v).map_err(ConflictableTransactionError::Abort)?;
                if existing.counterpart_node != from.as_str() {
                    return abort(LedgerError::Conflict(format!(
                        "trace request id {} is taken by another requester",
                        req.id
                    )));
                }
                let status = pb::TraceStatus::try_from(existing.status)
                    .unwrap_or(pb::TraceStatus::Unspecified);
                return Ok((true, status));
            }
            let mut rec = pb::TraceRecord {
                request: Some(req.clone()),
                status: pb::TraceStatus::Received as i32,
                history: vec![pb::TraceStatusChange {
                    status: pb::TraceStatus::Received as i32,
                    at: now,
                    note: format!("received from {from}"),
                }],
                direction: INCOMING.into(),
                counterpart_node: from.to_string(),
                escalation_contact: escalation_contact.to_owned(),
                ..Default::default()
            };
            // Acknowledged automatically on receipt (ITI: acknowledge within a reasonable time).
            let _ = trace::transition(
                &mut rec,
                pb::TraceStatus::Acknowledged,
                now,
                "acknowledged automatically",
            );
            traces.insert(key.as_slice(), enc(&rec))?;
            Ok((false, pb::TraceStatus::Acknowledged))
        }))?;
        self.flush()?;
        Ok(out)
    }

    /// Records this node's answer to an incoming request and queues its delivery.
    pub fn answer(
        &self,
        request_id: &str,
        response: &pb::TraceResponse,
        now: i64,
        item: &pb::OutboxItem,
    ) -> Result<pb::TraceRecord, LedgerError> {
        let key = trace_key(INCOMING, request_id);
        let outcome =
            pb::TraceStatus::try_from(response.outcome).unwrap_or(pb::TraceStatus::Unspecified);
        let rec = unwrap_tx((&self.traces, &self.outbox).transaction(|(traces, outbox)| {
            let Some(v) = traces.get(&key)? else {
                return abort(LedgerError::NotFound(format!("no incoming trace request {request_id}")));
            };
            let mut rec: pb::TraceRecord = dec(request_id, &v).map_err(ConflictableTransactionError::Abort)?;
            match trace::transition(&mut rec, outcome, now, "answered by an officer") {
                Ok(Transition::Advance) => {}
                Ok(Transition::Unchanged) | Err(_) => {
                    return abort(LedgerError::Conflict(format!(
                        "trace request {request_id} was already answered, restricted or declined"
                    )));
                }
            }
            rec.response = Some(response.clone());
            traces.insert(key.as_slice(), enc(&rec))?;
            outbox.insert(item.id.as_bytes(), enc(item))?;
            Ok(rec)
        }))?;
        self.flush()?;
        Ok(rec)
    }

    /// Applies a response to one of our outgoing requests once; only the node it was sent to may
    /// answer it.
    pub fn receive_response(
        &self,
        resp: &pb::TraceResponse,
        from: &NodeId,
        now: i64,
    ) -> Result<(bool, pb::TraceStatus), LedgerError> {
        let key = trace_key(OUTGOING, &resp.request_id);
        let outcome =
            pb::TraceStatus::try_from(resp.outcome).unwrap_or(pb::TraceStatus::Unspecified);
        if !trace::is_final(outcome) {
            return Err(LedgerError::Conflict(
                "a response must answer, restrict or decline".into(),
            ));
        }
        let out = unwrap_tx(self.traces.transaction(|traces| {
            let Some(v) = traces.get(&key)? else {
                return abort(LedgerError::NotFound(format!(
                    "no trace request {} was sent",
                    resp.request_id
                )));
            };
            let mut rec: pb::TraceRecord =
                dec(&resp.request_id, &v).map_err(ConflictableTransactionError::Abort)?;
            if rec.counterpart_node != from.as_str() {
                return abort(LedgerError::NotFound(format!(
                    "trace request {} was not sent to {from}",
                    resp.request_id
                )));
            }
            if rec.response.is_some() {
                let status =
                    pb::TraceStatus::try_from(rec.status).unwrap_or(pb::TraceStatus::Unspecified);
                return Ok((true, status));
            }
            trace::transition(&mut rec, outcome, now, &format!("response from {from}")).map_err(
                |e| ConflictableTransactionError::Abort(LedgerError::Conflict(e.to_string())),
            )?;
            rec.response = Some(resp.clone());
            traces.insert(key.as_slice(), enc(&rec))?;
            Ok((false, outcome))
        }))?;
        self.flush()?;
        Ok(out)
    }

    /// Trace requests in one direction (or both), oldest first, with `overdue` computed at `now`.
    pub fn list_traces(
        &self,
        direction: &str,
        now: i64,
    ) -> Result<Vec<pb::TraceRecord>, LedgerError> {
        let mut out = Vec::new();
        for kv in self.traces.scan_prefix(direction.as_bytes()) {
            let (k, v) = kv?;
            let mut rec: pb::TraceRecord = dec(&String::from_utf8_lossy(&k), &v)?;
            rec.overdue = trace::is_overdue(&rec, now);
            out.push(rec);
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
        self.traces
            .get(trace_key(direction, request_id))?
            .map(|v| {
                dec::<pb::TraceRecord>(request_id, &v).map(|mut r| {
                    r.overdue = trace::is_overdue(&r, now);
                    r
                })
            })
            .transpose()
    }

    // ---- outbox ----

    /// Queues deliveries (durably).
    pub fn enqueue(&self, items: &[pb::OutboxItem]) -> Result<(), LedgerError> {
        let mut batch = sled::Batch::default();
        for item in items {
            batch.insert(item.id.as_bytes(), enc(item));
        }
        self.outbox.apply_batch(batch)?;
        self.flush()
    }

    /// Items due at `now_ms`, at most `limit`.
    pub fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<pb::OutboxItem>, LedgerError> {
        let mut out = Vec::new();
        for kv in self.outbox.iter() {
            let (k, v) = kv?;
            let item: pb::OutboxItem = dec(&String::from_utf8_lossy(&k), &v)?;
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
        for kv in self.outbox.iter() {
            let (k, v) = kv?;
            let item: pb::OutboxItem = dec(&String::from_utf8_lossy(&k), &v)?;
            if !item.dead {
                next =
                    Some(next.map_or(item.next_attempt_at_ms, |n| n.min(item.next_attempt_at_ms)));
            }
        }
        Ok(next)
    }

    /// All outbox items (pending and given up).
    pub fn outbox_items(&self) -> Result<Vec<pb::OutboxItem>, LedgerError> {
        self.outbox
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                dec(&String::from_utf8_lossy(&k), &v)
            })
            .collect()
    }

    /// Number of deliveries still to make.
    pub fn pending(&self) -> Result<u64, LedgerError> {
        Ok(self.outbox_items()?.iter().filter(|i| !i.dead).count() as u64)
    }

    /// Removes a delivered item and applies what its acknowledgement means, atomically.
    pub fn delivered(&self, item_id: &str, effect: Delivered, now: i64) -> Result<(), LedgerError> {
        unwrap_tx(
            (&self.traces, &self.outbox).transaction(|(traces, outbox)| {
                outbox.remove(item_id.as_bytes())?;
                if let Delivered::TraceRequest { request_id, status } = &effect {
                    let key = trace_key(OUTGOING, request_id);
                    if let Some(v) = traces.get(&key)? {
                        let mut rec: pb::TraceRecord =
                            dec(request_id, &v).map_err(ConflictableTransactionError::Abort)?;
                        if trace::transition(
                            &mut rec,
                            *status,
                            now,
                            "acknowledged by the requested node",
                        ) == Ok(Transition::Advance)
                        {
                            traces.insert(key.as_slice(), enc(&rec))?;
                        }
                    }
                }
                Ok(())
            }),
        )?;
        self.flush()
    }

    /// Schedules another attempt, or gives up on an item (`dead`), recording the error; a
    /// trace request given up on shows the error on the trace.
    pub fn failed(
        &self,
        item: &pb::OutboxItem,
        error: &str,
        next_attempt_at_ms: Option<i64>,
    ) -> Result<(), LedgerError> {
        let mut updated = item.clone();
        updated.attempts += 1;
        updated.last_error = error.to_owned();
        match next_attempt_at_ms {
            Some(t) => updated.next_attempt_at_ms = t,
            None => updated.dead = true,
        }
        unwrap_tx(
            (&self.traces, &self.outbox).transaction(|(traces, outbox)| {
                outbox.insert(updated.id.as_bytes(), enc(&updated))?;
                if updated.dead
                    && let Some(pb::outbox_item::Payload::TraceRequest(req)) = &updated.payload
                {
                    let key = trace_key(OUTGOING, &req.id);
                    if let Some(v) = traces.get(&key)? {
                        let mut rec: pb::TraceRecord =
                            dec(&req.id, &v).map_err(ConflictableTransactionError::Abort)?;
                        rec.delivery_error = error.to_owned();
                        traces.insert(key.as_slice(), enc(&rec))?;
                    }
                }
                Ok(())
            }),
        )?;
        self.flush()
    }

    // ---- disclosures, withdrawals and received copies ----

    /// Notes that `peer` received these records of ours (so a retraction can reach it). Not
    /// flushed here: the caller's audit append, which must precede the answer, flushes it.
    pub fn note_disclosed(&self, record_ids: &[String], peer: &NodeId) -> Result<(), LedgerError> {
        let mut batch = sled::Batch::default();
        for id in record_ids {
            batch.insert(pair_key(id, peer.as_str()), &[]);
        }
        self.disclosed.apply_batch(batch)?;
        Ok(())
    }

    /// Peers that received a record of ours.
    pub fn disclosed_to(&self, record_id: &str) -> Result<Vec<String>, LedgerError> {
        let mut prefix = record_id.as_bytes().to_vec();
        prefix.push(0);
        self.disclosed
            .scan_prefix(&prefix)
            .map(|kv| {
                let (k, _) = kv?;
                Ok(String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
            })
            .collect()
    }

    /// Withdraws a record from sharing and queues the retractions, atomically and durably.
    pub fn withdraw(&self, record_id: &str, items: &[pb::OutboxItem]) -> Result<(), LedgerError> {
        unwrap_tx(
            (&self.withdrawn, &self.outbox).transaction(|(withdrawn, outbox)| {
                withdrawn.insert(record_id.as_bytes(), &[])?;
                for item in items {
                    outbox.insert(item.id.as_bytes(), enc(item))?;
                }
                Ok(())
            }),
        )?;
        self.flush()
    }

    /// Whether a record of ours was withdrawn.
    pub fn is_withdrawn(&self, record_id: &str) -> Result<bool, LedgerError> {
        Ok(self.withdrawn.contains_key(record_id.as_bytes())?)
    }

    /// Keeps copies of records received from their owners (replacing older copies).
    pub fn store_received(&self, records: &[pb::ReceivedRecord]) -> Result<(), LedgerError> {
        let mut batch = sled::Batch::default();
        for r in records {
            let reference = r.reference.clone().unwrap_or_default();
            batch.insert(
                pair_key(&reference.owner_node, &reference.reference),
                enc(r),
            );
        }
        self.received.apply_batch(batch)?;
        self.flush()
    }

    /// Deletes the copy of `reference` received from `owner`; false if there was none.
    pub fn remove_received(&self, owner: &NodeId, reference: &str) -> Result<bool, LedgerError> {
        let existed = self
            .received
            .remove(pair_key(owner.as_str(), reference))?
            .is_some();
        self.flush()?;
        Ok(existed)
    }

    /// All received copies.
    pub fn list_received(&self) -> Result<Vec<pb::ReceivedRecord>, LedgerError> {
        self.received
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                dec(&String::from_utf8_lossy(&k), &v)
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn ledger() -> Ledger {
        Ledger::open(&sled::Config::new().temporary(true).open().unwrap()).unwrap()
    }

    fn node(s: &str) -> NodeId {
        NodeId::parse(s).unwrap()
    }

    fn request(id: &str) -> pb::TraceRequest {
        pb::TraceRequest {
            id: id.into(),
            requester_node: "FRA-POL".into(),
            requested_country: "DEU".into(),
            due_at: 1_000_000,
            ..Default::default()
        }
    }

    fn item(id: &str, payload: pb::outbox_item::Payload) -> pb::OutboxItem {
        pb::OutboxItem {
            id: id.into(),
            target_node: "DEU-CUS".into(),
            payload: Some(payload),
            ..Default::default()
        }
    }

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
    fn received_copies_and_disclosures_are_tracked() {
        let l = ledger();
        l.note_disclosed(&["r1".into(), "r2".into()], &node("DEU-CUS"))
            .unwrap();
        l.note_disclosed(&["r1".into()], &node("ITA-POL")).unwrap();
        assert_eq!(l.disclosed_to("r1").unwrap(), vec!["DEU-CUS", "ITA-POL"]);
        let copy = pb::ReceivedRecord {
            reference: Some(pb::RecordRef {
                owner_node: "FRA-POL".into(),
                reference: "r9".into(),
            }),
            ..Default::default()
        };
        l.store_received(&[copy]).unwrap();
        assert_eq!(l.list_received().unwrap().len(), 1);
        assert!(!l.remove_received(&node("ITA-POL"), "r9").unwrap());
        assert!(l.remove_received(&node("FRA-POL"), "r9").unwrap());
        assert!(!l.remove_received(&node("FRA-POL"), "r9").unwrap());
        l.withdraw("r1", &[]).unwrap();
        assert!(l.is_withdrawn("r1").unwrap());
        assert!(!l.is_withdrawn("r2").unwrap());
    }
}
