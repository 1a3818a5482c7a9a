//! The `tracenet-node` command line of a production node: `run`, `import`, `audit`,
//! `directory` and `stats`. Parses arguments, sets up logging, and calls the library; every error ends as
//! one readable line and a non-zero exit. The binary itself lives in the `tracenet-devnet`
//! package, which adds the `demo` command on top of these (so this library never links the dev
//! PKI or the gateway).

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub mod directory;
pub mod stats;

use clap::Subcommand;
use tokio_util::sync::CancellationToken;
use tracenet_proto::v1 as pb;

use crate::audit::EventKind;
use crate::client::connect_local;
use crate::config::NodeConfig;
use crate::import;
use crate::server::{Listeners, Node};
use crate::shutdown::cancel_on_signal;
use crate::tls::{TlsMaterial, install_crypto_provider};

/// The commands of a production node.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node from its configuration file until SIGINT/SIGTERM.
    Run {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// Log lines as `text` (default) or `json` (one object per line, for log shippers);
        /// `TRACENET_LOG_FORMAT` sets it when this is not given.
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
    },
    /// Import seizure records from a .csv or .jsonl file into a running node, through its
    /// local API with the administrator certificate named in the config's [admin] section.
    /// The whole file is checked first; if any row is bad, every problem is listed with its
    /// line and nothing is written.
    Import {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// The file to import.
        path: PathBuf,
        /// Records per atomic batch.
        #[arg(long, default_value_t = 1000)]
        batch_size: usize,
    },
    /// Rewrite a stopped node's database into a fresh one, giving back the room deleted data
    /// left (after a store conversion or retention purges). Every tree is copied and compared
    /// before the new database is swapped in; an interruption loses nothing (the next open
    /// finishes or drops it). Needs free disk space for one more copy of the live data.
    Compact {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
    },
    /// Inspect the audit log of a stopped node (offline, from its data directory).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Read or write the replicated directory through a running node's local API.
    Directory {
        #[command(subcommand)]
        command: directory::DirectoryCommand,
    },
    /// Statistical tables (UNODC questionnaire layout, SDG 16.4.2) of a running node for one
    /// year or quarter, through its local API: its own, or a peer's under that peer's
    /// statistics rule (--peer). Text, CSV, JSON or XLSX.
    Stats(stats::StatsArgs),
}

/// `tracenet-node audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain and every signed checkpoint; name the first bad entry. The log must
    /// also reach the audit checkpoint this node last published in the directory (read from the
    /// replica in its data directory, or given with --published), so a truncated tail is caught.
    Verify {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// The published checkpoint to check against, as SEQ:CHAIN_HASH_HEX (e.g. read from
        /// another member's `directory show`); default: the local replica's copy.
        #[arg(long, value_parser = parse_published)]
        published: Option<crate::audit::Published>,
    },
    /// List entries, oldest first.
    Show {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// Only entries of this kind: request_received, disclosure, denial, refusal, delivery,
        /// request_sent, trace_request_sent, trace_response, retraction, retraction_applied,
        /// onward_transmission.
        #[arg(long, value_parser = audit_kinds())]
        kind: Option<String>,
        /// Only entries concerning this peer.
        #[arg(long, default_value = "")]
        peer: String,
        /// Only entries after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// At most this many entries.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

/// `SEQ:HEX` (the chain value as 64 hex digits).
fn parse_published(s: &str) -> Result<crate::audit::Published, String> {
    let (seq, hash) = s.split_once(':').ok_or("expected SEQ:CHAIN_HASH_HEX")?;
    let seq = seq
        .parse::<u64>()
        .map_err(|_| format!("{seq} is not a sequence number"))?;
    let chain_hash = tracenet_ids::hex::decode(hash)
        .filter(|h| h.len() == 32)
        .ok_or("the chain hash must be 64 hex digits")?;
    Ok(crate::audit::Published { seq, chain_hash })
}

/// The values `audit show --kind` accepts: every audit event kind, from the one vocabulary.
fn audit_kinds() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(EventKind::ALL.map(EventKind::as_str))
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// `given` if set, else `TRACENET_LOG_FORMAT` (`text` or `json`), else text.
    pub fn resolve(given: Option<LogFormat>, env: Option<&str>) -> Result<LogFormat, String> {
        match (given, env) {
            (Some(f), _) => Ok(f),
            (None, None) => Ok(LogFormat::Text),
            (None, Some(v)) => match v.trim().to_ascii_lowercase().as_str() {
                "" | "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                _ => Err(format!(
                    "TRACENET_LOG_FORMAT must be text or json, not {v:?}"
                )),
            },
        }
    }
}

