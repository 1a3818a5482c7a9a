//! The peer exchange service: what other nodes may ask this one over mutual TLS.
//!
//! The caller's identity comes from the [`crate::auth::Caller`] the interceptor attached, which
//! the listener read from the verified certificate; nothing in a request body identifies anyone.
//! Lookup, queries, trace deliveries and retraction are defined in the contract; they answer
//! UNIMPLEMENTED until the policy-filtered exchange is built, so no data leaves the node before
//! the sharing policy that must govern it exists.

use std::pin::Pin;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::peer_exchange_server::PeerExchange;

use crate::auth::caller;
use crate::context::NodeContext;

/// The peer exchange service of one node.
#[derive(Debug, Clone)]
pub struct PeerService {
    ctx: NodeContext,
}

impl PeerService {
    /// The service for this node.
    pub fn new(ctx: NodeContext) -> PeerService {
        PeerService { ctx }
    }
}

const NOT_YET: &str = "not offered by this node yet: disclosures need the sharing policy";

type DisclosedStream = Pin<Box<dyn Stream<Item = Result<pb::DisclosedRecord, Status>> + Send>>;

#[tonic::async_trait]
impl PeerExchange for PeerService {
    async fn ping(
        &self,
        request: Request<pb::PingRequest>,
    ) -> Result<Response<pb::PingResponse>, Status> {
        let who = caller(&request)?;
        tracing::debug!(caller = %who, "ping");
        Ok(Response::new(pb::PingResponse {
            node_id: self.ctx.node_id.to_string(),
            caller_identity: who.to_uri(),
        }))
    }

    async fn lookup(
        &self,
        request: Request<pb::LookupRequest>,
    ) -> Result<Response<pb::LookupResponse>, Status> {
        caller(&request)?;
        Err(Status::unimplemented(NOT_YET))
    }

    type QueryRecordsStream = DisclosedStream;

    async fn query_records(
        &self,
        request: Request<pb::QueryRecordsRequest>,
    ) -> Result<Response<Self::QueryRecordsStream>, Status> {
        caller(&request)?;
        Err(Status::unimplemented(NOT_YET))
    }

    async fn submit_trace_request(
        &self,
        request: Request<pb::SubmitTraceRequestMessage>,
    ) -> Result<Response<pb::DeliveryAck>, Status> {
        caller(&request)?;
        Err(Status::unimplemented(NOT_YET))
    }

    async fn submit_trace_response(
        &self,
        request: Request<pb::SubmitTraceResponseMessage>,
    ) -> Result<Response<pb::DeliveryAck>, Status> {
        caller(&request)?;
        Err(Status::unimplemented(NOT_YET))
    }

    async fn retract(
        &self,
        request: Request<pb::RetractRequest>,
    ) -> Result<Response<pb::DeliveryAck>, Status> {
        caller(&request)?;
        Err(Status::unimplemented(NOT_YET))
    }
}
