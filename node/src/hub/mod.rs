//! Hubs: regional nodes that carry members' exchange messages sealed end to end, hold them in
//! mailboxes for members that accept no inbound connection, and fan calls out across a region.
//!
//! - [`routing`] (pure) decides whether a message to a peer goes directly or through a hub.
//! - [`channel`] is the sender's side: a channel that seals a gRPC call to the recipient and
//!   hands it to the hub, so the exchange code above it does not change.
//! - [`HubService`] is the `HubRelay` gRPC service every node serves: `Relay`, `MailboxPoll`,
//!   `MailboxAck` and `RegionalFanout` answer only on a hub; `Deliver` (a hub handing over a
//!   sealed call) on every node.
//! - [`inbox`] is the recipient's side: open, check the sender, run the call through the
//!   ordinary peer handlers, seal the reply.
//! - [`mailbox`] holds sealed messages durably on the hub; [`regional`] asks the hub for a
//!   regional fan-out.
//! - [`poller`] is an outbound-only member collecting its mailbox; [`publish`] keeps the node's
//!   sealing key and hub route in the directory.
//! - [`aggregation`] runs secure-aggregation rounds over the hub's region (regional statistics
//!   without seeing any member's figures).
//!
//! What a hub sees of a message is its routing metadata (sender, recipient, kind, size, time),
//! which it audits; it cannot read, alter or re-address the payload (see [`crate::seal`]).

pub mod aggregation;
pub mod channel;
pub mod inbox;
pub mod mailbox;
pub mod poller;
pub mod publish;
pub mod regional;
pub mod routing;

use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::hub_relay_client::HubRelayClient;
use tracenet_proto::v1::hub_relay_server::HubRelay;

use crate::audit::{Event, EventKind};
use crate::config::Role;
use crate::context::NodeContext;
use crate::ids::NodeId;
use crate::peer::caller_node;
use mailbox::{Mailbox, Put};

/// Longest a mailbox poll is held open.
pub const MAX_POLL_WAIT: Duration = Duration::from_secs(25);
/// Most messages one poll returns.
pub const MAX_POLL_MESSAGES: usize = 100;
/// Most calls in one regional fan-out.
pub const MAX_FANOUT_CALLS: usize = 200;
/// Longest message id, in bytes, of a sealed message a member hands to a hub (an id is a key
/// of the hub's mailbox, kept until the recipient acknowledges it); a longer or empty one is
/// refused before anything is held or relayed.
pub const MAX_MESSAGE_ID: usize = crate::limits::MAX_ID;

/// The `HubRelay` service of one node.
#[derive(Debug, Clone)]
pub struct HubService {
    ctx: NodeContext,
    /// Ends long polls and reply waits when the node stops, so nothing holds the node's
    /// storage open after it has stopped.
    shutdown: CancellationToken,
}

impl HubService {
    /// The service for this node.
    pub fn new(ctx: NodeContext, shutdown: CancellationToken) -> HubService {
        HubService { ctx, shutdown }
    }

    fn mailbox(&self) -> Result<&Mailbox, Status> {
        match (&self.ctx.mailbox, self.ctx.role) {
            (Some(m), Role::Hub) => Ok(m),
            _ => Err(Status::failed_precondition("this node is not a hub")),
        }
    }

    /// Checks a message a member hands to this hub: the sender is the caller's certificate, the
    /// id is 1-[`MAX_MESSAGE_ID`] bytes, the recipient an active member. Audits its routing
    /// metadata, as `relayed` when admitted and as a `refusal` from the caller when not (a
    /// member naming another as sender is worth knowing of). Returns the recipient.
    async fn admit(&self, who: &NodeId, msg: &pb::SealedMessage) -> Result<NodeId, Status> {
        self.mailbox()?;
        let admitted = check_sender(who, msg)
            .and_then(|()| check_message_id(&msg.message_id))
            .and_then(|()| {
                NodeId::parse(&msg.recipient)
                    .map_err(|e| Status::invalid_argument(format!("recipient: {e}")))
            })
            .and_then(|to| {
                if self.ctx.roster.view().peers.contains_key(&to) {
                    Ok(to)
                } else {
                    Err(Status::not_found(format!(
                        "{to} is not an active member this hub can reach"
                    )))
                }
            });
        match admitted {
            Ok(to) => {
                audit(&self.ctx, relayed_event(msg)).await?;
                Ok(to)
            }
            Err(refused) => {
                audit(&self.ctx, refused_event(who, msg, &refused)).await?;
                Err(refused)
            }
        }
    }

