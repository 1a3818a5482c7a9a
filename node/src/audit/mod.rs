//! The audit log: every request received, every disclosure made (with the policy version and rule
//! that allowed it), every denial and delivery, appended to a hash chain on disk before the
//! response leaves the node, with checkpoints signed by the node's key.
//!
//! Each entry stores the chain value of the entry before it; an entry's own chain value is
//! SHA-256(prev || encoded entry). Editing an entry breaks the next link (or a signed checkpoint),
//! deleting one leaves a gap in the sequence, reordering breaks the links. [`verify`] walks the
//! chain offline and names the first bad entry.
//!
//! The chain, the checkpoints and the verifier are here, over any [`AuditStorage`] (values by
//! sequence number, nothing more); [`SledAuditStorage`] is the one the node uses and
//! [`conformance`] is what every storage must do. Entries are stored with the shared versioned
//! codec ([`tracenet_proto::stored`]); checkpoints are stored as bare protobuf, as they always
//! were, so existing logs still verify.

pub mod conformance;
mod sled_storage;
pub mod storage;

use std::sync::{Arc, Mutex};

use prost::Message;
use ring::digest::{SHA256, digest};
use tracenet_proto::stored;
use tracenet_proto::v1 as pb;

pub use sled_storage::SledAuditStorage;
pub use storage::AuditStorage;

pub use crate::audit_kind::EventKind;
use crate::envelope::{SigningKey, verify_checkpoint};

/// Runs `audit`, then `store` only if the audit succeeded, and returns what `store` returned.
///
/// Why this order: the audit log and the ledger are separate durable writes, so a crash (or a
/// failure) can fall between them. Audited first, the worst case is an audit entry for a change
/// that was never stored, which the sender's retry completes; the other order could leave data
/// from a peer (or a disclosure queued for delivery) that the audit log never saw.
pub fn audit_then<T, E>(
    audit: impl FnOnce() -> Result<(), E>,
    store: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    audit()?;
    store()
}

/// A checkpoint is signed at least every this many entries (and when the node stops).
pub const CHECKPOINT_EVERY: u64 = 64;
const ZERO: [u8; 32] = [0; 32];

/// Audit failures. None mentions the storage engine: its errors arrive as text in [`Engine`].
///
/// [`Engine`]: AuditError::Engine
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The storage engine failed (I/O error, disk full). The audited action must not proceed;
    /// retrying may help.
    #[error("audit storage: {0}")]
    Engine(String),
    /// A stored entry (by sequence number; 0 when its key is unreadable) does not decode. Not
    /// retryable: run `tracenet-node audit verify`.
    #[error("audit entry {0} is unreadable")]
    Corrupt(u64),
}

impl AuditError {
    /// Whether retrying the same call could succeed: only after an engine failure.
    pub fn is_retryable(&self) -> bool {
        matches!(self, AuditError::Engine(_))
    }
}

/// What happened, for one entry (the log adds sequence, time and chain link).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// One of `request_received`, `disclosure`, `denial`, `refusal`, `delivery`, `request_sent`,
    /// `trace_request_sent`, `trace_response`, `retraction`, `retraction_applied`,
    /// `onward_transmission` (see [`EventKind`]).
    pub kind: EventKind,
    /// The other party.
    pub peer: String,
    /// The request id.
    pub request_id: String,
    /// The stated purpose.
    pub purpose: String,
    /// Words for a person reading the log (no personal data).
    pub detail: String,
    /// Policy version applied (disclosures).
    pub policy_version: u64,
    /// Policy rule applied (disclosures).
    pub policy_rule: String,
    /// Records concerned, by reference.
    pub record_refs: Vec<String>,
    /// The peer's signed request context as received (the evidence of who asked what).
    pub envelope: Option<pb::SignedContext>,
}

