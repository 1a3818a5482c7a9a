//! Store layout 2 → 3, run when a node opens a store written by an earlier release.
//!
//! Layout 2 kept one `i` key per record and index value; layout 3 keeps posting lists (`p` keys,
//! see [`super::postings`]). Records, national references and counters are the same in both, so
//! the migration rebuilds the indexes from the records, which are the truth, and never reads the
//! old index keys except to delete them.
//!
//! Crash safety without a transaction over millions of keys: the layout byte turns 3 only after
//! the rebuilt lists are flushed, and every step can be run again from the start. An interrupted
//! rebuild leaves the byte at 2, so the next open starts over: it first deletes any posting list
//! a previous attempt wrote (so none holds an id twice), then rebuilds them.
//!
//! The old `i` keys are deleted after the node serves: layout 3 never reads or writes them, so
//! they are dead weight, not wrong answers. The byte turns 3 together with a marker
//! ([`OLD_KEYS_PENDING`]) in one atomic batch; while the marker is there, [`OldKeyCleanup`]
//! deletes the old keys on a thread of its own and removes the marker after its final flush. A
//! node stopped meanwhile resumes the deletion when it next opens the store. Measured on a
//! million-record store: serving after the 45 s rebuild; deleting the 9.4 million old keys took
//! another 4 min 47 s when the node waited for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use sled::Tree;

use super::StoreError;
use super::keys;
use super::postings::Edits;
use super::sled_store::{
    LAYOUT_VERSION, META_FORMAT, POSTING, RECORD, decode_record, engine, stage_postings,
};
use crate::ids::RecordId;

/// The layout this module migrates from.
pub const LAYOUT_2: u8 = 2;
/// Layout 2's prefix of index keys.
const OLD_INDEX: u8 = b'i';
/// Records (or deleted keys) per applied batch: bounds the memory a migration holds. A size
/// that divides the progress intervals (100,000 records, a million keys), so progress lines
/// fall on round numbers.
const STEP: usize = 20_000;
/// Meta key present while layout 2's index keys remain after the layout byte turned 3.
pub(super) const OLD_KEYS_PENDING: &[u8] = b"layout_2_keys_pending";

/// Rebuilds layout 2's indexes as layout 3's posting lists, then marks the store layout 3 with
/// its old index keys still to delete (see [`OldKeyCleanup`]). Returns the number of records
/// indexed.
pub fn layout_2_to_3(db: &sled::Db, meta: &Tree, data: &Tree) -> Result<u64, StoreError> {
    tracing::info!("record store: migrating layout 2 to 3 (rebuilding indexes)");
    delete_prefix(db, data, POSTING, &AtomicBool::new(false))?;
    let mut done = 0u64;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let start = match &after {
            Some(k) => std::ops::Bound::Excluded(k.clone()),
            None => std::ops::Bound::Included(vec![RECORD]),
        };
        let mut edits = Edits::default();
        let mut last = None;
        let mut n = 0;
        for kv in data.range::<Vec<u8>, _>((start, std::ops::Bound::Excluded(vec![RECORD + 1]))) {
            let (k, v) = kv.map_err(engine)?;
            let id = RecordId::from_key_suffix(&k)
                .ok_or_else(|| StoreError::Corrupt("short record key".into()))?;
            if let Some(rec) = decode_record(&v)?.record {
                for p in keys::index_prefixes(&rec) {
                    edits.add(&p, id);
                }
            }
            last = Some(k.to_vec());
            n += 1;
            if n == STEP {
                break;
            }
        }
        let mut batch = sled::Batch::default();
        stage_postings(data, edits, &mut batch)?;
        data.apply_batch(batch).map_err(engine)?;
        done += n as u64;
        match last {
            Some(k) if n == STEP => {
                after = Some(k);
                if done.is_multiple_of(100_000) {
                    tracing::info!(records = done, "record store: indexes rebuilt so far");
                }
            }
            _ => break,
        }
    }
    db.flush().map_err(engine)?;
    let mut layout_3 = sled::Batch::default();
    layout_3.insert(META_FORMAT, &[LAYOUT_VERSION]);
    layout_3.insert(OLD_KEYS_PENDING, &[]);
    meta.apply_batch(layout_3).map_err(engine)?;
    db.flush().map_err(engine)?;
    tracing::info!(
        records = done,
        "record store: migrated to layout 3; layout 2's index keys are deleted in the background"
    );
    Ok(done)
}

