//! `tracenet-bench`: runs the benchmark scenarios and prints each as a table (or JSON lines with
//! `--json`). Build in release mode; see BENCHMARKS.md for the commands behind every figure.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracenet_tests::bench::{self, report::Report};

/// tracenet benchmarks: each figure next to a baseline measured in the same run.
#[derive(Debug, Parser)]
#[command(name = "tracenet-bench", about)]
struct Cli {
    /// Print one JSON object per scenario instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Lookup between two nodes vs a bare tonic unary call over the same mTLS.
    Peer {
        /// Sequential calls timed.
        #[arg(long, default_value_t = 2000)]
        sequential: usize,
        /// Calls for the throughput figure.
        #[arg(long, default_value_t = 20000)]
        total: usize,
        /// Calls in flight for the throughput figure.
        #[arg(long, default_value_t = 64)]
        in_flight: usize,
    },
    /// Federated lookup latency across 1, 4, 8 and 16 peers.
    Fanout {
        /// Peer counts, comma separated.
        #[arg(long, default_value = "1,4,8,16", value_delimiter = ',')]
        peers: Vec<usize>,
        /// Sequential lookups per peer count.
        #[arg(long, default_value_t = 500)]
        calls: usize,
    },
    /// Bulk import through the local API vs raw sled, disk size, serial search latency.
    Store {
        /// Records to import.
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        /// Records per batch.
        #[arg(long, default_value_t = 5000)]
        batch: u64,
        /// Searches timed per kind.
        #[arg(long, default_value_t = 5000)]
        searches: usize,
    },
    /// Policy evaluation, envelope signing and verification, audit appends.
    Micro {
        /// Iterations per figure.
        #[arg(long, default_value_t = 200_000)]
        iterations: usize,
        /// Audit appends (each flushed).
        #[arg(long, default_value_t = 2000)]
        appends: usize,
    },
    /// Resident memory and start-up time of a node process holding many records (needs the
    /// tracenet-node binary built in the same profile).
    Memory {
        /// Records to load.
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        /// Seconds of query load.
        #[arg(long, default_value_t = 10)]
        load_secs: u64,
    },
    /// The gateway's JSON API and console against the local API they front.
    Gateway {
        /// Records loaded into each node.
        #[arg(long, default_value_t = 1000)]
        records: u64,
        /// Sequential calls timed.
        #[arg(long, default_value_t = 2000)]
        sequential: usize,
        /// Calls for the throughput figure.
        #[arg(long, default_value_t = 20_000)]
        total: usize,
        /// Calls in flight for the throughput figure.
        #[arg(long, default_value_t = 64)]
        in_flight: usize,
    },
    /// The scale curve: ingest, store size, start-up, memory and serial search latency of a
    /// node process per store size (needs the tracenet-node binary built in the same profile).
    Scale {
        /// Store sizes in records, comma separated.
        #[arg(long, default_value = "100000,1000000", value_delimiter = ',')]
        sizes: Vec<u64>,
        /// Records per import batch.
        #[arg(long, default_value_t = 5000)]
        batch: u64,
        /// Sequential searches timed per kind.
        #[arg(long, default_value_t = 2000)]
        searches: usize,
        /// Seconds of query load while memory is sampled.
        #[arg(long, default_value_t = 10)]
        load_secs: u64,
        /// Federated queries of 1,000 records timed per size.
        #[arg(long, default_value_t = 20)]
        queries: usize,
    },
    /// Raw sled 0.34 start-up: keys written and flushed, then the database opened three times
    /// (the first open replays the log written since the last start).
    SledOpen {
        /// Keys (sample records, encoded) to write.
        #[arg(long, default_value_t = 1_000_000)]
        keys: u64,
        /// Keys per flushed batch.
        #[arg(long, default_value_t = 5000)]
        batch: u64,
    },
    /// Directory failover with each node its own process and the leader killed (SIGKILL); needs
    /// the tracenet-node binary built in the same profile.
    Failover {
        /// Leader kills.
        #[arg(long, default_value_t = 5)]
        kills: usize,
        /// Directory heartbeat in ms.
        #[arg(long, default_value_t = 200)]
        heartbeat_ms: u64,
        /// Shortest election timeout in ms (the longest is twice this).
        #[arg(long, default_value_t = 800)]
        election_timeout_ms: u64,
    },
    /// A lookup sealed through a regional hub (and through an outbound-only member's mailbox)
    /// vs the same lookup made directly.
    Hub {
        /// Sequential lookups per path.
        #[arg(long, default_value_t = 1000)]
        calls: usize,
    },
    /// A federated hit/no-hit lookup across 8 nodes vs a point query on one central PostgreSQL
    /// holding the same records (started by the scenario; skipped if PostgreSQL is not installed).
    Central {
        /// Records per country (8 countries).
        #[arg(long, default_value_t = 20_000)]
        records: u64,
        /// Records per import batch.
        #[arg(long, default_value_t = 5000)]
        batch: u64,
        /// Sequential queries timed per kind (hit, no hit) on each side.
        #[arg(long, default_value_t = 2000)]
        queries: usize,
    },
    /// Directory write latency and leader failover with three voters.
    Directory {
        /// Timed writes per side.
        #[arg(long, default_value_t = 200)]
        writes: usize,
        /// Leader stops.
        #[arg(long, default_value_t = 5)]
        failovers: usize,
    },
}

