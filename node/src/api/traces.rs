//! The local API on the exchange this node's users drive: trace requests (send, answer, list),
//! retraction of shared records, received copies (list, pass on), and the outbox that delivers
//! them all. The steps themselves are decided and applied in [`crate::workflow`].

use tonic::{Request, Response, Status};
use tracenet_proto::v1 as pb;

use super::{ApiError, LocalApi, page_size};
use crate::trace::TraceDirection;
use crate::workflow;

/// One page of `items` (each with its sort key, any order) after the page token `token`: at
/// most `size` items in key order, and the token of the next page (empty on the last). The
/// token is the hex of the last key given, so a page starts right after it even when items
/// were added or removed in between.
pub fn page<T>(
    mut items: Vec<(String, T)>,
    size: u32,
    token: &str,
) -> Result<(Vec<T>, String), ApiError> {
    let after = if token.is_empty() {
        None
    } else {
        let bytes = tracenet_ids::hex::decode(token)
            .ok_or_else(|| ApiError::BadArgument("invalid page_token".into()))?;
        Some(
            String::from_utf8(bytes)
                .map_err(|_| ApiError::BadArgument("invalid page_token".into()))?,
        )
    };
    let limit = page_size(size);
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let start = after.map_or(0, |a| items.partition_point(|(k, _)| *k <= a));
    let mut rest = items.into_iter().skip(start);
    let page: Vec<(String, T)> = rest.by_ref().take(limit).collect();
    let next = match (page.last(), rest.next()) {
        (Some((last, _)), Some(_)) => tracenet_ids::hex::encode(last.as_bytes()),
        _ => String::new(),
    };
    Ok((page.into_iter().map(|(_, t)| t).collect(), next))
}

/// The sort key of a trace: creation time (this node's clock), then direction and id. The time
/// is written so that text order is time order, negative times included.
fn trace_key(t: &pb::TraceRecord) -> String {
    let (at, id) = t
        .request
        .as_ref()
        .map_or((0, ""), |r| (r.created_at, r.id.as_str()));
    format!("{:016x}{}\0{id}", (at as u64) ^ (1 << 63), t.direction)
}

pub(super) async fn provide_information(
    api: &LocalApi,
    request: Request<pb::ProvideTraceInformationRequest>,
) -> Result<Response<pb::TraceRecord>, Status> {
    api.call(request, |c, _, req| {
        Ok(workflow::provide_information(c, req)?)
    })
    .await
}

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
        let keyed = traces.into_iter().map(|t| (trace_key(&t), t)).collect();
        let (traces, next_page_token) = page(keyed, req.page_size, &req.page_token)?;
        Ok(pb::ListTraceRequestsResponse {
            traces,
            next_page_token,
        })
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
    api.call(request, |c, _, req| {
        let keyed = c
            .ledger
            .list_received()?
            .into_iter()
            .map(|r| {
                let key = r.reference.as_ref().map_or(String::new(), |x| {
                    format!("{}\0{}", x.owner_node, x.reference)
                });
                (key, r)
            })
            .collect();
        let (records, next_page_token) = page(keyed, req.page_size, &req.page_token)?;
        Ok(pb::ListReceivedResponse {
            records,
            next_page_token,
        })
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
    api.call(request, |c, _, req| {
        let keyed = c
            .ledger
            .outbox_items()?
            .into_iter()
            .map(|i| (i.id.clone(), i))
            .collect();
        let (items, next_page_token) = page(keyed, req.page_size, &req.page_token)?;
        Ok(pb::ListOutboxResponse {
            items,
            next_page_token,
        })
    })
    .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_key_order_and_resume_after_the_last_key() {
        let items: Vec<(String, u32)> = (0..250u32).rev().map(|i| (format!("{i:03}"), i)).collect();
        let (first, t1) = page(items.clone(), 0, "").unwrap();
        assert_eq!(first, (0..100).collect::<Vec<_>>());
        let (second, t2) = page(items.clone(), 0, &t1).unwrap();
        assert_eq!(second, (100..200).collect::<Vec<_>>());
        let (last, t3) = page(items.clone(), 0, &t2).unwrap();
        assert_eq!((last.len(), t3.as_str()), (50, ""));
        // Exactly one page: no token for an empty next page.
        let (all, t) = page(items.clone(), 5000, "").unwrap();
        assert_eq!((all.len(), t.as_str()), (250, ""));
        // An item removed in between does not shift the next page.
        let fewer: Vec<_> = items.into_iter().filter(|(_, i)| *i != 50).collect();
        assert_eq!(page(fewer, 0, &t1).unwrap().0[0], 100);
        for bad in ["zz", "ff", "0"] {
            assert!(matches!(
                page(vec![(String::new(), 1)], 0, bad),
                Err(ApiError::BadArgument(_))
            ));
        }
    }

    #[test]
    fn traces_sort_by_creation_time_including_negative_times() {
        let t = |at: i64, id: &str| pb::TraceRecord {
            request: Some(pb::TraceRequest {
                id: id.into(),
                created_at: at,
                ..Default::default()
            }),
            direction: "incoming".into(),
            ..Default::default()
        };
        let mut keys = [t(5, "b"), t(-3, "c"), t(5, "a"), t(i64::MIN, "d")].map(|x| trace_key(&x));
        keys.sort();
        assert!(keys[0].ends_with('d') && keys[1].ends_with('c') && keys[2].ends_with('a'));
    }
}