/// The deletion of layout 2's index keys on a thread of its own, started when the store opens
/// with [`OLD_KEYS_PENDING`] set. Dropping it stops the deletion after the step under way and
/// waits for the thread (so the database is released with the store); the next open resumes.
#[derive(Debug)]
pub(super) struct OldKeyCleanup {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl OldKeyCleanup {
    /// Starts deleting if `meta` says old keys remain; `None` when none do.
    pub(super) fn start_if_pending(
        db: &sled::Db,
        meta: &Tree,
        data: &Tree,
    ) -> Result<Option<OldKeyCleanup>, StoreError> {
        if meta.get(OLD_KEYS_PENDING).map_err(engine)?.is_none() {
            return Ok(None);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (db, meta, data, stopped) = (db.clone(), meta.clone(), data.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("store-old-keys".into())
            .spawn(move || match delete_old_keys(&db, &meta, &data, &stopped) {
                Ok(Some(n)) => {
                    tracing::info!(keys = n, "record store: layout 2's index keys deleted")
                }
                Ok(None) => tracing::info!(
                    "record store: deleting layout 2's index keys stopped; resumed at the next start"
                ),
                Err(e) => tracing::warn!(
                    error = %e,
                    "record store: deleting layout 2's index keys failed; retried at the next start"
                ),
            })
            .map_err(|e| StoreError::Engine(format!("cannot start a thread: {e}")))?;
        Ok(Some(OldKeyCleanup {
            stop,
            thread: Some(thread),
        }))
    }

    /// Waits until the deletion ends (finished, failed or stopped).
    #[cfg(test)]
    pub(super) fn wait(mut self) {
        self.join();
    }

    fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for OldKeyCleanup {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.join();
    }
}

/// Deletes the old keys, then the marker, flushed. `None` when stopped first.
fn delete_old_keys(
    db: &sled::Db,
    meta: &Tree,
    data: &Tree,
    stop: &AtomicBool,
) -> Result<Option<u64>, StoreError> {
    let Some(deleted) = delete_prefix(db, data, OLD_INDEX, stop)? else {
        return Ok(None);
    };
    meta.remove(OLD_KEYS_PENDING).map_err(engine)?;
    db.flush().map_err(engine)?;
    Ok(Some(deleted))
}

/// Deletes every key starting with `prefix`, in steps of [`STEP`] keys (each step starting after
/// the last key deleted), then flushes once, and returns how many it deleted: an interrupted
/// deletion is simply started again. Returns `None`, unflushed, when `stop` is set between steps.
fn delete_prefix(
    db: &sled::Db,
    data: &Tree,
    prefix: u8,
    stop: &AtomicBool,
) -> Result<Option<u64>, StoreError> {
    let end = std::ops::Bound::Excluded(vec![prefix + 1]);
    let mut after: Option<sled::IVec> = None;
    let mut deleted = 0u64;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let start = match after.take() {
            Some(k) => std::ops::Bound::Excluded(k.to_vec()),
            None => std::ops::Bound::Included(vec![prefix]),
        };
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for k in data
            .range::<Vec<u8>, _>((start, end.clone()))
            .keys()
            .take(STEP)
        {
            let k = k.map_err(engine)?;
            batch.remove(k.clone());
            after = Some(k);
            n += 1;
        }
        if n == 0 {
            break;
        }
        data.apply_batch(batch).map_err(engine)?;
        deleted += n as u64;
        if deleted.is_multiple_of(1_000_000) {
            tracing::info!(
                keys = deleted,
                "record store: old index keys deleted so far"
            );
        }
    }
    db.flush().map_err(engine)?;
    Ok(Some(deleted))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use tracenet_proto::stored;
    use tracenet_proto::v1 as pb;

    use super::*;
    use crate::country::CountryCode;
    use crate::store::open::open_db;
    use crate::store::sled_store::key;
    use crate::store::{IndexQuery, RecordStore, SledStore};
    use crate::{sample, serial};

    /// Writes `n` sample records the way layout 2 did (records, references, count, `i` keys).
    fn write_layout_2(dir: &std::path::Path, n: u64) -> Vec<(RecordId, pb::SeizureRecord)> {
        let db = open_db(dir, None).unwrap();
        let data = db.open_tree("data").unwrap();
        let fra = CountryCode::parse("FRA").unwrap();
        let mut out = Vec::new();
        for k in 0..n {
            let id = RecordId::generate(1_700_000_000_000 + k, [k as u8; 10]);
            let mut rec = sample::record(fra, k);
            rec.id = id.to_string();
            let stored = pb::StoredRecord {
                record: Some(rec.clone()),
                revision: 1,
                created_at: 1,
                updated_at: 1,
            };
            data.insert(key(RECORD, id.as_bytes()), stored::encode(&stored))
                .unwrap();
            data.insert(key(b'n', rec.national_ref.as_bytes()), &id.as_bytes()[..])
                .unwrap();
            for p in keys::index_prefixes(&rec) {
                let mut k = key(OLD_INDEX, &p);
                k.extend_from_slice(id.as_bytes());
                data.insert(k, &[][..]).unwrap();
            }
            out.push((id, rec));
        }
        data.insert(b"mrecord_count", &n.to_be_bytes()[..]).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert(META_FORMAT, &[LAYOUT_2])
            .unwrap();
        db.flush().unwrap();
        out
    }

    fn check_layout_3(dir: &std::path::Path, records: &[(RecordId, pb::SeizureRecord)]) {
        let store = SledStore::open(dir, 1 << 20).unwrap();
        assert_eq!(store.count().unwrap(), records.len() as u64);
        for (id, rec) in records {
            let s = serial::normalise(&rec.firearms[0].serial_number).unwrap();
            let found = store.find(&IndexQuery::Serial(s), 10).unwrap();
            let ids: Vec<_> = found
                .iter()
                .map(|f| f.record.as_ref().unwrap().id.clone())
                .collect();
            assert_eq!(ids, [id.to_string()], "each serial finds its record once");
        }
        let fra = CountryCode::parse("FRA").unwrap();
        let all = store
            .find(
                &IndexQuery::CountryDate {
                    country: fra,
                    from: None,
                    to: None,
                },
                1000,
            )
            .unwrap();
        assert_eq!(all.len(), records.len());
        store.wait_for_old_keys();
        let db = store.db();
        let data = db.open_tree("data").unwrap();
        assert_eq!(
            data.scan_prefix([OLD_INDEX]).count(),
            0,
            "no layout 2 keys left"
        );
        assert_eq!(
            db.open_tree("meta")
                .unwrap()
                .get(META_FORMAT)
                .unwrap()
                .unwrap()
                .as_ref(),
            [LAYOUT_VERSION]
        );
        assert_eq!(
            db.open_tree("meta").unwrap().get(OLD_KEYS_PENDING).unwrap(),
            None,
            "nothing left to delete"
        );
    }

    #[test]
    fn a_layout_2_store_opens_as_layout_3_with_the_same_answers() {
        let dir = tempfile::tempdir().unwrap();
        let records = write_layout_2(dir.path(), 50);
        check_layout_3(dir.path(), &records);
    }

    #[test]
    fn an_interrupted_migration_starts_over_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let records = write_layout_2(dir.path(), 30);
        {
            // As a crash would leave it: some posting lists written (one of them wrong), some
            // old index keys already deleted, the layout byte still 2.
            let db = open_db(dir.path(), None).unwrap();
            let data = db.open_tree("data").unwrap();
            let mut edits = Edits::default();
            for (id, rec) in &records[..10] {
                for p in keys::index_prefixes(rec) {
                    edits.add(&p, *id);
                }
            }
            let bogus = RecordId::generate(1, [9; 10]);
            edits.add(&keys::index_prefixes(&records[0].1)[0], bogus);
            let mut batch = sled::Batch::default();
            stage_postings(&data, edits, &mut batch).unwrap();
            data.apply_batch(batch).unwrap();
            let old: Vec<_> = data.scan_prefix([OLD_INDEX]).keys().take(40).collect();
            for k in old {
                data.remove(k.unwrap()).unwrap();
            }
            db.flush().unwrap();
        }
        check_layout_3(dir.path(), &records);
    }

