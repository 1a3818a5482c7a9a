//! The `tracenet-node` binary: a production node's commands (`run`, `import`, `audit`,
//! `directory`, from `tracenet_node::cli`) plus `demo`, the embedded demo federation.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracenet_devnet::demo::{self, DemoOptions};
use tracenet_node::cli;
use tracenet_node::shutdown::cancel_on_signal;

/// tracenet node: a national or hub node of the tracenet federation.
#[derive(Debug, Parser)]
#[command(name = "tracenet-node", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest subcommand's arguments does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Node(cli::Command),
    /// Start a demo federation on this machine: three national nodes and three directory
    /// voters (synthetic data).
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Run the scripted scenario, print a summary and exit (non-zero on failure).
    #[arg(long)]
    scenario: bool,
    /// Synthetic records to load into each node.
    #[arg(long, default_value_t = 200)]
    records: u64,
    /// Keep certificates and data in this folder instead of a temporary one.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// First port of the web consoles (one per national node, on 127.0.0.1); 0 picks free
    /// ports.
    #[arg(long, default_value_t = 8080)]
    gateway_port: u16,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Node(command) => {
            let format = command.log_format();
            cli::run_main(command.default_log_level(), format, || {
                cli::dispatch(command)
            })
        }
        Command::Demo(args) => cli::run_main(
            "warn",
            cli::LogFormat::resolve(None, std::env::var("TRACENET_LOG_FORMAT").ok().as_deref()),
            || run_demo(args),
        ),
    }
}

async fn run_demo(args: DemoArgs) -> Result<(), String> {
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let summary = demo::run(
        DemoOptions {
            scenario: args.scenario,
            records_per_node: args.records,
            dir: args.dir,
            gateway_port: args.gateway_port,
        },
        shutdown,
    )
    .await
    .map_err(|e| e.to_string())?;
    print!("{summary}");
    Ok(())
}
