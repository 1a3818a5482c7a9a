//! Against a central database: the records of 8 synthetic national nodes loaded into one
//! PostgreSQL server (a table indexed on the normalised serial), queried by a prepared point
//! query over TCP on loopback, against a federated hit/no-hit lookup across 8 in-process nodes
//! over real mTLS holding the same records split by country. The central figures are the
//! baseline, so each ratio says how many times slower the federation is.
//!
//! The scenario starts its own PostgreSQL server (Debian's binaries under
//! `/usr/lib/postgresql/*/bin`) in a temporary directory and stops it at the end, also on error.
//! Without those binaries it reports [`Outcome::Skipped`] instead of failing, so nothing else
//! depends on PostgreSQL being installed.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use prost::Message;
use tracenet_node::country::CountryCode;
use tracenet_node::{sample, serial};
use tracenet_proto::v1 as pb;

use super::report::{Report, Samples};
use crate::{Error, NodeSpec, TestFederation};

/// The countries whose records are loaded (one node each); the requesting node comes last and
/// holds nothing, so every answer it gets crosses the network as a central query would.
const COUNTRIES: &[&str] = &["FRA", "DEU", "ITA", "ESP", "NLD", "BEL", "AUT", "POL"];
/// The requesting node's country (holds no records).
const REQUESTER: &str = "LUX";
/// Database role and name created by `initdb` for the scenario.
const PG_USER: &str = "bench";

