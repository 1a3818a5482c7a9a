//! The sled implementation of [`AuditStorage`], on two trees of the node's database.
//!
//! Trees and keys (unchanged, so existing logs open and verify): `audit` maps the big-endian
//! sequence number to the versioned entry, `audit_checkpoints` maps the big-endian sequence
//! number to the checkpoint message. Entries of one append are one `sled::Batch`; `flush` flushes
//! the whole database, so it also makes the node's other unflushed writes durable (the ledger
//! relies on that, see [`crate::ledger::LedgerStorage::note_disclosed`]). sled's errors stop
//! here: they become [`AuditError::Engine`] carrying their text.

use super::AuditError;
use super::storage::{AuditStorage, Stored};

fn engine(e: sled::Error) -> AuditError {
    AuditError::Engine(e.to_string())
}

fn seq_of(key: &[u8]) -> Result<u64, AuditError> {
    key.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| AuditError::Corrupt(0))
}

/// The audit log's trees in a sled database.
#[derive(Debug)]
pub struct SledAuditStorage {
    db: sled::Db,
    entries: sled::Tree,
    checkpoints: sled::Tree,
}

impl SledAuditStorage {
    /// Opens (or creates) the audit trees in the node's database.
    pub fn open(db: &sled::Db) -> Result<SledAuditStorage, AuditError> {
        Ok(SledAuditStorage {
            db: db.clone(),
            entries: db.open_tree("audit").map_err(engine)?,
            checkpoints: db.open_tree("audit_checkpoints").map_err(engine)?,
        })
    }
}

impl AuditStorage for SledAuditStorage {
    fn put_entries(&self, entries: &[(u64, Vec<u8>)]) -> Result<(), AuditError> {
        let mut batch = sled::Batch::default();
        for (seq, value) in entries {
            batch.insert(&seq.to_be_bytes(), value.as_slice());
        }
        self.entries.apply_batch(batch).map_err(engine)
    }

    fn last_entry(&self) -> Result<Option<(u64, Vec<u8>)>, AuditError> {
        self.entries
            .last()
            .map_err(engine)?
            .map(|(k, v)| Ok((seq_of(&k)?, v.to_vec())))
            .transpose()
    }

    fn entries_from(&self, from: u64) -> Stored<'_, (u64, Vec<u8>)> {
        Box::new(self.entries.range(from.to_be_bytes()..).map(|kv| {
            let (k, v) = kv.map_err(engine)?;
            Ok((seq_of(&k)?, v.to_vec()))
        }))
    }

    fn put_checkpoint(&self, seq: u64, value: Vec<u8>) -> Result<(), AuditError> {
        self.checkpoints
            .insert(seq.to_be_bytes(), value)
            .map_err(engine)?;
        Ok(())
    }

    fn last_checkpoint_seq(&self) -> Result<Option<u64>, AuditError> {
        // A malformed key counts as no checkpoint, as it always has: the chain still verifies.
        Ok(self
            .checkpoints
            .last()
            .map_err(engine)?
            .and_then(|(k, _)| seq_of(&k).ok()))
    }

    fn checkpoints(&self) -> Stored<'_, Vec<u8>> {
        Box::new(
            self.checkpoints
                .iter()
                .map(|kv| Ok(kv.map_err(engine)?.1.to_vec())),
        )
    }

    fn flush(&self) -> Result<(), AuditError> {
        self.db.flush().map_err(engine)?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn sled_audit_storage_passes_the_conformance_suite() {
        super::super::conformance::run_all(|| {
            SledAuditStorage::open(&crate::store::open::open_temporary().unwrap()).unwrap()
        });
    }

    #[test]
    fn a_key_that_is_not_a_sequence_number_is_corrupt() {
        let db = crate::store::open::open_temporary().unwrap();
        let s = SledAuditStorage::open(&db).unwrap();
        db.open_tree("audit").unwrap().insert(b"xyz", b"v").unwrap();
        assert!(matches!(s.last_entry(), Err(AuditError::Corrupt(_))));
        assert!(matches!(
            s.entries_from(0).next(),
            Some(Err(AuditError::Corrupt(_)))
        ));
    }
}
