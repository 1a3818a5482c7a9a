//! Ingest and serial search at scale: synthetic seizure records imported into one node through
//! its local API (`ImportBatch`: validation, one transaction per batch with every index, flush),
//! against raw sled inserts of the same encoded values with the same flush per batch; then
//! serial searches (exact and normalised) through the local API against raw sled point reads.
//! Also reports the store's size on disk against the raw size of the encoded records.

use std::time::{Duration, Instant};

use prost::Message;
use tracenet_node::country::CountryCode;
use tracenet_node::sample;
use tracenet_proto::v1 as pb;

use super::report::{Report, Samples};
use crate::{Error, TestFederation};

/// Parameters of the store scenario.
#[derive(Debug, Clone, Copy)]
pub struct StoreParams {
    /// Records to import.
    pub records: u64,
    /// Records per batch.
    pub batch: u64,
    /// Searches timed per kind.
    pub searches: usize,
}

/// Bytes of the files under a directory (the node's own measure, as `compact` reports it).
pub(super) use tracenet_node::store::compact::disk_size as dir_size;

/// A deterministic pseudo-random sequence (no extra dependency, same in every run).
fn pick(i: usize, n: u64) -> u64 {
    (i as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17)
        % n.max(1)
}

/// Runs the scenario.
pub async fn run(p: StoreParams, progress: &dyn Fn(&str)) -> Result<Report, Error> {
    let t = TestFederation::start(1).await?;
    let country: CountryCode = t.node(0).config.country;
    let mut c = t.admin(0).await?;
    let raw_dir = tempfile::tempdir()?;
    let raw = sled::Config::new().path(raw_dir.path()).open()?;

    let (mut api_time, mut raw_time, mut raw_bytes) = (Duration::ZERO, Duration::ZERO, 0u64);
    let mut n = 0u64;
    while n < p.records {
        let end = (n + p.batch).min(p.records);
        let records: Vec<pb::SeizureRecord> =
            (n..end).map(|k| sample::record(country, k)).collect();
        let mut batch = sled::Batch::default();
        for (k, r) in (n..end).zip(&records) {
            let bytes = r.encode_to_vec();
            raw_bytes += bytes.len() as u64;
            batch.insert(&k.to_be_bytes(), bytes);
        }
        let t0 = Instant::now();
        raw.apply_batch(batch)?;
        raw.flush_async().await?;
        raw_time += t0.elapsed();
        let t0 = Instant::now();
        c.import_batch(pb::ImportBatchRequest {
            records,
            source_lines: Vec::new(),
            ..Default::default()
        })
        .await?;
        api_time += t0.elapsed();
        n = end;
        if n.is_multiple_of(p.batch * 20) || n == p.records {
            progress(&format!("imported {n}/{} records", p.records));
        }
    }
    let secs = |d: Duration| d.as_secs_f64().max(1e-9);
    let node_dir = t.node(0).config.data_dir.clone();
    let mut r = Report::new("ingest and serial search");
    r.param("records", p.records);
    r.param("batch", p.batch);
    r.param("searches per kind", p.searches);
    r.versus(
        "ingest (local API ImportBatch vs raw sled)",
        p.records as f64 / secs(api_time),
        p.records as f64 / secs(raw_time),
        "records/s",
    );
    r.figure("raw data (encoded records)", raw_bytes as f64 / 1e6, "MB");

    let mut exact = Samples::with_capacity(p.searches);
    let mut normalised = Samples::with_capacity(p.searches);
    let mut raw_get = Samples::with_capacity(p.searches);
    for i in 0..p.searches {
        let k = pick(i, p.records);
        let serial = sample::serial(country, k);
        let messy = serial.to_lowercase().replace('-', " ");
        for (kind, text, s) in [
            (pb::SerialMatch::Exact, serial.clone(), &mut exact),
            (pb::SerialMatch::Normalised, messy, &mut normalised),
        ] {
            let t0 = Instant::now();
            let found = c
                .search_by_serial(pb::SearchBySerialRequest {
                    serial_number: text,
                    r#match: kind as i32,
                    limit: 10,
                    ..Default::default()
                })
                .await?
                .into_inner();
            s.push(t0.elapsed());
            if found.records.is_empty() {
                return Err(format!("serial {serial} not found ({kind:?})").into());
            }
        }
        let t0 = Instant::now();
        let v = raw.get(k.to_be_bytes())?;
        raw_get.push(t0.elapsed());
        if v.is_none() {
            return Err("raw value missing".into());
        }
    }
    for (name, s) in [("exact", &exact), ("normalised", &normalised)] {
        r.versus(
            &format!("serial search {name} p50 (API vs raw get)"),
            s.quantile_us(0.5),
            raw_get.quantile_us(0.5),
            "us",
        );
        r.versus(
            &format!("serial search {name} p99 (API vs raw get)"),
            s.quantile_us(0.99),
            raw_get.quantile_us(0.99),
            "us",
        );
    }
    raw.flush_async().await?;
    drop(raw);
    let mut t = t;
    t.stop(0).await?;
    r.versus(
        "size on disk (node store vs raw sled)",
        dir_size(&node_dir) as f64 / 1e6,
        dir_size(raw_dir.path()) as f64 / 1e6,
        "MB",
    );
    r.figure(
        "node store size / raw data",
        dir_size(&node_dir) as f64 / raw_bytes.max(1) as f64,
        "x",
    );
    Ok(r)
}
