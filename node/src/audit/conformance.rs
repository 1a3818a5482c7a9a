//! The behaviour every [`AuditStorage`] implementation must show, as a reusable test suite: the
//! storage's own contract, and the audit log over it (chaining, resuming, listing, verifying).
//!
//! Call [`run_all`] from a test with a constructor for empty storages. Kept in the library (not
//! under `#[cfg(test)]`) so another engine's tests, in this crate or another, can run it too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use tracenet_proto::stored;
use tracenet_proto::v1 as pb;

use super::storage::AuditStorage;
use super::{AuditLog, Event, EventKind, verify_log};
use crate::envelope::SigningKey;
use crate::ids::NodeId;

/// Runs every conformance check, each on a fresh storage from `make`.
pub fn run_all<S: AuditStorage>(make: impl Fn() -> S) {
    an_empty_storage_has_nothing(&make());
    entries_are_ordered_by_sequence_number(&make());
    checkpoints_are_ordered_by_sequence_number(&make());
    a_log_over_the_storage_chains_resumes_and_verifies(make());
    a_log_over_the_storage_names_an_edited_entry(make());
}

fn seqs(s: &impl AuditStorage, from: u64) -> Vec<u64> {
    s.entries_from(from).map(|e| e.unwrap().0).collect()
}

fn an_empty_storage_has_nothing(s: &impl AuditStorage) {
    assert_eq!(s.last_entry().unwrap(), None);
    assert_eq!(s.entries_from(0).count(), 0);
    assert_eq!(s.last_checkpoint_seq().unwrap(), None);
    assert_eq!(s.checkpoints().count(), 0);
    s.flush().unwrap();
}

fn entries_are_ordered_by_sequence_number(s: &impl AuditStorage) {
    // Numeric order, not the order of the numbers' decimal spelling or of writing.
    s.put_entries(&[(256, b"c".to_vec()), (2, b"b".to_vec())])
        .unwrap();
    s.put_entries(&[(1, b"a".to_vec()), (65_536, b"d".to_vec())])
        .unwrap();
    s.put_entries(&[]).unwrap();
    assert_eq!(seqs(s, 0), vec![1, 2, 256, 65_536]);
    assert_eq!(seqs(s, 3), vec![256, 65_536]);
    assert_eq!(seqs(s, 256), vec![256, 65_536]);
    assert_eq!(seqs(s, u64::MAX), Vec::<u64>::new());
    assert_eq!(s.last_entry().unwrap(), Some((65_536, b"d".to_vec())));
    // A value stored again under the same number replaces the old one.
    s.put_entries(&[(2, b"B".to_vec())]).unwrap();
    let values: Vec<Vec<u8>> = s.entries_from(0).map(|e| e.unwrap().1).collect();
    assert_eq!(
        values,
        vec![b"a".to_vec(), b"B".to_vec(), b"c".to_vec(), b"d".to_vec()]
    );
    // The listing is lazy: taking the first entry reads no further.
    assert_eq!(
        s.entries_from(2).next().unwrap().unwrap(),
        (2, b"B".to_vec())
    );
    s.flush().unwrap();
}

fn checkpoints_are_ordered_by_sequence_number(s: &impl AuditStorage) {
    s.put_checkpoint(128, b"128".to_vec()).unwrap();
    s.put_checkpoint(64, b"64".to_vec()).unwrap();
    s.put_checkpoint(1024, b"1024".to_vec()).unwrap();
    assert_eq!(s.last_checkpoint_seq().unwrap(), Some(1024));
    let values: Vec<Vec<u8>> = s.checkpoints().map(Result::unwrap).collect();
    assert_eq!(
        values,
        vec![b"64".to_vec(), b"128".to_vec(), b"1024".to_vec()]
    );
    // Checkpoints and entries are kept apart.
    assert_eq!(s.last_entry().unwrap(), None);
}

