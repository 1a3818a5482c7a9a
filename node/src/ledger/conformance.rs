//! The behaviour every [`LedgerStorage`] implementation must show, as a reusable test suite.
//!
//! Call [`run_all`] from a test with a constructor for empty storages. Kept in the library (not
//! under `#[cfg(test)]`) so another engine's tests, in this crate or another, can run it too.
//! Durability across reopening is engine-specific and tested beside each implementation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tracenet_proto::v1 as pb;

use super::LedgerError;
use super::storage::{LedgerStorage, TraceUpdate};

/// Runs every conformance check, each on a fresh storage from `make`.
pub fn run_all<S: LedgerStorage>(make: impl Fn() -> S) {
    traces_are_keyed_by_direction_and_request_id(&make());
    an_update_sees_the_current_value_and_applies_every_write(&make());
    a_refused_update_changes_nothing(&make());
    concurrent_updates_of_one_trace_are_serialised(&make());
    the_outbox_is_keyed_and_listed_by_item_id(&make());
    disclosures_are_listed_per_record_once_per_peer(&make());
    a_withdrawal_queues_its_retractions(&make());
    received_copies_are_keyed_by_owner_and_reference(&make());
}

fn record(direction: &str, id: &str, created_at: i64) -> pb::TraceRecord {
    pb::TraceRecord {
        request: Some(pb::TraceRequest {
            id: id.into(),
            created_at,
            ..Default::default()
        }),
        direction: direction.into(),
        counterpart_node: "DEU-CUS".into(),
        ..Default::default()
    }
}

fn item(id: &str) -> pb::OutboxItem {
    pb::OutboxItem {
        id: id.into(),
        target_node: "DEU-CUS".into(),
        ..Default::default()
    }
}

fn put(s: &impl LedgerStorage, rec: pb::TraceRecord) {
    let id = rec.request.as_ref().unwrap().id.clone();
    let direction = rec.direction.clone();
    s.update_trace(&direction, &id, &|_| {
        Ok(TraceUpdate {
            trace: Some(rec.clone()),
            ..Default::default()
        })
    })
    .unwrap();
}

fn outbox_ids(s: &impl LedgerStorage) -> Vec<String> {
    s.outbox().map(|i| i.unwrap().id).collect()
}

fn ids(recs: &[pb::TraceRecord]) -> Vec<(String, String)> {
    recs.iter()
        .map(|r| (r.direction.clone(), r.request.as_ref().unwrap().id.clone()))
        .collect()
}

fn traces_are_keyed_by_direction_and_request_id(s: &impl LedgerStorage) {
    assert!(s.traces("").unwrap().is_empty());
    assert_eq!(s.trace("incoming", "t1").unwrap(), None);
    put(s, record("outgoing", "t2", 1));
    put(s, record("incoming", "t1", 2));
    put(s, record("outgoing", "t1", 3));
    assert_eq!(
        s.trace("incoming", "t1").unwrap(),
        Some(record("incoming", "t1", 2))
    );
    assert_eq!(
        s.trace("outgoing", "t1").unwrap(),
        Some(record("outgoing", "t1", 3))
    );
    assert_eq!(s.trace("incoming", "t2").unwrap(), None);
    let pair = |d: &str, i: &str| (d.to_owned(), i.to_owned());
    assert_eq!(
        ids(&s.traces("outgoing").unwrap()),
        vec![pair("outgoing", "t1"), pair("outgoing", "t2")]
    );
    assert_eq!(
        ids(&s.traces("incoming").unwrap()),
        vec![pair("incoming", "t1")]
    );
    assert_eq!(
        ids(&s.traces("").unwrap()),
        vec![
            pair("incoming", "t1"),
            pair("outgoing", "t1"),
            pair("outgoing", "t2")
        ]
    );
}

