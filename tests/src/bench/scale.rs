//! The scale curve: for each size, a fresh `tracenet-node` process (built next to this binary,
//! default settings) is loaded with that many synthetic records (the sample generator's
//! distributions) through its local API, then stopped and started again on the same data, twice.
//! Per size: ingest rate and resident memory while importing, store size on disk against the
//! encoded records, start-up time after the import and again (sled 0.34 snapshots its page table
//! only when it starts, so the first start replays the import from sled's log), resident
//! memory idle and under query load, exact and normalised serial search p50/p99 and wildcard
//! search p99, each search timed through the local API next to the bare unary call (the gRPC
//! health `Check`) over the same channel, in the same run.
//!
//! Per size, also a federated query returning 1,000 records (or every record, at sizes below
//! 1,000): the node process and a requesting node are a two-node dev federation
//! ([`TestFederation`], the loaded node's policy granting the requester its routes, transport
//! modes and serials for border risk analysis). The loaded node runs as its own process on the
//! configuration the dev federation wrote for it; the requester stays in this process and is
//! asked through its local API (`FederatedQuery`, as the console asks), so the query crosses
//! real mutual TLS sockets to the loaded node's peer API (`QueryRecords`, streamed and signed
//! per record) and back. The filter is a route country every sample record passes through (the
//! loaded node's own country); the scenario fails unless each answer holds exactly the number of
//! records asked for.

use std::time::{Duration, Instant};

use prost::Message;
use tracenet_node::client::connect;
use tracenet_node::country::CountryCode;
use tracenet_node::sample;
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::node_api_client::NodeApiClient;

use super::memory::{node_binary, rss_mib, start, wait_serving};
use super::report::{Report, Samples};
use super::store::dir_size;
use crate::{Error, NodeSpec, TestFederation};

/// The loaded node (node 0 of the scenario's federation) and the requesting node (node 1).
const OWNER: &str = "FRA-POL";
const REQUESTER: &str = "DEU-CUS";

/// The loaded node's sharing policy: the requester's country may query its seizures for border
/// risk analysis and sees routes (which the query filters on), transport modes and serials.
const POLICY: &str = r#"
owner_country = "FRA"
version = 1
legal_basis = "Synthetic benchmark basis"