/// Each data node's sharing policy: the requester may trace by serial number (without a rule a
/// node discloses nothing and every lookup would be a no-hit).
fn policy(country: &str) -> String {
    format!(
        r#"
owner_country = "{country}"
version = 1
legal_basis = "Synthetic benchmark basis"

[[rules]]
id = "trace-serials"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = {{ countries = ["{REQUESTER}"] }}
fields = [{{ field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" }}]
"#
    )
}

/// Parameters of the central scenario.
#[derive(Debug, Clone, Copy)]
pub struct CentralParams {
    /// Records per country (8 countries).
    pub records: u64,
    /// Records per import batch (both into the nodes and into PostgreSQL).
    pub batch: u64,
    /// Sequential queries timed per kind (hit, no hit) on each side.
    pub queries: usize,
}

/// What a run produced.
#[derive(Debug)]
pub enum Outcome {
    /// Both sides measured.
    Ran(Report),
    /// PostgreSQL could not be started here; the message says why (not an error: the scenario
    /// is optional on machines without PostgreSQL).
    Skipped(String),
}

/// A deterministic pseudo-random sequence (no extra dependency, same in every run).
fn pick(i: usize, n: u64) -> u64 {
    (i as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17)
        % n.max(1)
}

/// Debian installs each major version under `/usr/lib/postgresql/<major>/bin`; the newest one
/// with both `initdb` and `pg_ctl` wins.
fn find_pg_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b)
}

/// Uid and gid of a user by name, via `id` (no libc binding needed for one look-up).
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").arg(flag).arg(name).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

fn current_uid() -> Option<u32> {
    let out = Command::new("id").arg("-u").output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// A PostgreSQL server in a temporary directory. Dropping it stops the server (fast shutdown)
/// and then removes the directory, so an error anywhere in the scenario cleans up too.
struct PgServer {
    bin: PathBuf,
    /// Set when running as root: PostgreSQL refuses to run as root, so its commands run as the
    /// `postgres` system user.
    run_as: Option<&'static str>,
    data: PathBuf,
    port: u16,
    started: bool,
    // Declared last so it is removed after `drop` has stopped the server.
    dir: tempfile::TempDir,
}

impl PgServer {
    /// `Ok(Err(reason))` when this machine cannot run the server (skip), `Err` when it should
    /// have and failed.
    fn start() -> Result<Result<PgServer, String>, Error> {
        let Some(bin) = find_pg_bin() else {
            return Ok(Err("PostgreSQL server binaries not found under \
                 /usr/lib/postgresql/*/bin (apt-get install postgresql)"
                .into()));
        };
        let dir = tempfile::tempdir()?;
        let run_as = if current_uid() == Some(0) {
            let Some((uid, gid)) = user_ids("postgres") else {
                return Ok(Err(
                    "running as root and there is no `postgres` user to run the server as".into(),
                ));
            };
            if !Path::new("/usr/sbin/runuser").exists() && !Path::new("/sbin/runuser").exists() {
                return Ok(Err("running as root and `runuser` is not available".into()));
            }
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
            Some("postgres")
        } else {
            None
        };
        // Ask the kernel for a free port; the tiny window before the server binds it is
        // acceptable for a benchmark on loopback.
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let mut pg = PgServer {
            bin,
            run_as,
            data: dir.path().join("data"),
            port,
            started: false,
            dir,
        };
        let data = pg.data.to_string_lossy().into_owned();
        pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                PG_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
            ],
        )?;
        let sock = pg.dir.path().to_string_lossy().into_owned();
        let log = pg
            .dir
            .path()
            .join("server.log")
            .to_string_lossy()
            .into_owned();
        // Loopback TCP only, the socket in our own directory (not /var/run/postgresql, which
        // may belong to a system cluster).
        let opts = format!("-p {port} -k {sock} -c listen_addresses=127.0.0.1");
        pg.started = true;
        pg.run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-o", &opts, "-w", "start"],
        )?;
        Ok(Ok(pg))
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<(), Error> {
        let out = self
            .command(tool)
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()?;
        if out.status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        Err(format!(
            "{tool} failed ({}): {}{}\n{log}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into())
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.started {
            let data = self.data.to_string_lossy().into_owned();
            // Nothing to do with a failure here but leave the directory to TempDir's removal.
            let _ = self
                .command("pg_ctl")
                .args(["-D", &data, "-m", "fast", "-w", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn pg_err(e: tokio_postgres::Error) -> Error {
    format!("postgres: {e}").into()
}

fn normalised(serial_number: &str) -> Result<String, Error> {
    serial::normalise(serial_number)
        .map(|n| n.as_str().to_owned())
        .ok_or_else(|| format!("serial {serial_number:?} does not normalise").into())
}

/// Runs the scenario.
pub async fn run(p: CentralParams, progress: &dyn Fn(&str)) -> Result<Outcome, Error> {
    if p.records == 0 || p.queries == 0 || p.batch == 0 {
        return Err("records, batch and queries must be positive".into());
    }
    // Blocking process spawns (initdb takes a second or two) kept off the async workers.
    let pg = match tokio::task::spawn_blocking(PgServer::start)
        .await
        .map_err(|e| format!("starting PostgreSQL: {e}"))??
    {
        Ok(pg) => pg,
        Err(why) => return Ok(Outcome::Skipped(why)),
    };
    let result = measure(&pg, p, progress).await;
    // Stop the server and remove its directory off the async workers, whatever the result.
    let _ = tokio::task::spawn_blocking(move || drop(pg)).await;
    result.map(Outcome::Ran)
}

async fn measure(
    pg: &PgServer,
    p: CentralParams,
    progress: &dyn Fn(&str),
) -> Result<Report, Error> {
    let (db, conn) = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port={} user={PG_USER} dbname=postgres",
            pg.port
        ),
        tokio_postgres::NoTls,
    )
    .await
    .map_err(pg_err)?;
    let conn = tokio::spawn(conn);
    db.batch_execute(
        "CREATE TABLE seizure (
             country text NOT NULL,
             national_ref text NOT NULL,
             serial_norm text NOT NULL,
             serial_number text NOT NULL,
             record bytea NOT NULL,
             PRIMARY KEY (country, national_ref)
         );
         CREATE INDEX seizure_serial_norm ON seizure (serial_norm);",
    )
    .await
    .map_err(pg_err)?;
    // One statement per batch, rows passed as arrays, so loading costs few round trips.
    let insert = db
        .prepare(
            "INSERT INTO seizure
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[])",
        )
        .await
        .map_err(pg_err)?;

    let mut specs: Vec<NodeSpec> = COUNTRIES
        .iter()
        .map(|c| NodeSpec::new(&format!("{c}-POL")).with_policy(policy(c)))
        .collect();
    specs.push(NodeSpec::new(&format!("{REQUESTER}-POL")));
    let t = TestFederation::start_specs(&specs).await?;
    let requester = COUNTRIES.len();
    let mut countries: Vec<CountryCode> = Vec::with_capacity(COUNTRIES.len());
    for i in 0..COUNTRIES.len() {
        let country = t.node(i).config.country;
        countries.push(country);
        let mut c = t.admin(i).await?;
        let mut n = 0u64;
        while n < p.records {
            let end = (n + p.batch).min(p.records);
            let records: Vec<pb::SeizureRecord> =
                (n..end).map(|k| sample::record(country, k)).collect();
            let (mut cc, mut refs, mut norms, mut serials, mut bytes) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for r in &records {
                for f in &r.firearms {
                    cc.push(country.as_str().to_owned());
                    refs.push(r.national_ref.clone());
                    norms.push(normalised(&f.serial_number)?);
                    serials.push(f.serial_number.clone());
                    bytes.push(r.encode_to_vec());
                }
            }
            db.execute(&insert, &[&cc, &refs, &norms, &serials, &bytes])
                .await
                .map_err(pg_err)?;
            c.import_batch(pb::ImportBatchRequest {
                records,
                source_lines: Vec::new(),
                ..Default::default()
            })
            .await?;
            n = end;
        }
        progress(&format!(
            "loaded {} records of {} into its node and PostgreSQL",
            p.records,
            country.as_str()
        ));
    }
    // Fresh statistics so the planner uses the index as it would on a maintained database.
    db.batch_execute("ANALYZE seizure").await.map_err(pg_err)?;
    let point = db
        .prepare("SELECT country, national_ref, record FROM seizure WHERE serial_norm = $1")
        .await
        .map_err(pg_err)?;

    // The same serials on both sides: a hit is a record some country holds, a no-hit a serial
    // no generator produces (sample serials are two letters, a dash and six digits).
    let hit_serial = |i: usize| {
        let country = countries[i % countries.len()];
        sample::serial(country, pick(i, p.records))
    };
    let miss_serial = |i: usize| format!("NOHIT-{i:08}-X");

    let mut central_hit = Samples::with_capacity(p.queries);
    let mut central_miss = Samples::with_capacity(p.queries);
    for i in 0..20 {
        db.query(&point, &[&normalised(&hit_serial(i))?])
            .await
            .map_err(pg_err)?;
    }
    for i in 0..p.queries {
        for (text, s, want_hit) in [
            (hit_serial(i), &mut central_hit, true),
            (miss_serial(i), &mut central_miss, false),
        ] {
            let norm = normalised(&text)?;
            let t0 = Instant::now();
            let rows = db.query(&point, &[&norm]).await.map_err(pg_err)?;
            s.push(t0.elapsed());
            if rows.is_empty() == want_hit {
                return Err(format!("central: {text}: {} row(s)", rows.len()).into());
            }
        }
    }

    let mut c = t.admin(requester).await?;
    let req = |serial_number: String| pb::FederatedLookupRequest {
        inquiry: Some(pb::Inquiry {
            agency_kind: pb::AgencyKind::Police as i32,
            purpose: pb::Purpose::Tracing as i32,
            legal_basis: "Synthetic benchmark basis".into(),
            case_reference: String::new(),
            deadline_ms: 5000,
            via_hub: false,
        }),
        serial_number,
        manufacturer: String::new(),
        ..Default::default()
    };
    for i in 0..20 {
        c.federated_lookup(req(hit_serial(i))).await?;
    }
    let mut fed_hit = Samples::with_capacity(p.queries);
    let mut fed_miss = Samples::with_capacity(p.queries);
    for i in 0..p.queries {
        for (text, s, want_hit) in [
            (hit_serial(i), &mut fed_hit, true),
            (miss_serial(i), &mut fed_miss, false),
        ] {
            let t0 = Instant::now();
            let resp = c.federated_lookup(req(text.clone())).await?.into_inner();
            s.push(t0.elapsed());
            if resp.answers.len() != COUNTRIES.len() {
                return Err(format!(
                    "{} of {} nodes answered: {:?}",
                    resp.answers.len(),
                    COUNTRIES.len(),
                    resp.failed
                )
                .into());
            }
            if resp.answers.iter().any(|a| a.hit) != want_hit {
                return Err(format!("federated: {text}: hit = {}", !want_hit).into());
            }
        }
    }
    t.shutdown().await?;
    drop(db);
    let _ = conn.await;

    let mut r = Report::new("federated lookup across 8 nodes vs one central PostgreSQL");
    r.param("records per country", p.records);
    r.param("countries", COUNTRIES.len());
    r.param("sequential queries per kind", p.queries);
    r.param(
        "central",
        "prepared SELECT on an indexed normalised serial, TCP loopback",
    );
    for (kind, fed, central) in [
        ("hit", &fed_hit, &central_hit),
        ("no hit", &fed_miss, &central_miss),
    ] {
        for (q, label) in [(0.5, "p50"), (0.99, "p99")] {
            r.versus(
                &format!("{kind} {label} (federated vs central)"),
                fed.quantile_us(q),
                central.quantile_us(q),
                "us",
            );
        }
    }
    Ok(r)
}
