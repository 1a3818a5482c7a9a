//! The exchange ledger: trace requests (outgoing and incoming), the durable outbox of
//! deliveries, copies of records received from other nodes, which peers received which of our
//! records, and which records were withdrawn.
//!
//! Every change that must lead to a delivery writes the delivery into the outbox atomically with
//! the change, and is durable before the call returns: if the node acknowledges it, it will be
//! delivered, however often the node restarts. Receiving is idempotent on the request id, so a
//! retried delivery is applied once.
//!
//! Layers, so the engine can change (sled 0.34 is unmaintained) without touching callers:
//! - [`Ledger`] (methods in [`traces`], [`outbox`] and [`copies`], by concern) decides: which
//!   status a trace may take, what a duplicate is, which delivery goes with which change. The
//!   trace rules themselves are the pure functions of [`crate::trace`].
//! - [`LedgerStorage`] stores: keys, values, atomicity and durability, nothing else.
//!   [`SledLedgerStorage`] implements it; [`conformance`] is what every implementation must do.

pub mod conformance;
pub mod copies;
pub mod outbox;
mod sled_storage;
pub mod storage;
pub mod traces;

use std::cell::RefCell;

use tracenet_proto::v1 as pb;

pub use crate::trace::{INCOMING, OUTGOING};
pub use outbox::Delivered;
pub use sled_storage::SledLedgerStorage;
pub use storage::{LedgerStorage, TraceUpdate};

/// Ledger failures. None mentions the storage engine: its errors arrive as text in [`Engine`].
///
/// [`Engine`]: LedgerError::Engine
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The storage engine failed (I/O error, disk full). Nothing was changed; retrying may help.
    #[error("ledger storage: {0}")]
    Engine(String),
    /// Stored bytes do not decode (corrupted, or written by a newer release). Not retryable.
    #[error("ledger entry {0} is unreadable")]
    Corrupt(String),
    /// No such trace request (or not from that node). Not retryable.
    #[error("{0}")]
    NotFound(String),
    /// The change contradicts the current state (e.g. answering twice). Not retryable.
    #[error("{0}")]
    Conflict(String),
}

impl LedgerError {
    /// Whether retrying the same call could succeed: only after an engine failure.
    pub fn is_retryable(&self) -> bool {
        matches!(self, LedgerError::Engine(_))
    }
}

/// The exchange ledger, over any [`LedgerStorage`].
#[derive(Debug)]
pub struct Ledger {
    storage: Box<dyn LedgerStorage>,
}

impl Ledger {
    /// Opens the ledger's trees in the node's database.
    pub fn open(db: &sled::Db) -> Result<Ledger, LedgerError> {
        Ok(Ledger::with_storage(SledLedgerStorage::open(db)?))
    }

    /// A ledger over another storage.
    pub fn with_storage(storage: impl LedgerStorage) -> Ledger {
        Ledger {
            storage: Box::new(storage),
        }
    }

    /// Runs `decide` on the current value of a trace and applies its writes atomically (see
    /// [`LedgerStorage::update_trace`]), returning what the applied decision returned.
    fn update<T>(
        &self,
        direction: &str,
        request_id: &str,
        decide: impl Fn(Option<pb::TraceRecord>) -> Result<(TraceUpdate, T), LedgerError>,
    ) -> Result<T, LedgerError> {
        // The storage may retry `decide`; the result of the last run is the one applied.
        let decided = RefCell::new(None);
        self.storage
            .update_trace(direction, request_id, &|current| {
                let (update, out) = decide(current)?;
                *decided.borrow_mut() = Some(out);
                Ok(update)
            })?;
        decided.into_inner().ok_or_else(|| {
            LedgerError::Engine("the storage reported an update it never decided".into())
        })
    }
}

/// Reads a stored status, treating unknown values as unspecified.
fn status_of(rec: &pb::TraceRecord) -> pb::TraceStatus {
    pb::TraceStatus::try_from(rec.status).unwrap_or(pb::TraceStatus::Unspecified)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod testing {
    //! Fixtures shared by the ledger's tests.

    use tracenet_proto::v1 as pb;

    use super::Ledger;
    use crate::ids::NodeId;

    pub(super) fn ledger() -> Ledger {
        Ledger::open(&crate::store::open::open_temporary().unwrap()).unwrap()
    }

    pub(super) fn node(s: &str) -> NodeId {
        NodeId::parse(s).unwrap()
    }

    pub(super) fn request(id: &str) -> pb::TraceRequest {
        pb::TraceRequest {
            id: id.into(),
            requester_node: "FRA-POL".into(),
            requested_country: "DEU".into(),
            due_at: 1_000_000,
            ..Default::default()
        }
    }

    pub(super) fn item(id: &str, payload: pb::outbox_item::Payload) -> pb::OutboxItem {
        pb::OutboxItem {
            id: id.into(),
            target_node: "DEU-CUS".into(),
            payload: Some(payload),
            ..Default::default()
        }
    }
}