fn an_update_sees_the_current_value_and_applies_every_write(s: &impl LedgerStorage) {
    s.put_outbox(&[item("old")]).unwrap();
    s.update_trace("outgoing", "t1", &|current| {
        assert_eq!(current, None);
        Ok(TraceUpdate {
            trace: Some(record("outgoing", "t1", 1)),
            outbox_put: vec![item("treq:t1"), item("other")],
            outbox_remove: vec!["old".into(), "absent".into()],
        })
    })
    .unwrap();
    assert_eq!(outbox_ids(s), vec!["other", "treq:t1"]);
    s.update_trace("outgoing", "t1", &|current| {
        let mut rec = current.expect("the trace written before");
        assert_eq!(rec, record("outgoing", "t1", 1));
        rec.delivery_error = "unavailable".into();
        Ok(TraceUpdate {
            trace: Some(rec),
            outbox_remove: vec!["treq:t1".into()],
            ..Default::default()
        })
    })
    .unwrap();
    let got = s.trace("outgoing", "t1").unwrap().unwrap();
    assert_eq!(got.delivery_error, "unavailable");
    assert_eq!(outbox_ids(s), vec!["other"]);
    // An update that writes no trace leaves it as it is, and can still change the outbox.
    s.update_trace("outgoing", "t1", &|_| {
        Ok(TraceUpdate {
            outbox_remove: vec!["other".into()],
            ..Default::default()
        })
    })
    .unwrap();
    assert_eq!(s.trace("outgoing", "t1").unwrap(), Some(got));
    assert!(outbox_ids(s).is_empty());
    // Nor does it create an absent one.
    s.update_trace("incoming", "t9", &|_| Ok(TraceUpdate::default()))
        .unwrap();
    assert_eq!(s.trace("incoming", "t9").unwrap(), None);
}

fn a_refused_update_changes_nothing(s: &impl LedgerStorage) {
    put(s, record("incoming", "t1", 1));
    s.put_outbox(&[item("keep")]).unwrap();
    let err = s
        .update_trace("incoming", "t1", &|current| {
            assert!(current.is_some());
            Err(LedgerError::Conflict("refused".into()))
        })
        .unwrap_err();
    assert!(
        matches!(err, LedgerError::Conflict(ref m) if m == "refused"),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert_eq!(
        s.trace("incoming", "t1").unwrap(),
        Some(record("incoming", "t1", 1))
    );
    assert_eq!(outbox_ids(s), vec!["keep"]);
    let err = s
        .update_trace("incoming", "t2", &|_| {
            Err(LedgerError::NotFound("no incoming trace request t2".into()))
        })
        .unwrap_err();
    assert!(matches!(err, LedgerError::NotFound(_)), "{err}");
}

fn concurrent_updates_of_one_trace_are_serialised(s: &impl LedgerStorage) {
    const THREADS: usize = 4;
    const EACH: usize = 25;
    put(s, record("outgoing", "t1", 1));
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            scope.spawn(move || {
                for i in 0..EACH {
                    s.update_trace("outgoing", "t1", &|current| {
                        let mut rec = current.unwrap();
                        rec.history.push(pb::TraceStatusChange {
                            note: format!("{t}/{i}"),
                            ..Default::default()
                        });
                        Ok(TraceUpdate {
                            trace: Some(rec),
                            outbox_put: vec![item(&format!("{t}/{i}"))],
                            ..Default::default()
                        })
                    })
                    .unwrap();
                }
            });
        }
    });
    // A lost update would drop a history entry written by another thread.
    let rec = s.trace("outgoing", "t1").unwrap().unwrap();
    assert_eq!(rec.history.len(), THREADS * EACH);
    assert_eq!(s.outbox().count(), THREADS * EACH);
}

