//! The directory's Raft storage on sled: the log store (log entries, vote, purge mark) and the
//! state machine (the directory state, last applied log id, membership, current snapshot), in
//! their own trees of the node's database.
//!
//! Durability: appended entries, the vote, truncation and purge marks are flushed before openraft
//! is told they are done; the applied state is flushed after each applied batch, so a restarted
//! node answers from its replica at once instead of replaying the log. Every value is a versioned
//! protobuf ([`super::codec`]).
//!
//! Every applied change is published on a watch channel ([`StateMachineStore::subscribe`]) so the
//! rest of the node (peer discovery, keys, policies, revocation) follows the replica.

// openraft's trait methods return its `StorageError` (large); our helpers return the same type so
// errors pass through unchanged.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{
    LogFlushed, LogState, RaftLogReader, RaftLogStorage, RaftSnapshotBuilder, RaftStateMachine,
    Snapshot,
};
use openraft::{AnyError, EntryPayload, OptionalSend, StorageIOError};
use tokio::sync::watch;
use tracenet_proto::stored;
use tracenet_proto::v1 as pb;

use super::codec::{
    entry_from_pb, entry_to_pb, log_id_from_pb, log_id_to_pb, opt_log_id_from_pb, opt_log_id_to_pb,
    snapshot_meta_from_pb, stored_membership_from_pb, stored_membership_to_pb, vote_from_pb,
    vote_to_pb,
};
use super::state;
use super::types::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig, Vote};

const LOG_TREE: &str = "raft_log";
const META_TREE: &str = "raft_meta";
const SM_TREE: &str = "raft_state_machine";
const KEY_VOTE: &[u8] = b"vote";
const KEY_PURGED: &[u8] = b"last_purged";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_APPLIED: &[u8] = b"applied";
const KEY_SNAPSHOT: &[u8] = b"snapshot";

fn io_err(e: impl std::fmt::Display) -> AnyError {
    AnyError::error(e.to_string())
}

fn w_logs(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_logs(io_err(e)).into()
}
fn r_logs(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_logs(io_err(e)).into()
}
fn w_vote(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_vote(io_err(e)).into()
}
fn r_vote(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_vote(io_err(e)).into()
}
fn w_sm(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_state_machine(io_err(e)).into()
}
fn r_sm(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_state_machine(io_err(e)).into()
}
fn w_snap(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_snapshot(None, io_err(e)).into()
}
fn r_snap(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_snapshot(None, io_err(e)).into()
}

fn index_key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

/// Opens both halves of the directory's Raft storage in `db`; commands are applied and
/// snapshots verified against the pinned `genesis`.
pub fn open(
    db: &sled::Db,
    genesis: Arc<state::Genesis>,
) -> Result<(LogStore, StateMachineStore), StorageError> {
    Ok((LogStore::open(db)?, StateMachineStore::open(db, genesis)?))
}

/// The Raft log, vote and purge mark.
#[derive(Debug, Clone)]
pub struct LogStore {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
}

impl LogStore {
    /// Opens the log trees in `db`.
    pub fn open(db: &sled::Db) -> Result<LogStore, StorageError> {
        Ok(LogStore {
            db: db.clone(),
            log: db.open_tree(LOG_TREE).map_err(r_logs)?,
            meta: db.open_tree(META_TREE).map_err(r_logs)?,
        })
    }

    async fn flush(&self) -> Result<(), sled::Error> {
        flush(&self.db).await
    }

