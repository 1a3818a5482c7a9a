//! Federated calls made on behalf of this node's users: one signed request context, sent to
//! every known peer in parallel with one deadline; answers merged, responses' signatures checked,
//! and every peer that did not answer in time (or answered badly) named in the result.

use std::time::Duration;

use prost::Message;
use tokio::task::JoinSet;
use tracenet_proto::v1 as pb;

use crate::audit::Event;
use crate::context::NodeContext;
use crate::ids::{NodeId, new_request_id};

/// Longest deadline a caller may ask for.
pub const MAX_DEADLINE: Duration = Duration::from_secs(30);

/// Why a federated call could not be made at all.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    /// The inquiry is incomplete. Not retryable as is.
    #[error("{0}")]
    BadArgument(String),
    /// The request could not be audited (nothing was sent), or what came back could not be
    /// stored. Retrying may help.
    #[error("local storage unavailable: {0}")]
    Audit(String),
}

fn signed_context(
    node: &NodeContext,
    inquiry: &pb::Inquiry,
) -> Result<(pb::RequestContext, pb::SignedContext), FanoutError> {
    if inquiry.purpose == 0 || pb::Purpose::try_from(inquiry.purpose).is_err() {
        return Err(FanoutError::BadArgument(
            "inquiry.purpose is required".into(),
        ));
    }
    if pb::AgencyKind::try_from(inquiry.agency_kind).is_err() {
        return Err(FanoutError::BadArgument(
            "unknown inquiry.agency_kind".into(),
        ));
    }
    let rc = pb::RequestContext {
        request_id: new_request_id(),
        requester_node: node.node_id.to_string(),
        agency_kind: inquiry.agency_kind,
        purpose: inquiry.purpose,
        legal_basis: inquiry.legal_basis.clone(),
        case_reference: inquiry.case_reference.clone(),
        issued_at: node.clock.now_secs(),
    };
    let signed = node.signing.sign_context(&rc);
    Ok((rc, signed))
}

fn deadline(node: &NodeContext, inquiry: &pb::Inquiry) -> Duration {
    match inquiry.deadline_ms {
        0 => node.fanout_deadline,
        ms => Duration::from_millis(u64::from(ms)).min(MAX_DEADLINE),
    }
}

async fn audit_sent(
    node: &NodeContext,
    rc: &pb::RequestContext,
    what: String,
) -> Result<(), FanoutError> {
    let n = node.clone();
    let ev = Event {
        kind: "request_sent",
        peer: "all peers".into(),
        request_id: rc.request_id.clone(),
        purpose: pb::Purpose::try_from(rc.purpose)
            .unwrap_or(pb::Purpose::Unspecified)
            .as_str_name()
            .to_owned(),
        detail: what,
        ..Default::default()
    };
    tokio::task::spawn_blocking(move || n.audit.append(vec![ev], n.clock.now_secs()))
        .await
        .map_err(|e| FanoutError::Audit(e.to_string()))?
        .map(|_| ())
        .map_err(|e| FanoutError::Audit(e.to_string()))
}

fn failure(node: &NodeId, reason: impl Into<String>) -> pb::PeerFailure {
    pb::PeerFailure {
        node_id: node.to_string(),
        reason: reason.into(),
    }
}

fn status_reason(s: &tonic::Status) -> String {
    match s.code() {
        tonic::Code::DeadlineExceeded => "deadline exceeded".into(),
        tonic::Code::Unavailable => "unavailable".into(),
        code => format!("refused ({code:?}): {}", s.message()),
    }
}

/// Hit/no-hit lookup across all known peers.
pub async fn lookup(
    node: &NodeContext,
    inquiry: pb::Inquiry,
    serial_number: String,
    manufacturer: String,
) -> Result<pb::FederatedLookupResponse, FanoutError> {
    if crate::serial::normalise(&serial_number).is_none() {
        return Err(FanoutError::BadArgument(
            "serial_number has nothing to search for".into(),
        ));
    }
    let (rc, signed) = signed_context(node, &inquiry)?;
    audit_sent(node, &rc, "federated lookup".into()).await?;
    let wait = deadline(node, &inquiry);
    let mut tasks = JoinSet::new();
    for peer in node.peers.known() {
        let (node, rid) = (node.clone(), rc.request_id.clone());
        let req = pb::LookupRequest {
            context: Some(signed.clone()),
            serial_number: serial_number.clone(),
            manufacturer: manufacturer.clone(),
        };
        tasks.spawn(async move {
            let mut client = match node.peers.get(&peer) {
                Ok(c) => c,
                Err(e) => return Err(failure(&peer, e.to_string())),
            };
            let mut resp = match tokio::time::timeout(wait, client.lookup(req)).await {
                Err(_) => return Err(failure(&peer, "deadline exceeded")),
                Ok(Err(s)) => return Err(failure(&peer, status_reason(&s))),
                Ok(Ok(r)) => r.into_inner(),
            };
            let sig = resp.signature.take();
            node.roster
                .keys()
                .verify_response(&peer, &rid, &resp.encode_to_vec(), sig.as_ref())
                .map_err(|e| failure(&peer, format!("response refused: {e}")))?;
            Ok(pb::PeerAnswer {
                node_id: peer.to_string(),
                hit: resp.hit,
                hits: resp.hits,
            })
        });
    }
    let (answers, failed) = gather(tasks, |a: &pb::PeerAnswer| a.node_id.clone()).await;
    let now = node.clock.now_secs();
    let copies: Vec<pb::ReceivedRecord> = answers
        .iter()
        .flat_map(|a| a.hits.iter())
        .map(|h| {
            received(
                h.reference.clone(),
                h.disclosed.clone(),
                h.handling.clone(),
                (h.policy_version, &h.policy_rule),
                now,
                &rc.request_id,
            )
        })
        .collect();
    keep_copies(node, copies).await?;
    Ok(pb::FederatedLookupResponse {
        request_id: rc.request_id,
        answers,
        failed,
    })
}