    /// Carries one admitted message to `to` and returns its sealed reply: a direct `Deliver`
    /// to a member that accepts connections, else through its mailbox here (waiting up to
    /// `reply_wait_ms` for it to collect and answer).
    async fn carry(
        &self,
        who: &NodeId,
        to: &NodeId,
        msg: pb::SealedMessage,
    ) -> Result<pb::SealedMessage, Status> {
        let route = self.ctx.roster.view().hubs.routes.get(to).cloned();
        let held_here = route
            .as_ref()
            .is_some_and(|r| r.outbound_only && r.hub == self.ctx.node_id.as_str());
        if !held_here {
            if route.is_some_and(|r| r.outbound_only) {
                return Err(Status::failed_precondition(format!(
                    "{to} collects its messages from another hub"
                )));
            }
            let addr = self
                .ctx
                .roster
                .endpoint(to)
                .ok_or_else(|| Status::unavailable(format!("no endpoint for {to}")))?;
            let ch = self
                .ctx
                .peers
                .channel(to, &addr)
                .map_err(|e| Status::unavailable(e.to_string()))?;
            return Ok(HubRelayClient::new(ch).deliver(msg).await?.into_inner());
        }
        let wait = Duration::from_millis(self.ctx.hub.reply_wait_ms);
        // What a refusal would record: the header, never the payload.
        let header = pb::SealedMessage {
            message_id: msg.message_id.clone(),
            sender: msg.sender.clone(),
            recipient: msg.recipient.clone(),
            kind: msg.kind.clone(),
            ..Default::default()
        };
        let mailbox = self.mailbox()?;
        let held = match mailbox.hold(msg).await {
            Ok((put, held)) => {
                if let Put::Replaced(old) = put {
                    audit(&self.ctx, replaced_event(who, &header, &old)).await?;
                }
                held
            }
            Err(refused) => {
                if matches!(
                    refused.code(),
                    tonic::Code::ResourceExhausted | tonic::Code::AlreadyExists
                ) {
                    // Admitted (and audited as relayed), but the mailbox has no room for it, or
                    // holds another sender's message under its id.
                    audit(&self.ctx, refused_event(who, &header, &refused)).await?;
                }
                return Err(refused);
            }
        };
        held.reply(to, wait, &self.shutdown).await
    }
}

/// Whether the caller is the sealed message's sender (identity from its certificate only).
fn check_sender(who: &NodeId, msg: &pb::SealedMessage) -> Result<(), Status> {
    if msg.sender != who.as_str() {
        return Err(Status::permission_denied(
            "a sealed message's sender must be the caller",
        ));
    }
    Ok(())
}

/// Whether a sealed message's id is within [`MAX_MESSAGE_ID`] (and not empty).
fn check_message_id(id: &str) -> Result<(), Status> {
    if id.is_empty() || id.len() > MAX_MESSAGE_ID {
        return Err(Status::invalid_argument(format!(
            "a sealed message's id must be 1-{MAX_MESSAGE_ID} bytes"
        )));
    }
    Ok(())
}

/// The hub's record of one relayed message: metadata only, never the payload.
fn relayed_event(msg: &pb::SealedMessage) -> Event {
    Event {
        peer: msg.sender.clone(),
        detail: format!(
            "relayed {} message {} from {} to {} ({} bytes sealed)",
            cut(&msg.kind),
            cut(&msg.message_id),
            msg.sender,
            cut(&msg.recipient),
            msg.ciphertext.len()
        ),
        ..Event::new(EventKind::Relayed)
    }
}

/// The hub's record of a message it refused to take from `who`: the reason and the header as
/// given (cut short), never the payload.
fn refused_event(who: &NodeId, msg: &pb::SealedMessage, why: &Status) -> Event {
    Event {
        peer: who.to_string(),
        detail: format!(
            "refused {} message {} from {} (named sender {}) to {}: {}",
            cut(&msg.kind),
            cut(&msg.message_id),
            who,
            cut(&msg.sender),
            cut(&msg.recipient),
            why.message()
        ),
        ..Event::new(EventKind::Refusal)
    }
}

/// The hub's record of a held message dropped for a newer one from the same sender to the
/// same member, whose share of the mailbox was used (its outbox still holds what is unanswered).
fn replaced_event(who: &NodeId, newer: &pb::SealedMessage, dropped: &str) -> Event {
    Event {
        peer: who.to_string(),
        detail: format!(
            "dropped held message {} from {} to {} for its newer {} message {}: its share of the \
             mailbox is used",
            cut(dropped),
            who,
            cut(&newer.recipient),
            cut(&newer.kind),
            cut(&newer.message_id),
        ),
        ..Event::new(EventKind::Refusal)
    }
}

/// A header field as the audit log keeps it: at most 64 characters.
fn cut(field: &str) -> String {
    field.chars().take(64).collect()
}

async fn audit(ctx: &NodeContext, ev: Event) -> Result<(), Status> {
    let c = ctx.clone();
    tokio::task::spawn_blocking(move || c.audit.append(vec![ev], c.clock.now_secs()))
        .await
        .map_err(|_| Status::internal("internal error"))?
        .map(drop)
        .map_err(crate::status::audit_before_answer)
}

#[tonic::async_trait]
impl HubRelay for HubService {
    async fn relay(
        &self,
        request: Request<pb::SealedMessage>,
    ) -> Result<Response<pb::SealedMessage>, Status> {
        let who = caller_node(&request)?;
        let msg = request.into_inner();
        let to = self.admit(&who, &msg).await?;
        Ok(Response::new(self.carry(&who, &to, msg).await?))
    }

