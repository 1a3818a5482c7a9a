//! `tracenet-node demo`: the embedded default. Starts a small federation of national nodes in
//! this process on dev certificates, loads synthetic sample data, and either keeps running until
//! Ctrl-C (printing where everything listens) or, with `--scenario`, exercises it and prints a
//! readable summary.

use std::fmt::Write as _;
use std::path::PathBuf;

use tokio_util::sync::CancellationToken;
use tracenet_proto::v1 as pb;

use crate::{DevFederation, DevnetError, NodeSpec};
use tracenet_node::config::Role;
use tracenet_node::{sample, serial};

mod assistance;
mod directory;
mod exchange;
mod gateways;
pub mod policies;
mod regional;

/// The demo federation's national nodes: synthetic agencies of three States. They hold records
/// and are directory learners.
pub const DEMO_NODES: &[&str] = &["FRA-POL", "DEU-CUS", "ITA-POL"];
/// The directory voters: a synthetic secretariat and the hubs of two synthetic regional
/// organisations. Their ids start with organisation codes, not a State's code, so no policy rule
/// naming a State matches them.
pub const DEMO_VOTERS: &[&str] = &["SECRETARIAT-DIR", "WESTREG-HUB", "CENTREG-HUB"];

/// Options of the demo command.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Run the scenario and exit instead of serving until Ctrl-C.
    pub scenario: bool,
    /// Synthetic records loaded into each node.
    pub records_per_node: u64,
    /// Folder for certificates and data; a temporary one when `None`.
    pub dir: Option<PathBuf>,
    /// First port of the web consoles on 127.0.0.1 (0: any free port).
    pub gateway_port: u16,
}

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The federation could not start.
    #[error(transparent)]
    Devnet(#[from] DevnetError),
    /// A call failed.
    #[error("{step}: {status}")]
    Call {
        /// What the demo was doing.
        step: String,
        /// The status returned.
        status: tonic::Status,
    },
    /// A check of the scenario did not hold.
    #[error("check failed: {0}")]
    Check(String),
    /// The temporary folder could not be made.
    #[error("temporary folder: {0}")]
    TempDir(std::io::Error),
    /// Interrupted (Ctrl-C or SIGTERM) while waiting for the named step.
    #[error("interrupted while {0}")]
    Interrupted(&'static str),
}

pub(crate) fn call(step: impl Into<String>) -> impl FnOnce(tonic::Status) -> DemoError {
    let step = step.into();
    move |status| DemoError::Call { step, status }
}

pub(crate) fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), DemoError> {
    if ok {
        Ok(())
    } else {
        Err(DemoError::Check(what()))
    }
}

/// The demo federation: three national nodes with their synthetic policies and consoles, a
/// secretariat and two hubs as directory voters, and a fourth national node in CENTREG's region.
pub fn specs() -> Vec<NodeSpec> {
    vec![
        NodeSpec::new("FRA-POL").with_policy(policies::FRA),
        NodeSpec::new("DEU-CUS").with_policy(policies::DEU),
        NodeSpec::new("ITA-POL").with_policy(policies::ITA),
        NodeSpec::new(DEMO_VOTERS[0])
            .voter(Role::Secretariat)
            .organisation(pb::MemberKind::Secretariat, "CHE", &[]),
        NodeSpec::new(DEMO_VOTERS[1]).voter(Role::Hub).organisation(
            pb::MemberKind::RegionalOrganisation,
            "BEL",
            &["BEL", "FRA", "LUX", "NLD"],
        ),
        NodeSpec::new(DEMO_VOTERS[2]).voter(Role::Hub).organisation(
            pb::MemberKind::RegionalOrganisation,
            "AUT",
            &["AUT", "CHE", "DEU", "ITA"],
        ),
        // A third member of CENTREG's region, so that its regional statistics have the three
        // contributions a secure-aggregation round needs. Holds records; no console.
        NodeSpec::new(regional::MEMBERS[0]).with_policy(policies::AUT),
    ]
}

