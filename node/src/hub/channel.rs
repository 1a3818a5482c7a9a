//! The client side of the sealed relay: a channel that carries any peer exchange call through a
//! hub. It takes the gRPC call tonic built (method path and request frames), seals it to the
//! recipient, hands it to the hub's `Relay`, opens the recipient's sealed reply and gives tonic
//! back an ordinary gRPC response. So the exchange code above (fan-out, outbox) is the same for
//! direct and relayed peers: it signs requests and verifies the responder's signatures exactly
//! as it always does, end to end through the hub.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::BodyExt;
use tonic::Status;
use tonic::body::Body;
use tonic::transport::Channel;
use tower::Service;
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::hub_relay_client::HubRelayClient;

use crate::clock::Clock;
use crate::envelope::SigningKey;
use crate::ids::NodeId;
use crate::roster::Roster;
use crate::seal::{self, Address, SealingSecret};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What sealing and opening need on this node.
#[derive(Debug)]
pub struct Sealer {
    /// This node's signing key (signs what it seals).
    pub signing: Arc<SigningKey>,
    /// This node's sealing secret (opens replies).
    pub secret: Arc<SealingSecret>,
    /// Whose keys verify the replies.
    pub roster: Arc<Roster>,
    /// `sent_at` of new messages.
    pub clock: Arc<dyn Clock>,
}

impl Sealer {
    /// This node's id.
    pub fn own(&self) -> &NodeId {
        self.signing.node()
    }
}

/// A channel to one peer: direct, or sealed through a hub.
#[derive(Debug, Clone)]
pub enum PeerChannel {
    /// An HTTP/2 connection to the peer itself.
    Direct(Channel),
    /// Calls sealed to the peer and relayed by a hub.
    Sealed(Arc<SealedRoute>),
}

/// Who carries a sealed call.
#[derive(Debug, Clone)]
pub enum Carrier {
    /// The recipient's hub, over a connection to it.
    Hub(Channel),
    /// This node itself, a hub holding the call in its own mailbox for an outbound-only member.
    OwnMailbox {
        /// This hub's mailboxes.
        mailbox: crate::hub::mailbox::Mailbox,
        /// How long to wait for the member to collect and answer.
        wait: std::time::Duration,
    },
}

/// One peer reached through one hub.
#[derive(Debug)]
pub struct SealedRoute {
    /// Sealing material of this node.
    pub sealer: Arc<Sealer>,
    /// Who carries the sealed call.
    pub carrier: Carrier,
    /// The peer.
    pub recipient: NodeId,
    /// Its published sealing key.
    pub recipient_key: Vec<u8>,
}

impl Service<http::Request<Body>> for PeerChannel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            PeerChannel::Direct(c) => Service::poll_ready(c, cx).map_err(Into::into),
            PeerChannel::Sealed(_) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        match self {
            PeerChannel::Direct(c) => {
                let f = Service::call(c, req);
                Box::pin(async move { f.await.map_err(Into::into) })
            }
            PeerChannel::Sealed(route) => {
                let route = route.clone();
                Box::pin(async move {
                    Ok(match route.relay(req).await {
                        Ok(r) => r,
                        Err(status) => status.into_http(),
                    })
                })
            }
        }
    }
}

/// Splits a gRPC request body into its messages (uncompressed frames only: this node never
/// compresses).
pub fn frames(mut b: &[u8]) -> Result<Vec<Vec<u8>>, Status> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (head, rest) = b
            .split_at_checked(5)
            .ok_or_else(|| Status::internal("truncated gRPC frame"))?;
        if head[0] != 0 {
            return Err(Status::internal("compressed gRPC frames are not relayed"));
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let (msg, rest) = rest
            .split_at_checked(len)
            .ok_or_else(|| Status::internal("truncated gRPC frame"))?;
        out.push(msg.to_vec());
        b = rest;
    }
    Ok(out)
}

