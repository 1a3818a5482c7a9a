//! `tracenet-node stats`: the statistical tables of a running node for one period, through its
//! local API with the administrator certificate ([admin] in the config): the node's own tables
//! (nothing suppressed), a peer's (`--peer`, under the peer's statistics rule) or, on a hub, the
//! region's total by secure aggregation (`--regional`), printed as
//! text, CSV or JSON, or written as XLSX.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use tracenet_proto::v1 as pb;

use crate::client::connect_local;
use crate::config::NodeConfig;
use crate::stats::{self, export};
use crate::tls::TlsMaterial;

/// Output formats of `stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatsFormat {
    /// Tables for reading in a terminal, and SDG 16.4.2.
    Text,
    /// The questionnaire layout as CSV.
    Csv,
    /// The local API's answer as proto3 JSON.
    Json,
    /// An XLSX workbook, one sheet per table (needs --out).
    Xlsx,
}

/// `tracenet-node stats ...`
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The node's TOML configuration.
    #[arg(long)]
    pub config: PathBuf,
    /// Calendar year.
    #[arg(long)]
    pub year: u32,
    /// Quarter 1 to 4 (the whole year when absent).
    #[arg(long, default_value_t = 0)]
    pub quarter: u32,
    /// Ask this peer node (e.g. DEU-BKA) for its tables instead of this node's own.
    #[arg(long)]
    pub peer: Option<String>,
    /// With --peer: ask for its route report (routes, transport modes, concealment methods, for
    /// border risk analysis) instead of its statistics tables.
    #[arg(long, requires = "peer")]
    pub route_report: bool,
    /// On a hub: the region's total by secure aggregation (no member's own figures are seen).
    #[arg(long, conflicts_with_all = ["peer", "series_from"])]
    pub regional: bool,
    /// First year of the SDG 16.4.2 series printed with own tables.
    #[arg(long)]
    pub series_from: Option<u32>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = StatsFormat::Text)]
    pub format: StatsFormat,
    /// Write to this file instead of standard output (required for xlsx).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn tables_of(resp: &pb::StatisticsResponse) -> Result<Vec<stats::suppress::Published>, String> {
    resp.tables
        .iter()
        .map(|t| stats::table_from_pb(t).ok_or_else(|| format!("table {} is malformed", t.id)))
        .collect()
}

fn sdg_line(s: &pb::StatisticsSdg) -> String {
    if s.suppressed {
        return format!("{}: SDG 16.4.2 withheld (small counts)", s.period);
    }
    match s.proportion {
        Some(p) => format!(
            "{}: SDG 16.4.2 = {}/{} = {:.1}%",
            s.period,
            s.numerator,
            s.denominator,
            p * 100.0
        ),
        None => format!(
            "{}: SDG 16.4.2 undefined (no firearm seized, found or surrendered)",
            s.period
        ),
    }
}

/// The text rendering: each table in the questionnaire layout, then SDG 16.4.2.
pub fn text(out: &pb::StatisticsLocalResponse) -> Result<String, String> {
    let resp = out.report.clone().unwrap_or_default();
    let mut s = match &out.round {
        Some(r) => format!(
            "Regional statistics computed by {} for {} by secure aggregation (round {}, \
             {} of {} members in the total{})\n",
            resp.node_id,
            resp.period,
            r.round_id,
            r.received.len(),
            r.members.len(),
            if r.dropped.is_empty() {
                String::new()
            } else {
                format!(
                    "; dropped out: {}",
                    r.dropped
                        .iter()
                        .map(|d| d.node_id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ),
        None => format!("Statistics of {} for {}\n", resp.node_id, resp.period),
    };
    if !resp.policy_rule.is_empty() {
        s += &format!(
            "(disclosed under policy version {} rule {})\n",
            resp.policy_version, resp.policy_rule
        );
    }
    for t in tables_of(&resp)? {
        s.push('\n');
        for row in export::layout(&t) {
            s += &row.join("\t");
            s.push('\n');
        }
    }
    s.push('\n');
    if let Some(sdg) = &resp.sdg {
        s += &sdg_line(sdg);
        s.push('\n');
    }
    for y in &out.series {
        s += &sdg_line(y);
        s.push('\n');
    }
    Ok(s)
}

/// Runs `stats`.
pub async fn run(args: StatsArgs) -> Result<(), String> {
    if args.format == StatsFormat::Xlsx && args.out.is_none() {
        return Err("--format xlsx needs --out FILE".into());
    }
    let cfg = NodeConfig::load(&args.config).map_err(|e| e.to_string())?;
    let admin = cfg.admin.as_ref().ok_or_else(|| {
        "the config has no [admin] section: stats needs the administrator certificate".to_owned()
    })?;
    let tls = TlsMaterial::load_client(&cfg.tls.ca, admin).map_err(|e| e.to_string())?;
    let mut client = connect_local(&cfg.local_api.listen.to_string(), &tls, &cfg.node_id)
        .await
        .map_err(|e| e.to_string())?;
    let out = client
        .statistics_tables(pb::StatisticsLocalRequest {
            year: args.year,
            quarter: args.quarter,
            peer_node: args.peer.unwrap_or_default(),
            series_from: args.series_from.unwrap_or(0),
            inquiry: args.route_report.then(|| pb::Inquiry {
                purpose: pb::Purpose::BorderRiskAnalysis as i32,
                ..Default::default()
            }),
            regional: args.regional,
            deadline_ms: 0,
        })
        .await
        .map_err(|s| format!("statistics refused: {}", s.message()))?
        .into_inner();
    let bytes = match args.format {
        StatsFormat::Text => text(&out)?.into_bytes(),
        StatsFormat::Csv => {
            let tables = tables_of(&out.report.clone().unwrap_or_default())?;
            export::csv(&tables)
                .map_err(|e| e.to_string())?
                .into_bytes()
        }
        StatsFormat::Json => serde_json::to_vec_pretty(&out).map_err(|e| e.to_string())?,
        StatsFormat::Xlsx => {
            let tables = tables_of(&out.report.clone().unwrap_or_default())?;
            export::xlsx(&tables).map_err(|e| e.to_string())?
        }
    };
    match args.out {
        Some(path) => std::fs::write(&path, bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(&bytes)
                .map_err(|e| e.to_string())
        }
    }
}
