//! A hub's side of secure aggregation (see [`crate::stats::round`]): ask every member of its
//! region for its masked tables, sum them, have the members it received confirm that list, then
//! reveal their self-mask seeds and the masks they share with members that dropped out, and
//! publish the regional total suppressed with the largest threshold among the members' statistics
//! rules. The hub never holds one member's figures: what it receives and keeps is masked vectors,
//! seeds, pairwise masks and the total.
//!
//! Every request is signed and audited like any other peer request (see
//! [`crate::fanout::open_request`]); answers count only if signed by the member for that request.
//! Members that accept no inbound connection are asked through this hub's own mailbox.

use std::time::Duration;

use tokio::task::JoinSet;
use tracenet_proto::v1 as pb;

use crate::audit::{Event, EventKind};
use crate::config::Role;
use crate::context::NodeContext;
use crate::fanout::{self, FanoutError, answered, call_peer, failure, gather, open_request};
use crate::ids::NodeId;
use crate::seal;
use crate::stats::round::{self, MIN_MEMBERS, RoundLayout};
use crate::stats::{self, Period, aggregate, suppress};

/// Rounds started before giving up (a round restarts when a member fails during the reveal).
pub const MAX_ATTEMPTS: u32 = 3;

/// The regional tables and how they were computed.
#[derive(Debug, Clone)]
pub struct Regional {
    /// The regional total, published (suppressed) like a member's tables.
    pub report: pb::StatisticsResponse,
    /// The round that produced it.
    pub round: pb::RegionalRound,
}

/// Runs a round over this hub's region for the period `year`/`quarter`, each step waiting at
/// most `wait` for the members.
pub async fn run(
    node: &NodeContext,
    mut inquiry: pb::Inquiry,
    year: u32,
    quarter: u32,
    wait: Duration,
) -> Result<Regional, FanoutError> {
    if node.role != Role::Hub {
        return Err(FanoutError::NoHub(
            "regional tables are computed by a hub; this node is not one".into(),
        ));
    }
    inquiry.purpose = pb::Purpose::Statistics as i32;
    let period = stats::period_of(year, quarter).map_err(FanoutError::BadArgument)?;
    let members = round::region_members(&node.roster.view(), &node.node_id);
    if members.len() < MIN_MEMBERS {
        return Err(FanoutError::NoHub(format!(
            "this hub's region has {} member node(s) with a sealing key; a round needs at least \
             {MIN_MEMBERS}",
            members.len()
        )));
    }
    let layout = round::layout(period);
    let plan = Plan {
        node,
        inquiry: &inquiry,
        year,
        quarter,
        period,
        members: &members,
        digest: round::layout_digest(&layout.cells),
        cells: layout.cells.len(),
        wait,
    };
    let mut why = Vec::new();
    for attempt in 1..=MAX_ATTEMPTS {
        let round_id = seal::new_message_id().map_err(|e| FanoutError::Storage(e.to_string()))?;
        match plan.attempt(&round_id).await? {
            Attempt::Done {
                sum,
                received,
                dropped,
                threshold,
            } => {
                let regional = publish(&plan, &layout, period, &sum, threshold);
                let round = pb::RegionalRound {
                    round_id: round_id.clone(),
                    members: members.iter().map(ToString::to_string).collect(),
                    received: received.iter().map(ToString::to_string).collect(),
                    dropped,
                    attempts: attempt,
                    tables_left_out: layout.left_out.clone(),
                };
                audit_round(node, &round, period, threshold).await?;
                return Ok(Regional {
                    report: regional,
                    round,
                });
            }
            Attempt::Restart(reason) => why.push(format!("round {round_id}: {reason}")),
        }
    }
    Err(FanoutError::Peer(format!(
        "secure aggregation did not complete in {MAX_ATTEMPTS} rounds: {}",
        why.join("; ")
    )))
}

/// What every step of a run shares.
struct Plan<'a> {
    node: &'a NodeContext,
    inquiry: &'a pb::Inquiry,
    year: u32,
    quarter: u32,
    period: Period,
    members: &'a [NodeId],
    digest: Vec<u8>,
    cells: usize,
    wait: Duration,
}

/// How one round ended.
enum Attempt {
    /// The total of the received members' tables (masks removed).
    Done {
        sum: Vec<u64>,
        received: Vec<NodeId>,
        dropped: Vec<pb::PeerFailure>,
        threshold: u64,
    },
    /// A member failed during the confirm or reveal step: start again under a new round id.
    Restart(String),
}