    fn read_log_id(&self, key: &[u8]) -> Result<Option<LogId>, StorageError> {
        match self.meta.get(key).map_err(r_logs)? {
            None => Ok(None),
            Some(v) => {
                let l: pb::RaftLogId = stored::decode(&v).map_err(r_logs)?;
                Ok(Some(log_id_from_pb(&l)))
            }
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(i) => Bound::Included(index_key(*i)),
            Bound::Excluded(i) => Bound::Excluded(index_key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Bound::Included(index_key(*i)),
            Bound::Excluded(i) => Bound::Excluded(index_key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for kv in self.log.range::<[u8; 8], _>((start, end)) {
            let (_, v) = kv.map_err(r_logs)?;
            let e: pb::RaftEntry = stored::decode(&v).map_err(r_logs)?;
            out.push(entry_from_pb(e).map_err(r_logs)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged = self.read_log_id(KEY_PURGED)?;
        let last = match self.log.last().map_err(r_logs)? {
            None => last_purged,
            Some((_, v)) => {
                let e: pb::RaftEntry = stored::decode(&v).map_err(r_logs)?;
                Some(entry_from_pb(e).map_err(r_logs)?.log_id)
            }
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.meta
            .insert(KEY_VOTE, stored::encode(&vote_to_pb(vote)))
            .map_err(w_vote)?;
        self.flush().await.map_err(w_vote)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        match self.meta.get(KEY_VOTE).map_err(r_vote)? {
            None => Ok(None),
            Some(v) => {
                let v: pb::RaftVote = stored::decode(&v).map_err(r_vote)?;
                Ok(Some(vote_from_pb(&v)))
            }
        }
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not flushed: losing it only means re-learning the commit index from the leader.
        match committed {
            Some(c) => self
                .meta
                .insert(KEY_COMMITTED, stored::encode(&log_id_to_pb(&c)))
                .map(|_| ()),
            None => self.meta.remove(KEY_COMMITTED).map(|_| ()),
        }
        .map_err(w_logs)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        self.read_log_id(KEY_COMMITTED)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for e in entries {
            batch.insert(&index_key(e.log_id.index), stored::encode(&entry_to_pb(&e)));
        }
        self.log.apply_batch(batch).map_err(w_logs)?;
        // Raft may count this entry towards a commit only once it is on disk.
        let flushed = self.flush().await;
        callback.log_io_completed(flushed.map_err(std::io::Error::other));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for kv in self.log.range(index_key(log_id.index)..) {
            let (k, _) = kv.map_err(r_logs)?;
            batch.remove(k);
        }
        self.log.apply_batch(batch).map_err(w_logs)?;
        self.flush().await.map_err(w_logs)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // The mark goes first: a crash between the two leaves extra entries, never a hole.
        self.meta
            .insert(KEY_PURGED, stored::encode(&log_id_to_pb(&log_id)))
            .map_err(w_logs)?;
        self.flush().await.map_err(w_logs)?;
        let mut batch = sled::Batch::default();
        for kv in self.log.range(..=index_key(log_id.index)) {
            let (k, _) = kv.map_err(r_logs)?;
            batch.remove(k);
        }
        self.log.apply_batch(batch).map_err(w_logs)?;
        self.flush().await.map_err(w_logs)
    }
}

/// The directory replica as of the last applied entry.
#[derive(Debug, Default, Clone)]
struct Applied {
    last_applied: Option<LogId>,
    membership: StoredMembership,
    state: pb::DirectoryState,
}

impl Applied {
    fn to_pb(&self, snapshot_id: &str) -> pb::DirectorySnapshot {
        pb::DirectorySnapshot {
            last_applied: opt_log_id_to_pb(self.last_applied.as_ref()),
            membership: Some(stored_membership_to_pb(&self.membership)),
            state: Some(self.state.clone()),
            snapshot_id: snapshot_id.to_owned(),
        }
    }

    fn from_pb(s: &pb::DirectorySnapshot) -> Applied {
        Applied {
            last_applied: opt_log_id_from_pb(s.last_applied.as_ref()),
            membership: stored_membership_from_pb(s.membership.as_ref()),
            state: s.state.clone().unwrap_or_default(),
        }
    }
}

/// The directory state as last applied in `db` (a stopped node's data), without starting Raft:
/// what offline tools (`audit verify`) compare the node's own data with. `None` when this
/// database holds no replica.
pub fn read_applied_state(db: &sled::Db) -> Result<Option<pb::DirectoryState>, String> {
    let tree = db.open_tree(SM_TREE).map_err(|e| e.to_string())?;
    let Some(v) = tree.get(KEY_APPLIED).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let s: pb::DirectorySnapshot = stored::decode(&v).map_err(|e| e.to_string())?;
    Ok(s.state)
}

/// What subscribers see after every applied batch: the state and the log id it is as of.
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// The directory state.
    pub state: Arc<pb::DirectoryState>,
    /// The last applied log index (0 before anything was applied).
    pub applied_index: u64,
}

/// The directory state machine: applies commands with [`state::apply`] and keeps snapshots.
#[derive(Debug, Clone)]
pub struct StateMachineStore {
    db: sled::Db,
    tree: sled::Tree,
    applied: Arc<Mutex<Applied>>,
    published: Arc<watch::Sender<Published>>,
    genesis: Arc<state::Genesis>,
    digests: Arc<Mutex<super::digest::Recorded>>,
}

impl StateMachineStore {
    /// Opens the state machine tree in `db` and loads the last applied state.
    pub fn open(
        db: &sled::Db,
        genesis: Arc<state::Genesis>,
    ) -> Result<StateMachineStore, StorageError> {
        let tree = db.open_tree(SM_TREE).map_err(r_sm)?;
        let applied = match tree.get(KEY_APPLIED).map_err(r_sm)? {
            None => Applied::default(),
            Some(v) => Applied::from_pb(&stored::decode(&v).map_err(r_sm)?),
        };
        let (tx, _) = watch::channel(Published {
            state: Arc::new(applied.state.clone()),
            applied_index: applied.last_applied.map_or(0, |l| l.index),
        });
        Ok(StateMachineStore {
            db: db.clone(),
            tree,
            applied: Arc::new(Mutex::new(applied)),
            published: Arc::new(tx),
            genesis,
            digests: Arc::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Applied> {
        self.applied
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn digests(&self) -> MutexGuard<'_, super::digest::Recorded> {
        self.digests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The digest of the state as applied up to `index` (recorded at every
    /// [`super::digest::EVERY`]th index, the most recent ones kept).
    pub fn digest_at(&self, index: u64) -> Option<[u8; 32]> {
        self.digests().at(index)
    }

    /// The newest recorded digest and its index.
    pub fn latest_digest(&self) -> Option<(u64, [u8; 32])> {
        self.digests().latest()
    }

    /// Follows every change of the applied state.
    pub fn subscribe(&self) -> watch::Receiver<Published> {
        self.published.subscribe()
    }

    /// The state as last applied.
    pub fn current(&self) -> Published {
        self.published.borrow().clone()
    }

    fn publish(&self, a: &Applied) {
        self.published.send_replace(Published {
            state: Arc::new(a.state.clone()),
            applied_index: a.last_applied.map_or(0, |l| l.index),
        });
    }

    async fn persist(&self, a: &Applied) -> Result<(), StorageError> {
        self.tree
            .insert(KEY_APPLIED, stored::encode(&a.to_pb("")))
            .map_err(w_sm)?;
        flush(&self.db).await.map_err(w_sm)?;
        Ok(())
    }
}

/// Makes everything written to `db` durable, on tokio's blocking pool.
///
/// Not `sled::Db::flush_async`: that runs the flush on sled 0.34's own I/O thread pool, where it
/// waits for sled's global lock; with a batch waiting for that lock, flushes parked there keep
/// the pool from writing the very buffers they wait for, and the whole process hangs (seen
/// under load, with every sled I/O thread parked in `concurrency_control::read`).
async fn flush(db: &sled::Db) -> Result<(), sled::Error> {
    let db = db.clone();
    match tokio::task::spawn_blocking(move || db.flush()).await {
        Ok(r) => r.map(drop),
        Err(e) => Err(sled::Error::Io(std::io::Error::other(e.to_string()))),
    }
}

/// Builds snapshots of the state machine as of the moment it is asked.
#[derive(Debug)]
pub struct SnapshotBuilder {
    sm: StateMachineStore,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let a = self.sm.lock().clone();
        let snapshot_id = match a.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.leader_id.node_id, l.index),
            None => "empty".to_owned(),
        };
        let data = stored::encode(&a.to_pb(&snapshot_id));
        self.sm
            .tree
            .insert(KEY_SNAPSHOT, data.clone())
            .map_err(w_snap)?;
        flush(&self.sm.db).await.map_err(w_snap)?;
        Ok(Snapshot {
            meta: openraft::SnapshotMeta {
                last_log_id: a.last_applied,
                last_membership: a.membership,
                snapshot_id,
            },
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let a = self.lock();
        Ok((a.last_applied, a.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<pb::DirectoryResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut replies = Vec::new();
        let snapshot = {
            let mut a = self.lock();
            for e in entries {
                a.last_applied = Some(e.log_id);
                match e.payload {
                    EntryPayload::Blank => replies.push(pb::DirectoryResponse {
                        applied: true,
                        ..Default::default()
                    }),
                    EntryPayload::Normal(cmd) => {
                        replies.push(state::apply(&mut a.state, &self.genesis, &cmd))
                    }
                    EntryPayload::Membership(m) => {
                        a.membership = openraft::StoredMembership::new(Some(e.log_id), m);
                        replies.push(pb::DirectoryResponse {
                            applied: true,
                            ..Default::default()
                        });
                    }
                }
                // At fixed indexes, not per batch: batches differ between replicas.
                if e.log_id.index % super::digest::EVERY == 0 {
                    let d = super::digest::of(&a.state);
                    self.digests().record(e.log_id.index, d);
                }
            }
            a.clone()
        };
        self.persist(&snapshot).await?;
        self.publish(&snapshot);
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder { sm: self.clone() }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let decoded: pb::DirectorySnapshot = stored::decode(&data).map_err(r_snap)?;
        let mut a = Applied::from_pb(&decoded);
        // Every entry must carry the signed command that produced it; a snapshot that does not
        // verify is refused whoever sent it, and this replica keeps its state.
        if let Err(e) = state::verify(&a.state, &self.genesis) {
            tracing::error!(snapshot = %meta.snapshot_id, error = %e, "refusing a directory snapshot that does not verify");
            return Err(w_snap(format!("snapshot refused: {e}")));
        }
        // The metadata is authoritative for what the snapshot covers.
        a.last_applied = meta.last_log_id;
        a.membership = meta.last_membership.clone();
        let value = stored::encode(&a.to_pb(&meta.snapshot_id));
        self.tree.insert(KEY_SNAPSHOT, value).map_err(w_snap)?;
        *self.lock() = a.clone();
        self.digests().clear();
        self.persist(&a).await?;
        self.publish(&a);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let Some(data) = self.tree.get(KEY_SNAPSHOT).map_err(r_snap)? else {
            return Ok(None);
        };
        let decoded: pb::DirectorySnapshot = stored::decode(&data).map_err(r_snap)?;
        let meta = snapshot_meta_from_pb(&pb::RaftSnapshotMeta {
            last_log_id: decoded.last_applied,
            last_membership: decoded.membership,
            snapshot_id: decoded.snapshot_id,
        });
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data.to_vec())),
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use openraft::testing::{StoreBuilder, Suite};

    struct SledBuilder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for SledBuilder {
        async fn build(
            &self,
        ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError> {
            let dir = tempfile::tempdir().map_err(w_logs)?;
            let db = crate::store::open::open_db(dir.path(), None).map_err(w_logs)?;
            let (log, sm) = open(&db, Arc::new(state::tests::genesis()))?;
            Ok((dir, log, sm))
        }
    }

    /// openraft's own storage conformance suite, run against our sled store.
    #[test]
    fn openraft_storage_suite_passes() {
        Suite::test_all(SledBuilder).unwrap();
    }

    #[tokio::test]
    async fn state_and_log_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = state::tests::signed(
            "CHE-SEC",
            pb::directory_command::Op::Admit(state::tests::member(
                "CHE-SEC",
                pb::MemberRole::Secretariat,
            )),
        );
        let lid = openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), 1);
        {
            let db = crate::store::open::open_db(dir.path(), None).unwrap();
            let (mut log, mut sm) = open(&db, Arc::new(state::tests::genesis())).unwrap();
            log.save_vote(&openraft::Vote::new(1, 1)).await.unwrap();
            let r = sm
                .apply([openraft::Entry::<TypeConfig> {
                    log_id: lid,
                    payload: EntryPayload::Normal(cmd),
                }])
                .await
                .unwrap();
            assert!(r[0].applied, "{}", r[0].refusal);
        }
        let db = crate::store::open::open_db(dir.path(), None).unwrap();
        let (mut log, mut sm) = open(&db, Arc::new(state::tests::genesis())).unwrap();
        assert_eq!(
            log.read_vote().await.unwrap(),
            Some(openraft::Vote::new(1, 1))
        );
        let (applied, _) = sm.applied_state().await.unwrap();
        assert_eq!(applied, Some(lid));
        assert!(sm.current().state.members.contains_key("CHE-SEC"));
    }
}