/// Runs the demo. Returns the scenario summary (empty when serving interactively).
pub async fn run(opts: DemoOptions, shutdown: CancellationToken) -> Result<String, DemoError> {
    let tmp;
    let dir = match &opts.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::Builder::new()
                .prefix("tracenet-demo-")
                .tempdir()
                .map_err(DemoError::TempDir)?;
            tmp.path().to_owned()
        }
    };
    let specs = specs();
    // Start-up says what it waits for, and Ctrl-C interrupts every wait (each is also bounded).
    eprintln!("starting {} nodes in {}...", specs.len(), dir.display());
    let mut fed = tokio::select! {
        started = DevFederation::start_specs(&dir, &specs) => started?,
        () = shutdown.cancelled() => return Err(DemoError::Interrupted("starting the nodes")),
    };
    let loaded = tokio::select! {
        loaded = async {
            eprintln!("founding the directory: electing a leader among the voters, admitting every member...");
            fed.found_directory().await?;
            eprintln!("loading {} sample records into each national node...", opts.records_per_node);
            load_samples(&fed, opts.records_per_node).await?;
            eprintln!("publishing the synthetic assistance board...");
            assistance::publish(&fed).await
        } => loaded,
        () = shutdown.cancelled() => Err(DemoError::Interrupted("founding the directory")),
    };
    let outcome = match loaded {
        Err(e) => Err(e),
        Ok(()) if opts.scenario => match scenario(&fed).await {
            Ok(mut out) => match gateways::scenario(&fed, &mut out).await {
                Ok(()) => match async {
                    assistance::scenario(&fed, &mut out).await?;
                    exchange::scenario(&mut fed, &mut out).await
                }
                .await
                {
                    Ok(()) => directory::scenario(&mut fed, &mut out).await.map(|()| out),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        },
        Ok(()) => match gateways::start(&fed, opts.gateway_port).await {
            Ok((consoles, login)) => {
                print_banner(&fed, opts.records_per_node);
                gateways::print(&consoles, &login);
                shutdown.cancelled().await;
                println!("stopping the demo federation...");
                for (_, g) in consoles {
                    let _ = g.stop().await;
                }
                Ok(String::new())
            }
            Err(e) => Err(e),
        },
    };
    let dir = fed.dir.clone();
    let stopped = fed.shutdown().await;
    let mut summary = outcome?;
    stopped?;
    if opts.scenario {
        exchange::verify_audit_logs(&dir, &mut summary)?;
        let _ = writeln!(summary, "scenario passed");
    }
    Ok(summary)
}

async fn load_samples(fed: &DevFederation, per_node: u64) -> Result<(), DemoError> {
    // Every State's node holds records; the secretariat and the hubs hold none.
    for (i, node) in fed
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.id.state().is_some())
    {
        let mut client = fed.admin_client(i).await?;
        let country = node.config.country;
        let mut n = 0;
        while n < per_node {
            let end = (n + 500).min(per_node);
            let records = (n..end).map(|k| sample::record(country, k)).collect();
            client
                .import_batch(pb::ImportBatchRequest {
                    records,
                    source_lines: Vec::new(),
                    ..Default::default()
                })
                .await
                .map_err(call(format!("loading sample data into {}", node.id)))?;
            n = end;
        }
        // A few synthetic loss reports too, so lookups find weapons reported lost or stolen.
        client
            .import_batch(pb::ImportBatchRequest {
                records: (0..5).map(|k| sample::loss_report(country, k)).collect(),
                ..Default::default()
            })
            .await
            .map_err(call(format!("loading loss reports into {}", node.id)))?;
    }
    Ok(())
}

fn print_banner(fed: &DevFederation, per_node: u64) {
    println!("tracenet demo federation (synthetic data, development certificates)");
    println!("  certificates and data: {}", fed.dir.display());
    for n in &fed.nodes {
        println!(
            "  {:<8} peer API https://{}  local API https://{}  {}",
            n.id,
            n.peer_addr,
            n.local_addr,
            if DEMO_VOTERS.contains(&n.id.as_str()) {
                "directory voter".to_owned()
            } else {
                format!("{per_node} sample records, directory learner")
            }
        );
    }
}

