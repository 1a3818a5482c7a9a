//! The scale curve: for each size, a fresh `tracenet-node` process (built next to this binary,
//! default settings) is loaded with that many synthetic records (the sample generator's
//! distributions) through its local API, then stopped and started again on the same data. Per
//! size: ingest rate, store size on disk against the encoded records, start-up time, resident
//! memory idle and under query load, exact and normalised serial search p50/p99 and wildcard
//! search p99, each search timed through the local API next to the bare unary call (the gRPC
//! health `Check`) over the same channel, in the same run.
//!
//! Not covered here: a federated query returning 1,000 records (it needs peer processes; see
//! BENCHMARKS.md).

use std::process::Command;
use std::time::{Duration, Instant};

use prost::Message;
use tracenet_node::client::connect;
use tracenet_node::country::CountryCode;
use tracenet_node::sample;
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::node_api_client::NodeApiClient;

use super::memory::{Setup, node_binary, rss_mib, setup, start, wait_serving};
use super::report::{Report, Samples};
use super::store::dir_size;
use crate::Error;

/// Parameters of the scale scenario.
#[derive(Debug, Clone)]
pub struct ScaleParams {
    /// Store sizes, in records, each loaded into a fresh node.
    pub sizes: Vec<u64>,
    /// Records per import batch.
    pub batch: u64,
    /// Sequential searches timed per kind.
    pub searches: usize,
    /// Seconds of concurrent query load while memory is sampled.
    pub load_secs: u64,
}

/// A deterministic spread of record numbers (the same in every run).
fn pick(i: u64, n: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) % n.max(1)
}

/// The serial of record `k` with its last character unreadable (a one-character wildcard).
fn wildcard(country: CountryCode, k: u64) -> String {
    let mut s = sample::serial(country, k);
    s.pop();
    s.push('*');
    s
}

async fn search(
    c: &mut NodeApiClient<tonic::transport::Channel>,
    serial: String,
    kind: pb::SerialMatch,
) -> Result<usize, Error> {
    Ok(c.search_by_serial(pb::SearchBySerialRequest {
        serial_number: serial,
        r#match: kind as i32,
        limit: 10,
        ..Default::default()
    })
    .await?
    .into_inner()
    .records
    .len())
}

/// Runs the scenario, one fresh node per size.
pub async fn run(p: &ScaleParams, progress: &dyn Fn(&str)) -> Result<Report, Error> {
    tracenet_node::tls::install_crypto_provider();
    let bin = node_binary()?;
    let country = CountryCode::parse("FRA")?;
    let mut r = Report::new("scale curve: one node process per size");
    r.param(
        "sizes",
        p.sizes
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    );
    r.param("batch", p.batch);
    r.param("searches per kind", p.searches);
    r.param(
        "query load",
        format!("8 concurrent normalised searches for {} s", p.load_secs),
    );
    for &size in &p.sizes {
        let dir = tempfile::tempdir()?;
        let Setup {
            config,
            local,
            id,
            tls,
        } = setup(dir.path())?;
        let node = start(&bin, &config)?;
        wait_serving(&local, &tls, &id).await?;
        let mut c = NodeApiClient::new(connect(&local, &tls, &id).await?);
        let (mut ingest, mut encoded) = (Duration::ZERO, 0u64);
        let mut n = 0;
        while n < size {
            let end = (n + p.batch).min(size);
            let records: Vec<pb::SeizureRecord> =
                (n..end).map(|k| sample::record(country, k)).collect();
            encoded += records.iter().map(|r| r.encoded_len() as u64).sum::<u64>();
            let t0 = Instant::now();
            c.import_batch(pb::ImportBatchRequest {
                records,
                source_lines: Vec::new(),
                ..Default::default()
            })
            .await?;
            ingest += t0.elapsed();
            n = end;
            if n.is_multiple_of(100_000) {
                progress(&format!("{size}: loaded {n} records"));
            }
        }
        let pid = node.0.id();
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        let mut node = node;
        node.0.wait()?;
        let on_disk = dir_size(&dir.path().join("data"));

        let t0 = Instant::now();
        let node = start(&bin, &config)?;
        wait_serving(&local, &tls, &id).await?;
        let startup = t0.elapsed();
        let pid = node.0.id();
        let channel = connect(&local, &tls, &id).await?;
        let mut c = NodeApiClient::new(channel.clone());
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        let idle = rss_mib(pid)?;

        // Sequential searches, each kind next to the bare unary call on the same channel.
        let (mut exact, mut normal, mut wild, mut bare) = (
            Samples::with_capacity(p.searches),
            Samples::with_capacity(p.searches),
            Samples::with_capacity(p.searches),
            Samples::with_capacity(p.searches),
        );
        for i in 0..p.searches as u64 {
            let k = pick(i, size);
            let serial = sample::serial(country, k);
            let messy = serial.to_lowercase().replace('-', " ");
            for (text, kind, s) in [
                (serial, pb::SerialMatch::Exact, &mut exact),
                (messy, pb::SerialMatch::Normalised, &mut normal),
                (wildcard(country, k), pb::SerialMatch::Normalised, &mut wild),
            ] {
                let t0 = Instant::now();
                let found = search(&mut c, text.clone(), kind).await?;
                s.push(t0.elapsed());
                if found == 0 {
                    return Err(format!("{size}: serial {text} not found ({kind:?})").into());
                }
            }
            let t0 = Instant::now();
            health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await?;
            bare.push(t0.elapsed());
        }

        let until = Instant::now() + Duration::from_secs(p.load_secs);
        let mut peak = idle;
        let mut tasks = Vec::new();
        for w in 0..8u64 {
            let mut c = c.clone();
            tasks.push(tokio::spawn(async move {
                let mut i = w;
                while Instant::now() < until {
                    let serial = sample::serial(country, pick(i, size));
                    search(&mut c, serial, pb::SerialMatch::Normalised).await?;
                    i += 8;
                }
                Ok::<(), Error>(())
            }));
        }
        while Instant::now() < until {
            peak = peak.max(rss_mib(pid)?);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for t in tasks {
            t.await.map_err(|e| e.to_string())??;
        }
        drop(node);

        let f = |name: &str| format!("{size}: {name}");
        r.figure(
            &f("ingest"),
            size as f64 / ingest.as_secs_f64().max(1e-9),
            "records/s",
        );
        r.versus(
            &f("store on disk (vs encoded records)"),
            on_disk as f64 / 1e6,
            encoded as f64 / 1e6,
            "MB",
        );
        r.figure(
            &f("start-up (spawn -> serving)"),
            startup.as_secs_f64() * 1000.0,
            "ms",
        );
        r.figure(&f("resident memory idle after restart"), idle, "MiB");
        r.figure(&f("resident memory under query load (peak)"), peak, "MiB");
        for (name, s) in [("exact", &exact), ("normalised", &normal)] {
            r.versus(
                &f(&format!("serial search {name} p50 (vs bare unary)")),
                s.quantile_us(0.5),
                bare.quantile_us(0.5),
                "us",
            );
            r.versus(
                &f(&format!("serial search {name} p99 (vs bare unary)")),
                s.quantile_us(0.99),
                bare.quantile_us(0.99),
                "us",
            );
        }
        r.versus(
            &f("wildcard search p99 (vs bare unary)"),
            wild.quantile_us(0.99),
            bare.quantile_us(0.99),
            "us",
        );
    }
    Ok(r)
}
