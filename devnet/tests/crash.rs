//! Crash safety of the real `tracenet-node` binary (issue 12): two nodes, FRA-POL sending trace
//! requests to DEU-BKA, killed with SIGKILL at random moments, in cycles: during concurrent
//! writes (creates, updates, trace requests), during outbox delivery (the sender or the receiver
//! killed), during start-up, during a CLI import, and during an offline `compact` of the stopped
//! node's database (run again afterwards, it completes). After every kill the killed node's audit
//! log must verify offline (`tracenet-node audit verify`), the node must start, every write it
//! acknowledged must be there, and every trace request it acknowledged must end up delivered,
//! shown so on both sides (acknowledged and off the outbox at FRA, held at DEU, never given up
//! on), with a `request_received` audit entry at DEU for each.
//!
//! Cycles: `TRACENET_CRASH_CYCLES` (default 8, every kind at least once); the kill points are
//! random, from `TRACENET_CRASH_SEED` when set (the seed is printed, to replay a failure). Every
//! wait is a poll with a deadline. The children's stderr (warnings: what `open_db` removed) is
//! kept per node, and the recoveries are summarised at the end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use tracenet_node::country::CountryCode;
use tracenet_node::sample;
use tracenet_node::tls::{fingerprint_of_pem_file, install_crypto_provider};
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::node_api_client::NodeApiClient;

use common::{BIN, NodeProcess, free_port, try_admin};

const FRA: usize = 0;
const DEU: usize = 1;
const IDS: [&str; 2] = ["FRA-POL", "DEU-BKA"];
/// How long a node may take to come up, or deliveries to settle, on a loaded machine.
const UP_WITHIN: Duration = Duration::from_secs(90);
const SETTLE_WITHIN: Duration = Duration::from_secs(120);
const IMPORT_ROWS: u64 = 3000;

type Client = NodeApiClient<Channel>;

/// xorshift64*: reproducible kill points from a printed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn millis(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.below(max + 1))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    StartUp,
    Writes,
    DeliverySender,
    DeliveryReceiver,
    Import,
    Compact,
}

/// The first cycles cover every kind (start-up twice); later ones are drawn at random.
const ROTATION: [Kind; 9] = [
    Kind::StartUp,
    Kind::Writes,
    Kind::DeliverySender,
    Kind::DeliveryReceiver,
    Kind::Import,
    Kind::Compact,
    Kind::StartUp,
    Kind::Writes,
    Kind::DeliverySender,
];

struct Node {
    id: &'static str,
    config: PathBuf,
    /// Its data directory (the sled databases).
    data: PathBuf,
    local: String,
    log: PathBuf,
    process: Option<NodeProcess>,
    /// How long the last start took until the local API answered (start-up kills aim inside it).
    last_start: Duration,
}