impl Plan<'_> {
    /// What the round's masks derive from, as each member computes it.
    fn context(&self, round_id: &str) -> Vec<u8> {
        round::round_context(
            &self.node.node_id,
            round_id,
            &self.period.label(),
            self.members,
            &self.digest,
        )
    }

    fn request(
        &self,
        round_id: &str,
        phase: pb::AggregationPhase,
        received: &[NodeId],
        confirmations: &[pb::RoundConfirmation],
    ) -> pb::AggregationRequest {
        pb::AggregationRequest {
            context: None,
            round_id: round_id.to_owned(),
            year: self.year,
            quarter: self.quarter,
            members: self.members.iter().map(ToString::to_string).collect(),
            layout_digest: self.digest.clone(),
            phase: phase as i32,
            received: received.iter().map(ToString::to_string).collect(),
            confirmations: confirmations.to_vec(),
        }
    }

    /// Asks each of `whom` for one step, in parallel; the checked answers and the failures.
    async fn ask(
        &self,
        round_id: &str,
        phase: pb::AggregationPhase,
        whom: &[NodeId],
        received: &[NodeId],
        confirmations: &[pb::RoundConfirmation],
    ) -> Result<(Vec<(NodeId, pb::AggregationResponse)>, Vec<pb::PeerFailure>), FanoutError> {
        let mut tasks = JoinSet::new();
        for peer in whom {
            let mut request = self.request(round_id, phase, received, confirmations);
            let what = format!(
                "secure aggregation round {round_id} ({}) to {peer}",
                phase.as_str_name()
            );
            let rc = open_request(self.node, self.inquiry, &what, &mut request).await?;
            let (node, peer, wait, round_id) = (
                self.node.clone(),
                peer.clone(),
                self.wait,
                round_id.to_owned(),
            );
            tasks.spawn(async move {
                let reply = call_peer(&node, &peer, wait, |mut client| async move {
                    Ok(client.aggregate_statistics(request).await?.into_inner())
                })
                .await;
                let resp = answered(&peer, reply)?;
                let mut body = resp.clone();
                let sig = body.signature.take();
                node.roster
                    .keys()
                    .verify_response(
                        &peer,
                        &rc.request_id,
                        &prost::Message::encode_to_vec(&body),
                        sig.as_ref(),
                    )
                    .map_err(|e| failure(&peer, format!("bad signature: {e}")))?;
                if resp.node_id != peer.as_str() || resp.round_id != round_id {
                    return Err(failure(&peer, "answer for another node or round"));
                }
                Ok((peer, resp))
            });
        }
        let (answers, failed) = gather(tasks, |a: &(NodeId, pb::AggregationResponse)| {
            a.0.to_string()
        })
        .await;
        Ok((answers, failed))
    }

    /// One round: masks from everyone, then confirmations and reveals from those received.
    async fn attempt(&self, round_id: &str) -> Result<Attempt, FanoutError> {
        let (answers, mut dropped) = self
            .ask(round_id, pb::AggregationPhase::Mask, self.members, &[], &[])
            .await?;
        let mut vectors = Vec::new();
        let mut received = Vec::new();
        let mut threshold = 1u64;
        for (peer, resp) in answers {
            if resp.masked.len() != self.cells {
                dropped.push(failure(
                    &peer,
                    format!("{} cells, the layout has {}", resp.masked.len(), self.cells),
                ));
                continue;
            }
            threshold = threshold.max(resp.threshold);
            vectors.push(resp.masked);
            received.push(peer);
        }
        // Members confirm only a list holding a majority of the round (round::check_confirm).
        if received.len() < MIN_MEMBERS || received.len() * 2 <= self.members.len() {
            return Err(FanoutError::Peer(format!(
                "only {} of {} members answered (at least {MIN_MEMBERS} and more than half are \
                 needed): {}",
                received.len(),
                self.members.len(),
                reasons(&dropped)
            )));
        }
        // `received` is in member order (sorted), as the members require.
        received.sort();
        let mut sum = aggregate::sum_masked(&vectors, self.cells)
            .map_err(|e| FanoutError::Peer(e.to_string()))?;
        let (confirmed, failed) = self
            .ask(
                round_id,
                pb::AggregationPhase::Confirm,
                &received,
                &received,
                &[],
            )
            .await?;
        if !failed.is_empty() {
            return Ok(Attempt::Restart(format!(
                "confirmation failed: {}",
                reasons(&failed)
            )));
        }
        let confirmations: Vec<pb::RoundConfirmation> = confirmed
            .into_iter()
            .map(|(peer, resp)| pb::RoundConfirmation {
                node_id: peer.to_string(),
                signature: resp.confirmation,
            })
            .collect();
        let (reveals, failed) = self
            .ask(
                round_id,
                pb::AggregationPhase::Reveal,
                &received,
                &received,
                &confirmations,
            )
            .await?;
        if !failed.is_empty() {
            return Ok(Attempt::Restart(format!(
                "reveal failed: {}",
                reasons(&failed)
            )));
        }
        let mut gone: Vec<&str> = dropped.iter().map(|d| d.node_id.as_str()).collect();
        gone.sort_unstable();
        let mut masks = Vec::new();
        for (peer, resp) in reveals {
            let mut names: Vec<&str> = resp.reveals.iter().map(|r| r.dropped.as_str()).collect();
            names.sort_unstable();
            if names != gone || resp.reveals.iter().any(|r| r.values.len() != self.cells) {
                return Ok(Attempt::Restart(format!(
                    "{peer} revealed masks for other members than those that dropped out"
                )));
            }
            let Ok(seed) = <[u8; 32]>::try_from(resp.self_seed.as_slice()) else {
                return Ok(Attempt::Restart(format!(
                    "{peer} revealed no 32-byte self-mask seed"
                )));
            };
            masks.push(
                aggregate::self_mask(&self.context(round_id), &seed, self.cells)
                    .map_err(|e| FanoutError::Peer(e.to_string()))?,
            );
            masks.extend(resp.reveals.into_iter().map(|r| r.values));
        }
        aggregate::remove_masks(&mut sum, &masks).map_err(|e| FanoutError::Peer(e.to_string()))?;
        Ok(Attempt::Done {
            sum,
            received,
            dropped,
            threshold,
        })
    }
}

