//! Records that crossed the federation: copies of other nodes' records received here, which
//! peers received which of our records (so a retraction can reach them), and which of our records
//! were withdrawn from sharing.
//!
//! Nothing is decided here; these are the ledger's plain reads and writes, kept apart from the
//! trace workflow so each concern reads on its own.

use tracenet_proto::v1 as pb;

use super::{Ledger, LedgerError};
use crate::ids::NodeId;

impl Ledger {
    /// Notes that `peer` received these records of ours (so a retraction can reach it). Not
    /// flushed here: the caller's audit append, which must precede the answer, flushes it.
    pub fn note_disclosed(&self, record_ids: &[String], peer: &NodeId) -> Result<(), LedgerError> {
        self.storage.note_disclosed(record_ids, peer.as_str())
    }

    /// Peers that received a record of ours.
    pub fn disclosed_to(&self, record_id: &str) -> Result<Vec<String>, LedgerError> {
        self.storage.disclosed_to(record_id)
    }

    /// Notes that this node passed its received copy of `reference` on to `peer` (so the
    /// owner's retraction can be relayed to it). Kept beside our own records' recipients, under
    /// a key no record id can take.
    pub fn note_onward(&self, reference: &pb::RecordRef, peer: &NodeId) -> Result<(), LedgerError> {
        self.storage
            .note_disclosed(&[onward_key(reference)], peer.as_str())
    }

    /// The peers this node passed its received copy of `reference` on to.
    pub fn onward_recipients(&self, reference: &pb::RecordRef) -> Result<Vec<String>, LedgerError> {
        self.storage.disclosed_to(&onward_key(reference))
    }

    /// Withdraws a record from sharing and queues the retractions, atomically and durably.
    pub fn withdraw(&self, record_id: &str, items: &[pb::OutboxItem]) -> Result<(), LedgerError> {
        self.storage.withdraw(record_id, items)
    }

    /// Whether a record of ours was withdrawn.
    pub fn is_withdrawn(&self, record_id: &str) -> Result<bool, LedgerError> {
        self.storage.is_withdrawn(record_id)
    }

    /// Keeps copies of records received from their owners (replacing older copies).
    pub fn store_received(&self, records: &[pb::ReceivedRecord]) -> Result<(), LedgerError> {
        self.storage.put_received(records)
    }

    /// Deletes the copy of `reference` received from `owner`; false if there was none.
    pub fn remove_received(&self, owner: &NodeId, reference: &str) -> Result<bool, LedgerError> {
        self.storage.remove_received(owner.as_str(), reference)
    }

    /// The copy of `reference` received from `owner`, if one is held.
    pub fn received_copy(
        &self,
        owner: &str,
        reference: &str,
    ) -> Result<Option<pb::ReceivedRecord>, LedgerError> {
        self.storage.received_copy(owner, reference)
    }

    /// All received copies.
    pub fn list_received(&self) -> Result<Vec<pb::ReceivedRecord>, LedgerError> {
        self.storage.received()
    }
}

/// Where the recipients of a passed-on copy are noted: record ids are hex, never with `/`.
fn onward_key(reference: &pb::RecordRef) -> String {
    format!(
        "onward/{}/{}",
        reference.owner_node,
        reference.reference.replace('\0', "\u{fffd}")
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::ledger::testing::{ledger, node};

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
        l.store_received(std::slice::from_ref(&copy)).unwrap();
        assert_eq!(l.list_received().unwrap().len(), 1);
        assert_eq!(l.received_copy("FRA-POL", "r9").unwrap(), Some(copy));
        assert_eq!(l.received_copy("ITA-POL", "r9").unwrap(), None);
        assert!(!l.remove_received(&node("ITA-POL"), "r9").unwrap());
        assert!(l.remove_received(&node("FRA-POL"), "r9").unwrap());
        assert!(!l.remove_received(&node("FRA-POL"), "r9").unwrap());
        let forwarded = pb::RecordRef {
            owner_node: "FRA-POL".into(),
            reference: "r9".into(),
        };
        l.note_onward(&forwarded, &node("ITA-POL")).unwrap();
        assert_eq!(l.onward_recipients(&forwarded).unwrap(), vec!["ITA-POL"]);
        assert!(l.disclosed_to("r9").unwrap().is_empty());
        l.withdraw("r1", &[]).unwrap();
        assert!(l.is_withdrawn("r1").unwrap());
        assert!(!l.is_withdrawn("r2").unwrap());
    }
}
