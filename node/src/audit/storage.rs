//! What the audit log needs from storage: the [`AuditStorage`] interface, implemented by
//! [`super::SledAuditStorage`] and checked by [`super::conformance`].
//!
//! The storage keeps opaque values by sequence number and knows nothing of the hash chain: the
//! log ([`super::AuditLog`]) encodes entries, links them and signs checkpoints, and
//! [`super::verify_log`] checks them, over any implementation. The interface is ours so the
//! engine can change (sled 0.34 is unmaintained) without touching the log or its callers.

use std::sync::Arc;

use super::AuditError;

/// A lazily read sequence of stored values in ascending sequence order. Engine failures (and
/// keys that are not sequence numbers) are items.
pub type Stored<'a, T> = Box<dyn Iterator<Item = Result<T, AuditError>> + 'a>;

/// The audit log's persistence: entries and signed checkpoints, each keyed by a sequence number
/// and read back in ascending order. Nothing is durable until [`AuditStorage::flush`] returns.
///
/// Errors: engine failures are [`AuditError::Engine`] (retryable); a key that is not a sequence
/// number is [`AuditError::Corrupt`] (not retryable).
pub trait AuditStorage: Send + Sync + std::fmt::Debug + 'static {
    /// Stores entry values by sequence number, all or none (replacing values under the same
    /// numbers).
    fn put_entries(&self, entries: &[(u64, Vec<u8>)]) -> Result<(), AuditError>;

    /// The entry with the highest sequence number, if any.
    fn last_entry(&self) -> Result<Option<(u64, Vec<u8>)>, AuditError>;

    /// Entries with a sequence number of at least `from`, ascending, read lazily.
    fn entries_from(&self, from: u64) -> Stored<'_, (u64, Vec<u8>)>;

    /// Stores a checkpoint value under the sequence number of the entry it covers.
    fn put_checkpoint(&self, seq: u64, value: Vec<u8>) -> Result<(), AuditError>;

    /// The highest sequence number with a checkpoint, if any.
    fn last_checkpoint_seq(&self) -> Result<Option<u64>, AuditError>;

    /// Every checkpoint value, in ascending sequence order, read lazily.
    fn checkpoints(&self) -> Stored<'_, Vec<u8>>;

    /// Makes everything stored so far durable.
    fn flush(&self) -> Result<(), AuditError>;
}

/// A shared storage is a storage (so a test, or a tool, can keep a handle on what a log writes).
impl<S: AuditStorage> AuditStorage for Arc<S> {
    fn put_entries(&self, entries: &[(u64, Vec<u8>)]) -> Result<(), AuditError> {
        (**self).put_entries(entries)
    }
    fn last_entry(&self) -> Result<Option<(u64, Vec<u8>)>, AuditError> {
        (**self).last_entry()
    }
    fn entries_from(&self, from: u64) -> Stored<'_, (u64, Vec<u8>)> {
        (**self).entries_from(from)
    }
    fn put_checkpoint(&self, seq: u64, value: Vec<u8>) -> Result<(), AuditError> {
        (**self).put_checkpoint(seq, value)
    }
    fn last_checkpoint_seq(&self) -> Result<Option<u64>, AuditError> {
        (**self).last_checkpoint_seq()
    }
    fn checkpoints(&self) -> Stored<'_, Vec<u8>> {
        (**self).checkpoints()
    }
    fn flush(&self) -> Result<(), AuditError> {
        (**self).flush()
    }
}