    #[test]
    fn old_keys_left_when_the_node_stopped_are_deleted_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let records = write_layout_2(dir.path(), 40);
        {
            // Migrated, then stopped before the background deletion ran: layout 3 with the
            // marker and every old key still there.
            let db = open_db(dir.path(), None).unwrap();
            let (meta, data) = (db.open_tree("meta").unwrap(), db.open_tree("data").unwrap());
            assert_eq!(layout_2_to_3(&db, &meta, &data).unwrap(), 40);
            assert!(meta.get(OLD_KEYS_PENDING).unwrap().is_some());
            assert!(data.scan_prefix([OLD_INDEX]).count() > 40);
        }
        {
            // A store dropped while deleting releases the database (it can be opened again).
            let store = SledStore::open(dir.path(), 1 << 20).unwrap();
            drop(store);
        }
        check_layout_3(dir.path(), &records);
    }

    #[test]
    fn a_stopped_deletion_reports_it_and_keeps_the_marker() {
        let dir = tempfile::tempdir().unwrap();
        write_layout_2(dir.path(), 10);
        let db = open_db(dir.path(), None).unwrap();
        let (meta, data) = (db.open_tree("meta").unwrap(), db.open_tree("data").unwrap());
        layout_2_to_3(&db, &meta, &data).unwrap();
        let stop = AtomicBool::new(true);
        assert_eq!(delete_old_keys(&db, &meta, &data, &stop).unwrap(), None);
        assert!(meta.get(OLD_KEYS_PENDING).unwrap().is_some());
        let go = AtomicBool::new(false);
        let deleted = delete_old_keys(&db, &meta, &data, &go).unwrap().unwrap();
        assert!(deleted > 10, "every record had several old keys: {deleted}");
        assert!(meta.get(OLD_KEYS_PENDING).unwrap().is_none());
        assert_eq!(data.scan_prefix([OLD_INDEX]).count(), 0);
    }
}