fn the_outbox_is_keyed_and_listed_by_item_id(s: &impl LedgerStorage) {
    assert_eq!(s.outbox().count(), 0);
    s.put_outbox(&[item("b"), item("a"), item("c")]).unwrap();
    assert_eq!(outbox_ids(s), vec!["a", "b", "c"]);
    let mut replaced = item("b");
    replaced.attempts = 3;
    replaced.dead = true;
    s.put_outbox(std::slice::from_ref(&replaced)).unwrap();
    let items: Vec<pb::OutboxItem> = s.outbox().map(Result::unwrap).collect();
    assert_eq!(items.len(), 3);
    assert_eq!(items[1], replaced);
    s.remove_outbox("a").unwrap();
    s.remove_outbox("absent").unwrap();
    assert_eq!(outbox_ids(s), vec!["b", "c"]);
    // The listing is lazy: taking the first item reads no further.
    assert_eq!(s.outbox().next().unwrap().unwrap().id, "b");
}

fn disclosures_are_listed_per_record_once_per_peer(s: &impl LedgerStorage) {
    assert!(s.disclosed_to("r1").unwrap().is_empty());
    s.note_disclosed(&["r1".into(), "r10".into()], "ITA-POL")
        .unwrap();
    s.note_disclosed(&["r1".into()], "DEU-CUS").unwrap();
    s.note_disclosed(&["r1".into()], "ITA-POL").unwrap();
    assert_eq!(s.disclosed_to("r1").unwrap(), vec!["DEU-CUS", "ITA-POL"]);
    // One record id being a prefix of another does not mix their peers.
    assert_eq!(s.disclosed_to("r10").unwrap(), vec!["ITA-POL"]);
    assert!(s.disclosed_to("r").unwrap().is_empty());
}

fn a_withdrawal_queues_its_retractions(s: &impl LedgerStorage) {
    assert!(!s.is_withdrawn("r1").unwrap());
    s.withdraw(
        "r1",
        &[item("retract:r1:DEU-CUS"), item("retract:r1:ITA-POL")],
    )
    .unwrap();
    s.withdraw("r2", &[]).unwrap();
    assert!(s.is_withdrawn("r1").unwrap());
    assert!(s.is_withdrawn("r2").unwrap());
    assert!(!s.is_withdrawn("r3").unwrap());
    assert_eq!(
        outbox_ids(s),
        vec!["retract:r1:DEU-CUS", "retract:r1:ITA-POL"]
    );
    // Withdrawing again is harmless.
    s.withdraw("r1", &[]).unwrap();
    assert!(s.is_withdrawn("r1").unwrap());
}

fn copy(owner: &str, reference: &str, note: &str) -> pb::ReceivedRecord {
    pb::ReceivedRecord {
        reference: Some(pb::RecordRef {
            owner_node: owner.into(),
            reference: reference.into(),
        }),
        request_id: note.into(),
        ..Default::default()
    }
}

fn received_copies_are_keyed_by_owner_and_reference(s: &impl LedgerStorage) {
    assert!(s.received().unwrap().is_empty());
    s.put_received(&[copy("ITA-POL", "r1", "a"), copy("FRA-POL", "r9", "b")])
        .unwrap();
    s.put_received(&[copy("FRA-POL", "r1", "c")]).unwrap();
    // A newer copy replaces the older one.
    s.put_received(&[copy("FRA-POL", "r9", "d")]).unwrap();
    assert_eq!(
        s.received().unwrap(),
        vec![
            copy("FRA-POL", "r1", "c"),
            copy("FRA-POL", "r9", "d"),
            copy("ITA-POL", "r1", "a")
        ]
    );
    // One copy is read by its key (what a repeated delivery is recognised by).
    assert_eq!(
        s.received_copy("FRA-POL", "r9").unwrap(),
        Some(copy("FRA-POL", "r9", "d"))
    );
    assert_eq!(s.received_copy("ITA-POL", "r9").unwrap(), None);
    assert!(!s.remove_received("ITA-POL", "r9").unwrap());
    assert!(s.remove_received("FRA-POL", "r9").unwrap());
    assert!(!s.remove_received("FRA-POL", "r9").unwrap());
    assert_eq!(s.received().unwrap().len(), 2);
}
