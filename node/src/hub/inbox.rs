//! The recipient side of the sealed relay: open a sealed call, check its sender, run it through
//! the ordinary peer exchange handlers as if the sender had called directly, and seal the reply
//! back to the sender.
//!
//! The sender's identity here comes from its signature inside the seal (checked with its
//! directory key), since the TLS caller is the hub; the call's own signed request context must
//! name the same node (the handlers check it), so policy, replay memory, limits and audit apply
//! unchanged. The hub learns nothing it could not see from the outside of the envelope.

use prost::Message;
use tonic::{Request, Status};
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::peer_exchange_server::PeerExchange;

use crate::audit::{Event, EventKind};
use crate::auth::Caller;
use crate::context::NodeContext;
use crate::ids::{NodeId, PeerIdentity};
use crate::peer::PeerService;
use crate::seal::{self, Address};

/// Opens, runs and answers one sealed call. An error means no reply can be sealed (the message
/// does not open, its sender is not an active member or has no sealing key); it is audited.
pub async fn receive(
    ctx: &NodeContext,
    msg: &pb::SealedMessage,
) -> Result<pb::SealedMessage, Status> {
    let opened = seal::open(&ctx.node_id, &ctx.sealing, &ctx.roster.keys(), msg);
    let (sender, body) = match opened {
        Ok(x) => x,
        Err(e) => return Err(refuse(ctx, msg, format!("sealed message refused: {e}")).await),
    };
    let view = ctx.roster.view();
    if !view.peers.contains_key(&sender) {
        let why = format!("sealed message from {sender}, not an active member");
        return Err(refuse(ctx, msg, why).await);
    }
    let Some(reply_key) = view.hubs.sealing_keys.get(&sender).cloned() else {
        let why = format!("sealed message from {sender}, who has published no sealing key");
        return Err(refuse(ctx, msg, why).await);
    };
    let reply = match run(ctx, &sender, &body).await {
        Ok(messages) => pb::SealedBody {
            messages,
            ..Default::default()
        },
        Err(s) => pb::SealedBody {
            status_code: s.code() as i32,
            status_message: s.message().to_owned(),
            status_details: s.details().to_vec(),
            ..Default::default()
        },
    };
    let id = seal::new_message_id().map_err(|e| Status::internal(e.to_string()))?;
    seal::seal(
        &ctx.signing,
        Address {
            message_id: id,
            recipient: &sender,
            recipient_key: &reply_key,
            kind: "reply",
            in_reply_to: &msg.message_id,
            sent_at: ctx.clock.now_secs(),
        },
        &reply,
    )
    .map_err(|e| Status::internal(e.to_string()))
}

/// Audits a refused sealed message (metadata only: nothing of it could be read) and says why.
async fn refuse(ctx: &NodeContext, msg: &pb::SealedMessage, why: String) -> Status {
    tracing::warn!(sender = %msg.sender.chars().take(64).collect::<String>(), refusal = %why, "sealed message refused");
    let who = NodeId::parse(&msg.sender).ok();
    let ev = Event {
        peer: who.map(|w| w.to_string()).unwrap_or_default(),
        detail: format!(
            "{why} (message {}, kind {})",
            msg.message_id.chars().take(64).collect::<String>(),
            msg.kind.chars().take(64).collect::<String>()
        ),
        ..Event::new(EventKind::Refusal)
    };
    let (c, evs) = (ctx.clone(), vec![ev]);
    let written =
        tokio::task::spawn_blocking(move || c.audit.append(evs, c.clock.now_secs())).await;
    match written {
        Ok(Ok(_)) => Status::permission_denied(why),
        _ => Status::unavailable("audit log unavailable"),
    }
}

fn decode<M: Message + Default>(body: &pb::SealedBody) -> Result<M, Status> {
    match body.messages.as_slice() {
        [one] => M::decode(one.as_slice())
            .map_err(|e| Status::invalid_argument(format!("sealed call does not decode: {e}"))),
        _ => Err(Status::invalid_argument(
            "a sealed call carries exactly one request message",
        )),
    }
}

fn as_caller<T>(sender: &NodeId, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.extensions_mut()
        .insert(Caller(PeerIdentity::Node(sender.clone())));
    r
}

/// Runs the call on the peer exchange handlers, as `sender`; returns the response messages.
async fn run(
    ctx: &NodeContext,
    sender: &NodeId,
    body: &pb::SealedBody,
) -> Result<Vec<Vec<u8>>, Status> {
    const P: &str = "/tracenet.v1.PeerExchange/";
    let svc = PeerService::new(ctx.clone());
    let method = body.method.strip_prefix(P).unwrap_or_default();
    let one = |m: &dyn DynEncode| Ok(vec![m.bytes()]);
    match method {
        "Ping" => one(&svc
            .ping(as_caller(sender, decode(body)?))
            .await?
            .into_inner()),
        "Lookup" => one(&svc
            .lookup(as_caller(sender, decode(body)?))
            .await?
            .into_inner()),
        "QueryRecords" => {
            use tokio_stream::StreamExt;
            let mut stream = svc
                .query_records(as_caller(sender, decode(body)?))
                .await?
                .into_inner();
            let mut out = Vec::new();
            while let Some(r) = stream.next().await {
                out.push(r?.encode_to_vec());
            }
            Ok(out)
        }
        "SubmitTraceRequest" => one(&svc
            .submit_trace_request(as_caller(sender, decode(body)?))
            .await?
            .into_inner()),
        "SubmitTraceResponse" => one(&svc
            .submit_trace_response(as_caller(sender, decode(body)?))
            .await?
            .into_inner()),
        "SubmitTraceInformation" => one(&svc
            .submit_trace_information(as_caller(sender, decode(body)?))
            .await?
            .into_inner()),
        "Retract" => one(&svc
            .retract(as_caller(sender, decode(body)?))
            .await?
            .into_inner()),
        "AggregateStatistics" => one(&svc
            .aggregate_statistics(as_caller(sender, decode(body)?))
            .await?
            .into_inner()),
        "ShareForwarded" => one(&svc
            .share_forwarded(as_caller(sender, decode(body)?))
            .await?
            .into_inner()),
        _ => Err(Status::unimplemented(format!(
            "'{}' is not a call a hub relays",
            body.method.chars().take(80).collect::<String>()
        ))),
    }
}

/// Encoding behind a trait object, so the arms above share one helper.
trait DynEncode {
    fn bytes(&self) -> Vec<u8>;
}

impl<M: Message> DynEncode for M {
    fn bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }
}
