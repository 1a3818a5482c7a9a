//! The local API of the watch list: officers put values on watch, take them off, and read and
//! acknowledge the alerts the scheduled lookups raise (`crate::watch`). Adding and removing a
//! watch is audited before it is answered.

use tonic::{Request, Response, Status};
use tracenet_proto::v1 as pb;

use super::{ApiError, LocalApi};
use crate::watch;

pub(super) async fn add(
    api: &LocalApi,
    request: Request<pb::AddWatchRequest>,
) -> Result<Response<pb::WatchEntry>, Status> {
    api.call(request, |c, _, req| {
        let now = c.clock.now_secs();
        let entry = c.watches.add(req, now)?;
        c.audit
            .append(vec![watch::change_event(&entry, "added")], now)
            .map_err(ApiError::from)?;
        Ok(entry)
    })
    .await
}

pub(super) async fn list(
    api: &LocalApi,
    request: Request<pb::ListWatchesRequest>,
) -> Result<Response<pb::ListWatchesResponse>, Status> {
    api.call(request, |c, _, _| {
        Ok(pb::ListWatchesResponse {
            watches: c.watches.list()?,
        })
    })
    .await
}

pub(super) async fn remove(
    api: &LocalApi,
    request: Request<pb::RemoveWatchRequest>,
) -> Result<Response<pb::RemoveWatchResponse>, Status> {
    api.call(request, |c, _, req| {
        let now = c.clock.now_secs();
        let old = c.watches.remove(req.id.trim())?;
        c.audit
            .append(vec![watch::change_event(&old, "removed")], now)
            .map_err(ApiError::from)?;
        Ok(pb::RemoveWatchResponse {})
    })
    .await
}

pub(super) async fn alerts(
    api: &LocalApi,
    request: Request<pb::ListWatchAlertsRequest>,
) -> Result<Response<pb::ListWatchAlertsResponse>, Status> {
    api.call(request, |c, _, req| {
        let (alerts, unacknowledged) = c.watches.alerts(req.unacknowledged_only, req.limit)?;
        Ok(pb::ListWatchAlertsResponse {
            alerts,
            unacknowledged,
        })
    })
    .await
}

pub(super) async fn acknowledge(
    api: &LocalApi,
    request: Request<pb::AcknowledgeWatchAlertRequest>,
) -> Result<Response<pb::WatchAlert>, Status> {
    api.call(request, |c, _, req| {
        Ok(c.watches
            .acknowledge(req.id.trim(), &req.acknowledged_by, c.clock.now_secs())?)
    })
    .await
}