fn signing_key() -> Arc<SigningKey> {
    let pk8 = SigningKey::generate_pkcs8().unwrap();
    Arc::new(SigningKey::from_pkcs8(&pk8, NodeId::parse("FRA-POL").unwrap()).unwrap())
}

fn event(i: u64) -> Event {
    Event {
        kind: if i.is_multiple_of(2) {
            EventKind::RequestReceived
        } else {
            EventKind::Disclosure
        },
        peer: if i.is_multiple_of(3) {
            "ITA-POL".into()
        } else {
            "DEU-CUS".into()
        },
        request_id: format!("req-{i}"),
        record_refs: vec![format!("ref-{i}")],
        ..Event::new(EventKind::Disclosure)
    }
}

fn a_log_over_the_storage_chains_resumes_and_verifies<S: AuditStorage>(s: S) {
    let s = Arc::new(s);
    let key = signing_key();
    let log = AuditLog::with_storage(s.clone(), key.clone()).unwrap();
    assert_eq!(
        log.append(vec![event(1), event(2)], 10).unwrap(),
        vec![1, 2]
    );
    for i in 3..=70 {
        log.append(vec![event(i)], i as i64).unwrap();
    }
    // Crossing CHECKPOINT_EVERY signed one checkpoint on the way.
    let v = verify_log(&s, &key.public_key()).unwrap();
    assert_eq!((v.entries, v.checkpoints), (70, 1));
    assert_eq!(v.unsigned_tail, 70 - super::CHECKPOINT_EVERY);
    drop(log);

    // Reopened over the same storage, the chain continues where it stopped.
    let log = AuditLog::with_storage(s.clone(), key.clone()).unwrap();
    assert_eq!(log.append(vec![event(71)], 71).unwrap(), vec![71]);
    log.checkpoint(72).unwrap();
    let v = verify_log(&s, &key.public_key()).unwrap();
    assert_eq!((v.entries, v.checkpoints, v.unsigned_tail), (71, 2, 0));
    // Nothing new: no further checkpoint.
    log.checkpoint(73).unwrap();
    assert_eq!(s.checkpoints().count(), 2);

    let listed = log.list("disclosure", "", 0, 1000).unwrap();
    assert_eq!(listed.len(), 36);
    assert!(listed.iter().all(|e| e.kind == "disclosure"));
    let listed = log.list("", "ITA-POL", 0, 5).unwrap();
    assert_eq!(
        listed.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![3, 6, 9, 12, 15]
    );
    assert_eq!(log.list("", "", 69, 10).unwrap().len(), 2);
    assert!(log.list("", "", u64::MAX, 10).unwrap().is_empty());
    let first = &log.list("", "", 0, 1).unwrap()[0];
    assert_eq!(
        (first.seq, first.at, first.request_id.as_str()),
        (1, 10, "req-1")
    );
    assert_eq!(first.prev_hash, vec![0; 32]);
}

fn a_log_over_the_storage_names_an_edited_entry<S: AuditStorage>(s: S) {
    let s = Arc::new(s);
    let key = signing_key();
    let log = AuditLog::with_storage(s.clone(), key.clone()).unwrap();
    for i in 1..=10 {
        log.append(vec![event(i)], i as i64).unwrap();
    }
    log.checkpoint(11).unwrap();
    let (_, value) = s.entries_from(4).next().unwrap().unwrap();
    let mut entry: pb::AuditEntry = stored::decode(&value).unwrap();
    entry.detail = "nothing to see".into();
    s.put_entries(&[(4, stored::encode(&entry))]).unwrap();
    let f = verify_log(&s, &key.public_key()).unwrap_err();
    assert_eq!(f.seq, 5, "{f}"); // entry 4's successor no longer links to it
    let other = signing_key();
    s.put_entries(&[(4, value)]).unwrap();
    verify_log(&s, &key.public_key()).unwrap();
    let f = verify_log(&s, &other.public_key()).unwrap_err();
    assert!(f.problem.contains("signature"), "{f}");
}
