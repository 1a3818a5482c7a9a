//! The sled implementation of [`RecordStore`].
//!
//! Layout 3: one `data` tree holds everything that must change together, told apart by a
//! one-byte key prefix: `r` + id → versioned StoredRecord, `p` + index prefix + bucket → posting
//! list (see [`super::keys`] for the prefixes, [`super::postings`] for the lists), `n` + national
//! reference → id (unique), `m` + name → counters. The `meta` tree holds the layout version (and,
//! after a migration, whether old index keys remain to delete).
//! Every write is staged under the store's writer lock and applied as one `sled::Batch` (atomic
//! within a tree) followed by a flush, so an acknowledged write survives a crash and a record is
//! never visible without its index entries. A batch is far cheaper than sled's multi-tree
//! transactions, which made bulk imports twenty times slower than raw inserts; posting lists
//! cut the keys an import writes from about ten per record to about four (the record, its
//! national reference, its serial, and a share of the lists it joins).
//!
//! Layout 2 (one `i` key per record and index value) is rebuilt into layout 3 when the store is
//! opened ([`super::migrate`]); its old keys are deleted in the background while the store serves.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};
use sled::{IVec, Tree};
use tracenet_proto::stored;
use tracenet_proto::v1 as pb;

use super::open::{open_db, open_temporary};
use super::postings::{self, Edits};
use super::{BatchOutcome, IndexQuery, RecordStore, StoreError, keys, migrate};
use crate::ids::RecordId;
use crate::model::ValidRecord;

pub(super) const META_FORMAT: &[u8] = b"format";
const COUNT_KEY: &[u8] = b"mrecord_count";
/// Layout version of the trees as a whole (key formats, tree names).
pub(super) const LAYOUT_VERSION: u8 = 3;
pub(super) const RECORD: u8 = b'r';
pub(super) const POSTING: u8 = b'p';
const NATREF: u8 = b'n';

/// sled's errors stop here, as text: the store's interface does not depend on the engine.
pub(super) fn engine(e: sled::Error) -> StoreError {
    StoreError::Engine(e.to_string())
}

impl From<postings::PostingError> for StoreError {
    fn from(e: postings::PostingError) -> StoreError {
        match e {
            postings::PostingError::UnsupportedFormat(v) => StoreError::UnsupportedVersion(v),
            other => StoreError::Corrupt(other.to_string()),
        }
    }
}

pub(super) fn decode_record(v: &[u8]) -> Result<pb::StoredRecord, StoreError> {
    Ok(stored::decode(v)?)
}

pub(super) fn key(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + rest.len());
    k.push(prefix);
    k.extend_from_slice(rest);
    k
}

/// Adds the posting-list writes of `edits` to `batch`, reading each list's current value from
/// `data` (callers hold the writer lock, so nothing changes it meanwhile).
pub(super) fn stage_postings(
    data: &Tree,
    edits: Edits,
    batch: &mut sled::Batch,
) -> Result<(), StoreError> {
    for (k, edit) in edits.into_keys() {
        let k = key(POSTING, &k);
        let current = data.get(&k).map_err(engine)?;
        match edit.apply(current.as_deref())? {
            Some(v) => batch.insert(k, v),
            None => batch.remove(k),
        }
    }
    Ok(())
}

/// sled-backed record store.
#[derive(Debug)]
pub struct SledStore {
    db: sled::Db,
    data: Tree,
    writer: Mutex<()>,
    rng: SystemRandom,
    /// Deletes a migrated store's old index keys while the store serves; held for its `Drop`,
    /// which stops the deletion and releases the database with the store.
    _old_keys: Mutex<Option<migrate::OldKeyCleanup>>,
}

/// Writes staged for one atomic batch, readable before they are applied (a batch may name the
/// same national reference twice).
struct Staged<'a> {
    data: &'a Tree,
    overlay: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    postings: Edits,
}

