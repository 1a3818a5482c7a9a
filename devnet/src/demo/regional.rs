//! The demo's regional statistics: CENTREG-HUB computes its region's SDG indicator 16.4.2 by
//! secure aggregation over the region's members (DEU-CUS, ITA-POL and AUT-POL), learning the
//! total and nothing of any one member's figures; the scenario checks the total against the sum
//! of the members' own figures, which only the members themselves can read.

use std::fmt::Write as _;

use tracenet_proto::v1 as pb;

use super::{DEMO_STATS_YEAR, DemoError, call, check};
use crate::DevFederation;

/// The hub that runs the round.
pub const HUB: &str = "CENTREG-HUB";
/// Its region's members in the demo.
pub const MEMBERS: &[&str] = &["AUT-POL", "DEU-CUS", "ITA-POL"];

fn index(fed: &DevFederation, id: &str) -> Result<usize, DemoError> {
    fed.nodes
        .iter()
        .position(|n| n.id.as_str() == id)
        .ok_or_else(|| DemoError::Check(format!("{id} is not in the demo federation")))
}

/// Runs the round and prints the regional figure.
pub async fn scenario(fed: &DevFederation, out: &mut String) -> Result<(), DemoError> {
    // What the members themselves count (each reads its own; nobody else does).
    let (mut num, mut den) = (0u64, 0u64);
    for id in MEMBERS {
        let own = fed
            .admin_client(index(fed, id)?)
            .await?
            .statistics_tables(pb::StatisticsLocalRequest {
                year: DEMO_STATS_YEAR,
                ..Default::default()
            })
            .await
            .map_err(call(format!("own statistics of {id}")))?
            .into_inner();
        let sdg = own.report.and_then(|r| r.sdg).unwrap_or_default();
        num += sdg.numerator;
        den += sdg.denominator;
    }
    let resp = fed
        .admin_client(index(fed, HUB)?)
        .await?
        .statistics_tables(pb::StatisticsLocalRequest {
            year: DEMO_STATS_YEAR,
            regional: true,
            inquiry: Some(pb::Inquiry {
                agency_kind: pb::AgencyKind::Police as i32,
                legal_basis: "Synthetic regional statistics mandate (demo)".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .map_err(call(format!("regional statistics of {HUB}")))?
        .into_inner();
    let round = resp.round.unwrap_or_default();
    let sdg = resp.report.and_then(|r| r.sdg).unwrap_or_default();
    check(round.received == MEMBERS, || {
        format!(
            "{HUB}: round over {:?}, expected {MEMBERS:?}",
            round.received
        )
    })?;
    check(
        sdg.suppressed || (sdg.numerator == num && sdg.denominator == den),
        || {
            format!(
                "{HUB}: regional SDG 16.4.2 {}/{} is not the members' {num}/{den}",
                sdg.numerator, sdg.denominator
            )
        },
    )?;
    let figure = match (sdg.suppressed, sdg.proportion) {
        (true, _) => "withheld (small counts)".to_owned(),
        (false, Some(p)) => format!("{}/{} = {:.1}%", sdg.numerator, sdg.denominator, p * 100.0),
        (false, None) => "undefined (no firearm seized)".to_owned(),
    };
    let _ = writeln!(
        out,
        "  {HUB}: regional SDG 16.4.2 for {DEMO_STATS_YEAR} by secure aggregation over {} \
         (round {}; the hub saw masked tables only): {figure}",
        round.received.join(", "),
        round.round_id
    );
    Ok(())
}