impl Command {
    /// The log format: `--log-format` of `run`, else `TRACENET_LOG_FORMAT`, else text.
    pub fn log_format(&self) -> Result<LogFormat, String> {
        let given = match self {
            Command::Run { log_format, .. } => *log_format,
            _ => None,
        };
        LogFormat::resolve(given, std::env::var("TRACENET_LOG_FORMAT").ok().as_deref())
    }

    /// The log level when `TRACENET_LOG` is not set: a daemon logs at info, a one-shot
    /// administrator command only warns.
    pub fn default_log_level(&self) -> &'static str {
        match self {
            Command::Import { .. }
            | Command::Compact { .. }
            | Command::Audit { .. }
            | Command::Directory { .. }
            | Command::Stats(_) => "warn",
            Command::Run { .. } => "info",
        }
    }
}

/// The log filter used when `TRACENET_LOG` is not set: `default_level` for everything but
/// openraft, whose warnings are routine churn (messages ignored after a vote or membership
/// change, replication backing off while a peer restarts) and are shown from ERROR up.
pub fn default_log_filter(default_level: &str) -> String {
    format!("{default_level},openraft=error")
}

/// Sets up logging (`TRACENET_LOG`, else [`default_log_filter`]) and the crypto provider, runs `work`
/// on a multi-threaded runtime, and turns its outcome into an exit code with one readable error
/// line. The binary's `main` is only this.
pub fn run_main<F>(
    default_level: &str,
    format: Result<LogFormat, String>,
    work: impl FnOnce() -> F,
) -> ExitCode
where
    F: Future<Output = Result<(), String>>,
{
    let format = match format {
        Ok(f) => f,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRACENET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log_filter(default_level)));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command of a production node.
pub async fn dispatch(command: Command) -> Result<(), String> {
    match command {
        Command::Run { config, .. } => {
            // Everything that can fail on a bad file happens before a port is bound.
            let cfg = NodeConfig::load(&config).map_err(|e| e.to_string())?;
            let node = Node::prepare(cfg.clone()).map_err(|e| e.to_string())?;
            let listeners = Listeners::bind(&cfg).await.map_err(|e| e.to_string())?;
            let shutdown = CancellationToken::new();
            cancel_on_signal(shutdown.clone());
            node.serve(listeners, shutdown)
                .await
                .map_err(|e| e.to_string())
        }
        Command::Import {
            config,
            path,
            batch_size,
        } => import_file(&config, &path, batch_size.clamp(1, crate::api::MAX_BATCH)).await,
        Command::Compact { config } => compact(&config),
        Command::Audit { command } => audit(command),
        Command::Directory { command } => directory::run(command).await,
        Command::Stats(args) => stats::run(args).await,
    }
}

/// Progress on stderr: rewritten in place on a terminal, one line per step otherwise.
struct Progress {
    tty: bool,
}