/// The regional tables from the unmasked sum, suppressed under `threshold`.
fn publish(
    plan: &Plan,
    layout: &RoundLayout,
    period: Period,
    sum: &[u64],
    threshold: u64,
) -> pb::StatisticsResponse {
    let tables = round::trim(aggregate::unflatten(
        sum,
        &layout.cells,
        &layout.templates,
        period,
    ));
    let published: Vec<suppress::Published> = tables
        .iter()
        .map(|t| suppress::publish(t, threshold))
        .collect();
    let sdg = published
        .iter()
        .find(|t| t.id == stats::SDG_TABLE)
        .map(stats::sdg_of_published);
    pb::StatisticsResponse {
        node_id: plan.node.node_id.to_string(),
        period: period.label(),
        tables: published.iter().map(stats::table_to_pb).collect(),
        sdg,
        policy_version: 0,
        policy_rule: String::new(),
        signature: None,
    }
}

async fn audit_round(
    node: &NodeContext,
    round: &pb::RegionalRound,
    period: Period,
    threshold: u64,
) -> Result<(), FanoutError> {
    let dropped: Vec<&str> = round.dropped.iter().map(|d| d.node_id.as_str()).collect();
    let ev = Event {
        detail: format!(
            "secure aggregation round {} for {} completed: totals of {} ({}), dropped out: {}; \
             cells below {threshold} suppressed",
            round.round_id,
            period.label(),
            round.received.len(),
            round.received.join(", "),
            if dropped.is_empty() {
                "none".to_string()
            } else {
                dropped.join(", ")
            }
        ),
        purpose: "statistics".into(),
        ..Event::new(EventKind::RequestSent)
    };
    let n = node.clone();
    tokio::task::spawn_blocking(move || n.audit.append(vec![ev], n.clock.now_secs()))
        .await
        .map_err(|e| FanoutError::Audit(e.to_string()))?
        .map_err(|e| FanoutError::Audit(e.to_string()))?;
    Ok(())
}

fn reasons(f: &[pb::PeerFailure]) -> String {
    f.iter()
        .map(|f| format!("{}: {}", f.node_id, f.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Only used to make the deadline of a round step from an inquiry.
pub fn step_wait(node: &NodeContext, inquiry: &pb::Inquiry, deadline_ms: u32) -> Duration {
    match deadline_ms {
        0 => fanout::deadline(node.fanout_deadline, inquiry),
        ms => Duration::from_millis(u64::from(ms.min(60_000))),
    }
}
