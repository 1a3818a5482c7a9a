//! A member's side of a secure-aggregation round (see [`crate::stats::round`]): decide whether
//! the calling hub may have this node's masked tables, compute and mask them, keep what was sent
//! in the round log, and say what the audit log records. Runs on the blocking pool; the peer
//! handler verifies the signed context before and appends the events before it answers.
//!
//! What leaves is a vector that looks uniformly random to anyone lacking this node's self-mask
//! seed or one of its pairwise secrets (the hub has none); in the confirm step, this node's
//! signature over the list of members the hub received; in the reveal step, once every member on
//! that list confirmed it, the seed and this node's pairwise contributions with members that
//! dropped out. Never a clear count, never a record.

use prost::Message;
use ring::rand::{SecureRandom, SystemRandom};
use tracenet_proto::v1 as pb;

use crate::audit::{Event, EventKind};
use crate::context::NodeContext;
use crate::disclose::{self, DiscloseError};
use crate::ids::NodeId;
use crate::policy::{Applicable, Denial};
use crate::stats::round::{self, RoundError};
use crate::stats::{self, aggregate};

/// Format version byte of [`pb::StoredRound`] values. Version 2 rounds hold a self-mask seed;
/// version 1 rounds (before double masking) are read but cannot be confirmed or revealed.
const ROUND_V1: u8 = 1;
const ROUND_V2: u8 = 2;

