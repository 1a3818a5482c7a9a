//! Offline compaction: rewrite a stopped node's database into a fresh one and swap it in.
//!
//! Why: sled 0.34 never gives back the pages that deleted keys emptied. A store converted from
//! layout 2 keeps the room its old index keys took (a converted 1M-record store: 3.0 GB on disk
//! and 580 MiB idle, against 1.8 GB and 200 MiB written fresh), and retention purges leave the
//! same kind of room behind. Copying every tree into a new database writes only what is live.
//!
//! How, so that a crash at any moment loses nothing:
//! 1. Every tree is copied in key order into `<db>.compacting` (a leftover from an earlier,
//!    interrupted run is removed first: it was never swapped in), then compared tree by tree
//!    (key count and sled's CRC of keys and values) and flushed. sled's id generator is moved
//!    past the old database's, so ids handed out after the swap never repeat one in the data.
//! 2. `<db>` is renamed to `<db>.before-compact`, then `<db>.compacting` to `<db>`, and the
//!    parent directory is synced; then the old copy is deleted.
//!
//! [`finish_interrupted`] runs before every open ([`super::open::open_db`]): a crash between the
//! two renames leaves no `<db>` but a complete `<db>.compacting` (step 1 finished before any
//! rename), which it moves into place; a crash after them leaves `<db>.before-compact`, which it
//! deletes. A compaction holds the lock file beside the database (`<db>.lock`,
//! [`super::open::guard`]) for its whole run and every open holds it until sled has the database
//! open, so no open looks at the directories while a compaction moves them. A running node holds
//! sled's own lock, so the command fails against it without touching anything.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::open::{OpenError, guard, lock, open_db_guarded, waiting_for_locks};

/// Keys per batch written to the new database.
const BATCH: usize = 10_000;

/// Why compaction stopped. The database in place is the old one, whole, unless the swap itself
/// failed (then [`finish_interrupted`] completes it on the next open).
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    /// The database could not be opened (in use by a running node, damaged): see the cause for
    /// whether retrying helps.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// sled failed while copying (disk full, I/O error). Retrying helps once the cause is gone;
    /// the partial copy is removed on the next run.
    #[error("copying the database: {0}")]
    Engine(#[from] sled::Error),
    /// A file operation failed (rename, delete, sync). Retrying helps once the cause is gone.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A tree of the copy differs from the original (a bug or a failing disk). Nothing was
    /// swapped; not retryable until the cause is understood.
    #[error("the copy of tree {tree} differs from the original ({what}); nothing was changed")]
    Mismatch {
        /// The tree's name.
        tree: String,
        /// What differs.
        what: String,
    },
}

/// What a compaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compacted {
    /// Trees copied (sled's default tree included).
    pub trees: usize,
    /// Keys copied.
    pub keys: u64,
    /// Bytes on disk before.
    pub bytes_before: u64,
    /// Bytes on disk after.
    pub bytes_after: u64,
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(OsString::from).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// Where the new database is built.
pub fn compacting_path(path: &Path) -> PathBuf {
    sibling(path, ".compacting")
}