impl Event {
    /// An event of `kind` with every other field empty (fill them with struct update syntax).
    pub fn new(kind: EventKind) -> Event {
        Event {
            kind,
            peer: String::new(),
            request_id: String::new(),
            purpose: String::new(),
            detail: String::new(),
            policy_version: 0,
            policy_rule: String::new(),
            record_refs: Vec::new(),
            envelope: None,
        }
    }
}

#[derive(Debug)]
struct Head {
    next_seq: u64,
    last_hash: [u8; 32],
    since_checkpoint: u64,
}

/// The node's append-only audit log.
#[derive(Debug)]
pub struct AuditLog {
    storage: Box<dyn AuditStorage>,
    head: Mutex<Head>,
    /// Highest sequence number known to be on disk. Held while flushing, so concurrent appends
    /// wait for one flush that covers them all (group commit) instead of one fsync each.
    durable: Mutex<u64>,
    key: Arc<SigningKey>,
    /// Counts disclosures and denials as their entries are written (set once, when serving).
    metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
}

fn chain(prev: &[u8; 32], encoded: &[u8]) -> [u8; 32] {
    let mut buf = Vec::with_capacity(32 + encoded.len());
    buf.extend_from_slice(prev);
    buf.extend_from_slice(encoded);
    let d = digest(&SHA256, &buf);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn decode(seq: u64, v: &[u8]) -> Result<pb::AuditEntry, AuditError> {
    stored::decode(v).map_err(|_| AuditError::Corrupt(seq))
}

impl AuditLog {
    /// Opens the log in the node's database, resuming the chain after its last entry.
    pub fn open(db: &sled::Db, key: Arc<SigningKey>) -> Result<AuditLog, AuditError> {
        AuditLog::with_storage(SledAuditStorage::open(db)?, key)
    }

    /// Opens the log over another storage, resuming the chain after its last entry.
    pub fn with_storage(
        storage: impl AuditStorage,
        key: Arc<SigningKey>,
    ) -> Result<AuditLog, AuditError> {
        let head = match storage.last_entry()? {
            None => Head {
                next_seq: 1,
                last_hash: ZERO,
                since_checkpoint: 0,
            },
            Some((seq, v)) => {
                let body = stored::body(&v).map_err(|_| AuditError::Corrupt(seq))?;
                let last_cp = storage.last_checkpoint_seq()?.unwrap_or(0);
                let prev = decode(seq, &v)?.prev_hash;
                let prev: [u8; 32] = prev.try_into().map_err(|_| AuditError::Corrupt(seq))?;
                Head {
                    next_seq: seq.checked_add(1).ok_or(AuditError::Corrupt(seq))?,
                    last_hash: chain(&prev, body),
                    since_checkpoint: seq - last_cp.min(seq),
                }
            }
        };
        Ok(AuditLog {
            storage: Box::new(storage),
            head: Mutex::new(head),
            durable: Mutex::new(0),
            key,
            metrics: std::sync::OnceLock::new(),
        })
    }

    /// Counts every disclosure and denial written from now on in `metrics` (the first call wins).
    pub fn count_in(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// The sequence number of the last entry (0 for an empty log): its length.
    pub fn last_seq(&self) -> u64 {
        self.head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .next_seq
            .saturating_sub(1)
    }

    /// Appends events in order and makes them durable before returning their sequence numbers.
    pub fn append(&self, events: Vec<Event>, now: i64) -> Result<Vec<u64>, AuditError> {
        // Counted only once written: (kind, peer, rule) of each disclosure and denial.
        let counted: Vec<(EventKind, String, String)> = match self.metrics.get() {
            None => Vec::new(),
            Some(_) => events
                .iter()
                .filter(|e| matches!(e.kind, EventKind::Disclosure | EventKind::Denial))
                .map(|e| (e.kind, e.peer.clone(), e.policy_rule.clone()))
                .collect(),
        };
        let mut head = self
            .head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut seqs = Vec::with_capacity(events.len());
        let mut batch = Vec::with_capacity(events.len());
        let (mut seq, mut hash) = (head.next_seq, head.last_hash);
        for e in events {
            let entry = pb::AuditEntry {
                seq,
                at: now,
                kind: e.kind.as_str().to_owned(),
                peer: e.peer,
                request_id: e.request_id,
                purpose: e.purpose,
                detail: e.detail,
                policy_version: e.policy_version,
                policy_rule: e.policy_rule,
                record_refs: e.record_refs,
                prev_hash: hash.to_vec(),
                request_envelope: e.envelope,
            };
            let encoded = entry.encode_to_vec();
            batch.push((seq, stored::frame(&encoded)));
            hash = chain(&hash, &encoded);
            seqs.push(seq);
            seq += 1;
        }
        self.storage.put_entries(&batch)?;
        let written = seq - head.next_seq;
        head.next_seq = seq;
        head.last_hash = hash;
        head.since_checkpoint += written;
        if head.since_checkpoint >= CHECKPOINT_EVERY {
            self.write_checkpoint(&mut head, now)?;
        }
        drop(head);
        self.make_durable(seq - 1)?;
        if let Some(m) = self.metrics.get() {
            for (kind, peer, rule) in &counted {
                match kind {
                    EventKind::Disclosure => m.disclosure(peer, rule),
                    _ => m.denial(peer, rule),
                }
            }
        }
        Ok(seqs)
    }

    /// Returns once every entry up to `last` (and every write made before it) is on disk. The
    /// flusher takes everything applied so far, so appends that queued meanwhile need no flush
    /// of their own.
    fn make_durable(&self, last: u64) -> Result<(), AuditError> {
        let mut durable = self
            .durable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *durable >= last {
            return Ok(());
        }
        let target = self
            .head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .next_seq
            - 1;
        self.storage.flush()?;
        *durable = target;
        Ok(())
    }

    /// The latest signed checkpoint: its sequence number and chain value (what the node publishes
    /// in the directory so that a truncated log is detected by others).
    pub fn latest_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>, AuditError> {
        let Some(seq) = self.storage.last_checkpoint_seq()? else {
            return Ok(None);
        };
        // Checkpoints are one per 64 entries at least: walking them is cheap next to the log.
        for v in self.storage.checkpoints() {
            let cp =
                pb::AuditCheckpoint::decode(v?.as_slice()).map_err(|_| AuditError::Corrupt(0))?;
            if cp.seq == seq {
                return Ok(Some((cp.seq, cp.chain_hash)));
            }
        }
        Ok(None)
    }

    /// Signs a checkpoint of the current chain value (if anything is new since the last one).
    pub fn checkpoint(&self, now: i64) -> Result<(), AuditError> {
        let mut head = self
            .head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if head.since_checkpoint > 0 {
            self.write_checkpoint(&mut head, now)?;
            self.storage.flush()?;
        }
        Ok(())
    }

    fn write_checkpoint(&self, head: &mut Head, now: i64) -> Result<(), AuditError> {
        let seq = head.next_seq - 1;
        let cp = pb::AuditCheckpoint {
            seq,
            chain_hash: head.last_hash.to_vec(),
            at: now,
            node: self.key.node().to_string(),
            signature: self.key.sign_checkpoint(seq, &head.last_hash),
        };
        // Bare protobuf, without the format byte: the layout checkpoints have always had.
        self.storage.put_checkpoint(seq, cp.encode_to_vec())?;
        head.since_checkpoint = 0;
        Ok(())
    }

    /// Entries after `after_seq`, optionally only of one kind or peer, at most `limit`.
    pub fn list(
        &self,
        kind: &str,
        peer: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<pb::AuditEntry>, AuditError> {
        let mut out = Vec::new();
        let Some(from) = after_seq.checked_add(1) else {
            return Ok(out);
        };
        for kv in self.storage.entries_from(from) {
            let (seq, v) = kv?;
            let e = decode(seq, &v)?;
            if (kind.is_empty() || e.kind == kind) && (peer.is_empty() || e.peer == peer) {
                out.push(e);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// The outcome of a successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Entries checked.
    pub entries: u64,
    /// Signed checkpoints checked.
    pub checkpoints: u64,
    /// Entries after the last checkpoint (chained, but not yet covered by a signature).
    pub unsigned_tail: u64,
}

/// The first problem found by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit entry {seq}: {problem}")]
pub struct Fault {
    /// The first bad entry (or checkpoint) sequence number.
    pub seq: u64,
    /// What is wrong.
    pub problem: String,
}

/// Walks the whole chain and every checkpoint in the node's database, checking links, sequence
/// and signatures.
pub fn verify(db: &sled::Db, public_key: &[u8]) -> Result<Verified, Fault> {
    let storage = SledAuditStorage::open(db).map_err(|e| Fault {
        seq: 0,
        problem: format!("cannot read the log: {e}"),
    })?;
    verify_log(&storage, public_key)
}

/// What the federation holds of a node's log: the checkpoint it last published in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The entry's sequence number.
    pub seq: u64,
    /// The chain value up to and including that entry.
    pub chain_hash: Vec<u8>,
}

/// [`verify_log`], then checks the log still reaches `published` with the same chain value: an
/// attacker who truncates the tail (and re-signs checkpoints with the key on the same disk)
/// cannot make the log match what the directory holds, since the published value was signed by
/// the node and replicated to every member.
pub fn verify_published(
    storage: &dyn AuditStorage,
    public_key: &[u8],
    published: &Published,
) -> Result<Verified, Fault> {
    let (verified, hashes) = walk(storage, public_key)?;
    match hashes.get(&published.seq) {
        None => Err(Fault {
            seq: published.seq,
            problem: format!(
                "missing: the directory holds a published checkpoint at entry {} but the log ends at {} (truncated)",
                published.seq, verified.entries
            ),
        }),
        Some(h) if h.as_slice() != published.chain_hash.as_slice() => Err(Fault {
            seq: published.seq,
            problem: "chain differs from the checkpoint published in the directory (rewritten)"
                .into(),
        }),
        Some(_) => Ok(verified),
    }
}

/// [`verify_published`] over the audit log in the node's database.
pub fn verify_db_published(
    db: &sled::Db,
    public_key: &[u8],
    published: &Published,
) -> Result<Verified, Fault> {
    let storage = SledAuditStorage::open(db).map_err(|e| Fault {
        seq: 0,
        problem: format!("cannot read the log: {e}"),
    })?;
    verify_published(&storage, public_key, published)
}

/// Walks the whole chain and every checkpoint in `storage`, checking links, sequence and
/// signatures.
pub fn verify_log(storage: &dyn AuditStorage, public_key: &[u8]) -> Result<Verified, Fault> {
    walk(storage, public_key).map(|(v, _)| v)
}

type Hashes = std::collections::HashMap<u64, [u8; 32]>;

fn walk(storage: &dyn AuditStorage, public_key: &[u8]) -> Result<(Verified, Hashes), Fault> {
    let fault = |seq, problem: &str| Fault {
        seq,
        problem: problem.to_owned(),
    };
    let unreadable = |expected_seq, e: AuditError| match e {
        AuditError::Corrupt(_) => fault(expected_seq, "malformed key"),
        AuditError::Engine(_) => fault(0, &format!("cannot read the log: {e}")),
    };
    let mut expected_seq = 1u64;
    let mut hash = ZERO;
    let mut hashes = std::collections::HashMap::new();
    for kv in storage.entries_from(0) {
        let (seq, v) = kv.map_err(|e| unreadable(expected_seq, e))?;
        if seq != expected_seq {
            return Err(fault(expected_seq, "missing (sequence gap)"));
        }
        let entry = decode(seq, &v).map_err(|_| fault(seq, "does not decode"))?;
        if entry.seq != seq {
            return Err(fault(seq, "stored under another sequence number"));
        }
        if entry.prev_hash != hash {
            return Err(fault(
                seq,
                "does not link to the entry before it (edited, reordered or removed)",
            ));
        }
        hash = chain(&hash, stored::body(&v).unwrap_or_default());
        hashes.insert(seq, hash);
        expected_seq += 1;
    }
    let last = expected_seq - 1;
    let mut count = 0;
    let mut last_cp = 0;
    for v in storage.checkpoints() {
        let v = v.map_err(|e| unreadable(0, e))?;
        let cp = pb::AuditCheckpoint::decode(v.as_slice())
            .map_err(|_| fault(0, "checkpoint does not decode"))?;
        let Some(h) = hashes.get(&cp.seq) else {
            return Err(fault(
                cp.seq,
                "checkpoint for an entry that is not in the log",
            ));
        };
        if cp.chain_hash != h {
            return Err(fault(
                cp.seq,
                "chain differs from the signed checkpoint (an entry up to here was edited)",
            ));
        }
        verify_checkpoint(public_key, cp.seq, &cp.chain_hash, &cp.signature)
            .map_err(|_| fault(cp.seq, "checkpoint signature does not verify"))?;
        count += 1;
        last_cp = last_cp.max(cp.seq);
    }
    Ok((
        Verified {
            entries: last,
            checkpoints: count,
            unsigned_tail: last - last_cp,
        },
        hashes,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::ids::NodeId;

    #[test]
    fn the_audit_comes_first_and_a_failed_audit_stores_nothing() {
        let steps = std::cell::RefCell::new(Vec::new());
        let ok: Result<u8, &str> = audit_then(
            || {
                steps.borrow_mut().push("audit");
                Ok(())
            },
            || {
                steps.borrow_mut().push("store");
                Ok(7)
            },
        );
        assert_eq!((ok, steps.take()), (Ok(7), vec!["audit", "store"]));
        let refused: Result<u8, &str> = audit_then(
            || {
                steps.borrow_mut().push("audit");
                Err("audit log full")
            },
            || {
                steps.borrow_mut().push("store");
                Ok(7)
            },
        );
        assert_eq!(
            (refused, steps.take()),
            (Err("audit log full"), vec!["audit"])
        );
    }

    fn setup() -> (sled::Db, Arc<SigningKey>, AuditLog) {
        let db = crate::store::open::open_temporary().unwrap();
        let pk8 = SigningKey::generate_pkcs8().unwrap();
        let key =
            Arc::new(SigningKey::from_pkcs8(&pk8, NodeId::parse("FRA-POL").unwrap()).unwrap());
        let log = AuditLog::open(&db, key.clone()).unwrap();
        (db, key, log)
    }

    fn ev(i: usize) -> Event {
        Event {
            kind: if i.is_multiple_of(2) {
                EventKind::RequestReceived
            } else {
                EventKind::Disclosure
            },
            peer: "DEU-CUS".into(),
            request_id: format!("req-{i}"),
            purpose: "PURPOSE_TRACING".into(),
            detail: "lookup".into(),
            policy_version: 1,
            policy_rule: "r".into(),
            record_refs: vec![format!("ref-{i}")],
            envelope: None,
        }
    }

    fn fill(log: &AuditLog, n: usize) {
        for i in 0..n {
            log.append(vec![ev(i)], i as i64).unwrap();
        }
        log.checkpoint(n as i64).unwrap();
    }

    #[test]
    fn an_untouched_log_verifies_and_resumes_after_reopening() {
        let (db, key, log) = setup();
        fill(&log, 100);
        let v = verify(&db, &key.public_key()).unwrap();
        assert_eq!((v.entries, v.unsigned_tail), (100, 0));
        assert_eq!(v.checkpoints, 2);
        drop(log);
        let log = AuditLog::open(&db, key.clone()).unwrap();
        assert_eq!(log.append(vec![ev(100)], 100).unwrap(), vec![101]);
        let v = verify(&db, &key.public_key()).unwrap();
        assert_eq!((v.entries, v.unsigned_tail), (101, 1));
        assert_eq!(log.list("disclosure", "", 0, 1000).unwrap().len(), 50);
        assert_eq!(log.list("", "", 95, 3).unwrap()[0].seq, 96);
    }

    #[test]
    fn an_edited_entry_is_named() {
        let (db, key, log) = setup();
        fill(&log, 10);
        let tree = db.open_tree("audit").unwrap();
        let k = 4u64.to_be_bytes();
        let mut e = decode(4, &tree.get(k).unwrap().unwrap()).unwrap();
        e.detail = "nothing to see".into();
        tree.insert(k, stored::encode(&e)).unwrap();
        let f = verify(&db, &key.public_key()).unwrap_err();
        assert_eq!(f.seq, 5, "{f}"); // entry 4's successor no longer links to it
    }

    #[test]
    fn an_edited_last_entry_is_caught_by_the_checkpoint() {
        let (db, key, log) = setup();
        fill(&log, 10);
        let tree = db.open_tree("audit").unwrap();
        let k = 10u64.to_be_bytes();
        let mut e = decode(10, &tree.get(k).unwrap().unwrap()).unwrap();
        e.peer = "ITA-POL".into();
        tree.insert(k, stored::encode(&e)).unwrap();
        let f = verify(&db, &key.public_key()).unwrap_err();
        assert_eq!(f.seq, 10, "{f}");
    }

    #[test]
    fn deleted_and_reordered_entries_are_named() {
        let (db, key, log) = setup();
        fill(&log, 10);
        let tree = db.open_tree("audit").unwrap();
        tree.remove(6u64.to_be_bytes()).unwrap();
        assert_eq!(verify(&db, &key.public_key()).unwrap_err().seq, 6);

        let (db, key, log) = setup();
        fill(&log, 10);
        let tree = db.open_tree("audit").unwrap();
        let a = tree.get(3u64.to_be_bytes()).unwrap().unwrap();
        let b = tree.get(4u64.to_be_bytes()).unwrap().unwrap();
        tree.insert(3u64.to_be_bytes(), b).unwrap();
        tree.insert(4u64.to_be_bytes(), a).unwrap();
        assert_eq!(verify(&db, &key.public_key()).unwrap_err().seq, 3);
    }

    #[test]
    fn a_checkpoint_signed_by_another_key_is_refused() {
        let (db, _, log) = setup();
        fill(&log, 3);
        let pk8 = SigningKey::generate_pkcs8().unwrap();
        let other = SigningKey::from_pkcs8(&pk8, NodeId::parse("FRA-POL").unwrap()).unwrap();
        let f = verify(&db, &other.public_key()).unwrap_err();
        assert!(f.problem.contains("signature"), "{f}");
    }

    #[test]
    fn a_truncated_tail_passes_alone_but_not_against_the_published_checkpoint() {
        let (db, key, log) = setup();
        fill(&log, 100);
        let (seq, chain_hash) = log.latest_checkpoint().unwrap().unwrap();
        assert_eq!(seq, 100);
        let published = Published { seq, chain_hash };
        verify_db_published(&db, &key.public_key(), &published).unwrap();
        drop(log);
        // Drop entries 90..=100 and the checkpoint at 100: the log alone still verifies.
        let tree = db.open_tree("audit").unwrap();
        for s in 90..=100u64 {
            tree.remove(s.to_be_bytes()).unwrap();
        }
        let cps = db.open_tree("audit_checkpoints").unwrap();
        cps.remove(100u64.to_be_bytes()).unwrap();
        assert_eq!(verify(&db, &key.public_key()).unwrap().entries, 89);
        let f = verify_db_published(&db, &key.public_key(), &published).unwrap_err();
        assert_eq!(f.seq, 100, "{f}");
        assert!(f.problem.contains("truncated"), "{f}");
        // A log rewritten to the same length is caught by the chain value.
        let other = Published {
            seq: 64,
            chain_hash: vec![0; 32],
        };
        let f = verify_db_published(&db, &key.public_key(), &other).unwrap_err();
        assert!(f.problem.contains("rewritten"), "{f}");
    }
}