fn print(r: &Report, json: bool) {
    if json {
        println!("{}", r.json());
    } else {
        println!("{}", r.table());
    }
}

/// A scenario's result: a report, or why it could not run on this machine (not a failure).
type Outcome = Result<Report, String>;

async fn run(cli: Cli) -> Result<Outcome, bench::BenchError> {
    let progress = |s: &str| eprintln!("{s}");
    Ok(Ok(match cli.scenario {
        Scenario::Peer {
            sequential,
            total,
            in_flight,
        } => {
            bench::peer::run(bench::peer::PeerParams {
                sequential,
                total,
                in_flight,
            })
            .await?
        }
        Scenario::Fanout { peers, calls } => bench::fanout::run(&peers, calls).await?,
        Scenario::Store {
            records,
            batch,
            searches,
        } => {
            bench::store::run(
                bench::store::StoreParams {
                    records,
                    batch,
                    searches,
                },
                &progress,
            )
            .await?
        }
        Scenario::Micro {
            iterations,
            appends,
        } => bench::micro::run(iterations, appends)?,
        Scenario::Memory { records, load_secs } => {
            bench::memory::run(records, load_secs, &progress).await?
        }
        Scenario::Gateway {
            records,
            sequential,
            total,
            in_flight,
        } => {
            bench::gateway::run(bench::gateway::GatewayParams {
                records,
                sequential,
                total,
                in_flight,
            })
            .await?
        }
        Scenario::Scale {
            sizes,
            batch,
            searches,
            load_secs,
            queries,
        } => {
            bench::scale::run(
                &bench::scale::ScaleParams {
                    sizes,
                    batch,
                    searches,
                    load_secs,
                    queries,
                },
                &progress,
            )
            .await?
        }
        Scenario::SledOpen { keys, batch } => bench::sled_open::run(keys, batch, &progress).await?,
        Scenario::Failover {
            kills,
            heartbeat_ms,
            election_timeout_ms,
        } => {
            bench::failover::run(bench::failover::FailoverParams {
                kills,
                heartbeat_ms,
                election_timeout_ms,
            })
            .await?
        }
        Scenario::Hub { calls } => bench::hub::run(calls).await?,
        Scenario::Directory { writes, failovers } => {
            bench::directory::run(writes, failovers).await?
        }
        Scenario::Central {
            records,
            batch,
            queries,
        } => {
            let p = bench::central::CentralParams {
                records,
                batch,
                queries,
            };
            match bench::central::run(p, &progress).await? {
                bench::central::Outcome::Ran(r) => r,
                bench::central::Outcome::Skipped(why) => return Ok(Err(why)),
            }
        }
    }))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
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
    eprintln!(
        "machine: {} logical CPUs; build: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if cfg!(debug_assertions) {
            "debug (use --release for figures)"
        } else {
            "release"
        }
    );
    match runtime.block_on(run(cli)) {
        Ok(Ok(r)) => {
            print(&r, json);
            ExitCode::SUCCESS
        }
        Ok(Err(why)) => {
            // Optional scenarios skip with success so scripts running every scenario go on.
            println!("skipped: {why}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