/// Where the old database waits between the two renames.
pub fn before_path(path: &Path) -> PathBuf {
    sibling(path, ".before-compact")
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CompactError + '_ {
    move |source| CompactError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Completes or cleans up a compaction of the database at `path` that a crash interrupted (see
/// the module docs). Does nothing when there is none, and leaves alone a copy or an old database
/// that a running compaction still holds open (sled's lock on its data file).
pub fn finish_interrupted(path: &Path) -> Result<(), OpenError> {
    let (new, old) = (compacting_path(path), before_path(path));
    let io = |p: &Path| {
        let p = p.to_owned();
        move |source| OpenError::Io { path: p, source }
    };
    if !path.exists() && old.is_dir() {
        // A compaction between its renames holds the old database open until both are done.
        let _held = lock(&old)?;
        if new.is_dir() {
            // The copy was complete and flushed before the first rename.
            tracing::warn!(path = %path.display(), "finishing an interrupted compaction");
            fs::rename(&new, path).map_err(io(&new))?;
        } else {
            // Not left by a crash of `compact`; the old database goes back rather than an open
            // creating an empty one in its place.
            fs::rename(&old, path).map_err(io(&old))?;
        }
        sync_dir(path).map_err(io(path))?;
    }
    if path.exists() && old.is_dir() {
        let _held = lock(&old)?;
        remove_dir(&old).map_err(io(&old))?;
    }
    if path.exists() && new.is_dir() {
        // A copy never swapped in: a crash while copying, unless a compaction still writes it.
        match lock(&new) {
            Ok(_held) => remove_dir(&new).map_err(io(&new))?,
            Err(OpenError::Locked { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes a directory tree; one already gone is fine (another process finished first).
fn remove_dir(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        done => done,
    }
}

fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => fs::File::open(parent)?.sync_all(),
        _ => Ok(()),
    }
}

/// Bytes of the files under `path`.
pub fn disk_size(path: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Compacts the database at `path` (see the module docs), each of the two databases with a page
/// cache of `cache_bytes` (sled's default, 1 GiB, when `None`); `progress` is called with the
/// keys copied so far after every batch.
pub fn compact(
    path: &Path,
    cache_bytes: Option<u64>,
    mut progress: impl FnMut(u64),
) -> Result<Compacted, CompactError> {
    // Held for the whole run: no open finishes or drops this compaction under it.
    let _guard = waiting_for_locks(|| guard(path))?;
    let old = open_db_guarded(path, cache_bytes)?;
    let new_path = compacting_path(path);
    if new_path.exists() {
        // A copy an interrupted run left (open_db above already removed it unless it is held).
        remove_dir(&new_path).map_err(io_err(&new_path))?;
    }
    let bytes_before = disk_size(path);
    let new = open_db_guarded(&new_path, cache_bytes)?;
    let mut keys = 0u64;
    let names = old.tree_names();
    for name in &names {
        let (src, dst) = (old.open_tree(name)?, new.open_tree(name)?);
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        for kv in src.iter() {
            let (k, v) = kv?;
            batch.insert(k, v);
            in_batch += 1;
            if in_batch == BATCH {
                dst.apply_batch(std::mem::take(&mut batch))?;
                keys += in_batch as u64;
                in_batch = 0;
                progress(keys);
            }
        }
        dst.apply_batch(batch)?;
        keys += in_batch as u64;
        let tree = String::from_utf8_lossy(name).into_owned();
        if src.len() != dst.len() {
            return Err(CompactError::Mismatch {
                tree,
                what: format!("{} keys, the copy has {}", src.len(), dst.len()),
            });
        }
        if src.checksum()? != dst.checksum()? {
            return Err(CompactError::Mismatch {
                tree,
                what: "keys or values".into(),
            });
        }
    }
    progress(keys);
    // sled hands out ids from a counter it keeps beside the trees; the copy's starts again at 0.
    let next = old.generate_id()?;
    while new.generate_id()? < next {}
    new.flush()?;
    drop(new);
    // The copy's own directory entries, before it is renamed into place (power loss).
    fs::File::open(&new_path)
        .and_then(|d| d.sync_all())
        .map_err(io_err(&new_path))?;
    // The old database stays open (and locked) through both renames, so a node or another
    // compaction starting meanwhile waits instead of finishing this one under it.
    let old_path = before_path(path);
    fs::rename(path, &old_path).map_err(io_err(path))?;
    fs::rename(&new_path, path).map_err(io_err(&new_path))?;
    sync_dir(path).map_err(io_err(path))?;
    drop(old);
    remove_dir(&old_path).map_err(io_err(&old_path))?;
    Ok(Compacted {
        trees: names.len(),
        keys,
        bytes_before,
        bytes_after: disk_size(path),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::store::open::open_db;

    /// Every tree's name and its keys and values, trees sorted by name.
    type Contents = Vec<(Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>)>;

    fn fill(db: &sled::Db) -> Contents {
        db.insert(b"default-key", b"in the default tree".to_vec())
            .unwrap();
        let tree = db.open_tree("data").unwrap();
        for i in 0u32..30_000 {
            tree.insert(i.to_be_bytes(), vec![7u8; 100]).unwrap();
        }
        // Most of it deleted again, as a conversion or a purge does.
        for i in 0u32..25_000 {
            tree.remove(i.to_be_bytes()).unwrap();
        }
        db.open_tree("meta")
            .unwrap()
            .insert(b"format", vec![3])
            .unwrap();
        db.flush().unwrap();
        contents(db)
    }

    fn contents(db: &sled::Db) -> Contents {
        let mut names = db.tree_names();
        names.sort();
        names
            .into_iter()
            .map(|n| {
                let t = db.open_tree(&n).unwrap();
                let kvs = t
                    .iter()
                    .map(|kv| {
                        let (k, v) = kv.unwrap();
                        (k.to_vec(), v.to_vec())
                    })
                    .collect();
                (n.to_vec(), kvs)
            })
            .collect()
    }

    #[test]
    fn a_compacted_database_holds_the_same_trees_and_hands_out_new_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records");
        let (before, last_id) = {
            let db = open_db(&path, None).unwrap();
            let c = fill(&db);
            (c, db.generate_id().unwrap())
        };
        let mut seen = Vec::new();
        let done = compact(&path, Some(8 << 20), |n| seen.push(n)).unwrap();
        assert_eq!(done.keys, 5_002);
        assert_eq!(seen.last(), Some(&5_002));
        assert!(done.trees >= 3, "{done:?}");
        // What the deleted keys took is not copied.
        assert!(done.bytes_after < done.bytes_before, "{done:?}");
        assert!(!compacting_path(&path).exists());
        assert!(!before_path(&path).exists());
        let db = open_db(&path, None).unwrap();
        assert_eq!(contents(&db), before);
        assert!(db.generate_id().unwrap() > last_id);
    }

    #[test]
    fn a_running_database_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records");
        let db = open_db(&path, None).unwrap();
        let before = fill(&db);
        let e = compact(&path, Some(8 << 20), |_| {}).unwrap_err();
        assert!(
            matches!(e, CompactError::Open(OpenError::Locked { .. })),
            "{e:?}"
        );
        assert!(!compacting_path(&path).exists());
        assert_eq!(contents(&db), before);
    }

    #[test]
    fn an_interrupted_swap_is_finished_and_an_interrupted_copy_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records");
        let before = {
            let db = open_db(&path, None).unwrap();
            fill(&db)
        };
        let copy = |to: &Path| {
            let src = open_db(&path, None).unwrap();
            let dst = open_db(to, None).unwrap();
            for n in src.tree_names() {
                let (s, d) = (src.open_tree(&n).unwrap(), dst.open_tree(&n).unwrap());
                for kv in s.iter() {
                    let (k, v) = kv.unwrap();
                    d.insert(k, v).unwrap();
                }
            }
            dst.flush().unwrap();
        };
        // A crash between the two renames: no database in place, a complete copy beside it.
        copy(&compacting_path(&path));
        fs::rename(&path, before_path(&path)).unwrap();
        let db = open_db(&path, None).unwrap();
        assert_eq!(contents(&db), before);
        drop(db);
        assert!(!before_path(&path).exists());
        assert!(!compacting_path(&path).exists());
        // A crash while copying: the partial copy is dropped, the database untouched.
        let partial = compacting_path(&path);
        open_db(&partial, None)
            .unwrap()
            .insert(b"partial", vec![1])
            .unwrap();
        let db = open_db(&path, None).unwrap();
        assert_eq!(contents(&db), before);
        assert!(!partial.exists());
    }

    #[test]
    fn no_open_runs_while_a_compaction_moves_the_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records");
        let before = {
            let db = open_db(&path, None).unwrap();
            fill(&db)
        };
        // As a compaction between its renames: the lock file held, no database in place.
        let held = guard(&path).unwrap();
        fs::rename(&path, before_path(&path)).unwrap();
        let e = open_db(&path, None).unwrap_err();
        assert!(matches!(e, OpenError::Locked { .. }), "{e:?}");
        assert!(!path.exists(), "no empty database created in its place");
        fs::rename(before_path(&path), &path).unwrap();
        drop(held);
        assert_eq!(contents(&open_db(&path, None).unwrap()), before);
    }
}