impl Staged<'_> {
    fn get(&self, k: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.overlay.get(k) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.data.get(k).map_err(engine)?.map(|v| v.to_vec())),
        }
    }

    fn insert(&mut self, k: Vec<u8>, v: Vec<u8>) {
        self.overlay.insert(k, Some(v));
    }

    fn remove(&mut self, k: Vec<u8>) {
        self.overlay.insert(k, None);
    }

    fn get_record(&self, id: RecordId) -> Result<Option<pb::StoredRecord>, StoreError> {
        self.get(&key(RECORD, id.as_bytes()))?
            .map(|v| decode_record(&v))
            .transpose()
    }

    fn id_by_natref(&self, national_ref: &str) -> Result<Option<RecordId>, StoreError> {
        Ok(self
            .get(&key(NATREF, national_ref.as_bytes()))?
            .and_then(|v| RecordId::from_key_suffix(&v)))
    }

    /// Writes `new` under `id`, moving it between posting lists and national references as far
    /// as it differs from `old` (a record imported again unchanged rewrites only itself).
    fn put(
        &mut self,
        id: RecordId,
        old: Option<&pb::StoredRecord>,
        new: &pb::StoredRecord,
    ) -> Result<(), StoreError> {
        let empty = pb::SeizureRecord::default();
        let new_rec = new.record.as_ref().unwrap_or(&empty);
        let new_prefixes = keys::index_prefixes(new_rec);
        match old {
            Some(old) => {
                let old_rec = old.record.as_ref().unwrap_or(&empty);
                let old_prefixes = keys::index_prefixes(old_rec);
                // Both lists are sorted (index_prefixes sorts them): binary search finds what changed.
                for p in &old_prefixes {
                    if new_prefixes.binary_search(p).is_err() {
                        self.postings.remove(p, id);
                    }
                }
                for p in &new_prefixes {
                    if old_prefixes.binary_search(p).is_err() {
                        self.postings.add(p, id);
                    }
                }
                if old_rec.national_ref != new_rec.national_ref {
                    self.remove(key(NATREF, old_rec.national_ref.as_bytes()));
                    self.insert(
                        key(NATREF, new_rec.national_ref.as_bytes()),
                        id.as_bytes().to_vec(),
                    );
                }
            }
            None => {
                let count = self
                    .get(COUNT_KEY)?
                    .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
                    .map_or(0, u64::from_be_bytes);
                self.insert(COUNT_KEY.to_vec(), (count + 1).to_be_bytes().to_vec());
                for p in &new_prefixes {
                    self.postings.add(p, id);
                }
                self.insert(
                    key(NATREF, new_rec.national_ref.as_bytes()),
                    id.as_bytes().to_vec(),
                );
            }
        }
        self.insert(key(RECORD, id.as_bytes()), stored::encode(new));
        Ok(())
    }
}

