//! The sled implementation of [`LedgerStorage`], on trees of the node's database.
//!
//! Trees and keys (unchanged since the ledger was one file, so existing data opens):
//! - `traces`: `{direction}:{request id}` → versioned `TraceRecord`
//! - `outbox`: item id → versioned `OutboxItem`
//! - `received`: owner node `\0` reference → versioned `ReceivedRecord`
//! - `disclosed_to`: record id `\0` peer → empty
//! - `withdrawn`: record id → empty
//!
//! Changes that span trees (a trace and its delivery, a withdrawal and its retractions) are one
//! sled transaction; every write except [`LedgerStorage::note_disclosed`] is flushed before it
//! returns. sled's errors stop here: they become [`LedgerError::Engine`] carrying their text.

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use tracenet_proto::stored;
use tracenet_proto::v1 as pb;

use super::LedgerError;
use super::storage::{Items, LedgerStorage, TraceUpdate};

fn engine(e: sled::Error) -> LedgerError {
    LedgerError::Engine(e.to_string())
}

fn unwrap_tx<T>(r: Result<T, TransactionError<LedgerError>>) -> Result<T, LedgerError> {
    r.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => engine(e),
    })
}

fn decode<M: prost::Message + Default>(key: &[u8], value: &[u8]) -> Result<M, LedgerError> {
    stored::decode(value)
        .map_err(|e| LedgerError::Corrupt(format!("{} ({e})", String::from_utf8_lossy(key))))
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

/// The ledger's trees in a sled database.
#[derive(Debug)]
pub struct SledLedgerStorage {
    db: sled::Db,
    traces: sled::Tree,
    outbox: sled::Tree,
    received: sled::Tree,
    disclosed: sled::Tree,
    withdrawn: sled::Tree,
}

impl SledLedgerStorage {
    /// Opens (or creates) the ledger's trees in the node's database.
    pub fn open(db: &sled::Db) -> Result<SledLedgerStorage, LedgerError> {
        let tree = |name: &str| db.open_tree(name).map_err(engine);
        Ok(SledLedgerStorage {
            db: db.clone(),
            traces: tree("traces")?,
            outbox: tree("outbox")?,
            received: tree("received")?,
            disclosed: tree("disclosed_to")?,
            withdrawn: tree("withdrawn")?,
        })
    }

    fn flush(&self) -> Result<(), LedgerError> {
        self.db.flush().map_err(engine)?;
        Ok(())
    }
}

impl LedgerStorage for SledLedgerStorage {
    fn trace(
        &self,
        direction: &str,
        request_id: &str,
    ) -> Result<Option<pb::TraceRecord>, LedgerError> {
        let key = trace_key(direction, request_id);
        self.traces
            .get(&key)
            .map_err(engine)?
            .map(|v| decode(&key, &v))
            .transpose()
    }

    fn traces(&self, direction: &str) -> Result<Vec<pb::TraceRecord>, LedgerError> {
        self.traces
            .scan_prefix(direction.as_bytes())
            .map(|kv| {
                let (k, v) = kv.map_err(engine)?;
                decode(&k, &v)
            })
            .collect()
    }

    fn update_trace(
        &self,
        direction: &str,
        request_id: &str,
        decide: &dyn Fn(Option<pb::TraceRecord>) -> Result<TraceUpdate, LedgerError>,
    ) -> Result<(), LedgerError> {
        let key = trace_key(direction, request_id);
        unwrap_tx(
            (&self.traces, &self.outbox).transaction(|(traces, outbox)| {
                let current = traces
                    .get(&key)?
                    .map(|v| decode(&key, &v))
                    .transpose()
                    .map_err(ConflictableTransactionError::Abort)?;
                let update = decide(current).map_err(ConflictableTransactionError::Abort)?;
                if let Some(rec) = &update.trace {
                    traces.insert(key.as_slice(), stored::encode(rec))?;
                }
                for item in &update.outbox_put {
                    outbox.insert(item.id.as_bytes(), stored::encode(item))?;
                }
                for id in &update.outbox_remove {
                    outbox.remove(id.as_bytes())?;
                }
                Ok(())
            }),
        )?;
        self.flush()
    }

    fn put_outbox(&self, items: &[pb::OutboxItem]) -> Result<(), LedgerError> {
        let mut batch = sled::Batch::default();
        for item in items {
            batch.insert(item.id.as_bytes(), stored::encode(item));
        }
        self.outbox.apply_batch(batch).map_err(engine)?;
        self.flush()
    }

    fn remove_outbox(&self, item_id: &str) -> Result<(), LedgerError> {
        self.outbox.remove(item_id.as_bytes()).map_err(engine)?;
        self.flush()
    }

    fn outbox(&self) -> Items<'_, pb::OutboxItem> {
        Box::new(self.outbox.iter().map(|kv| {
            let (k, v) = kv.map_err(engine)?;
            decode(&k, &v)
        }))
    }

    fn note_disclosed(&self, record_ids: &[String], peer: &str) -> Result<(), LedgerError> {
        let mut batch = sled::Batch::default();
        for id in record_ids {
            batch.insert(pair_key(id, peer), &[]);
        }
        self.disclosed.apply_batch(batch).map_err(engine)
    }

    fn disclosed_to(&self, record_id: &str) -> Result<Vec<String>, LedgerError> {
        let mut prefix = record_id.as_bytes().to_vec();
        prefix.push(0);
        self.disclosed
            .scan_prefix(&prefix)
            .map(|kv| {
                let (k, _) = kv.map_err(engine)?;
                Ok(String::from_utf8_lossy(k.get(prefix.len()..).unwrap_or_default()).into_owned())
            })
            .collect()
    }

    fn withdraw(&self, record_id: &str, items: &[pb::OutboxItem]) -> Result<(), LedgerError> {
        unwrap_tx(
            (&self.withdrawn, &self.outbox).transaction(|(withdrawn, outbox)| {
                withdrawn.insert(record_id.as_bytes(), &[])?;
                for item in items {
                    outbox.insert(item.id.as_bytes(), stored::encode(item))?;
                }
                Ok(())
            }),
        )?;
        self.flush()
    }

    fn is_withdrawn(&self, record_id: &str) -> Result<bool, LedgerError> {
        self.withdrawn
            .contains_key(record_id.as_bytes())
            .map_err(engine)
    }

    fn put_received(&self, records: &[pb::ReceivedRecord]) -> Result<(), LedgerError> {
        let mut batch = sled::Batch::default();
        for r in records {
            let reference = r.reference.clone().unwrap_or_default();
            batch.insert(
                pair_key(&reference.owner_node, &reference.reference),
                stored::encode(r),
            );
        }
        self.received.apply_batch(batch).map_err(engine)?;
        self.flush()
    }

    fn remove_received(&self, owner: &str, reference: &str) -> Result<bool, LedgerError> {
        let existed = self
            .received
            .remove(pair_key(owner, reference))
            .map_err(engine)?
            .is_some();
        self.flush()?;
        Ok(existed)
    }

    fn received(&self) -> Result<Vec<pb::ReceivedRecord>, LedgerError> {
        self.received
            .iter()
            .map(|kv| {
                let (k, v) = kv.map_err(engine)?;
                decode(&k, &v)
            })
            .collect()
    }

    fn received_copy(
        &self,
        owner: &str,
        reference: &str,
    ) -> Result<Option<pb::ReceivedRecord>, LedgerError> {
        let key = pair_key(owner, reference);
        match self.received.get(&key).map_err(engine)? {
            Some(v) => decode(&key, &v).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn temporary() -> SledLedgerStorage {
        SledLedgerStorage::open(&crate::store::open::open_temporary().unwrap()).unwrap()
    }

    #[test]
    fn sled_ledger_storage_passes_the_conformance_suite() {
        super::super::conformance::run_all(temporary);
    }

    #[test]
    fn values_keep_the_layout_written_before_the_split() {
        // The keys and values the one-file ledger wrote; data written by it must still open.
        let db = crate::store::open::open_temporary().unwrap();
        let rec = pb::TraceRecord {
            direction: "incoming".into(),
            counterpart_node: "FRA-POL".into(),
            ..Default::default()
        };
        let mut old = vec![1u8];
        old.extend(prost::Message::encode_to_vec(&rec));
        db.open_tree("traces")
            .unwrap()
            .insert("incoming:t1", old)
            .unwrap();
        db.open_tree("disclosed_to")
            .unwrap()
            .insert(b"r1\0DEU-CUS", &[])
            .unwrap();
        let s = SledLedgerStorage::open(&db).unwrap();
        assert_eq!(s.trace("incoming", "t1").unwrap(), Some(rec));
        assert_eq!(s.disclosed_to("r1").unwrap(), vec!["DEU-CUS"]);
        db.open_tree("traces")
            .unwrap()
            .insert("incoming:t2", &[2u8, 0])
            .unwrap();
        assert!(matches!(
            s.trace("incoming", "t2"),
            Err(LedgerError::Corrupt(_))
        ));
        assert!(matches!(s.traces(""), Err(LedgerError::Corrupt(_))));
    }
}
