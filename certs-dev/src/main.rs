//! `tracenet-certs`: creates a development federation PKI on disk. Never for production.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Development PKI for tracenet (never for production).
#[derive(Debug, Parser)]
#[command(name = "tracenet-certs", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create (or extend) a dev federation: CA, per-node node/gateway/admin certificates, and
    /// negative-test certificates.
    Init {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// A node id such as FRA-POL; repeat for each node.
        #[arg(long = "node", required = true)]
        nodes: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Init { out, nodes } => match tracenet_certs::write_dev_federation(&out, &nodes) {
            Ok(fed) => {
                println!(
                    "development PKI in {} (never use in production)",
                    fed.dir.display()
                );
                println!("  ca.pem, ca.key");
                for n in &fed.nodes {
                    println!("  {n}/node.pem|key  {n}/gateway.pem|key  {n}/admin.pem|key");
                }
                println!("  negative/rogue-ca.pem, rogue-node.pem|key, expired-node.pem|key");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
