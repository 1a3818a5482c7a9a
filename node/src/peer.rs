//! The peer exchange service: what other nodes may ask this one over mutual TLS.
//!
//! The caller's identity comes from the [`crate::auth::Caller`] the interceptor attached, which
//! the listener read from the verified certificate; nothing in a request body identifies anyone.
//! Every data request must carry a signed context from the same node as the certificate; it is
//! audited on arrival, each record passes the sharing policy (see [`crate::disclose`]), every
//! disclosure is in the audit log before the response leaves, and responses are signed. Trace
//! deliveries and retraction answer UNIMPLEMENTED until the trace workflow exists.

use std::pin::Pin;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::peer_exchange_server::PeerExchange;

use prost::Message;

use crate::audit::Event;
use crate::auth::caller;
use crate::context::NodeContext;
use crate::disclose::{self, DiscloseError};
use crate::ids::{NodeId, PeerIdentity};

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

const NOT_YET: &str = "not offered by this node yet: the trace workflow is not built";

impl From<DiscloseError> for Status {
    fn from(e: DiscloseError) -> Status {
        match e {
            DiscloseError::BadArgument(m) => Status::invalid_argument(m),
            DiscloseError::Store(s) => {
                tracing::error!(error = %s, "store failure answering a peer");
                Status::unavailable("storage temporarily unavailable; retry later")
            }
        }
    }
}

fn caller_node<T>(request: &Request<T>) -> Result<NodeId, Status> {
    match caller(request)? {
        PeerIdentity::Node(id) => Ok(id.clone()),
        other => Err(Status::permission_denied(format!("{other} is not a node"))),
    }
}

impl PeerService {
    /// Verifies the signed context of a request from `who`, auditing a refusal.
    async fn verify(
        &self,
        who: &NodeId,
        signed: Option<&pb::SignedContext>,
    ) -> Result<pb::RequestContext, Status> {
        let now = self.ctx.clock.now_secs();
        match self
            .ctx
            .replay
            .verify_context(&self.ctx.peer_keys, signed, who, now)
        {
            Ok(c) => Ok(c),
            Err(e) => {
                tracing::warn!(peer = %who, refusal = %e, "request context refused");
                self.audit(vec![Event {
                    kind: "refusal",
                    peer: who.to_string(),
                    detail: e.to_string(),
                    ..Default::default()
                }])
                .await?;
                Err(Status::from(e))
            }
        }
    }

    /// Appends to the audit log durably; nothing is answered if this fails.
    async fn audit(&self, events: Vec<Event>) -> Result<(), Status> {
        let ctx = self.ctx.clone();
        tokio::task::spawn_blocking(move || ctx.audit.append(events, ctx.clock.now_secs()))
            .await
            .map_err(|_| Status::internal("internal error"))?
            .map(|_| ())
            .map_err(|e| {
                tracing::error!(error = %e, "audit append failed");
                Status::unavailable("audit log unavailable; nothing was disclosed")
            })
    }
}

fn signed_body<M: Message>(m: &M) -> Vec<u8> {
    m.encode_to_vec()
}

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
        let who = caller_node(&request)?;
        let req = request.into_inner();
        let rctx = self.verify(&who, req.context.as_ref()).await?;
        let (node, w, c) = (self.ctx.clone(), who.clone(), rctx.clone());
        let (hits, events) = tokio::task::spawn_blocking(move || {
            disclose::lookup(&node, &w, &c, &req.serial_number, &req.manufacturer)
        })
        .await
        .map_err(|_| Status::internal("internal error"))??;
        self.audit(events).await?;
        let mut resp = pb::LookupResponse {
            hit: !hits.is_empty(),
            hits,
            signature: None,
        };
        resp.signature = Some(
            self.ctx
                .signing
                .sign_response(&rctx.request_id, &signed_body(&resp)),
        );
        Ok(Response::new(resp))
    }

    type QueryRecordsStream = DisclosedStream;

    async fn query_records(
        &self,
        request: Request<pb::QueryRecordsRequest>,
    ) -> Result<Response<Self::QueryRecordsStream>, Status> {
        let who = caller_node(&request)?;
        let req = request.into_inner();
        let rctx = self.verify(&who, req.context.as_ref()).await?;
        let (node, w, c) = (self.ctx.clone(), who.clone(), rctx.clone());
        let filter = req.filter.unwrap_or_default();
        let (records, events) =
            tokio::task::spawn_blocking(move || disclose::query(&node, &w, &c, &filter, req.limit))
                .await
                .map_err(|_| Status::internal("internal error"))??;
        self.audit(events).await?;
        let signing = self.ctx.signing.clone();
        let signed: Vec<Result<pb::DisclosedRecord, Status>> = records
            .into_iter()
            .map(|mut r| {
                r.signature = Some(signing.sign_response(&rctx.request_id, &signed_body(&r)));
                Ok(r)
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(signed))))
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
