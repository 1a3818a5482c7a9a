//! The sled implementation of [`LedgerStorage`], on trees of the node's database.
//!
//! Trees and keys (ledger layout 2):
//! - `exchange`: `t` + `{direction}:{request id}` → versioned `TraceRecord`;
//!   `o` + item id → versioned `OutboxItem`; `w` + record id → empty (withdrawn)
//! - `received`: owner node `\0` reference → versioned `ReceivedRecord`
//! - `disclosed_to`: record id `\0` peer → empty
//!
//! Changes that must be atomic (a trace and its delivery, a withdrawal and its retractions) are
//! one `sled::Batch` on the one `exchange` tree, staged under a writer lock so that a
//! read-modify-write of a trace sees no concurrent change and its decision runs once (a sled
//! transaction may re-run it on conflict). Layout 1 kept traces, the outbox and withdrawals in
//! trees of their own, changed by multi-tree transactions; [`SledLedgerStorage::open`] moves
//! them into `exchange` once.
//!
//! Every write except [`LedgerStorage::note_disclosed`] is flushed before it returns. sled's
//! errors stop here: they become [`LedgerError::Engine`] carrying their text.

use std::sync::Mutex;

use tracenet_proto::stored;
use tracenet_proto::v1 as pb;

use super::LedgerError;
use super::storage::{Items, LedgerStorage, TraceUpdate};

const TRACE: u8 = b't';
const OUTBOX: u8 = b'o';
const WITHDRAWN: u8 = b'w';
/// Layout 1's trees and the prefix their keys take in `exchange`.
const LAYOUT_1_TREES: [(&str, u8); 3] = [
    ("traces", TRACE),
    ("outbox", OUTBOX),
    ("withdrawn", WITHDRAWN),
];

fn engine(e: sled::Error) -> LedgerError {
    LedgerError::Engine(e.to_string())
}

fn decode<M: prost::Message + Default>(key: &[u8], value: &[u8]) -> Result<M, LedgerError> {
    stored::decode(value)
        .map_err(|e| LedgerError::Corrupt(format!("{} ({e})", String::from_utf8_lossy(key))))
}

fn prefixed(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(rest.len() + 1);
    k.push(prefix);
    k.extend_from_slice(rest);
    k
}

fn trace_key(direction: &str, request_id: &str) -> Vec<u8> {
    prefixed(TRACE, format!("{direction}:{request_id}").as_bytes())
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
    exchange: sled::Tree,
    received: sled::Tree,
    disclosed: sled::Tree,
    /// Held while a change to `exchange` is decided and applied.
    writer: Mutex<()>,
}

impl SledLedgerStorage {
    /// Opens (or creates) the ledger's trees in the node's database, moving layout 1's trees
    /// into `exchange` if they hold anything.
    pub fn open(db: &sled::Db) -> Result<SledLedgerStorage, LedgerError> {
        let tree = |name: &str| db.open_tree(name).map_err(engine);
        let storage = SledLedgerStorage {
            db: db.clone(),
            exchange: tree("exchange")?,
            received: tree("received")?,
            disclosed: tree("disclosed_to")?,
            writer: Mutex::new(()),
        };
        storage.migrate_layout_1()?;
        Ok(storage)
    }

    /// Copies layout 1's trees into `exchange` (one batch, flushed), then drops them. A crash
    /// before the drop repeats the copy on the next start, which writes the same values again.
    fn migrate_layout_1(&self) -> Result<(), LedgerError> {
        let names = self.db.tree_names();
        let mut batch = sled::Batch::default();
        let mut found = Vec::new();
        for (name, prefix) in LAYOUT_1_TREES {
            if !names.iter().any(|n| n.as_ref() == name.as_bytes()) {
                continue;
            }
            let old = self.db.open_tree(name).map_err(engine)?;
            for kv in old.iter() {
                let (k, v) = kv.map_err(engine)?;
                batch.insert(prefixed(prefix, &k), v);
            }
            found.push(name);
        }
        if found.is_empty() {
            return Ok(());
        }
        self.exchange.apply_batch(batch).map_err(engine)?;
        self.flush()?;
        for name in found {
            self.db.drop_tree(name).map_err(engine)?;
        }
        self.flush()
    }

    fn flush(&self) -> Result<(), LedgerError> {
        self.db.flush().map_err(engine)?;
        Ok(())
    }

    /// Applies `batch` to `exchange` under the writer lock, then flushes.
    fn write(
        &self,
        build: impl FnOnce() -> Result<sled::Batch, LedgerError>,
    ) -> Result<(), LedgerError> {
        {
            // A poisoned lock only means another writer panicked; the tree itself is consistent
            // (a batch is applied whole or not at all).
            let _guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let batch = build()?;
            self.exchange.apply_batch(batch).map_err(engine)?;
        }
        self.flush()
    }

