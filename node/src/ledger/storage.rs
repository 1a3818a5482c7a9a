//! What the exchange ledger needs from storage: the [`LedgerStorage`] interface, implemented by
//! [`super::SledLedgerStorage`] and checked by [`super::conformance`].
//!
//! The interface is ours so the engine can change (sled 0.34 is unmaintained) without touching the
//! ledger or its callers. It knows keys, values and atomicity, and nothing of the trace workflow:
//! every decision (may this trace change, to what, which delivery goes with it) is made by the
//! ledger in the `decide` closure of [`LedgerStorage::update_trace`], which the storage runs
//! against the current value and whose writes it applies atomically with that read.
//!
//! Durability: every write method is flushed before it returns, except
//! [`LedgerStorage::note_disclosed`] (see there).

use tracenet_proto::v1 as pb;

use super::LedgerError;

/// The writes a [`LedgerStorage::update_trace`] decision asks for, applied all or none together
/// with the read the decision was made on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceUpdate {
    /// The trace's new value; `None` leaves it as it is (or absent).
    pub trace: Option<pb::TraceRecord>,
    /// Outbox items to store (replacing any item with the same id).
    pub outbox_put: Vec<pb::OutboxItem>,
    /// Outbox items to remove, by id (absent ids are ignored).
    pub outbox_remove: Vec<String>,
}

/// A lazily read sequence of stored values, in key order. Decoding or engine failures are items.
pub type Items<'a, T> = Box<dyn Iterator<Item = Result<T, LedgerError>> + 'a>;

/// The ledger's persistence: trace requests keyed by (direction, request id), the outbox keyed by
/// item id, received copies keyed by (owner node, reference), which peers received which of our
/// records, and which records were withdrawn.
///
/// Errors: engine failures are [`LedgerError::Engine`] (retryable, nothing was changed), values
/// that do not decode are [`LedgerError::Corrupt`]. Errors returned by a `decide` closure are
/// returned as they are, with nothing changed.
pub trait LedgerStorage: Send + Sync + std::fmt::Debug + 'static {
    // ---- traces ----

    /// The trace request `request_id` in `direction`.
    fn trace(
        &self,
        direction: &str,
        request_id: &str,
    ) -> Result<Option<pb::TraceRecord>, LedgerError>;

    /// Trace requests whose direction starts with `direction` (`""`: both), in key order
    /// (direction, then request id).
    fn traces(&self, direction: &str) -> Result<Vec<pb::TraceRecord>, LedgerError>;

    /// Reads the trace request `request_id` in `direction`, hands it to `decide`, and applies the
    /// [`TraceUpdate`] it returns, atomically: no other change to this trace or the outbox comes
    /// between the read and the writes, and the writes are durable when the call returns. When
    /// `decide` fails nothing is written and its error is returned. `decide` may be called more
    /// than once (when a concurrent change forces a retry), so it must not have side effects
    /// other than remembering its latest result.
    fn update_trace(
        &self,
        direction: &str,
        request_id: &str,
        decide: &dyn Fn(Option<pb::TraceRecord>) -> Result<TraceUpdate, LedgerError>,
    ) -> Result<(), LedgerError>;

    // ---- outbox ----

    /// Stores outbox items (replacing items with the same id), atomically and durably.
    fn put_outbox(&self, items: &[pb::OutboxItem]) -> Result<(), LedgerError>;

    /// Removes an outbox item, durably; absent ids are ignored.
    fn remove_outbox(&self, item_id: &str) -> Result<(), LedgerError>;

    /// Every outbox item, in item-id order, read lazily.
    fn outbox(&self) -> Items<'_, pb::OutboxItem>;

    // ---- disclosures, withdrawals and received copies ----

    /// Notes that `peer` received these records of ours. Not flushed: durable once any later
    /// durable write on the same database returns (the node's audit append, which precedes the
    /// answer to the peer, is one).
    fn note_disclosed(&self, record_ids: &[String], peer: &str) -> Result<(), LedgerError>;

    /// Peers that received a record of ours, in peer order, each once.
    fn disclosed_to(&self, record_id: &str) -> Result<Vec<String>, LedgerError>;

    /// Marks a record of ours withdrawn and stores the outbox items carrying its retractions,
    /// atomically and durably.
    fn withdraw(&self, record_id: &str, items: &[pb::OutboxItem]) -> Result<(), LedgerError>;

    /// Whether a record of ours was withdrawn.
    fn is_withdrawn(&self, record_id: &str) -> Result<bool, LedgerError>;

    /// Stores copies of records received from their owners, keyed by (owner node, reference),
    /// replacing older copies, atomically and durably.
    fn put_received(&self, records: &[pb::ReceivedRecord]) -> Result<(), LedgerError>;

    /// Deletes the copy of `reference` received from `owner`, durably; false if there was none.
    fn remove_received(&self, owner: &str, reference: &str) -> Result<bool, LedgerError>;

    /// All received copies, in (owner node, reference) order.
    fn received(&self) -> Result<Vec<pb::ReceivedRecord>, LedgerError>;

    /// The copy of `reference` received from `owner`, if one is held. The default reads them all;
    /// a storage with keyed reads should answer directly.
    fn received_copy(
        &self,
        owner: &str,
        reference: &str,
    ) -> Result<Option<pb::ReceivedRecord>, LedgerError> {
        Ok(self.received()?.into_iter().find(|r| {
            r.reference
                .as_ref()
                .is_some_and(|x| x.owner_node == owner && x.reference == reference)
        }))
    }
}
