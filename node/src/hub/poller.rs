//! An outbound-only member collects its mailbox: it long-polls its hub over its own outbound
//! connection, runs each sealed call it finds (see [`super::inbox`]) and acknowledges it with
//! the sealed reply. A message is acknowledged only after it was processed, so a crash in between
//! makes the hub hand it over again; what it carries is applied once (deliveries are idempotent
//! by item, a repeated lookup is refused by the replay check).

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::hub_relay_client::HubRelayClient;

use crate::context::NodeContext;
use crate::ids::NodeId;

/// How long each poll may wait at the hub.
const POLL_WAIT_MS: u32 = 20_000;

/// Polls `hub` until `shutdown`.
pub async fn run(ctx: NodeContext, hub: NodeId, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let round = tokio::select! {
            () = shutdown.cancelled() => return,
            r = poll_once(&ctx, &hub) => r,
        };
        match round {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::debug!(hub = %hub, error = %e, "mailbox poll failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn poll_once(ctx: &NodeContext, hub: &NodeId) -> Result<(), tonic::Status> {
    let addr = ctx
        .roster
        .endpoint(hub)
        .ok_or_else(|| tonic::Status::unavailable(format!("no endpoint known for hub {hub}")))?;
    let ch = ctx
        .peers
        .channel(hub, &addr)
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut client = HubRelayClient::new(ch);
    let got = client
        .mailbox_poll(pb::MailboxPollRequest {
            wait_ms: POLL_WAIT_MS,
            max_messages: 50,
        })
        .await?
        .into_inner();
    for msg in got.messages {
        // A message that cannot be opened or answered is acknowledged without a reply: holding
        // it would only hand it over again. The refusal is in this node's audit log.
        let reply = super::inbox::receive(ctx, &msg).await.ok();
        client
            .mailbox_ack(pb::MailboxAckRequest {
                message_id: msg.message_id,
                reply,
            })
            .await?;
    }
    Ok(())
}