    fn scan<M: prost::Message + Default>(&self, prefix: Vec<u8>) -> Items<'_, M> {
        Box::new(self.exchange.scan_prefix(prefix).map(|kv| {
            let (k, v) = kv.map_err(engine)?;
            decode(&k, &v)
        }))
    }
}

impl LedgerStorage for SledLedgerStorage {
    fn trace(
        &self,
        direction: &str,
        request_id: &str,
    ) -> Result<Option<pb::TraceRecord>, LedgerError> {
        let key = trace_key(direction, request_id);
        self.exchange
            .get(&key)
            .map_err(engine)?
            .map(|v| decode(&key, &v))
            .transpose()
    }

    fn traces(&self, direction: &str) -> Result<Vec<pb::TraceRecord>, LedgerError> {
        self.scan(prefixed(TRACE, direction.as_bytes())).collect()
    }

    fn update_trace(
        &self,
        direction: &str,
        request_id: &str,
        decide: &dyn Fn(Option<pb::TraceRecord>) -> Result<TraceUpdate, LedgerError>,
    ) -> Result<(), LedgerError> {
        let key = trace_key(direction, request_id);
        self.write(|| {
            let current = self
                .exchange
                .get(&key)
                .map_err(engine)?
                .map(|v| decode(&key, &v))
                .transpose()?;
            let update = decide(current)?;
            let mut batch = sled::Batch::default();
            if let Some(rec) = &update.trace {
                batch.insert(key.as_slice(), stored::encode(rec));
            }
            for item in &update.outbox_put {
                batch.insert(prefixed(OUTBOX, item.id.as_bytes()), stored::encode(item));
            }
            for id in &update.outbox_remove {
                batch.remove(prefixed(OUTBOX, id.as_bytes()));
            }
            Ok(batch)
        })
    }

    fn put_outbox(&self, items: &[pb::OutboxItem]) -> Result<(), LedgerError> {
        self.write(|| {
            let mut batch = sled::Batch::default();
            for item in items {
                batch.insert(prefixed(OUTBOX, item.id.as_bytes()), stored::encode(item));
            }
            Ok(batch)
        })
    }

    fn remove_outbox(&self, item_id: &str) -> Result<(), LedgerError> {
        self.write(|| {
            let mut batch = sled::Batch::default();
            batch.remove(prefixed(OUTBOX, item_id.as_bytes()));
            Ok(batch)
        })
    }

    fn outbox(&self) -> Items<'_, pb::OutboxItem> {
        self.scan(vec![OUTBOX])
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
        self.write(|| {
            let mut batch = sled::Batch::default();
            batch.insert(prefixed(WITHDRAWN, record_id.as_bytes()), &[]);
            for item in items {
                batch.insert(prefixed(OUTBOX, item.id.as_bytes()), stored::encode(item));
            }
            Ok(batch)
        })
    }

    fn is_withdrawn(&self, record_id: &str) -> Result<bool, LedgerError> {
        self.exchange
            .contains_key(prefixed(WITHDRAWN, record_id.as_bytes()))
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
    fn layout_1_trees_are_moved_into_the_exchange_tree_once() {
        // The trees and values ledger layout 1 wrote; data written by it must still open.
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
        let item = pb::OutboxItem {
            id: "treq:t1".into(),
            ..Default::default()
        };
        let mut old_item = vec![1u8];
        old_item.extend(prost::Message::encode_to_vec(&item));
        db.open_tree("outbox")
            .unwrap()
            .insert("treq:t1", old_item)
            .unwrap();
        db.open_tree("withdrawn")
            .unwrap()
            .insert("r9", &[])
            .unwrap();
        let s = SledLedgerStorage::open(&db).unwrap();
        assert_eq!(s.trace("incoming", "t1").unwrap(), Some(rec.clone()));
        assert_eq!(s.disclosed_to("r1").unwrap(), vec!["DEU-CUS"]);
        assert_eq!(
            s.outbox().collect::<Result<Vec<_>, _>>().unwrap(),
            vec![item]
        );
        assert!(s.is_withdrawn("r9").unwrap());
        for old in ["traces", "outbox", "withdrawn"] {
            assert!(
                !db.tree_names().iter().any(|n| n.as_ref() == old.as_bytes()),
                "{old} kept"
            );
        }
        drop(s);
        let s = SledLedgerStorage::open(&db).unwrap();
        assert_eq!(s.trace("incoming", "t1").unwrap(), Some(rec));
        db.open_tree("exchange")
            .unwrap()
            .insert("tincoming:t2", &[2u8, 0])
            .unwrap();
        assert!(matches!(
            s.trace("incoming", "t2"),
            Err(LedgerError::Corrupt(_))
        ));
        assert!(matches!(s.traces(""), Err(LedgerError::Corrupt(_))));
    }
}