    async fn deliver(
        &self,
        request: Request<pb::SealedMessage>,
    ) -> Result<Response<pb::SealedMessage>, Status> {
        caller_node(&request)?;
        let msg = request.into_inner();
        Ok(Response::new(inbox::receive(&self.ctx, &msg).await?))
    }

    async fn mailbox_poll(
        &self,
        request: Request<pb::MailboxPollRequest>,
    ) -> Result<Response<pb::MailboxPollResponse>, Status> {
        let who = caller_node(&request)?;
        let mailbox = self.mailbox()?.clone();
        let req = request.into_inner();
        let max = (req.max_messages as usize).clamp(1, MAX_POLL_MESSAGES);
        let until = tokio::time::Instant::now()
            + Duration::from_millis(u64::from(req.wait_ms)).min(MAX_POLL_WAIT);
        loop {
            // Registered before reading, so an arrival between the read and the wait wakes us.
            let arrived = mailbox.arrived();
            let notified = arrived.notified();
            let (m, w) = (mailbox.clone(), who.clone());
            let messages = tokio::task::spawn_blocking(move || m.pending(&w, max))
                .await
                .map_err(|_| Status::internal("internal error"))?
                .map_err(|e| Status::unavailable(e.to_string()))?;
            if !messages.is_empty()
                || tokio::time::Instant::now() >= until
                || self.shutdown.is_cancelled()
            {
                return Ok(Response::new(pb::MailboxPollResponse { messages }));
            }
            tokio::select! {
                _ = tokio::time::timeout_at(until, notified) => {}
                () = self.shutdown.cancelled() => {}
            }
        }
    }

    async fn mailbox_ack(
        &self,
        request: Request<pb::MailboxAckRequest>,
    ) -> Result<Response<pb::MailboxAckResponse>, Status> {
        let who = caller_node(&request)?;
        let mailbox = self.mailbox()?.clone();
        let req = request.into_inner();
        if let Some(reply) = &req.reply
            && (reply.sender != who.as_str() || reply.in_reply_to != req.message_id)
        {
            return Err(Status::permission_denied(
                "a reply must come from the caller and answer the acknowledged message",
            ));
        }
        let (m, w, id) = (mailbox.clone(), who.clone(), req.message_id.clone());
        let held = tokio::task::spawn_blocking(move || m.ack(&w, &id))
            .await
            .map_err(|_| Status::internal("internal error"))?
            .map_err(|e| Status::unavailable(e.to_string()))?;
        if held && let Some(reply) = req.reply {
            audit(&self.ctx, relayed_event(&reply)).await?;
            mailbox.reply(&who, &req.message_id, reply);
        }
        Ok(Response::new(pb::MailboxAckResponse {}))
    }

    async fn regional_fanout(
        &self,
        request: Request<pb::RegionalFanoutRequest>,
    ) -> Result<Response<pb::RegionalFanoutResponse>, Status> {
        let who = caller_node(&request)?;
        self.mailbox()?;
        let req = request.into_inner();
        if req.calls.len() > MAX_FANOUT_CALLS {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_FANOUT_CALLS} calls per regional fan-out"
            )));
        }
        let deadline = Duration::from_millis(u64::from(req.deadline_ms).clamp(100, 30_000));
        let mut tasks = JoinSet::new();
        for call in req.calls {
            let (hub, w) = (self.clone(), who.clone());
            tasks.spawn(async move {
                let named = call.recipient.chars().take(64).collect::<String>();
                let outcome = tokio::time::timeout(deadline, async {
                    let to = hub.admit(&w, &call).await?;
                    hub.carry(&w, &to, call).await
                })
                .await;
                match outcome {
                    Ok(Ok(reply)) => Ok(reply),
                    Ok(Err(s)) => Err(pb::RegionalSilence {
                        node_id: named,
                        reason: s.message().to_owned(),
                    }),
                    Err(_) => Err(pb::RegionalSilence {
                        node_id: named,
                        reason: "no reply within the deadline".into(),
                    }),
                }
            });
        }
        let mut out = pb::RegionalFanoutResponse::default();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(reply)) => out.replies.push(reply),
                Ok(Err(silent)) => out.silent.push(silent),
                Err(_) => {}
            }
        }
        out.replies.sort_by(|a, b| a.sender.cmp(&b.sender));
        out.silent.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        Ok(Response::new(out))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_message_id_is_one_to_max_message_id_bytes() {
        assert!(check_message_id(&"a".repeat(MAX_MESSAGE_ID)).is_ok());
        assert!(check_message_id("0123456789abcdef0123456789abcdef").is_ok());
        for bad in [String::new(), "a".repeat(MAX_MESSAGE_ID + 1)] {
            let e = check_message_id(&bad).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
            assert!(e.message().len() < 100, "{}", e.message());
        }
        // Bytes, not characters: 64 two-byte characters are at the bound, one more is past it.
        assert!(check_message_id(&"é".repeat(MAX_MESSAGE_ID / 2)).is_ok());
        assert!(check_message_id(&"é".repeat(MAX_MESSAGE_ID / 2 + 1)).is_err());
    }
}