impl Progress {
    fn show(&self, text: &str) {
        let mut err = std::io::stderr();
        if self.tty {
            let _ = write!(err, "\r{text}\x1b[K");
        } else {
            let _ = writeln!(err, "{text}");
        }
        let _ = err.flush();
    }
    fn done(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

/// Checks a file, then imports it in atomic batches through the local API of the node in
/// `config`, showing progress on stderr. Errors come back as one readable message.
pub async fn import_file(config: &Path, path: &Path, batch_size: usize) -> Result<(), String> {
    let cfg = NodeConfig::load(config).map_err(|e| e.to_string())?;
    let admin = cfg.admin.as_ref().ok_or_else(|| {
        "the config has no [admin] section: import needs the administrator certificate".to_owned()
    })?;
    let tls = TlsMaterial::load_client(&cfg.tls.ca, admin).map_err(|e| e.to_string())?;
    let progress = Progress {
        tty: std::io::stderr().is_terminal(),
    };

    progress.show(&format!("checking {} ...", path.display()));
    let check = import::check_file(path, |n| progress.show(&format!("checked {n} rows")))
        .map_err(|e| e.to_string())?;
    progress.done();
    if !check.errors.is_empty() {
        for e in check.errors.iter().take(200) {
            eprintln!(
                "line {}: {}: {}",
                e.line,
                if e.field.is_empty() { "row" } else { &e.field },
                e.reason
            );
        }
        if check.errors.len() > 200 {
            eprintln!("... and {} more problems", check.errors.len() - 200);
        }
        return Err(format!(
            "import refused: {} problem(s) in {} rows; nothing was written",
            check.errors.len(),
            check.rows
        ));
    }

    let mut client = connect_local(&cfg.local_api.listen.to_string(), &tls, &cfg.node_id)
        .await
        .map_err(|e| e.to_string())?;
    let total = check.rows;
    let (mut sent, mut created, mut updated) = (0u64, 0u64, 0u64);
    let mut rows = import::open(path).map_err(|e| e.to_string())?.peekable();
    while rows.peek().is_some() {
        let mut records = Vec::with_capacity(batch_size);
        let mut lines = Vec::with_capacity(batch_size);
        for row in rows.by_ref().take(batch_size) {
            // The file was checked above; a row failing now means it changed meanwhile.
            let row = row.map_err(|e| {
                format!(
                    "line {}: {} (file changed during import?)",
                    e.line, e.reason
                )
            })?;
            lines.push(row.line);
            records.push(row.record);
        }
        let n = records.len() as u64;
        let resp = client
            .import_batch(pb::ImportBatchRequest {
                records,
                source_lines: lines,
                ..Default::default()
            })
            .await
            .map_err(|s| {
                format!(
                    "batch after row {sent} refused: {}; {sent} rows were written in whole batches, re-running the import is safe",
                    s.message()
                )
            })?
            .into_inner();
        sent += n;
        created += resp.created;
        updated += resp.updated;
        progress.show(&format!(
            "imported {sent}/{total} rows ({}%)",
            (sent * 100).checked_div(total).unwrap_or(100)
        ));
    }
    progress.done();
    println!(
        "imported {sent} rows from {}: {created} new, {updated} updated",
        path.display()
    );
    Ok(())
}

/// `tracenet-node compact`: compacts the node's database with progress on stderr and a summary.
fn compact(config: &Path) -> Result<(), String> {
    let cfg = NodeConfig::load(config).map_err(|e| e.to_string())?;
    let dir = cfg.data_dir.join("records");
    if !dir.exists() && !crate::store::compact::before_path(&dir).exists() {
        return Err(format!("no node data in {}", dir.display()));
    }
    let progress = Progress {
        tty: std::io::stderr().is_terminal(),
    };
    progress.show(&format!("compacting {} ...", dir.display()));
    let started = std::time::Instant::now();
    let mut shown = 0u64;
    // The node's own page cache size, for each of the two databases.
    let cache = Some(cfg.store_cache_mib.saturating_mul(1024 * 1024));
    let done = crate::store::compact::compact(&dir, cache, |keys| {
        // A line per million keys when not on a terminal.
        if progress.tty || keys >= shown + 1_000_000 {
            shown = keys;
            progress.show(&format!("copied {keys} keys"));
        }
    })
    .map_err(|e| match e {
        crate::store::compact::CompactError::Open(
            e @ crate::store::open::OpenError::Locked { .. },
        ) => format!("{e} (compact rewrites a stopped node's data)"),
        e => e.to_string(),
    })?;
    progress.done();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "compacted {}: {} keys in {} trees, {:.1} MiB -> {:.1} MiB, in {:.1} s",
        dir.display(),
        done.keys,
        done.trees,
        mib(done.bytes_before),
        mib(done.bytes_after),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn open_offline(config: &Path) -> Result<(NodeConfig, sled::Db), String> {
    let cfg = NodeConfig::load(config).map_err(|e| e.to_string())?;
    let dir = cfg.data_dir.join("records");
    if !dir.exists() {
        return Err(format!("no node data in {}", dir.display()));
    }
    let db = crate::store::open::open_db(&dir, None).map_err(|e| match e {
        crate::store::open::OpenError::Locked { .. } => {
            format!("{e} (audit commands read a stopped node's data)")
        }
        e => format!("cannot open {}: {e}", dir.display()),
    })?;
    Ok((cfg, db))
}

/// The audit checkpoint `node` last published, as the directory replica in this database holds it.
fn published_in_replica(
    db: &sled::Db,
    node: &crate::ids::NodeId,
) -> Result<Option<crate::audit::Published>, String> {
    let state = crate::directory::raft_store::read_applied_state(db)
        .map_err(|e| format!("cannot read the directory replica: {e}"))?;
    Ok(state
        .and_then(|s| s.entries.get(node.as_str()).cloned())
        .and_then(|e| e.audit_checkpoint)
        .map(|a| crate::audit::Published {
            seq: a.seq,
            chain_hash: a.chain_hash,
        }))
}

fn audit(command: AuditCommand) -> Result<(), String> {
    match command {
        AuditCommand::Verify { config, published } => {
            let (cfg, db) = open_offline(&config)?;
            let key =
                crate::envelope::SigningKey::load(&cfg.signing_key_path(), cfg.node_id.clone())
                    .map_err(|e| e.to_string())?;
            let (published, from) = match published {
                Some(p) => (Some(p), "given"),
                None => (published_in_replica(&db, &cfg.node_id)?, "in the directory"),
            };
            let outcome = match &published {
                Some(p) => crate::audit::verify_db_published(&db, &key.public_key(), p),
                None => crate::audit::verify(&db, &key.public_key()),
            };
            match outcome {
                Ok(v) => {
                    let against = published.map_or(
                        "no published checkpoint to compare with (a truncated tail would not show)"
                            .to_owned(),
                        |p| format!("reaches the checkpoint {from} at entry {}", p.seq),
                    );
                    println!(
                        "audit log of {} verifies: {} entries, {} signed checkpoints, {} entries after the last checkpoint; {against}",
                        cfg.node_id, v.entries, v.checkpoints, v.unsigned_tail
                    );
                    Ok(())
                }
                Err(f) => Err(format!("audit log of {} does NOT verify: {f}", cfg.node_id)),
            }
        }
        AuditCommand::Show {
            config,
            kind,
            peer,
            after,
            limit,
        } => {
            let (cfg, db) = open_offline(&config)?;
            let key =
                crate::envelope::SigningKey::load(&cfg.signing_key_path(), cfg.node_id.clone())
                    .map_err(|e| e.to_string())?;
            let log = crate::audit::AuditLog::open(&db, std::sync::Arc::new(key))
                .map_err(|e| e.to_string())?;
            for e in log
                .list(kind.as_deref().unwrap_or(""), &peer, after, limit)
                .map_err(|e| e.to_string())?
            {
                let policy = if e.policy_rule.is_empty() {
                    String::new()
                } else {
                    format!(" policy v{} rule {}", e.policy_version, e.policy_rule)
                };
                println!(
                    "{:>6} {} {:<16} {:<10} {} {}{} {} {}",
                    e.seq,
                    e.at,
                    e.kind,
                    e.peer,
                    e.request_id,
                    e.purpose,
                    policy,
                    e.record_refs.join(","),
                    e.detail
                );
            }
            Ok(())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[test]
    fn log_format_comes_from_the_flag_then_the_environment() {
        let cli = Cli::try_parse_from([
            "tracenet-node",
            "run",
            "--config",
            "node.toml",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Run {
                log_format: Some(LogFormat::Json),
                ..
            }
        ));
        assert!(
            Cli::try_parse_from([
                "tracenet-node",
                "run",
                "--config",
                "n",
                "--log-format",
                "xml"
            ])
            .is_err()
        );
        assert_eq!(
            LogFormat::resolve(Some(LogFormat::Text), Some("json")),
            Ok(LogFormat::Text)
        );
        assert_eq!(LogFormat::resolve(None, Some("JSON")), Ok(LogFormat::Json));
        assert_eq!(LogFormat::resolve(None, None), Ok(LogFormat::Text));
        assert!(LogFormat::resolve(None, Some("xml")).is_err());
    }

    fn kind_of(args: &[&str]) -> Result<Option<String>, clap::Error> {
        let mut all = vec!["tracenet-node", "audit", "show", "--config", "node.toml"];
        all.extend_from_slice(args);
        match Cli::try_parse_from(all)?.command {
            Command::Audit {
                command: AuditCommand::Show { kind, .. },
            } => Ok(kind),
            other => Err(clap::Error::raw(
                clap::error::ErrorKind::InvalidSubcommand,
                format!("parsed as {other:?}"),
            )),
        }
    }

    #[test]
    fn audit_show_filters_on_every_kind_and_only_those() {
        assert_eq!(kind_of(&[]).unwrap(), None);
        for k in EventKind::ALL {
            assert_eq!(
                kind_of(&["--kind", k.as_str()]).unwrap().as_deref(),
                Some(k.as_str())
            );
        }
        assert!(kind_of(&["--kind", "disclosures"]).is_err());
    }

    #[test]
    fn audit_show_help_lists_every_kind() {
        let mut cmd = Cli::command();
        let show = cmd
            .find_subcommand_mut("audit")
            .and_then(|a| a.find_subcommand_mut("show"))
            .expect("audit show");
        let help = show.render_long_help().to_string();
        for k in EventKind::ALL {
            assert!(help.contains(k.as_str()), "{k} missing from:\n{help}");
        }
    }
}