impl SledStore {
    /// Opens (or creates) the store in `dir`, with a page cache of `cache_bytes`, through
    /// [`open_db`] (crash artefacts are removed first). Why the database could not be opened is
    /// folded into [`StoreError`] (`Engine` when retrying may help, `Corrupt` when not); the node
    /// opens with [`open_db`] and [`SledStore::from_db`] to keep it typed.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<SledStore, StoreError> {
        Self::from_db(open_db(dir, Some(cache_bytes))?)
    }

    /// A store in a temporary directory that disappears when dropped (tests).
    pub fn temporary() -> Result<SledStore, StoreError> {
        Self::from_db(open_temporary()?)
    }

    /// The store in a database opened with [`open_db`]; creates or checks its layout.
    pub fn from_db(db: sled::Db) -> Result<SledStore, StoreError> {
        let meta = db.open_tree("meta").map_err(engine)?;
        let data = db.open_tree("data").map_err(engine)?;
        match meta.get(META_FORMAT).map_err(engine)? {
            None => {
                meta.insert(META_FORMAT, &[LAYOUT_VERSION])
                    .map_err(engine)?;
            }
            Some(v) if v.as_ref() == [LAYOUT_VERSION] => {}
            Some(v) if v.as_ref() == [migrate::LAYOUT_2] => {
                migrate::layout_2_to_3(&db, &meta, &data)?;
            }
            Some(v) => {
                return Err(StoreError::UnsupportedVersion(
                    v.first().copied().unwrap_or(0),
                ));
            }
        }
        let old_keys = migrate::OldKeyCleanup::start_if_pending(&db, &meta, &data)?;
        Ok(SledStore {
            data,
            writer: Mutex::new(()),
            db,
            rng: SystemRandom::new(),
            _old_keys: Mutex::new(old_keys),
        })
    }

    /// Waits until a migrated store's old index keys are deleted, if they are being deleted.
    #[cfg(test)]
    pub(super) fn wait_for_old_keys(&self) {
        let cleanup = self
            ._old_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(c) = cleanup {
            c.wait();
        }
    }

    /// The underlying database (the audit log keeps its trees in it too).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// `n` fresh ids with one creation time, so a batch's records share their posting lists.
    fn new_ids(&self, n: usize) -> Result<Vec<RecordId>, StoreError> {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut random = vec![0u8; n * 10];
        self.rng
            .fill(&mut random)
            .map_err(|_| StoreError::Corrupt("system random source failed".into()))?;
        Ok(random
            .chunks_exact(10)
            .map(|r| {
                let mut b = [0u8; 10];
                b.copy_from_slice(r);
                RecordId::generate(millis, b)
            })
            .collect())
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stages writes with `f` under the writer lock, then applies them as one batch and flushes.
    /// Nothing is written when `f` fails.
    fn run<T>(
        &self,
        f: impl FnOnce(&mut Staged<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _writer = self.lock();
        let mut staged = Staged {
            data: &self.data,
            overlay: BTreeMap::new(),
            postings: Edits::default(),
        };
        let out = f(&mut staged)?;
        let mut batch = sled::Batch::default();
        stage_postings(&self.data, staged.postings, &mut batch)?;
        for (k, v) in staged.overlay {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        self.data.apply_batch(batch).map_err(engine)?;
        self.db.flush().map_err(engine)?;
        Ok(out)
    }

    fn load(&self, id_bytes: &[u8]) -> Result<Option<pb::StoredRecord>, StoreError> {
        self.data
            .get(key(RECORD, id_bytes))
            .map_err(engine)?
            .map(|v: IVec| decode_record(&v))
            .transpose()
    }
}

fn stored(record: pb::SeizureRecord, revision: u64, created_at: i64, now: i64) -> pb::StoredRecord {
    pb::StoredRecord {
        record: Some(record),
        revision,
        created_at,
        updated_at: now,
    }
}

impl RecordStore for SledStore {
    fn create(&self, mut record: ValidRecord, now: i64) -> Result<pb::StoredRecord, StoreError> {
        let id = self
            .new_ids(1)?
            .pop()
            .ok_or_else(|| StoreError::Corrupt("no id generated".into()))?;
        record.set_id(id);
        let new = stored(record.into_record(), 1, now, now);
        let national_ref = new
            .record
            .as_ref()
            .map(|r| r.national_ref.clone())
            .unwrap_or_default();
        self.run(|t| {
            if let Some(existing) = t.id_by_natref(&national_ref)? {
                return Err(StoreError::DuplicateNationalRef {
                    national_ref: national_ref.clone(),
                    existing,
                });
            }
            t.put(id, None, &new)
        })?;
        Ok(new)
    }

    fn update(
        &self,
        record: ValidRecord,
        expected_revision: Option<u64>,
        now: i64,
    ) -> Result<pb::StoredRecord, StoreError> {
        let id = record.id().ok_or(StoreError::MissingId)?;
        let national_ref = record.national_ref().to_owned();
        let rec = record.into_record();
        self.run(|t| {
            let Some(old) = t.get_record(id)? else {
                return Err(StoreError::NotFound(id));
            };
            if let Some(expected) = expected_revision
                && expected != old.revision
            {
                return Err(StoreError::RevisionMismatch {
                    id,
                    expected,
                    actual: old.revision,
                });
            }
            if let Some(existing) = t.id_by_natref(&national_ref)?
                && existing != id
            {
                return Err(StoreError::DuplicateNationalRef {
                    national_ref: national_ref.clone(),
                    existing,
                });
            }
            let new = stored(rec, old.revision + 1, old.created_at, now);
            t.put(id, Some(&old), &new)?;
            Ok(new)
        })
    }

    fn upsert_batch(
        &self,
        records: Vec<ValidRecord>,
        now: i64,
    ) -> Result<BatchOutcome, StoreError> {
        let fresh_ids = self.new_ids(records.len())?;
        self.run(|t| {
            let mut outcome = BatchOutcome::default();
            for (rec, fresh) in records.into_iter().zip(fresh_ids) {
                let mut rec = rec.into_record();
                match t.id_by_natref(&rec.national_ref)? {
                    Some(id) => {
                        let old = t.get_record(id)?;
                        rec.id = id.to_string();
                        let (revision, created) = old
                            .as_ref()
                            .map_or((1, now), |o| (o.revision + 1, o.created_at));
                        t.put(id, old.as_ref(), &stored(rec, revision, created, now))?;
                        outcome.updated += 1;
                    }
                    None => {
                        rec.id = fresh.to_string();
                        t.put(fresh, None, &stored(rec, 1, now, now))?;
                        outcome.created += 1;
                    }
                }
            }
            Ok(outcome)
        })
    }

    fn get(&self, id: RecordId) -> Result<Option<pb::StoredRecord>, StoreError> {
        self.load(id.as_bytes())
    }

    fn list(
        &self,
        after: Option<RecordId>,
        limit: usize,
    ) -> Result<Vec<pb::StoredRecord>, StoreError> {
        let start = match after {
            Some(id) => std::ops::Bound::Excluded(key(RECORD, id.as_bytes())),
            None => std::ops::Bound::Included(vec![RECORD]),
        };
        let end = std::ops::Bound::Excluded(vec![RECORD + 1]);
        self.data
            .range::<Vec<u8>, _>((start, end))
            .take(limit)
            .map(|kv| {
                let (_, v) = kv.map_err(engine)?;
                decode_record(&v)
            })
            .collect()
    }

    fn list_newest(
        &self,
        before: Option<RecordId>,
        limit: usize,
    ) -> Result<Vec<pb::StoredRecord>, StoreError> {
        let start = std::ops::Bound::Included(vec![RECORD]);
        let end = match before {
            Some(id) => std::ops::Bound::Excluded(key(RECORD, id.as_bytes())),
            None => std::ops::Bound::Excluded(vec![RECORD + 1]),
        };
        self.data
            .range::<Vec<u8>, _>((start, end))
            .rev()
            .take(limit)
            .map(|kv| {
                let (_, v) = kv.map_err(engine)?;
                decode_record(&v)
            })
            .collect()
    }

    fn find(&self, query: &IndexQuery, limit: usize) -> Result<Vec<pb::StoredRecord>, StoreError> {
        let (start, end) = keys::query_range(query);
        let mut out = Vec::new();
        for kv in self.data.range(key(POSTING, &start)..key(POSTING, &end)) {
            let (k, v) = kv.map_err(engine)?;
            let (prefix, bucket) = postings::split_key(k.get(1..).unwrap_or_default())?;
            if !keys::prefix_matches(query, prefix) {
                continue;
            }
            for id in postings::decode(bucket, &v)? {
                if out.len() >= limit {
                    return Ok(out);
                }
                let Some(stored) = self.load(id.as_bytes())? else {
                    return Err(StoreError::Corrupt(format!(
                        "index entry for missing record {id}"
                    )));
                };
                if stored
                    .record
                    .as_ref()
                    .is_some_and(|r| keys::record_matches(query, r))
                {
                    out.push(stored);
                }
            }
        }
        Ok(out)
    }

    fn get_by_national_ref(
        &self,
        national_ref: &str,
    ) -> Result<Option<pb::StoredRecord>, StoreError> {
        match self
            .data
            .get(key(NATREF, national_ref.as_bytes()))
            .map_err(engine)?
        {
            Some(id) => self.load(&id),
            None => Ok(None),
        }
    }

    fn count(&self) -> Result<u64, StoreError> {
        Ok(self
            .data
            .get(COUNT_KEY)
            .map_err(engine)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(engine)?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn sled_store_passes_the_conformance_suite() {
        super::super::conformance::run_all(|| SledStore::temporary().unwrap());
    }

    #[test]
    fn records_and_indexes_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let fra = crate::country::CountryCode::parse("FRA").unwrap();
        let rec = crate::model::validate(crate::sample::record(fra, 1)).unwrap();
        let serial = rec.serials()[0].clone();
        let id = {
            let store = SledStore::open(dir.path(), 1 << 20).unwrap();
            let s = store.create(rec, 5).unwrap();
            s.record.unwrap().id
        };
        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(store.count().unwrap(), 1);
        let found = store.find(&IndexQuery::Serial(serial), 10).unwrap();
        assert_eq!(found[0].record.as_ref().unwrap().id, id);
    }

    #[test]
    fn a_newer_layout_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = open_db(dir.path(), None).unwrap();
            db.open_tree("meta")
                .unwrap()
                .insert(META_FORMAT, &[9])
                .unwrap();
            db.flush().unwrap();
        }
        assert!(matches!(
            SledStore::open(dir.path(), 1 << 20),
            Err(StoreError::UnsupportedVersion(9))
        ));
    }
}