impl Node {
    fn spawn(&mut self) {
        assert!(self.process.is_none(), "{} is running", self.id);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        self.process = Some(NodeProcess(
            Command::new(BIN)
                .args(["run", "--config"])
                .arg(&self.config)
                .env("TRACENET_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        ));
    }

    fn kill_9(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill_9();
        }
    }

    fn note(&self, line: &str) {
        use std::io::Write;
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        writeln!(f, "=== {line}").unwrap();
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The offline audit verification of the stopped node; its stderr joins the node's log.
    fn verify_offline(&self) {
        let out = Command::new(BIN)
            .args(["audit", "verify", "--config"])
            .arg(&self.config)
            .env("TRACENET_LOG", "warn")
            .output()
            .unwrap();
        self.note("audit verify");
        std::fs::write(
            &self.log,
            [
                std::fs::read(&self.log).unwrap_or_default(),
                out.stderr.clone(),
            ]
            .concat(),
        )
        .unwrap();
        assert!(
            out.status.success(),
            "audit of {} does not verify after a kill: {}{}",
            self.id,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    async fn client(&mut self, certs: &Path) -> Client {
        let started = Instant::now();
        let c = try_admin(certs, self.id, &self.local, UP_WITHIN).await;
        let exited = self.process.as_mut().and_then(NodeProcess::exited);
        match c {
            Some(c) if exited.is_none() => {
                self.last_start = started.elapsed();
                c
            }
            _ => panic!(
                "{} did not come up (exit: {exited:?}); its log ends:\n{}",
                self.id,
                self.log_tail()
            ),
        }
    }

    /// Starts the node and waits until it serves.
    async fn start(&mut self, certs: &Path) -> Client {
        self.spawn();
        self.client(certs).await
    }
}

/// What the nodes acknowledged, so must keep.
#[derive(Default)]
struct Acked {
    /// Ids of records FRA acknowledged creating.
    records: BTreeSet<String>,
    /// The record being updated and the highest update number FRA acknowledged.
    updated: Option<(String, u64)>,
    /// Trace requests FRA acknowledged sending to DEU.
    traces: BTreeSet<String>,
    /// Serials of the last row of each import that FRA acknowledged (in whole batches).
    imported: Vec<String>,
}

struct Federation {
    _dir: tempfile::TempDir,
    root: PathBuf,
    nodes: Vec<Node>,
}

fn fra() -> CountryCode {
    CountryCode::parse("FRA").unwrap()
}

fn setup() -> Federation {
    install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let ids: Vec<String> = IDS.iter().map(|s| (*s).to_owned()).collect();
    tracenet_certs::write_dev_federation(&root.join("certs"), &ids).unwrap();
    let ports: Vec<(u16, u16)> = IDS.iter().map(|_| (free_port(), free_port())).collect();
    let mut nodes = Vec::new();
    for (i, id) in IDS.iter().enumerate() {
        let mut text = format!(
            "node_id = \"{id}\"\ncountry = \"{country}\"\ndata_dir = \"{id}/data\"\n\
             shutdown_grace_secs = 5\nsigning_key = \"certs/{id}/signing.pk8\"\n\
             [peer_api]\nlisten = \"127.0.0.1:{peer}\"\n[local_api]\nlisten = \"127.0.0.1:{local}\"\n\
             [tls]\nca = \"certs/ca.pem\"\ncert = \"certs/{id}/node.pem\"\nkey = \"certs/{id}/node.key\"\n\
             [admin]\ncert = \"certs/{id}/admin.pem\"\nkey = \"certs/{id}/admin.key\"\n\
             [outbox]\nretry_base_ms = 50\nretry_max_ms = 400\n\
             [local_certificates]\nadmin_fingerprints = [\"{admin}\"]\n",
            admin =
                fingerprint_of_pem_file(&root.join("certs").join(id).join("admin.pem")).unwrap(),
            country = &id[..3],
            peer = ports[i].0,
            local = ports[i].1,
        );
        for (j, other) in IDS.iter().enumerate() {
            if j == i {
                continue;
            }
            let key = std::fs::read_to_string(root.join("certs").join(other).join("signing.pub"))
                .unwrap();
            text.push_str(&format!(
                // Each State runs one node here: it is its State's tracing point.
                "\n[[peers]]\nnode_id = \"{other}\"\nendpoint = \"127.0.0.1:{}\"\nsigning_public_key = \"{}\"\ntracing_point = true\n",
                ports[j].0,
                key.trim()
            ));
        }
        let config = root.join(format!("{id}.toml"));
        std::fs::write(&config, text).unwrap();
        nodes.push(Node {
            id,
            config,
            data: root.join(id).join("data"),
            local: format!("127.0.0.1:{}", ports[i].1),
            log: root.join(format!("{id}.log")),
            process: None,
            last_start: Duration::from_millis(500),
        });
    }
    Federation {
        _dir: dir,
        root,
        nodes,
    }
}

impl Federation {
    fn certs(&self) -> PathBuf {
        self.root.join("certs")
    }

    async fn start(&mut self, i: usize) -> Client {
        let certs = self.certs();
        self.nodes[i].start(&certs).await
    }

    /// Kills node `i`, checks its audit log offline and starts it again.
    async fn kill_verify_restart(&mut self, i: usize) -> Client {
        self.nodes[i].kill_9();
        self.nodes[i].verify_offline();
        self.start(i).await
    }
}

fn trace_request(tag: &str) -> pb::SendTraceRequestRequest {
    pb::SendTraceRequestRequest {
        firearm: Some(pb::FirearmIdentification {
            serial_number: format!("SYN-{tag}"),
            manufacturer: "Synthetic Arms".into(),
            model: "S1".into(),
            country_of_manufacture: "DEU".into(),
            ..Default::default()
        }),
        requested_country: "DEU".into(),
        reason: "Crash test (synthetic)".into(),
        legal_basis: "Synthetic law art. 3".into(),
        urgency: pb::Urgency::Routine as i32,
        case_reference: "SYN-CRASH".into(),
        target_node: String::new(),
        ..Default::default()
    }
}

async fn send_trace(c: &mut Client, tag: &str) -> Result<String, tonic::Status> {
    let sent = c.send_trace_request(trace_request(tag)).await?.into_inner();
    Ok(sent.request.unwrap().id)
}

/// Every trace request in `direction`, following the pages.
async fn traces(c: &mut Client, direction: &str) -> BTreeMap<String, pb::TraceRecord> {
    let (mut all, mut page_token) = (BTreeMap::new(), String::new());
    loop {
        let page = c
            .list_trace_requests(pb::ListTraceRequestsRequest {
                direction: direction.into(),
                page_size: 1000,
                page_token,
            })
            .await
            .unwrap()
            .into_inner();
        all.extend(
            page.traces
                .into_iter()
                .map(|t| (t.request.clone().unwrap().id, t)),
        );
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

/// Whether sled is writing a snapshot somewhere under `dir` (a `snap.*.generating` file).
fn generating(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.filter_map(Result::ok).any(|e| {
        let p = e.path();
        p.to_string_lossy().ends_with(".generating") || (p.is_dir() && generating(&p))
    })
}

/// Polls `check` every 50 ms until it returns `Some`, at most `within`.
async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(t) = check().await {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every write FRA acknowledged is there.
async fn check_fra_writes(c: &mut Client, acked: &Acked) {
    let present = common::all_record_ids(c).await;
    for id in &acked.records {
        assert!(present.contains(id), "acknowledged record {id} lost");
    }
    if let Some((id, n)) = &acked.updated {
        let rec = c
            .get_record(pb::GetRecordRequest { id: id.clone() })
            .await
            .unwrap()
            .into_inner()
            .record
            .unwrap();
        let stored: u64 = rec
            .notes
            .strip_prefix("update ")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        assert!(
            stored >= *n,
            "acknowledged update {n} lost (found {stored})"
        );
    }
    for serial in &acked.imported {
        let found = c
            .search_by_serial(pb::SearchBySerialRequest {
                serial_number: serial.clone(),
                r#match: pb::SerialMatch::Exact as i32,
                limit: 5,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            !found.records.is_empty(),
            "acknowledged imported row {serial} lost"
        );
    }
}

/// Every trace request FRA acknowledged is delivered, and shown so on both sides: acknowledged
/// and off the outbox at FRA (never given up on), held at DEU with its `request_received` audit.
async fn settle_deliveries(fra_c: &mut Client, deu_c: &mut Client, acked: &Acked) {
    let fra_c2 = fra_c.clone();
    let deu_c2 = deu_c.clone();
    wait_for("every trace request delivered", SETTLE_WITHIN, || {
        let (mut f, mut d) = (fra_c2.clone(), deu_c2.clone());
        async move {
            let outbox = f
                .list_outbox(pb::ListOutboxRequest {
                    page_size: 1000,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .items;
            if let Some(dead) = outbox.iter().find(|i| i.dead) {
                panic!(
                    "FRA gave up on delivery {} to {}: {}",
                    dead.id, dead.target_node, dead.last_error
                );
            }
            let out = traces(&mut f, "outgoing").await;
            let inc = traces(&mut d, "incoming").await;
            for id in &acked.traces {
                let t = out
                    .get(id)
                    .unwrap_or_else(|| panic!("acknowledged trace request {id} lost at FRA"));
                assert!(
                    t.delivery_error.is_empty(),
                    "trace {id} shows a delivery error: {}",
                    t.delivery_error
                );
                if t.status == pb::TraceStatus::Sent as i32 || !inc.contains_key(id) {
                    return None;
                }
            }
            outbox.is_empty().then_some(())
        }
    })
    .await;
    let mut received = BTreeSet::new();
    let mut after = 0;
    loop {
        let page = deu_c
            .list_audit(pb::ListAuditRequest {
                kind: "request_received".into(),
                peer: String::new(),
                after_seq: after,
                limit: 500,
            })
            .await
            .unwrap()
            .into_inner()
            .entries;
        let Some(last) = page.last() else { break };
        after = last.seq;
        received.extend(page.into_iter().map(|e| e.request_id));
    }
    for id in traces(deu_c, "incoming").await.keys() {
        assert!(
            received.contains(id),
            "DEU holds trace request {id} without its request_received audit entry"
        );
    }
}

/// Concurrent creates, updates and trace requests at FRA, killed underneath them.
async fn writes_cycle(
    fed: &mut Federation,
    fra_c: &Client,
    acked: &Arc<Mutex<Acked>>,
    rng: &mut Rng,
    cycle: u64,
) {
    let progress = Arc::new(Mutex::new(0u64));
    let mut tasks = Vec::new();
    {
        let (mut c, acked, progress) = (fra_c.clone(), acked.clone(), progress.clone());
        tasks.push(tokio::spawn(async move {
            for k in 0.. {
                let r = c
                    .create_record(pb::CreateRecordRequest {
                        record: Some(sample::record(fra(), cycle * 1_000_000 + k)),
                    })
                    .await;
                let Ok(r) = r else { break };
                let id = r.into_inner().record.unwrap().id;
                acked.lock().unwrap().records.insert(id);
                *progress.lock().unwrap() += 1;
            }
        }));
    }
    {
        let (mut c, acked, progress) = (fra_c.clone(), acked.clone(), progress.clone());
        tasks.push(tokio::spawn(async move {
            let Some((id, from)) = acked.lock().unwrap().updated.clone() else {
                return;
            };
            let mut rec = c
                .get_record(pb::GetRecordRequest { id: id.clone() })
                .await
                .unwrap()
                .into_inner()
                .record
                .unwrap();
            for n in from + 1.. {
                rec.notes = format!("update {n}");
                let r = c
                    .update_record(pb::UpdateRecordRequest {
                        record: Some(rec.clone()),
                        expected_revision: 0,
                    })
                    .await;
                if r.is_err() {
                    break;
                }
                acked.lock().unwrap().updated = Some((id.clone(), n));
                *progress.lock().unwrap() += 1;
            }
        }));
    }
    {
        let (mut c, acked, progress) = (fra_c.clone(), acked.clone(), progress.clone());
        tasks.push(tokio::spawn(async move {
            for k in 0.. {
                let Ok(id) = send_trace(&mut c, &format!("W{cycle}-{k}")).await else {
                    break;
                };
                acked.lock().unwrap().traces.insert(id);
                *progress.lock().unwrap() += 1;
            }
        }));
    }
    let wanted = 10 + rng.below(40);
    wait_for("writes under way", Duration::from_secs(60), || {
        let p = progress.clone();
        async move { (*p.lock().unwrap() >= wanted).then_some(()) }
    })
    .await;
    tokio::time::sleep(rng.millis(200)).await;
    fed.nodes[FRA].note(&format!("cycle {cycle}: kill during writes"));
    fed.nodes[FRA].kill_9();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_loses_nothing_acknowledged_and_delivers_everything() {
    let cycles: u64 = std::env::var("TRACENET_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ROTATION.len() as u64);
    let seed: u64 = std::env::var("TRACENET_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
        | 1;
    eprintln!("crash test: {cycles} cycles, TRACENET_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let mut fed = setup();
    let certs = fed.certs();
    let acked = Arc::new(Mutex::new(Acked::default()));

    let mut fra_c = fed.start(FRA).await;
    let mut deu_c = fed.start(DEU).await;
    let first = fra_c
        .create_record(pb::CreateRecordRequest {
            record: Some(sample::record(fra(), 999_999_999)),
        })
        .await
        .unwrap()
        .into_inner()
        .record
        .unwrap()
        .id;
    acked.lock().unwrap().records.insert(first.clone());
    acked.lock().unwrap().updated = Some((first, 0));

    let mut kinds: BTreeMap<Kind, u64> = BTreeMap::new();
    let (mut startup_kills, mut snapshot_kills) = (0u64, 0u64);
    let started = Instant::now();
    for cycle in 0..cycles {
        let kind = match ROTATION.get(cycle as usize) {
            Some(k) => *k,
            None => ROTATION[rng.below(ROTATION.len() as u64) as usize],
        };
        *kinds.entry(kind).or_default() += 1;
        let at = started.elapsed();
        match kind {
            Kind::StartUp => {
                // Mostly FRA (it has the most to write at start-up), sometimes DEU.
                let i = if rng.below(3) == 0 { DEU } else { FRA };
                fed.nodes[i].note(&format!(
                    "cycle {cycle}: kill at rest, then during start-up"
                ));
                // The offline audit check opens the databases too, and so writes the start-up
                // snapshot the node would write: here it runs once, after the last kill, so the
                // node's own starts have a snapshot to write (and to be killed in).
                fed.nodes[i].kill_9();
                for _ in 0..1 + rng.below(3) {
                    // Inside the time the last start took to serve: the node is opening its
                    // databases, recovering, writing sled's start-up snapshot or binding. Half
                    // the time the kill is timed to the snapshot (sled issue 1527): as soon as
                    // a `.generating` file shows, if one does before the drawn moment.
                    let window = fed.nodes[i].last_start.as_millis() as u64;
                    let at_snapshot = rng.below(2) == 0;
                    let until = Instant::now() + rng.millis(window);
                    fed.nodes[i].spawn();
                    // Polled on a blocking thread every 0.2 ms: the snapshot takes milliseconds.
                    let data = fed.nodes[i].data.clone();
                    let seen = tokio::task::spawn_blocking(move || {
                        while Instant::now() < until {
                            if at_snapshot && generating(&data) {
                                return true;
                            }
                            std::thread::sleep(Duration::from_micros(200));
                        }
                        false
                    })
                    .await
                    .unwrap();
                    fed.nodes[i].kill_9();
                    fed.nodes[i].note(&format!(
                        "cycle {cycle}: killed during start-up{}",
                        if seen {
                            " (snapshot being generated)"
                        } else {
                            ""
                        }
                    ));
                    startup_kills += 1;
                    snapshot_kills += u64::from(seen);
                }
                fed.nodes[i].verify_offline();
                fed.start(i).await;
            }
            Kind::Writes => {
                writes_cycle(&mut fed, &fra_c, &acked, &mut rng, cycle).await;
                fed.nodes[FRA].verify_offline();
                fed.start(FRA).await;
            }
            Kind::DeliverySender => {
                // Requests queue while DEU is down; FRA is killed once they start arriving.
                fed.nodes[DEU].note(&format!("cycle {cycle}: kill at rest (queueing)"));
                fed.nodes[DEU].kill_9();
                fed.nodes[DEU].verify_offline();
                // DEU holds every earlier request (the last cycle settled them all).
                let held = traces(&mut fra_c, "outgoing").await.len();
                for k in 0..5 + rng.below(10) {
                    let id = send_trace(&mut fra_c, &format!("S{cycle}-{k}"))
                        .await
                        .unwrap();
                    acked.lock().unwrap().traces.insert(id);
                }
                deu_c = fed.start(DEU).await;
                // Polled tightly: the window that matters (DEU applied an item, FRA has not yet
                // recorded its acknowledgement) is milliseconds wide.
                let deadline = Instant::now() + Duration::from_secs(60);
                while traces(&mut deu_c, "incoming").await.len() <= held {
                    assert!(
                        Instant::now() < deadline,
                        "timed out waiting for deliveries"
                    );
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                tokio::time::sleep(rng.millis(15)).await;
                fed.nodes[FRA].note(&format!("cycle {cycle}: kill during delivery (sender)"));
                fed.kill_verify_restart(FRA).await;
            }
            Kind::DeliveryReceiver => {
                let (mut c, acked2) = (fra_c.clone(), acked.clone());
                let sender = tokio::spawn(async move {
                    for k in 0..12 {
                        let id = send_trace(&mut c, &format!("R{cycle}-{k}")).await.unwrap();
                        acked2.lock().unwrap().traces.insert(id);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                });
                tokio::time::sleep(rng.millis(250)).await;
                fed.nodes[DEU].note(&format!("cycle {cycle}: kill during delivery (receiver)"));
                fed.kill_verify_restart(DEU).await;
                sender.await.unwrap();
            }
            Kind::Import => {
                let base = cycle * 1_000_000 + 500_000;
                let file = fed.root.join(format!("import-{cycle}.jsonl"));
                let lines: Vec<String> = (base..base + IMPORT_ROWS)
                    .map(|n| serde_json::to_string(&sample::record(fra(), n)).unwrap())
                    .collect();
                std::fs::write(&file, lines.join("\n")).unwrap();
                let count = |mut c: Client| async move {
                    c.get_node_info(pb::GetNodeInfoRequest {})
                        .await
                        .unwrap()
                        .into_inner()
                        .record_count
                };
                let before = count(fra_c.clone()).await;
                let import = Command::new(BIN)
                    .args(["import", "--config"])
                    .arg(&fed.nodes[FRA].config)
                    .arg(&file)
                    .args(["--batch-size", "200"])
                    .env("TRACENET_LOG", "warn")
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let f = fra_c.clone();
                wait_for("import under way", Duration::from_secs(60), || {
                    let f = f.clone();
                    async move { (count(f).await > before).then_some(()) }
                })
                .await;
                tokio::time::sleep(rng.millis(400)).await;
                fed.nodes[FRA].note(&format!("cycle {cycle}: kill during import"));
                fed.nodes[FRA].kill_9();
                let out = tokio::task::spawn_blocking(move || import.wait_with_output())
                    .await
                    .unwrap()
                    .unwrap();
                let stderr = String::from_utf8_lossy(&out.stderr);
                // Whole batches acknowledged before the kill: what the CLI reports as written.
                let written = if out.status.success() {
                    IMPORT_ROWS
                } else {
                    stderr
                        .split("batch after row ")
                        .nth(1)
                        .and_then(|s| s.split(' ').next())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| panic!("import failed unexpectedly: {stderr}"))
                };
                fed.nodes[FRA].note(&format!(
                    "cycle {cycle}: import acknowledged {written} rows"
                ));
                if written > 0 {
                    acked
                        .lock()
                        .unwrap()
                        .imported
                        .push(sample::serial(fra(), base + written - 1));
                }
                fed.nodes[FRA].verify_offline();
                fed.start(FRA).await;
                // Re-running the import after a crash is safe and completes it.
                let again = Command::new(BIN)
                    .args(["import", "--config"])
                    .arg(&fed.nodes[FRA].config)
                    .arg(&file)
                    .args(["--batch-size", "1000"])
                    .env("TRACENET_LOG", "warn")
                    .output()
                    .unwrap();
                assert!(
                    again.status.success(),
                    "{}",
                    String::from_utf8_lossy(&again.stderr)
                );
                acked
                    .lock()
                    .unwrap()
                    .imported
                    .push(sample::serial(fra(), base + IMPORT_ROWS - 1));
            }
            Kind::Compact => {
                // FRA stopped the hard way and its database compacted offline: once to the end
                // (timed), then killed at a random moment within that time, then run again to
                // the end. Nothing is lost whenever the kill lands.
                fed.nodes[FRA].note(&format!("cycle {cycle}: kill, then compact"));
                fed.nodes[FRA].kill_9();
                let compact = || {
                    let mut c = Command::new(BIN);
                    c.args(["compact", "--config"])
                        .arg(&fed.nodes[FRA].config)
                        .env("TRACENET_LOG", "warn");
                    c
                };
                let run_to_end = || {
                    let out = compact().output().unwrap();
                    assert!(
                        out.status.success()
                            && String::from_utf8_lossy(&out.stdout).contains("compacted"),
                        "compact: {}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                };
                let took = Instant::now();
                run_to_end();
                let took = took.elapsed();
                let mut child = NodeProcess(
                    compact()
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap(),
                );
                let after = rng.millis(took.as_millis() as u64);
                tokio::time::sleep(after).await;
                let finished = child.exited().is_some();
                child.kill_9();
                let what = format!(
                    "compaction (a whole run took {took:?}) {} after {after:?}",
                    if finished { "had finished" } else { "killed" }
                );
                fed.nodes[FRA].note(&format!("cycle {cycle}: {what}"));
                eprintln!("cycle {cycle}: {what}");
                run_to_end();
                fed.nodes[FRA].verify_offline();
                fed.start(FRA).await;
            }
        }
        // The other node may not have noticed; both must answer, hold everything, deliver.
        let fra_up = fed.nodes[FRA].client(&certs).await;
        let deu_up = fed.nodes[DEU].client(&certs).await;
        (fra_c, deu_c) = (fra_up, deu_up);
        let snapshot = std::mem::take(&mut *acked.lock().unwrap());
        check_fra_writes(&mut fra_c, &snapshot).await;
        settle_deliveries(&mut fra_c, &mut deu_c, &snapshot).await;
        eprintln!(
            "cycle {cycle} ({kind:?}, started at {at:?}) passed: {} records, {} traces delivered",
            snapshot.records.len(),
            snapshot.traces.len()
        );
        *acked.lock().unwrap() = snapshot;
    }

    // Both stopped the hard way; both audit logs verify and both start once more.
    drop((fra_c, deu_c));
    for i in [FRA, DEU] {
        fed.nodes[i].kill_9();
        fed.nodes[i].verify_offline();
    }
    let mut fra_c = fed.start(FRA).await;
    let mut deu_c = fed.start(DEU).await;
    let snapshot = std::mem::take(&mut *acked.lock().unwrap());
    check_fra_writes(&mut fra_c, &snapshot).await;
    settle_deliveries(&mut fra_c, &mut deu_c, &snapshot).await;

    // What recovery had to do, from the children's warnings.
    for n in &fed.nodes {
        let log = std::fs::read_to_string(&n.log).unwrap_or_default();
        let removed: Vec<&str> = log.lines().filter(|l| l.contains("removed")).collect();
        eprintln!("{}: {} recoveries by open_db", n.id, removed.len());
        for l in removed {
            eprintln!("  {l}");
        }
        if let Some(dir) = std::env::var_os("TRACENET_CRASH_LOG_DIR") {
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::copy(&n.log, Path::new(&dir).join(format!("{}.log", n.id)));
        }
    }
    eprintln!(
        "crash test done in {:?}: {kinds:?}, {startup_kills} kills during start-up ({snapshot_kills} while sled generated a snapshot), {} records, {} traces",
        started.elapsed(),
        snapshot.records.len(),
        snapshot.traces.len()
    );
}