/// Why this node does not take part. Retrying helps only for `Storage`.
#[derive(Debug, thiserror::Error)]
pub enum AggregationError {
    /// The round does not fit this node's directory, layout or earlier answers.
    #[error(transparent)]
    Round(#[from] RoundError),
    /// No rule of this node's policy gives the hub aggregates for the statistics purpose.
    #[error(transparent)]
    Denied(#[from] Denial),
    /// Reading records or traces failed. Retrying may help.
    #[error(transparent)]
    Sources(#[from] DiscloseError),
    /// The round log failed. Retrying may help.
    #[error("round log: {0}")]
    Storage(String),
    /// Deriving a pairwise secret or mask failed (a member's sealing key is unusable).
    #[error("masking: {0}")]
    Masking(String),
}

impl From<AggregationError> for tonic::Status {
    fn from(e: AggregationError) -> tonic::Status {
        use tonic::Status;
        match e {
            AggregationError::Round(RoundError::BadRequest(m)) => Status::invalid_argument(m),
            AggregationError::Round(r @ RoundError::NotOurHub(_)) => {
                Status::permission_denied(r.to_string())
            }
            AggregationError::Round(r) => Status::failed_precondition(r.to_string()),
            AggregationError::Denied(d) => Status::permission_denied(d.to_string()),
            AggregationError::Sources(d) => Status::from(d),
            AggregationError::Storage(m) => {
                tracing::error!(error = %m, "round log failure");
                Status::unavailable(crate::status::STORAGE_UNAVAILABLE)
            }
            AggregationError::Masking(m) => Status::failed_precondition(m),
        }
    }
}

/// The rounds this node took part in (sled tree `stats_rounds`, by round id), flushed before
/// anything is sent.
#[derive(Debug, Clone)]
pub struct RoundLog {
    db: sled::Db,
    tree: sled::Tree,
}

impl RoundLog {
    /// The round log in `db`.
    pub fn open(db: &sled::Db) -> Result<RoundLog, sled::Error> {
        Ok(RoundLog {
            db: db.clone(),
            tree: db.open_tree("stats_rounds")?,
        })
    }

    fn prefix(hub: &NodeId, period: &str) -> Vec<u8> {
        [hub.as_str().as_bytes(), &[0], period.as_bytes(), &[0]].concat()
    }

    fn key(hub: &NodeId, period: &str, round_id: &str) -> Vec<u8> {
        [Self::prefix(hub, period), round_id.as_bytes().to_vec()].concat()
    }

    /// How many rounds of `period` this node answered for `hub`.
    pub fn count(&self, hub: &NodeId, period: &str) -> Result<usize, String> {
        let mut n = 0;
        for entry in self.tree.scan_prefix(Self::prefix(hub, period)) {
            entry.map_err(|e| e.to_string())?;
            n += 1;
        }
        Ok(n)
    }

    /// The round `round_id` of `hub` for `period`, if this node answered it.
    pub fn get(
        &self,
        hub: &NodeId,
        period: &str,
        round_id: &str,
    ) -> Result<Option<pb::StoredRound>, String> {
        let Some(v) = self
            .tree
            .get(Self::key(hub, period, round_id))
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        match v.split_first() {
            Some((&(ROUND_V1 | ROUND_V2), body)) => pb::StoredRound::decode(body)
                .map(Some)
                .map_err(|e| format!("stored round does not decode: {e}")),
            _ => Err("stored round has an unknown format version".into()),
        }
    }

    /// Whether `hub` already ran a round `round_id` with this node for a period other than
    /// `period`.
    pub fn used_in_another_period(
        &self,
        hub: &NodeId,
        period: &str,
        round_id: &str,
    ) -> Result<bool, String> {
        let hub_prefix = [hub.as_str().as_bytes(), &[0]].concat();
        for entry in self.tree.scan_prefix(&hub_prefix) {
            let (k, _) = entry.map_err(|e| e.to_string())?;
            let rest = k.get(hub_prefix.len()..).unwrap_or_default();
            let mut parts = rest.splitn(2, |b| *b == 0);
            let (Some(p), Some(id)) = (parts.next(), parts.next()) else {
                continue;
            };
            if id == round_id.as_bytes() && p != period.as_bytes() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Keeps `round`, durably.
    pub fn put(&self, hub: &NodeId, round_id: &str, round: &pb::StoredRound) -> Result<(), String> {
        // The period comes from the round kept, so a round is always found under its own.
        let mut v = vec![ROUND_V2];
        v.extend(round.encode_to_vec());
        self.tree
            .insert(Self::key(hub, &round.period, round_id), v)
            .map_err(|e| e.to_string())?;
        self.db.flush().map(|_| ()).map_err(|e| e.to_string())
    }
}

/// What to answer and what to audit.
#[derive(Debug)]
pub struct Contribution {
    /// The answer, or why not.
    pub outcome: Result<pb::AggregationResponse, AggregationError>,
    /// The request, then the disclosure or the refusal.
    pub events: Vec<Event>,
}

/// Decides and computes this node's step of a round `who` (the verified caller) runs.
pub fn contribute(
    node: &NodeContext,
    who: &NodeId,
    ctx: &pb::RequestContext,
    req: &pb::AggregationRequest,
) -> Contribution {
    let asker = disclose::asker(node, who, ctx);
    let phase = pb::AggregationPhase::try_from(req.phase)
        .unwrap_or(pb::AggregationPhase::Unspecified)
        .as_str_name()
        .trim_start_matches("AGGREGATION_PHASE_")
        .to_lowercase();
    let round_id: String = req.round_id.chars().take(round::MAX_ROUND_ID).collect();
    let request = asker.event(
        EventKind::RequestReceived,
        format!("secure aggregation round {round_id}, step {phase}"),
    );
    match step(node, who, &asker, req) {
        Ok((resp, detail)) => {
            let disclosed = Event {
                policy_version: resp.policy_version,
                policy_rule: resp.policy_rule.clone(),
                ..asker.event(
                    EventKind::Disclosure,
                    format!("secure aggregation round {round_id}, step {phase}: {detail}"),
                )
            };
            Contribution {
                outcome: Ok(resp),
                events: vec![request, disclosed],
            }
        }
        Err(e) => {
            let kind = match e {
                AggregationError::Denied(_) => EventKind::Denial,
                _ => EventKind::Refusal,
            };
            let refused = Event {
                policy_version: node.roster.view().policy.version(),
                ..asker.event(
                    kind,
                    format!("secure aggregation round {round_id}, step {phase}: {e}"),
                )
            };
            Contribution {
                outcome: Err(e),
                events: vec![request, refused],
            }
        }
    }
}

/// The step itself: the answer and what the disclosure event says.
fn step(
    node: &NodeContext,
    who: &NodeId,
    asker: &disclose::Asker,
    req: &pb::AggregationRequest,
) -> Result<(pb::AggregationResponse, String), AggregationError> {
    round::check_round_id(&req.round_id)?;
    let period = stats::period_of(req.year, req.quarter).map_err(RoundError::BadRequest)?;
    let view = node.roster.view();
    let own = &node.node_id;
    if !round::is_our_hub(&view, who, own) {
        return Err(RoundError::NotOurHub(who.to_string()).into());
    }
    // Deny by default: the same rule as for tables, for the statistics purpose only.
    let mut requester = asker.requester();
    if requester.purpose != pb::Purpose::Statistics {
        requester.purpose = pb::Purpose::Unspecified;
    }
    let rule = Applicable::find(&view.policy, &requester, pb::DataClass::StatisticsAggregate)?;
    let members = round::parse_sorted(&req.members, "members")?;
    let layout = round::layout(period);
    let digest = round::layout_digest(&layout.cells);
    let expected = round::region_members(&view, who);
    let kept = node
        .rounds
        .get(who, &period.label(), &req.round_id)
        .map_err(AggregationError::Storage)?;
    if let Some(k) = &kept
        && k.members != req.members
    {
        return Err(
            RoundError::BadRequest("round id reused with another member list".into()).into(),
        );
    }
    if kept.is_none()
        && node
            .rounds
            .used_in_another_period(who, &period.label(), &req.round_id)
            .map_err(AggregationError::Storage)?
    {
        // The masks are bound to the period too (round::round_context); this refuses the
        // reuse outright.
        return Err(RoundError::BadRequest("round id reused with another period".into()).into());
    }
    // Every mask of this round derives from its whole context, not from the id alone.
    let context = round::round_context(
        who,
        &req.round_id,
        &period.label(),
        &members,
        &req.layout_digest,
    );
    let secret_with = |other: &NodeId| -> Result<[u8; 32], AggregationError> {
        let key = view
            .hubs
            .sealing_keys
            .get(other)
            .ok_or_else(|| AggregationError::Masking(format!("{other} has no sealing key")))?;
        node.sealing
            .pairwise_secret(own, other, key)
            .map_err(|e| AggregationError::Masking(e.to_string()))
    };
    let base = pb::AggregationResponse {
        node_id: own.to_string(),
        round_id: req.round_id.clone(),
        threshold: rule.statistics_min_cell(),
        policy_version: rule.policy_version(),
        policy_rule: rule.rule_id().to_owned(),
        ..Default::default()
    };
    match pb::AggregationPhase::try_from(req.phase) {
        Ok(pb::AggregationPhase::Mask) => {
            round::check_mask(own, &members, &expected, &req.layout_digest, &digest)?;
            let masked = match kept {
                Some(k) => k.masked,
                None => {
                    // A budget per hub and period: each new round is a new sum whose difference
                    // with another could isolate a member, and each is kept here.
                    let answered = node
                        .rounds
                        .count(who, &period.label())
                        .map_err(AggregationError::Storage)?;
                    if answered >= round::MAX_ROUNDS_PER_PERIOD {
                        return Err(RoundError::Budget(period.label()).into());
                    }
                    let (records, traces) = disclose::statistics_sources(node)?;
                    let report = stats::report(period, &records, &traces, node.clock.now_secs());
                    let cells = aggregate::flatten(&report.tables, &layout.cells);
                    let pairwise = members
                        .iter()
                        .filter(|m| *m != own)
                        .map(|m| Ok((m.to_string(), secret_with(m)?)))
                        .collect::<Result<Vec<_>, AggregationError>>()?;
                    let mut seed = [0u8; 32];
                    SystemRandom::new()
                        .fill(&mut seed)
                        .map_err(|_| AggregationError::Masking("no randomness".into()))?;
                    let masked =
                        aggregate::masked(&context, own.as_str(), &cells, &seed, &pairwise)
                            .map_err(|e| AggregationError::Masking(e.to_string()))?;
                    node.rounds
                        .put(
                            who,
                            &req.round_id,
                            &pb::StoredRound {
                                hub: who.to_string(),
                                period: period.label(),
                                members: req.members.clone(),
                                masked: masked.clone(),
                                revealed_for: Vec::new(),
                                at: node.clock.now_secs(),
                                threshold: base.threshold,
                                policy_version: base.policy_version,
                                policy_rule: base.policy_rule.clone(),
                                self_seed: seed.to_vec(),
                                confirmed: Vec::new(),
                                sealing_keys_digest: round::sealing_keys_digest(
                                    &view.hubs.sealing_keys,
                                    &members,
                                ),
                            },
                        )
                        .map_err(AggregationError::Storage)?;
                    masked
                }
            };
            let detail = format!(
                "masked tables of {} ({} cells) for {} members, no record and no count in the clear",
                period.label(),
                masked.len(),
                members.len()
            );
            Ok((pb::AggregationResponse { masked, ..base }, detail))
        }
        Ok(pb::AggregationPhase::Confirm) => {
            let mut k = sent_in(kept)?;
            if !k.confirmed.is_empty() && k.confirmed != req.received {
                return Err(RoundError::Reveal(
                    "this node confirmed another list for that round".into(),
                )
                .into());
            }
            let Listed {
                received,
                dropped,
                statement,
            } = listed(req, own, who, period, &members)?;
            if k.confirmed.is_empty() {
                k.confirmed = req.received.clone();
                node.rounds
                    .put(who, &req.round_id, &k)
                    .map_err(AggregationError::Storage)?;
            }
            let detail = format!(
                "confirmed the {} members received ({} dropped out), no record and no count",
                received.len(),
                dropped.len()
            );
            Ok((
                pb::AggregationResponse {
                    confirmation: node.signing.sign_round_confirmation(&statement),
                    ..base
                },
                detail,
            ))
        }
        Ok(pb::AggregationPhase::Reveal) => {
            let mut k = sent_in(kept)?;
            if k.confirmed.is_empty() || k.confirmed != req.received {
                return Err(RoundError::Reveal(
                    "this node did not confirm that list for that round".into(),
                )
                .into());
            }
            let Listed {
                received,
                dropped,
                statement,
            } = listed(req, own, who, period, &members)?;
            if round::sealing_keys_digest(&view.hubs.sealing_keys, &members)
                != k.sealing_keys_digest
            {
                return Err(RoundError::Reveal(
                    "a member's sealing key changed since this node masked its tables; start a \
                     new round"
                        .into(),
                )
                .into());
            }
            let keys = node.roster.keys();
            round::check_confirmations(
                &received,
                |m| {
                    req.confirmations
                        .iter()
                        .find(|c| c.node_id == m.as_str())
                        .map(|c| c.signature.as_slice())
                },
                // Its own confirmation is the list it kept (checked above); the directory's
                // keys are the other members'.
                |m, sig| m == own || keys.verify_round_confirmation(m, &statement, sig).is_ok(),
            )?;
            let cells = k.masked.len();
            let reveals = dropped
                .iter()
                .map(|d| {
                    let values = aggregate::pair_contribution(
                        &context,
                        own.as_str(),
                        d.as_str(),
                        &secret_with(d)?,
                        cells,
                    )
                    .map_err(|e| AggregationError::Masking(e.to_string()))?;
                    Ok(pb::DroppedMask {
                        dropped: d.to_string(),
                        values,
                    })
                })
                .collect::<Result<Vec<_>, AggregationError>>()?;
            if k.revealed_for.is_empty() {
                k.revealed_for = req.received.clone();
                node.rounds
                    .put(who, &req.round_id, &k)
                    .map_err(AggregationError::Storage)?;
            }
            let names: Vec<String> = dropped.iter().map(ToString::to_string).collect();
            let detail = format!(
                "the seed of its self mask, and pairwise masks with {} (dropped out); no record \
                 and no count",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            );
            Ok((
                pb::AggregationResponse {
                    reveals,
                    self_seed: k.self_seed,
                    ..base
                },
                detail,
            ))
        }
        _ => Err(RoundError::BadRequest("phase must be MASK, CONFIRM or REVEAL".into()).into()),
    }
}

/// The received list of a confirm or reveal step, checked ([`round::check_confirm`]).
struct Listed {
    received: Vec<NodeId>,
    /// The members off the list.
    dropped: Vec<NodeId>,
    /// What a confirmation of the list signs.
    statement: Vec<u8>,
}

fn listed(
    req: &pb::AggregationRequest,
    own: &NodeId,
    hub: &NodeId,
    period: stats::Period,
    members: &[NodeId],
) -> Result<Listed, AggregationError> {
    let received = round::parse_sorted(&req.received, "received")?;
    let dropped = round::check_confirm(own, members, &received)?;
    let statement =
        round::confirmation_statement(hub, &req.round_id, &period.label(), members, &received);
    Ok(Listed {
        received,
        dropped,
        statement,
    })
}

/// The round this node sent its vector in, if it can go on with it: kept, and with a self-mask
/// seed (a round kept before double masking cannot).
fn sent_in(kept: Option<pb::StoredRound>) -> Result<pb::StoredRound, AggregationError> {
    match kept {
        None => Err(RoundError::Reveal("this node sent nothing in that round".into()).into()),
        Some(k) if k.self_seed.len() != 32 => Err(RoundError::Reveal(
            "that round was masked by an earlier version; start a new one".into(),
        )
        .into()),
        Some(k) => Ok(k),
    }
}