/// Waits for every peer's task; answers and failures sorted by node.
async fn gather<A: 'static>(
    mut tasks: JoinSet<Result<A, pb::PeerFailure>>,
    node_of: impl Fn(&A) -> String,
) -> (Vec<A>, Vec<pb::PeerFailure>) {
    let (mut answers, mut failed) = (Vec::new(), Vec::new());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(a)) => answers.push(a),
            Ok(Err(f)) => failed.push(f),
            Err(_) => {} // a task panicked: nothing to report for it beyond its absence
        }
    }
    answers.sort_by_key(|a| node_of(a));
    failed.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    (answers, failed)
}

/// A received copy as kept by the recipient.
fn received(
    reference: Option<pb::RecordRef>,
    record: Option<pb::SeizureRecord>,
    handling: Option<pb::Handling>,
    (policy_version, policy_rule): (u64, &str),
    now: i64,
    request_id: &str,
) -> pb::ReceivedRecord {
    pb::ReceivedRecord {
        reference,
        record,
        handling,
        policy_version,
        policy_rule: policy_rule.to_owned(),
        received_at: now,
        request_id: request_id.to_owned(),
        forwarded_by: String::new(),
    }
}

/// Keeps what was received, with its handling codes, so the owner can later retract it.
async fn keep_copies(
    node: &NodeContext,
    copies: Vec<pb::ReceivedRecord>,
) -> Result<(), FanoutError> {
    if copies.is_empty() {
        return Ok(());
    }
    let n = node.clone();
    tokio::task::spawn_blocking(move || n.ledger.store_received(&copies))
        .await
        .map_err(|e| FanoutError::Audit(e.to_string()))?
        .map_err(|e| FanoutError::Audit(e.to_string()))
}

/// Record query across all known peers.
pub async fn query(
    node: &NodeContext,
    inquiry: pb::Inquiry,
    filter: pb::RecordFilter,
    limit_per_peer: u32,
) -> Result<pb::FederatedQueryResponse, FanoutError> {
    let (rc, signed) = signed_context(node, &inquiry)?;
    audit_sent(node, &rc, "federated query".into()).await?;
    let wait = deadline(node, &inquiry);
    let mut tasks = JoinSet::new();
    for peer in node.peers.known() {
        let (node, rid) = (node.clone(), rc.request_id.clone());
        let req = pb::QueryRecordsRequest {
            context: Some(signed.clone()),
            filter: Some(filter.clone()),
            limit: limit_per_peer,
        };
        tasks.spawn(async move {
            let mut client = node
                .peers
                .get(&peer)
                .map_err(|e| failure(&peer, e.to_string()))?;
            let collect = async {
                let mut stream = client.query_records(req).await?.into_inner();
                let mut records = Vec::new();
                while let Some(r) = stream.message().await? {
                    records.push(r);
                }
                Ok::<_, tonic::Status>(records)
            };
            let records = match tokio::time::timeout(wait, collect).await {
                Err(_) => return Err(failure(&peer, "deadline exceeded")),
                Ok(Err(s)) => return Err(failure(&peer, status_reason(&s))),
                Ok(Ok(r)) => r,
            };
            let mut verified = Vec::with_capacity(records.len());
            for mut r in records {
                let sig = r.signature.take();
                node.roster
                    .keys()
                    .verify_response(&peer, &rid, &r.encode_to_vec(), sig.as_ref())
                    .map_err(|e| failure(&peer, format!("response refused: {e}")))?;
                r.signature = sig;
                verified.push(r);
            }
            Ok(pb::PeerRecords {
                node_id: peer.to_string(),
                records: verified,
            })
        });
    }
    let (answers, failed) = gather(tasks, |a: &pb::PeerRecords| a.node_id.clone()).await;
    let now = node.clock.now_secs();
    let copies: Vec<pb::ReceivedRecord> = answers
        .iter()
        .flat_map(|a| a.records.iter())
        .map(|r| {
            received(
                r.reference.clone(),
                r.record.clone(),
                r.handling.clone(),
                (r.policy_version, &r.policy_rule),
                now,
                &rc.request_id,
            )
        })
        .collect();
    keep_copies(node, copies).await?;
    Ok(pb::FederatedQueryResponse {
        request_id: rc.request_id,
        answers,
        failed,
    })
}