/// Frames messages as a gRPC body.
pub fn frame(messages: &[Vec<u8>]) -> Bytes {
    let mut b = BytesMut::new();
    for m in messages {
        b.put_u8(0);
        b.put_u32(u32::try_from(m.len()).unwrap_or(u32::MAX));
        b.put_slice(m);
    }
    b.freeze()
}

/// A successful gRPC response carrying `messages`.
pub fn ok_response(messages: &[Vec<u8>]) -> http::Response<Body> {
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let parts: Vec<Result<http_body::Frame<Bytes>, Infallible>> = vec![
        Ok(http_body::Frame::data(frame(messages))),
        Ok(http_body::Frame::trailers(trailers)),
    ];
    let body = Body::new(http_body_util::StreamBody::new(futures_util::stream::iter(
        parts,
    )));
    let mut resp = http::Response::new(body);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    resp
}

/// The status a sealed reply carries (its code, message and details).
pub fn reply_status(body: &pb::SealedBody) -> Option<Status> {
    (body.status_code != 0).then(|| {
        Status::with_details(
            tonic::Code::from_i32(body.status_code),
            body.status_message.clone(),
            Bytes::from(body.status_details.clone()),
        )
    })
}

impl SealedRoute {
    async fn relay(&self, req: http::Request<Body>) -> Result<http::Response<Body>, Status> {
        let method = req.uri().path().to_owned();
        let bytes = req
            .into_body()
            .collect()
            .await
            .map_err(|e| Status::internal(format!("reading the request: {e}")))?
            .to_bytes();
        let call = pb::SealedBody {
            method: method.clone(),
            messages: frames(&bytes)?,
            ..Default::default()
        };
        let s = &self.sealer;
        let id = seal::new_message_id().map_err(|e| Status::internal(e.to_string()))?;
        let kind = method.rsplit('/').next().unwrap_or_default();
        let sealed = seal::seal(
            &s.signing,
            Address {
                message_id: id.clone(),
                recipient: &self.recipient,
                recipient_key: &self.recipient_key,
                kind,
                in_reply_to: "",
                sent_at: s.clock.now_secs(),
            },
            &call,
        )
        .map_err(|e| Status::failed_precondition(e.to_string()))?;
        let reply = match &self.carrier {
            Carrier::Hub(hub) => HubRelayClient::new(hub.clone())
                .relay(sealed)
                .await?
                .into_inner(),
            Carrier::OwnMailbox { mailbox, wait } => {
                // Nothing cancels it but the wait: a call from the hub's own code is bounded by
                // the caller's deadline too.
                let never = tokio_util::sync::CancellationToken::new();
                mailbox
                    .hold_and_wait(&self.recipient, sealed, *wait, &never)
                    .await?
            }
        };
        let body = open_reply(s, &self.recipient, &id, &reply)?;
        match reply_status(&body) {
            Some(status) => Err(status),
            None => Ok(ok_response(&body.messages)),
        }
    }
}

/// Opens a sealed reply to the call `call_id` this node sent to `from`: it must come from `from`
/// and answer that call.
pub fn open_reply(
    s: &Sealer,
    from: &NodeId,
    call_id: &str,
    reply: &pb::SealedMessage,
) -> Result<pb::SealedBody, Status> {
    let (sender, body) = seal::open(s.own(), &s.secret, &s.roster.keys(), reply)
        .map_err(|e| Status::unavailable(format!("relayed reply refused: {e}")))?;
    if &sender != from || reply.in_reply_to != call_id {
        return Err(Status::unavailable(
            "relayed reply refused: not the answer of the recipient to this call",
        ));
    }
    Ok(body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let msgs = vec![b"one".to_vec(), Vec::new(), vec![7; 300]];
        assert_eq!(frames(&frame(&msgs)).unwrap(), msgs);
        assert!(frames(&[0, 0, 0, 0, 9, 1]).is_err());
        assert!(frames(&[1, 0, 0, 0, 0]).is_err());
    }
}
