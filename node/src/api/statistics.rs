//! The local API's statistics: this node's own tables for a period (nothing suppressed: they
//! are its own figures), with the SDG 16.4.2 series over years, or a peer's tables asked through
//! [`crate::fanout::statistics`] (suppressed by the peer under its statistics rule), or on a hub
//! its region's total by secure aggregation ([`crate::hub::aggregation`]).

use tonic::{Request, Response, Status};
use tracenet_proto::v1 as pb;

use super::{ApiError, LocalApi};
use crate::auth::caller;
use crate::disclose;
use crate::fanout;
use crate::ids::NodeId;
use crate::stats;

/// Most years in one SDG 16.4.2 series.
const MAX_SERIES_YEARS: u32 = 50;

pub(super) async fn tables(
    api: &LocalApi,
    request: Request<pb::StatisticsLocalRequest>,
) -> Result<Response<pb::StatisticsLocalResponse>, Status> {
    caller(&request)?;
    let req = request.into_inner();
    let period = stats::period_of(req.year, req.quarter).map_err(ApiError::BadArgument)?;
    if req.regional {
        if !req.peer_node.trim().is_empty() || req.series_from != 0 {
            return Err(ApiError::BadArgument(
                "regional tables take neither peer_node nor series_from".into(),
            )
            .into());
        }
        let inquiry = req.inquiry.unwrap_or_default();
        let wait = crate::hub::aggregation::step_wait(&api.ctx, &inquiry, req.deadline_ms);
        let out = crate::hub::aggregation::run(&api.ctx, inquiry, req.year, req.quarter, wait)
            .await
            .map_err(Status::from)?;
        return Ok(Response::new(pb::StatisticsLocalResponse {
            report: Some(out.report),
            series: Vec::new(),
            round: Some(out.round),
        }));
    }
    if !req.peer_node.trim().is_empty() {
        let peer = NodeId::parse(req.peer_node.trim())
            .map_err(|e| ApiError::BadArgument(format!("peer_node: {e}")))?;
        let inquiry = req.inquiry.unwrap_or_default();
        let report = fanout::statistics(&api.ctx, &peer, inquiry, req.year, req.quarter)
            .await
            .map_err(Status::from)?;
        return Ok(Response::new(pb::StatisticsLocalResponse {
            report: Some(report),
            series: Vec::new(),
            round: None,
        }));
    }
    let first = match req.series_from {
        0 => None,
        f if f <= req.year && req.year - f < MAX_SERIES_YEARS => {
            Some(u16::try_from(f).map_err(|_| ApiError::BadArgument("series_from".into()))?)
        }
        f => {
            return Err(ApiError::BadArgument(format!(
                "series_from {f} must be at most year and within {MAX_SERIES_YEARS} years of it"
            ))
            .into());
        }
    };
    let out = api
        .blocking(move |c| {
            let (records, traces) = disclose::statistics_sources(c)?;
            let report = stats::report(period, &records, &traces, c.clock.now_secs());
            let series = first.map_or_else(Vec::new, |f| {
                stats::sdg_series(f, period.year, &records)
                    .iter()
                    .map(stats::sdg_to_pb)
                    .collect()
            });
            Ok(pb::StatisticsLocalResponse {
                report: Some(stats::response(&c.node_id.to_string(), &report, 0)),
                series,
                round: None,
            })
        })
        .await?;
    Ok(Response::new(out))
}
