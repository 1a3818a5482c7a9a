//! Regional fan-out from the member's side: one sealed lookup per member, handed to this node's
//! hub in one `RegionalFanout` call; the hub relays them, collects the sealed replies within one
//! deadline and names the members that did not answer. The hub learns who was asked, not what.
//! Each reply is opened and checked here exactly like a direct answer (see
//! [`crate::fanout::classify_lookup`]).

use std::time::Duration;

use prost::Message;
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::hub_relay_client::HubRelayClient;

use crate::context::NodeContext;
use crate::fanout::{FanoutError, Reply, classify_lookup, failure};
use crate::hub::channel::{open_reply, reply_status};
use crate::ids::NodeId;
use crate::seal::{self, Address};

const LOOKUP: &str = "/tracenet.v1.PeerExchange/Lookup";

/// Asks every known peer (but the hub) for `request` through this node's hub.
pub async fn lookup(
    node: &NodeContext,
    request: &pb::LookupRequest,
    request_id: &str,
    wait: Duration,
) -> Result<(Vec<pb::PeerAnswer>, Vec<pb::PeerFailure>), FanoutError> {
    let hub = node
        .hub
        .hub
        .clone()
        .ok_or_else(|| FanoutError::NoHub("this node has no hub ([hub] hub)".into()))?;
    let sealer = node
        .peers
        .sealer()
        .ok_or_else(|| FanoutError::NoHub("this node seals nothing".into()))?;
    let view = node.roster.view();
    let body = pb::SealedBody {
        method: LOOKUP.into(),
        messages: vec![request.encode_to_vec()],
        ..Default::default()
    };
    let (mut answers, mut failed) = (Vec::new(), Vec::new());
    let mut calls = Vec::new();
    let mut asked: Vec<(String, NodeId)> = Vec::new();
    for peer in node
        .peers
        .record_holders()
        .into_iter()
        .filter(|p| *p != hub)
    {
        let Some(key) = view.hubs.sealing_keys.get(&peer) else {
            failed.push(failure(&peer, "has published no sealing key"));
            continue;
        };
        let id = seal::new_message_id().map_err(|e| FanoutError::Storage(e.to_string()))?;
        let sealed = seal::seal(
            &node.signing,
            Address {
                message_id: id.clone(),
                recipient: &peer,
                recipient_key: key,
                kind: "Lookup",
                in_reply_to: "",
                sent_at: node.clock.now_secs(),
            },
            &body,
        )
        .map_err(|e| FanoutError::Storage(e.to_string()))?;
        calls.push(sealed);
        asked.push((id, peer));
    }
    let addr = node
        .roster
        .endpoint(&hub)
        .ok_or_else(|| FanoutError::NoHub(format!("no endpoint known for hub {hub}")))?;
    let ch = node
        .peers
        .channel(&hub, &addr)
        .map_err(|e| FanoutError::NoHub(e.to_string()))?;
    let deadline_ms = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX);
    let mut client = HubRelayClient::new(ch);
    let call = client.regional_fanout(pb::RegionalFanoutRequest { calls, deadline_ms });
    let outcome = tokio::time::timeout(wait + Duration::from_secs(1), call).await;
    let resp = match outcome {
        Ok(Ok(r)) => r.into_inner(),
        Ok(Err(s)) => {
            let why = format!("hub {hub}: {}", s.message());
            failed.extend(asked.iter().map(|(_, p)| failure(p, why.as_str())));
            return Ok((answers, failed));
        }
        Err(_) => {
            let why = format!("hub {hub} did not answer within the deadline");
            failed.extend(asked.iter().map(|(_, p)| failure(p, why.as_str())));
            return Ok((answers, failed));
        }
    };
    let keys = node.roster.keys();
    for (id, peer) in &asked {
        let reply = match resp.replies.iter().find(|r| &r.in_reply_to == id) {
            Some(sealed) => match open_reply(sealer, peer, id, sealed) {
                Err(s) => Reply::Refused(s),
                Ok(body) => match reply_status(&body) {
                    Some(s) => Reply::Refused(s),
                    None => match body.messages.as_slice() {
                        [one] => match pb::LookupResponse::decode(one.as_slice()) {
                            Ok(r) => Reply::Answered(r),
                            Err(e) => Reply::Refused(tonic::Status::internal(e.to_string())),
                        },
                        _ => Reply::Refused(tonic::Status::internal("not one response")),
                    },
                },
            },
            None => match resp.silent.iter().find(|s| s.node_id == peer.as_str()) {
                Some(s) => Reply::Unreachable(format!("silent through hub {hub}: {}", s.reason)),
                None => Reply::Unreachable(format!("hub {hub} returned nothing for it")),
            },
        };
        match classify_lookup((peer, &node.node_id), request_id, &keys, reply) {
            Ok(a) => answers.push(a),
            Err(f) => failed.push(f),
        }
    }
    answers.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    failed.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    Ok((answers, failed))
}
