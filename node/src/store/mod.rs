//! Record storage: the [`RecordStore`] interface the rest of the node uses, and its sled
//! implementation.
//!
//! The interface is ours so the engine can change (sled 0.34 is unmaintained) without touching
//! callers; [`conformance`] is the behaviour every implementation must show. Writes are
//! transactional (a record, its index entries, its national-reference entry and the record count
//! change together) and durable (flushed) before the call returns, because callers acknowledge
//! them to users and peers.

pub mod compact;
pub mod conformance;
pub mod keys;
mod migrate;
pub mod open;
mod postings;
mod sled_store;

pub use sled_store::SledStore;
use tracenet_proto::stored::CodecError;
use tracenet_proto::v1 as pb;

use crate::country::CountryCode;
use crate::ids::RecordId;
use crate::model::{Date, ValidRecord};
use crate::serial::NormalisedSerial;

/// What can go wrong in the store. Each variant says whether retrying can help.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine or the disk failed (the engine's message; the interface does not
    /// depend on the engine). Retrying may help if the cause was transient (disk full, I/O
    /// error); the write was not acknowledged and did not happen.
    #[error("storage engine error: {0}")]
    Engine(String),
    /// Stored bytes do not decode. Not retryable: the data directory needs attention.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The value was written in an on-disk format this version does not know (a newer one).
    /// Not retryable: upgrade the node.
    #[error("stored value has unsupported format version {0}")]
    UnsupportedVersion(u8),
    /// No record has this id. Not retryable.
    #[error("no record with id {0}")]
    NotFound(RecordId),
    /// Another record already has this national reference. Not retryable as is.
    #[error("national reference '{national_ref}' is already used by record {existing}")]
    DuplicateNationalRef {
        /// The reference that clashed.
        national_ref: String,
        /// The record that has it.
        existing: RecordId,
    },
    /// The record changed since the caller read it. Retry after reading it again.
    #[error("record {id} is at revision {actual}, not the expected {expected}")]
    RevisionMismatch {
        /// The record.
        id: RecordId,
        /// The revision the caller expected.
        expected: u64,
        /// The revision stored.
        actual: u64,
    },
    /// An update named no record id. Not retryable as is.
    #[error("an update needs the record id")]
    MissingId,
}

/// Stored values use the shared versioned codec ([`tracenet_proto::stored`]); an unknown format
/// byte means a newer release wrote the value.
impl From<CodecError> for StoreError {
    fn from(e: CodecError) -> StoreError {
        match e {
            CodecError::UnsupportedFormat(v) => StoreError::UnsupportedVersion(v),
            other => StoreError::Corrupt(format!("record does not decode: {other}")),
        }
    }
}

/// A range of records selected through one index.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexQuery {
    /// Records with a firearm or part whose normalised serial matches (wildcards allowed).
    Serial(NormalisedSerial),
    /// Records of events in `country` between two dates (inclusive; `None` is unbounded).
    CountryDate {
        /// Country of the event.
        country: CountryCode,
        /// First date included.
        from: Option<Date>,
        /// Last date included.
        to: Option<Date>,
    },
    /// Records whose trafficking route passes through the country.
    RouteCountry(CountryCode),
    /// Records with this transport mode.
    TransportMode(pb::TransportMode),
    /// Records with this concealment method.
    Concealment(pb::ConcealmentMethod),
    /// Records holding a ballistic reference whose normalised form matches (wildcards allowed).
    Ballistic(NormalisedSerial),
    /// Records with an ammunition lot whose normalised headstamp matches.
    Headstamp(NormalisedSerial),
    /// Records with an ammunition lot whose normalised lot number matches.
    AmmunitionLot(NormalisedSerial),
    /// Records with a shipment identifier whose normalised value matches.
    Shipment(NormalisedSerial),
}

/// Counts of an atomic batch write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Records that did not exist before.
    pub created: u64,
    /// Records that replaced an earlier record with the same national reference.
    pub updated: u64,
}

/// The node's record store. All writes are atomic and flushed to disk before they return.
pub trait RecordStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores a new record under a fresh id. Fails if its national reference is taken.
    fn create(&self, record: ValidRecord, now: i64) -> Result<pb::StoredRecord, StoreError>;
    /// Replaces the record with the record's id; `expected_revision` guards lost updates.
    fn update(
        &self,
        record: ValidRecord,
        expected_revision: Option<u64>,
        now: i64,
    ) -> Result<pb::StoredRecord, StoreError>;
    /// Writes all records or none: each creates a record or replaces the one with the same
    /// national reference (so re-running an interrupted import does not duplicate anything).
    fn upsert_batch(&self, records: Vec<ValidRecord>, now: i64)
    -> Result<BatchOutcome, StoreError>;
    /// The record with this id.
    fn get(&self, id: RecordId) -> Result<Option<pb::StoredRecord>, StoreError>;
    /// Records in id (creation) order, starting after `after`.
    fn list(
        &self,
        after: Option<RecordId>,
        limit: usize,
    ) -> Result<Vec<pb::StoredRecord>, StoreError>;
    /// Records newest first (reverse id order), starting before `before`.
    fn list_newest(
        &self,
        before: Option<RecordId>,
        limit: usize,
    ) -> Result<Vec<pb::StoredRecord>, StoreError>;
    /// Records selected through an index, in index order, at most `limit`.
    fn find(&self, query: &IndexQuery, limit: usize) -> Result<Vec<pb::StoredRecord>, StoreError>;
    /// The record with this national reference.
    fn get_by_national_ref(
        &self,
        national_ref: &str,
    ) -> Result<Option<pb::StoredRecord>, StoreError>;
    /// Number of records stored.
    fn count(&self) -> Result<u64, StoreError>;
    /// Makes everything written so far durable.
    fn flush(&self) -> Result<(), StoreError>;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use tracenet_proto::stored;

    use super::*;

    fn decode_record(bytes: &[u8]) -> Result<pb::StoredRecord, StoreError> {
        Ok(stored::decode(bytes)?)
    }

    #[test]
    fn round_trip_and_version_checks() {
        let rec = pb::StoredRecord {
            record: Some(pb::SeizureRecord {
                national_ref: "SYN-1".into(),
                ..Default::default()
            }),
            revision: 3,
            created_at: 10,
            updated_at: 20,
        };
        let bytes = stored::encode(&rec);
        assert_eq!(bytes[0], stored::FORMAT_V1);
        assert_eq!(decode_record(&bytes).unwrap(), rec);
        let mut newer = bytes.clone();
        newer[0] = 2;
        assert!(matches!(
            decode_record(&newer),
            Err(StoreError::UnsupportedVersion(2))
        ));
        assert!(matches!(decode_record(&[]), Err(StoreError::Corrupt(_))));
        assert!(matches!(
            decode_record(&[1, 0xff, 0xff, 0xff]),
            Err(StoreError::Corrupt(_))
        ));
    }
}
