//! The local API on the exchange this node's users drive: trace requests (send, answer, list),
//! retraction of shared records, received copies (list, pass on), and the outbox that delivers
//! them all. The steps themselves are decided and applied in [`crate::workflow`].

use tonic::{Request, Response, Status};
use tracenet_proto::v1 as pb;

use super::{ApiError, LocalApi};
use crate::trace::TraceDirection;
use crate::workflow;

pub(super) async fn send(
    api: &LocalApi,
    request: Request<pb::SendTraceRequestRequest>,
) -> Result<Response<pb::TraceRecord>, Status> {
    api.call(request, |c, _, req| {
        Ok(workflow::send_trace_request(c, req)?)
    })
    .await
}

pub(super) async fn answer(
    api: &LocalApi,
    request: Request<pb::AnswerTraceRequestRequest>,
) -> Result<Response<pb::TraceRecord>, Status> {
    api.call(request, |c, _, req| {
        Ok(workflow::answer_trace_request(c, req)?)
    })
    .await
}

pub(super) async fn list(
    api: &LocalApi,
    request: Request<pb::ListTraceRequestsRequest>,
) -> Result<Response<pb::ListTraceRequestsResponse>, Status> {
    api.call(request, |c, _, req| {
        // Empty: both directions.
        let direction = match req.direction.as_str() {
            "" => "",
            d => TraceDirection::parse(d)
                .ok_or_else(|| {
                    ApiError::BadArgument("direction must be outgoing, incoming or empty".into())
                })?
                .as_str(),
        };
        let traces = c.ledger.list_traces(direction, c.clock.now_secs())?;
        Ok(pb::ListTraceRequestsResponse { traces })
    })
    .await
}

pub(super) async fn retract(
    api: &LocalApi,
    request: Request<pb::RetractRecordRequest>,
) -> Result<Response<pb::RetractRecordResponse>, Status> {
    api.call(request, |c, _, req| {
        let notified = workflow::retract(c, &req.id)?;
        Ok(pb::RetractRecordResponse { notified })
    })
    .await
}

pub(super) async fn list_received(
    api: &LocalApi,
    request: Request<pb::ListReceivedRequest>,
) -> Result<Response<pb::ListReceivedResponse>, Status> {
    api.call(request, |c, _, _| {
        let records = c.ledger.list_received()?;
        Ok(pb::ListReceivedResponse { records })
    })
    .await
}

pub(super) async fn forward_received(
    api: &LocalApi,
    request: Request<pb::ForwardReceivedRequest>,
) -> Result<Response<pb::ForwardReceivedResponse>, Status> {
    api.call(request, |c, _, req| {
        let reference = req
            .reference
            .ok_or_else(|| ApiError::BadArgument("reference is required".into()))?;
        workflow::forward_received(c, &reference, &req.to_node)?;
        Ok(pb::ForwardReceivedResponse {})
    })
    .await
}

pub(super) async fn list_outbox(
    api: &LocalApi,
    request: Request<pb::ListOutboxRequest>,
) -> Result<Response<pb::ListOutboxResponse>, Status> {
    api.call(request, |c, _, _| {
        let items = c.ledger.outbox_items()?;
        Ok(pb::ListOutboxResponse { items })
    })
    .await
}