async fn scenario(fed: &DevFederation) -> Result<String, DemoError> {
    let mut out = String::new();
    let _ = writeln!(out, "tracenet demo scenario (synthetic data)");

    let nationals = &fed.nodes[..DEMO_NODES.len()];
    for (i, node) in nationals.iter().enumerate() {
        let mut client = fed.admin_client(i).await?;
        let info = client
            .get_node_info(pb::GetNodeInfoRequest {})
            .await
            .map_err(call(format!("node info of {}", node.id)))?
            .into_inner();
        let mut rec = sample::record(node.config.country, 9_000_000 + i as u64);
        rec.national_ref = format!("SYN-DEMO-{}", node.id);
        let created = client
            .create_record(pb::CreateRecordRequest {
                record: Some(rec.clone()),
            })
            .await
            .map_err(call(format!("creating a record on {}", node.id)))?
            .into_inner();
        let id = created
            .record
            .as_ref()
            .map(|r| r.id.clone())
            .unwrap_or_default();
        let read = client
            .get_record(pb::GetRecordRequest { id: id.clone() })
            .await
            .map_err(call(format!("reading the record back from {}", node.id)))?
            .into_inner();
        rec.id = id.clone();
        check(read.record.as_ref() == Some(&rec), || {
            format!(
                "{}: record read back differs from what was written",
                node.id
            )
        })?;

        // A serial typed the way an officer at a border post might: lowercase, spaces.
        let messy = sample::serial(node.config.country, 3)
            .to_lowercase()
            .replace('-', " ");
        let found = client
            .search_by_serial(pb::SearchBySerialRequest {
                serial_number: messy.clone(),
                r#match: pb::SerialMatch::Normalised as i32,
                limit: 10,
                ..Default::default()
            })
            .await
            .map_err(call(format!("serial search on {}", node.id)))?
            .into_inner();
        let normalised = serial::normalise(&messy).map(|s| s.as_str().to_owned());
        check(!found.records.is_empty(), || {
            format!("{}: normalised search for '{messy}' found nothing", node.id)
        })?;
        let _ = writeln!(
            out,
            "  {}: {} records; created {} and read it back; serial '{}' (normalised {}) found {} record(s)",
            node.id,
            info.record_count + 1,
            id,
            messy,
            normalised.unwrap_or_default(),
            found.records.len()
        );
    }

    for (i, from) in nationals.iter().enumerate() {
        let mut client = fed.admin_client(i).await?;
        for to in nationals.iter().filter(|n| n.id != from.id) {
            let seen = client
                .check_peer(pb::CheckPeerRequest {
                    node_id: to.id.to_string(),
                })
                .await
                .map_err(call(format!("{} calling {}", from.id, to.id)))?
                .into_inner();
            let expected = format!("spiffe://tracenet/node/{}", from.id);
            check(
                seen.peer_node_id == to.id.as_str()
                    && seen.caller_identity_seen_by_peer == expected,
                || {
                    format!(
                        "{} -> {}: peer answered as {} and saw caller {}",
                        from.id, to.id, seen.peer_node_id, seen.caller_identity_seen_by_peer
                    )
                },
            )?;
            let _ = writeln!(
                out,
                "  {} -> {} over mutual TLS: {} recognised the caller as {} ({} us)",
                from.id, to.id, to.id, seen.caller_identity_seen_by_peer, seen.round_trip_micros
            );
        }
    }

    // National SDG 16.4.2 figures, each computed by its node from its own records.
    for (i, node) in nationals.iter().enumerate() {
        let mut client = fed.admin_client(i).await?;
        let stats = client
            .statistics_tables(pb::StatisticsLocalRequest {
                year: DEMO_STATS_YEAR,
                series_from: DEMO_STATS_YEAR - 1,
                ..Default::default()
            })
            .await
            .map_err(call(format!("statistics of {}", node.id)))?
            .into_inner();
        let series: Vec<String> = stats
            .series
            .iter()
            .map(|s| match s.proportion {
                Some(p) => format!(
                    "{} {}/{} = {:.1}%",
                    s.period,
                    s.numerator,
                    s.denominator,
                    p * 100.0
                ),
                None => format!("{} undefined", s.period),
            })
            .collect();
        check(!series.is_empty(), || {
            format!("{}: no SDG 16.4.2 series", node.id)
        })?;
        let _ = writeln!(
            out,
            "  {}: SDG 16.4.2 (traced or origin established / seized, found, surrendered): {}",
            node.id,
            series.join("; ")
        );
    }
    regional::scenario(fed, &mut out).await?;
    Ok(out)
}

/// The year whose national statistics the demo prints (sample records fall in 2023 to 2025).
const DEMO_STATS_YEAR: u32 = 2025;
