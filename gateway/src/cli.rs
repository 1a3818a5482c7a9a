//! The `tracenet-gateway` command line: serve the console and API, or manage users and tokens
//! offline (the first administrator is created with `user add` before the gateway ever starts).
//! The binary's `main` only calls [`main`].

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::auth::{Role, password};
use crate::store::{GatewayStore, User};
use crate::{GatewayConfig, app};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// The gateway's command line.
#[derive(Debug, Parser)]
#[command(
    name = "tracenet-gateway",
    version,
    about = "The tracenet web console and JSON API"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the console and API until SIGINT/SIGTERM.
    Run {
        /// The gateway configuration (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Manage console users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user. The password is read from standard input (first line) unless
    /// `--password-file` is given; it is never taken from the command line.
    Add {
        /// The gateway configuration (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Login name.
        #[arg(long)]
        username: String,
        /// A role: officer, tracing_officer, analyst or administrator (repeatable).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// A file holding the password.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// List users.
    List {
        /// The gateway configuration (TOML).
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an API token and print it (shown once; only its hash is stored).
    Add {
        /// The gateway configuration (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Which system uses it.
        #[arg(long)]
        name: String,
        /// A role (repeatable).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
}

fn roles(names: &[String]) -> Result<Vec<Role>, String> {
    names
        .iter()
        .map(|n| {
            Role::parse(n).ok_or_else(|| {
                format!("unknown role '{n}' (officer, tracing_officer, analyst, administrator)")
            })
        })
        .collect()
}

fn open_store(config: &std::path::Path) -> Result<(GatewayConfig, GatewayStore), String> {
    let cfg = GatewayConfig::load(config).map_err(|e| e.to_string())?;
    let store = GatewayStore::open(&cfg.data_dir).map_err(|e| {
        format!("{e} (is the gateway running? stop it before managing users offline)")
    })?;
    Ok((cfg, store))
}

async fn main_inner(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Run { config } => {
            let cfg = GatewayConfig::load(&config).map_err(|e| e.to_string())?;
            let listen = cfg.listen;
            let app = crate::build(cfg, app::system_clock()).map_err(|e| e.to_string())?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            let shutdown = CancellationToken::new();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                wait_for_signal().await;
                stop.cancel();
            });
            crate::run(app, listener, shutdown)
                .await
                .map_err(|e| e.to_string())
        }
        Command::User {
            command:
                UserCommand::Add {
                    config,
                    username,
                    roles: names,
                    password_file,
                },
        } => {
            let roles = roles(&names)?;
            if !crate::web::valid_username(&username) {
                return Err("user names use letters, digits, '.', '-' and '_' (1-64)".into());
            }
            let pw = match password_file {
                Some(p) => std::fs::read_to_string(&p)
                    .map_err(|e| format!("cannot read {}: {e}", p.display()))?,
                None => {
                    let mut s = String::new();
                    std::io::stdin()
                        .read_to_string(&mut s)
                        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
                    s
                }
            };
            let pw = pw.lines().next().unwrap_or("").to_owned();
            let hash = password::hash(&pw).map_err(|e| e.to_string())?;
            let (_, store) = open_store(&config)?;
            let now = (app::system_clock())();
            store
                .add_user(&User {
                    username: username.clone(),
                    roles,
                    password_hash: hash,
                    language: None,
                    disabled: false,
                    created_at: now,
                })
                .await
                .map_err(|e| e.to_string())?;
            store
                .log_access(now, "cli", "cli", "add user", &username)
                .await
                .map_err(|e| e.to_string())?;
            println!("user '{username}' added");
            Ok(())
        }
        Command::User {
            command: UserCommand::List { config },
        } => {
            let (_, store) = open_store(&config)?;
            for u in store.users().map_err(|e| e.to_string())? {
                let roles: Vec<&str> = u.roles.iter().map(|r| r.as_str()).collect();
                println!(
                    "{}\t{}\t{}",
                    u.username,
                    roles.join(","),
                    if u.disabled { "disabled" } else { "active" }
                );
            }
            Ok(())
        }
        Command::Token {
            command:
                TokenCommand::Add {
                    config,
                    name,
                    roles: names,
                },
        } => {
            let roles = roles(&names)?;
            // The gateway's own token creation: only the hash is stored, and it is logged.
            let cfg = GatewayConfig::load(&config).map_err(|e| e.to_string())?;
            let app = crate::build(cfg, app::system_clock()).map_err(|e| e.to_string())?;
            let secret = crate::web::create_token(&app, "cli", &name, roles)
                .await
                .map_err(|e| e.to_string())?;
            println!("{secret}");
            Ok(())
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Parses the arguments, sets up logging, runs the command and turns its outcome into an exit
/// code with one readable error line.
pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRACENET_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main_inner(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
