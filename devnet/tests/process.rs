//! The `tracenet-node` binary as an operator runs it: SIGTERM stops it cleanly with everything
//! flushed, and `kill -9` in the middle of writes loses nothing that was acknowledged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tracenet_node::country::CountryCode;
use tracenet_node::sample;
use tracenet_node::tls::{fingerprint_of_pem_file, install_crypto_provider};
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::node_api_client::NodeApiClient;

use common::{BIN, NodeProcess, free_port, try_admin};

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
    local: String,
}

fn setup() -> Setup {
    install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    tracenet_certs::write_dev_federation(&root.join("certs"), &["FRA-POL".to_string()]).unwrap();
    let local = format!("127.0.0.1:{}", free_port());
    let config = root.join("node.toml");
    std::fs::write(
        &config,
        format!(
            "node_id = \"FRA-POL\"\ncountry = \"FRA\"\ndata_dir = \"data\"\nshutdown_grace_secs = 5\n\
             [peer_api]\nlisten = \"127.0.0.1:{}\"\n[local_api]\nlisten = \"{local}\"\n\
             [tls]\nca = \"certs/ca.pem\"\ncert = \"certs/FRA-POL/node.pem\"\nkey = \"certs/FRA-POL/node.key\"\n\
             [admin]\ncert = \"certs/FRA-POL/admin.pem\"\nkey = \"certs/FRA-POL/admin.key\"\n\
             [local_certificates]\nadmin_fingerprints = [\"{admin}\"]\n",
            free_port(),
            admin = fingerprint_of_pem_file(&root.join("certs/FRA-POL/admin.pem")).unwrap(),
        ),
    )
    .unwrap();
    Setup {
        _dir: dir,
        root,
        config,
        local,
    }
}

fn start(s: &Setup) -> NodeProcess {
    NodeProcess(
        Command::new(BIN)
            .args(["run", "--config"])
            .arg(&s.config)
            .env("TRACENET_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

async fn admin(s: &Setup) -> NodeApiClient<tonic::transport::Channel> {
    try_admin(
        &s.root.join("certs"),
        "FRA-POL",
        &s.local,
        Duration::from_secs(30),
    )
    .await
    .expect("node did not come up")
}

fn fra() -> CountryCode {
    CountryCode::parse("FRA").unwrap()
}

fn write_jsonl(path: &Path, range: std::ops::Range<u64>) {
    let lines: Vec<String> = range
        .map(|n| serde_json::to_string(&sample::record(fra(), n)).unwrap())
        .collect();
    std::fs::write(path, lines.join("\n")).unwrap();
}

async fn count(c: &mut NodeApiClient<tonic::transport::Channel>) -> u64 {
    c.get_node_info(pb::GetNodeInfoRequest {})
        .await
        .unwrap()
        .into_inner()
        .record_count
}

// Multi-threaded: the test blocks a thread waiting for the child, and the client connection
// must still be driven (closed) meanwhile, or the node waits its whole grace period for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_the_cli_import_is_durable() {
    let s = setup();
    let mut node = start(&s);
    let mut c = admin(&s).await;

    let file = s.root.join("records.jsonl");
    write_jsonl(&file, 0..1200);
    let out = Command::new(BIN)
        .args(["import", "--config"])
        .arg(&s.config)
        .arg(&file)
        .args(["--batch-size", "250"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("imported 1200 rows"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("imported 1200/1200 rows (100%)"),
        "progress not shown: {stderr}"
    );
    assert_eq!(count(&mut c).await, 1200);
    drop(c);

    let term = Command::new("kill")
        .args(["-TERM", &node.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let started = std::time::Instant::now();
    let status = node.wait();
    assert!(status.success(), "node exited with {status:?} on SIGTERM");
    // Not a timing assertion: a node that had to abort open requests says so on stderr.
    eprintln!("node stopped {:?} after SIGTERM", started.elapsed());

    let _node = start(&s);
    let mut c = admin(&s).await;
    assert_eq!(count(&mut c).await, 1200);
}

#[tokio::test]
async fn kill_9_during_writes_loses_nothing_acknowledged() {
    let s = setup();
    let mut node = start(&s);
    let c = admin(&s).await;

    // Four writers create records concurrently while the process is killed underneath them;
    // every acknowledged id is remembered.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let mut c = c.clone();
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for k in 0.. {
                let r = c
                    .create_record(pb::CreateRecordRequest {
                        record: Some(sample::record(fra(), w * 1_000_000 + k)),
                    })
                    .await;
                match r {
                    Ok(resp) => {
                        let id = resp.into_inner().record.unwrap().id;
                        acked.lock().unwrap().push((id, w * 1_000_000 + k));
                    }
                    Err(_) => break,
                }
            }
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "writers made no progress"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    node.kill_9();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 200);
    drop(c);

    let _node = start(&s);
    let mut c = admin(&s).await;
    let present = common::all_record_ids(&mut c).await;
    for (id, _) in &acked {
        assert!(present.contains(id), "acknowledged record {id} lost");
    }
    assert_eq!(count(&mut c).await, present.len() as u64);
    // Indexes came back with the records.
    let found = c
        .search_by_serial(pb::SearchBySerialRequest {
            serial_number: sample::serial(fra(), acked[acked.len() - 1].1),
            r#match: pb::SerialMatch::Exact as i32,
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.records.len(), 1);
}

/// One plain HTTP/1.1 GET on the metrics listener: the status line and the body.
fn http_get(addr: &str, path: &str) -> std::io::Result<(String, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    Ok((
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_json_logs_serves_metrics_on_its_own_listener() {
    let s = setup();
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut text = std::fs::read_to_string(&s.config).unwrap();
    text.push_str(&format!("[metrics]\nlisten = \"{metrics}\"\n"));
    std::fs::write(&s.config, text).unwrap();
    let log = s.root.join("node.log");
    let mut node = NodeProcess(
        Command::new(BIN)
            .args(["run", "--log-format", "json", "--config"])
            .arg(&s.config)
            .env("TRACENET_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let mut c = admin(&s).await;
    assert_eq!(count(&mut c).await, 0);
    drop(c);

    let (status, body) = http_get(&metrics, "/readyz").unwrap();
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body, "ready\n");
    let (_, body) = http_get(&metrics, "/metrics").unwrap();
    // The admin client's readiness probe calls GetNodeInfo too: at least the one made here.
    let line = r#"tracenet_grpc_calls_total{api="local",code="OK",method="tracenet.v1.NodeApi/GetNodeInfo"} "#;
    assert!(body.contains(line), "{body}");
    assert!(body.contains("tracenet_audit_entries "), "{body}");

    let term = Command::new("kill")
        .args(["-TERM", &node.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(node.wait().success());
    let logged = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = logged
        .lines()
        .map(|l| serde_json::from_str(l).expect("every log line is a JSON object"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|v| v["fields"]["message"] == "metrics endpoint serving"),
        "{logged}"
    );
}
