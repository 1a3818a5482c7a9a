//! What sled 0.34 alone costs to start, as a floor for the node's start-up: `keys` synthetic
//! records (the sample generator's, encoded as the store's raw baseline encodes them) written
//! under sequential keys in batches and flushed, then the database closed and opened again
//! three times. sled 0.34 writes its page-table snapshot only when it starts
//! (`PageCache::start`; `Config::snapshot_after_ops` does nothing in 0.34.7), so the first open
//! replays everything written since the last start from the log, and the later ones read the
//! snapshot the first wrote: start-up follows what was written since the last start, not only
//! the size of the store. Each open is timed once the previous one has released its lock (sled
//! keeps it a moment after a `Db` is dropped, while its threads end).

use std::time::Instant;

use prost::Message;
use tracenet_node::country::CountryCode;
use tracenet_node::sample;

use super::report::Report;
use super::store::dir_size;
use crate::Error;

/// Runs the scenario (blocking work on the blocking pool).
pub async fn run(keys: u64, batch: u64, progress: &dyn Fn(&str)) -> Result<Report, Error> {
    if keys == 0 || batch == 0 {
        return Err("keys and batch must be positive".into());
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_path_buf();
    let country = CountryCode::parse("FRA").map_err(|e| e.to_string())?;
    let db = sled::Config::new().path(&path).open()?;
    let (t0, mut bytes, mut n) = (Instant::now(), 0u64, 0u64);
    while n < keys {
        // A million keys per trip to the blocking pool, with progress between.
        let upto = (n + 1_000_000).min(keys);
        let db = db.clone();
        bytes += tokio::task::spawn_blocking(move || -> Result<u64, Error> {
            let mut bytes = 0u64;
            let mut k = n;
            while k < upto {
                let end = (k + batch).min(upto);
                let mut b = sled::Batch::default();
                for i in k..end {
                    let v = sample::record(country, i).encode_to_vec();
                    bytes += v.len() as u64;
                    b.insert(&i.to_be_bytes(), v);
                }
                db.apply_batch(b)?;
                db.flush()?;
                k = end;
            }
            Ok(bytes)
        })
        .await
        .map_err(|e| e.to_string())??;
        n = upto;
        progress(&format!("sled-open: wrote {n} keys"));
    }
    let rate = keys as f64 / t0.elapsed().as_secs_f64().max(1e-9);
    drop(db);
    let mut r = Report::new("sled-open");
    r.figure("raw sled inserts (batches flushed)", rate, "keys/s");
    r.versus(
        "store on disk (vs encoded records)",
        dir_size(&path) as f64 / 1e6,
        bytes as f64 / 1e6,
        "MB",
    );
    for name in ["first open after writing", "second open", "third open"] {
        let path = path.clone();
        let took = tokio::task::spawn_blocking(move || -> Result<f64, Error> {
            wait_for_lock(&path)?;
            let t0 = Instant::now();
            let db = sled::Config::new().path(&path).open()?;
            let took = t0.elapsed().as_secs_f64() * 1000.0;
            drop(db);
            Ok(took)
        })
        .await
        .map_err(|e| e.to_string())??;
        r.figure(name, took, "ms");
    }
    Ok(r)
}

/// Waits (up to a minute) until no `Db` holds the lock on the database in `path`.
fn wait_for_lock(path: &std::path::Path) -> Result<(), Error> {
    let file = std::fs::File::open(path.join("db"))?;
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match file.try_lock() {
            Ok(()) => {
                file.unlock()?;
                return Ok(());
            }
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(format!("database still locked: {e}").into()),
        }
    }
}