[[rules]]
id = "deu-border-risk"
purposes = ["PURPOSE_BORDER_RISK_ANALYSIS"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["DEU"] }
fields = [
  { field = "trafficking.route", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "trafficking.transport_mode", treatment = "FIELD_TREATMENT_ALLOW" },
  { field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" },
]
"#;

/// Records a federated query asks the loaded node for: the most a query may return per peer,
/// or every record when fewer are loaded.
fn query_records(size: u64) -> u32 {
    u32::try_from(size)
        .unwrap_or(u32::MAX)
        .min(tracenet_node::fanout::MAX_LIMIT_PER_PEER)
}

/// The federated query of the scenario: every record routed through `via`, up to `limit`.
fn federated_query(via: CountryCode, limit: u32) -> pb::FederatedQueryRequest {
    pb::FederatedQueryRequest {
        inquiry: Some(pb::Inquiry {
            agency_kind: pb::AgencyKind::Police as i32,
            purpose: pb::Purpose::BorderRiskAnalysis as i32,
            legal_basis: "Synthetic benchmark basis".into(),
            case_reference: String::new(),
            // The longest a node allows: a slow answer is measured, not cut off.
            deadline_ms: 30_000,
            via_hub: false,
        }),
        filter: Some(pb::RecordFilter {
            route_country: via.as_str().to_owned(),
            ..Default::default()
        }),
        limit_per_peer: limit,
        include_local: false,
    }
}

/// Records with content the loaded node returned in one federated query answer; an error if
/// it did not answer.
fn owner_records(resp: &pb::FederatedQueryResponse) -> Result<usize, Error> {
    if !resp.failed.is_empty() {
        return Err(format!("federated query: {:?}", resp.failed).into());
    }
    Ok(resp
        .answers
        .iter()
        .filter(|a| a.node_id == OWNER)
        .flat_map(|a| &a.records)
        .filter(|r| r.record.is_some() && !r.hit_only)
        .count())
}

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
    /// Federated queries of 1,000 records timed per size (after two untimed ones).
    pub queries: usize,
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
    if p.queries == 0 {
        return Err("queries must be positive".into());
    }
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
    r.param(
        "federated query",
        format!(
            "{REQUESTER} (in this process) asks the node process for records routed via {} \
             over mTLS, {} timed per size",
            country.as_str(),
            p.queries
        ),
    );
    for &size in &p.sizes {
        // Certificates, policy and both configurations from the dev federation; the loaded node
        // is stopped in process and runs as its own process on the configuration written for it.
        let mut t = TestFederation::start_specs(&[
            NodeSpec::new(OWNER).with_policy(POLICY),
            NodeSpec::new(REQUESTER),
        ])
        .await?;
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("node.toml");
        t.node(0).write_config(&config)?;
        t.stop(0).await?;
        let local = t.node(0).local_addr.to_string();
        let id = t.node(0).id.clone();
        let tls = t.fed.material(0, "admin")?;
        let data_dir = t.node(0).config.data_dir.clone();
        let node = start(&bin, &config)?;
        wait_serving(&local, &tls, &id).await?;
        let mut c = NodeApiClient::new(connect(&local, &tls, &id).await?);
        let (mut ingest, mut encoded) = (Duration::ZERO, 0u64);
        let mut ingest_peak = 0f64;
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
            ingest_peak = ingest_peak.max(rss_mib(node.0.id())?);
            n = end;
            if n.is_multiple_of(100_000) {
                progress(&format!("{size}: loaded {n} records"));
            }
        }
        node.terminate()?;
        let on_disk = dir_size(&data_dir);

        // The first start after the import: sled 0.34 snapshots its page table only when it
        // starts, so this start replays the whole import from sled's log. The second replays
        // only what the first wrote.
        let t0 = Instant::now();
        let node = start(&bin, &config)?;
        wait_serving(&local, &tls, &id).await?;
        let startup = t0.elapsed();
        let idle_first = rss_mib(node.0.id())?;
        node.terminate()?;
        let t0 = Instant::now();
        let node = start(&bin, &config)?;
        wait_serving(&local, &tls, &id).await?;
        let startup_again = t0.elapsed();
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
        for task in tasks {
            task.await.map_err(|e| e.to_string())??;
        }

        // The federated query: the requester's local API, fanned out to the node process.
        let want = query_records(size);
        let mut requester = t
            .admin(1)
            .await?
            .max_decoding_message_size(64 * 1024 * 1024);
        let q = federated_query(country, want);
        let mut fed = Samples::with_capacity(p.queries);
        let mut answer_bytes = 0usize;
        for i in 0..p.queries + 2 {
            let t0 = Instant::now();
            let resp = requester.federated_query(q.clone()).await?.into_inner();
            let took = t0.elapsed();
            answer_bytes = resp.encoded_len();
            let got = owner_records(&resp)?;
            if got != want as usize {
                return Err(
                    format!("{size}: federated query returned {got} records, not {want}").into(),
                );
            }
            if i >= 2 {
                fed.push(took);
            }
        }
        drop(node);
        t.shutdown().await?;

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
            &f("resident memory while importing (peak)"),
            ingest_peak,
            "MiB",
        );
        r.figure(
            &f("start-up after the import (spawn -> serving)"),
            startup.as_secs_f64() * 1000.0,
            "ms",
        );
        r.figure(
            &f("resident memory idle after that start"),
            idle_first,
            "MiB",
        );
        r.figure(
            &f("start-up again (spawn -> serving)"),
            startup_again.as_secs_f64() * 1000.0,
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
        r.figure(
            &f("federated query: records returned"),
            f64::from(want),
            "records",
        );
        r.figure(
            &f("federated query: answer size"),
            answer_bytes as f64 / 1e3,
            "kB",
        );
        for (q, label) in [(0.5, "p50"), (0.99, "p99")] {
            r.figure(
                &f(&format!("federated query {label}")),
                fed.quantile_us(q) / 1000.0,
                "ms",
            );
        }
    }
    Ok(r)
}
