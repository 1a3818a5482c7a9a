//! Federated fan-out: a hit/no-hit lookup from one node across 1, 4, 8, 16... peers (all in this
//! process, each with its own store, TLS listener and audit log), latency versus peer count.
//! The baseline of each row is the single-peer figure of the same run.

use std::time::Instant;

use tracenet_proto::v1 as pb;

use super::report::{Report, Samples};
use crate::{Error, NodeSpec, TestFederation};

/// Synthetic national police nodes, one per State.
const COUNTRIES: &[&str] = &[
    "FRA", "DEU", "ITA", "ESP", "NLD", "BEL", "AUT", "POL", "CZE", "SVK", "HUN", "SVN", "HRV",
    "ROU", "BGR", "GRC", "PRT", "SWE", "FIN", "DNK", "IRL", "LUX", "EST", "LVA", "LTU", "MLT",
    "CYP", "CHE", "NOR", "ISL", "ALB", "MKD", "MNE",
];

/// Runs the scenario: `calls` sequential lookups for each peer count.
pub async fn run(peer_counts: &[usize], calls: usize) -> Result<Report, Error> {
    let mut r = Report::new("federated fan-out: lookup latency by number of peers");
    r.param("peer counts", format!("{peer_counts:?}"));
    r.param("sequential lookups per count", calls);
    let mut single: Option<(f64, f64)> = None;
    for &peers in peer_counts {
        if peers + 1 > COUNTRIES.len() {
            return Err(format!("at most {} peers", COUNTRIES.len() - 1).into());
        }
        let specs: Vec<NodeSpec> = COUNTRIES[..=peers]
            .iter()
            .map(|c| NodeSpec::new(&format!("{c}-POL")))
            .collect();
        let t = TestFederation::start_specs(&specs).await?;
        let mut c = t.admin(0).await?;
        let req = pb::FederatedLookupRequest {
            inquiry: Some(pb::Inquiry {
                agency_kind: pb::AgencyKind::Police as i32,
                purpose: pb::Purpose::Tracing as i32,
                legal_basis: "Synthetic benchmark basis".into(),
                case_reference: String::new(),
                deadline_ms: 5000,
                via_hub: false,
            }),
            serial_number: "SYN-000001".into(),
            manufacturer: String::new(),
            ..Default::default()
        };
        for _ in 0..20 {
            c.federated_lookup(req.clone()).await?;
        }
        let mut s = Samples::with_capacity(calls);
        for _ in 0..calls {
            let t0 = Instant::now();
            let resp = c.federated_lookup(req.clone()).await?.into_inner();
            s.push(t0.elapsed());
            if resp.answers.len() != peers {
                return Err(format!(
                    "{} of {peers} peers answered: {:?}",
                    resp.answers.len(),
                    resp.failed
                )
                .into());
            }
        }
        let (p50, p99) = (s.quantile_us(0.5), s.quantile_us(0.99));
        let (b50, b99) = *single.get_or_insert((p50, p99));
        r.versus(&format!("{peers} peer(s) p50"), p50, b50, "us");
        r.versus(&format!("{peers} peer(s) p99"), p99, b99, "us");
        t.shutdown().await?;
    }
    Ok(r)
}
