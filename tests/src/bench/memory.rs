//! Memory and start-up of a real node process: the `tracenet-node` binary (built next to this
//! one) is started on fresh dev certificates, loaded with synthetic records through its local
//! API, and its resident memory read from /proc while idle and while serving serial searches;
//! then it is stopped with SIGTERM and started again on the same data, timing until its health
//! check answers SERVING.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tracenet_node::client::connect_local;
use tracenet_node::config::ClientCertFiles;
use tracenet_node::country::CountryCode;
use tracenet_node::ids::NodeId;
use tracenet_node::sample;
use tracenet_node::tls::TlsMaterial;
use tracenet_proto::v1 as pb;

use super::report::Report;
use crate::Error;

/// A node process, killed if dropped while running.
pub(super) struct Proc(pub(super) Child);

impl Proc {
    /// Stops the node as an operator would (SIGTERM: it flushes and exits) and waits for it.
    pub(super) fn terminate(mut self) -> Result<(), Error> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()?;
        self.0.wait()?;
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(super) fn node_binary() -> Result<PathBuf, Error> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or("no executable folder")?;
    // Test binaries live one level deeper (deps/).
    for d in [dir, dir.parent().unwrap_or(dir)] {
        let p = d.join("tracenet-node");
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(
        "tracenet-node binary not found next to tracenet-bench: build it in the same profile \
         (cargo build --release --bin tracenet-node)"
            .into(),
    )
}

pub(super) fn rss_mib(pid: u32) -> Result<f64, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .ok_or("no VmRSS")?;
    Ok(kb / 1024.0)
}

pub(super) fn free_port() -> Result<u16, Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub(super) fn start(bin: &Path, config: &Path) -> Result<Proc, Error> {
    Ok(Proc(
        Command::new(bin)
            .args(["run", "--config"])
            .arg(config)
            .env("TRACENET_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    ))
}

pub(super) async fn wait_serving(local: &str, tls: &TlsMaterial, id: &NodeId) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(mut c) = connect_local(local, tls, id).await
            && c.get_node_info(pb::GetNodeInfoRequest {}).await.is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("node did not start within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A single-node federation's files under `root`: certificates, a node configuration with the
/// node's default settings, and the admin's client TLS material.
pub(super) struct Setup {
    pub(super) config: PathBuf,
    pub(super) local: String,
    pub(super) id: NodeId,
    pub(super) tls: TlsMaterial,
}

/// Writes the files of [`Setup`] under `root`.
pub(super) fn setup(root: &Path) -> Result<Setup, Error> {
    tracenet_certs::write_dev_federation(&root.join("certs"), &["FRA-POL".to_string()])?;
    let local = format!("127.0.0.1:{}", free_port()?);
    let config = root.join("node.toml");
    std::fs::write(
        &config,
        format!(
            "node_id = \"FRA-POL\"\ncountry = \"FRA\"\ndata_dir = \"data\"\n\
             [peer_api]\nlisten = \"127.0.0.1:{}\"\n[local_api]\nlisten = \"{local}\"\n\
             [tls]\nca = \"certs/ca.pem\"\ncert = \"certs/FRA-POL/node.pem\"\nkey = \"certs/FRA-POL/node.key\"\n\
             [local_certificates]\nadmin_fingerprints = [\"{admin}\"]\n",
            free_port()?,
            admin =
                tracenet_node::tls::fingerprint_of_pem_file(&root.join("certs/FRA-POL/admin.pem"))?,
        ),
    )?;
    let id = NodeId::parse("FRA-POL")?;
    let tls = TlsMaterial::load_client(
        &root.join("certs/ca.pem"),
        &ClientCertFiles {
            cert: root.join("certs/FRA-POL/admin.pem"),
            key: root.join("certs/FRA-POL/admin.key"),
        },
    )?;
    Ok(Setup {
        config,
        local,
        id,
        tls,
    })
}

/// Runs the scenario with `records` records and `load_secs` seconds of query load.
pub async fn run(records: u64, load_secs: u64, progress: &dyn Fn(&str)) -> Result<Report, Error> {
    tracenet_node::tls::install_crypto_provider();
    let bin = node_binary()?;
    let dir = tempfile::tempdir()?;
    let Setup {
        config,
        local,
        id,
        tls,
    } = setup(dir.path())?;
    let country = CountryCode::parse("FRA")?;

    let node = start(&bin, &config)?;
    wait_serving(&local, &tls, &id).await?;
    let mut c = connect_local(&local, &tls, &id).await?;
    let mut n = 0;
    while n < records {
        let end = (n + 5000).min(records);
        c.import_batch(pb::ImportBatchRequest {
            records: (n..end).map(|k| sample::record(country, k)).collect(),
            source_lines: Vec::new(),
            ..Default::default()
        })
        .await?;
        n = end;
        if n.is_multiple_of(100_000) {
            progress(&format!("loaded {n}/{records} records"));
        }
    }
    let pid = node.0.id();
    let loaded_rss = rss_mib(pid)?;

    // Restart on the same data: start-up time and idle memory of a node that holds the records.
    node.terminate()?;
    let t0 = Instant::now();
    let node = start(&bin, &config)?;
    wait_serving(&local, &tls, &id).await?;
    let startup = t0.elapsed();
    let pid = node.0.id();
    let mut c = connect_local(&local, &tls, &id).await?;
    let idle = rss_mib(pid)?;

    let until = Instant::now() + Duration::from_secs(load_secs);
    let mut peak = idle;
    let mut searches = 0u64;
    let mut tasks = Vec::new();
    for w in 0..8u64 {
        let mut c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            let mut done = 0u64;
            while Instant::now() < until {
                let k = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7) % records.max(1);
                c.search_by_serial(pb::SearchBySerialRequest {
                    serial_number: sample::serial(country, k),
                    r#match: pb::SerialMatch::Normalised as i32,
                    limit: 10,
                    ..Default::default()
                })
                .await?;
                i += 8;
                done += 1;
            }
            Ok::<u64, Error>(done)
        }));
    }
    while Instant::now() < until {
        peak = peak.max(rss_mib(pid)?);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for t in tasks {
        searches += t.await.map_err(|e| e.to_string())??;
    }
    let info = c
        .get_node_info(pb::GetNodeInfoRequest {})
        .await?
        .into_inner();

    let mut r = Report::new("memory and start-up of a node process");
    r.param("records held", info.record_count);
    r.param(
        "query load",
        format!("8 concurrent normalised serial searches for {load_secs} s ({searches} searches)"),
    );
    r.figure("resident memory after loading", loaded_rss, "MiB");
    r.figure(
        "start-up time (spawn -> serving)",
        startup.as_secs_f64() * 1000.0,
        "ms",
    );
    r.figure("resident memory idle after restart", idle, "MiB");
    r.figure("resident memory under query load (peak)", peak, "MiB");
    drop(node);
    Ok(r)
}
