//! The local API's calls to the federation: a lookup or query sent to every known peer (with
//! this node's own matching records added on request), and a check that one peer answers. The
//! calls themselves are made by [`crate::fanout`].

use std::time::Instant;

use tonic::{Request, Response, Status};
use tracenet_proto::v1 as pb;

use super::{ApiError, LocalApi};
use crate::auth::caller;
use crate::disclose;
use crate::fanout;
use crate::ids::NodeId;

fn inquiry(inquiry: Option<pb::Inquiry>) -> Result<pb::Inquiry, ApiError> {
    inquiry.ok_or_else(|| ApiError::BadArgument("inquiry is required".into()))
}

pub(super) async fn lookup(
    api: &LocalApi,
    request: Request<pb::FederatedLookupRequest>,
) -> Result<Response<pb::FederatedLookupResponse>, Status> {
    caller(&request)?;
    let req = request.into_inner();
    let inquiry = inquiry(req.inquiry)?;
    fanout::lookup(
        &api.ctx,
        inquiry,
        req.serial_number,
        req.manufacturer,
        req.kind,
    )
    .await
    .map(Response::new)
    .map_err(Status::from)
}

pub(super) async fn query(
    api: &LocalApi,
    request: Request<pb::FederatedQueryRequest>,
) -> Result<Response<pb::FederatedQueryResponse>, Status> {
    caller(&request)?;
    let req = request.into_inner();
    let inquiry = inquiry(req.inquiry)?;
    let filter = req.filter.unwrap_or_default();
    let local = if req.include_local {
        let (f, limit) = (filter.clone(), req.limit_per_peer);
        Some(
            api.blocking(move |c| Ok(disclose::local_matches(c, &f, limit)?))
                .await?,
        )
    } else {
        None
    };
    let mut out = fanout::query(&api.ctx, inquiry, filter, req.limit_per_peer)
        .await
        .map_err(Status::from)?;
    if let Some(records) = local {
        out.answers.insert(
            0,
            pb::PeerRecords {
                node_id: api.ctx.node_id.to_string(),
                records,
            },
        );
    }
    Ok(Response::new(out))
}

pub(super) async fn check_peer(
    api: &LocalApi,
    request: Request<pb::CheckPeerRequest>,
) -> Result<Response<pb::CheckPeerResponse>, Status> {
    caller(&request)?;
    let peer = NodeId::parse(request.get_ref().node_id.trim())
        .map_err(|e| ApiError::BadArgument(e.to_string()))?;
    let unreachable = |reason: String| ApiError::Peer {
        peer: peer.to_string(),
        reason,
    };
    let mut client = api
        .ctx
        .peers
        .get(&peer)
        .map_err(|e| unreachable(e.to_string()))?;
    let started = Instant::now();
    let pong = client
        .ping(pb::PingRequest {})
        .await
        .map_err(|s| unreachable(format!("{:?}: {}", s.code(), s.message())))?
        .into_inner();
    Ok(Response::new(pb::CheckPeerResponse {
        peer_node_id: pong.node_id,
        caller_identity_seen_by_peer: pong.caller_identity,
        round_trip_micros: started.elapsed().as_micros() as u64,
    }))
}
