//! Federated calls made on behalf of this node's users: one signed request context, sent to
//! every known peer in parallel with one deadline; answers merged, responses' signatures checked,
//! and every peer that did not answer in time (or answered badly) named in the result.
//!
//! What each peer's reply means is decided by pure functions ([`classify_lookup`],
//! [`classify_query`]: answered and signed by that peer for this request, or a failure with its
//! reason), as are the request context, the deadline and the received copies to keep. The
//! drivers ([`lookup`], [`query`]) audit the request before it is sent, make the calls, and keep
//! what came back.
//!
//! A peer's answer is read only up to what was asked: a query stream is read up to the limit
//! sent to the peer and a byte [`Budget`], a lookup answer up to [`MAX_LOOKUP_HITS`] hits; a
//! peer sending more is a named failure and nothing of its answer is kept, so a hostile peer
//! cannot grow this node's memory or its store of received copies.

use std::time::Duration;

use prost::Message;
use tokio::task::JoinSet;
use tracenet_proto::v1 as pb;

use crate::audit::{Event, EventKind};
use crate::context::NodeContext;
use crate::envelope::{PeerKeys, SignedRequest};
use crate::ids::{NodeId, new_request_id};
use crate::provenance;

/// Longest deadline a caller may ask for.
pub const MAX_DEADLINE: Duration = Duration::from_secs(30);
/// Records asked of each peer when a query names no limit.
pub const DEFAULT_LIMIT_PER_PEER: u32 = 100;
/// Most records asked of each peer (what a peer's disclosure returns at most, too).
pub const MAX_LIMIT_PER_PEER: u32 = crate::disclose::MAX_QUERY as u32;
/// Most hits accepted in one peer's lookup answer (what a peer's lookup returns at most).
pub const MAX_LOOKUP_HITS: usize = crate::disclose::MAX_LOOKUP;
/// Most encoded bytes of records read from one peer for one query. Honest answers stay far
/// below it; it bounds what a peer streaming large records can make this node hold.
pub const MAX_BYTES_PER_PEER: usize = 16 * 1024 * 1024;

/// Why a federated call could not be made at all.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    /// The inquiry is incomplete. Not retryable as is.
    #[error("{0}")]
    BadArgument(String),
    /// The request could not be audited, so nothing was sent. Retrying may help.
    #[error("audit log unavailable: {0}")]
    Audit(String),
    /// The answers came back but the copies could not be kept. Retrying may help.
    #[error("local storage unavailable: {0}")]
    Storage(String),
    /// The one peer asked refused, failed or answered unusably (who and why).
    #[error("peer {0}")]
    Peer(String),
    /// A regional fan-out was asked of a node without a hub (or whose hub is unknown). Not
    /// retryable until the node is configured with one.
    #[error("{0}")]
    NoHub(String),
}

// ---- decisions (pure) ----

/// The request context of an inquiry by this node (`me`), under `request_id`, issued `now`.
pub fn request_context(
    me: &NodeId,
    inquiry: &pb::Inquiry,
    request_id: String,
    now: i64,
) -> Result<pb::RequestContext, FanoutError> {
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
    Ok(pb::RequestContext {
        request_id,
        requester_node: me.to_string(),
        agency_kind: inquiry.agency_kind,
        purpose: inquiry.purpose,
        legal_basis: inquiry.legal_basis.clone(),
        case_reference: inquiry.case_reference.clone(),
        issued_at: now,
        // Set when the context is signed for its request body.
        body_sha256: Vec::new(),
    })
}

/// How long to wait for peers: the inquiry's deadline (capped), else the node's default.
pub fn deadline(default: Duration, inquiry: &pb::Inquiry) -> Duration {
    match inquiry.deadline_ms {
        0 => default,
        ms => Duration::from_millis(u64::from(ms)).min(MAX_DEADLINE),
    }
}

/// The audit event of a federated request, appended before anything is sent.
pub fn sent_event(rc: &pb::RequestContext, what: &str) -> Event {
    Event {
        peer: "all peers".into(),
        request_id: rc.request_id.clone(),
        purpose: pb::Purpose::try_from(rc.purpose)
            .unwrap_or(pb::Purpose::Unspecified)
            .as_str_name()
            .to_owned(),
        detail: what.to_owned(),
        ..Event::new(EventKind::RequestSent)
    }
}

/// How one peer's call ended, before its answer is checked.
#[derive(Debug)]
pub enum Reply<T> {
    /// No connection could be made (the reason).
    Unreachable(String),
    /// The deadline passed first.
    TimedOut,
    /// The peer refused or failed.
    Refused(tonic::Status),
    /// The peer sent more than it was asked for; reading stopped and its answer is dropped.
    Overran(String),
    /// The peer answered.
    Answered(T),
}

/// The limit asked of each peer for a query's `limit_per_peer` (0: the default), capped.
pub fn asked_limit(asked: u32) -> u32 {
    match asked {
        0 => DEFAULT_LIMIT_PER_PEER,
        n => n.min(MAX_LIMIT_PER_PEER),
    }
}

/// What one peer's streamed query answer may hold: at most `records` records (the limit it was
/// sent) and `bytes` encoded bytes. Reading stops at the first record beyond either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Most records.
    pub records: usize,
    /// Most encoded bytes, all records together.
    pub bytes: usize,
}

impl Budget {
    /// The budget of a query that asked each peer for `limit` records.
    pub fn for_limit(limit: u32) -> Budget {
        Budget {
            records: limit as usize,
            bytes: MAX_BYTES_PER_PEER,
        }
    }

    /// Whether one more record of `len` bytes fits after `taken` records of `used` bytes;
    /// otherwise why not.
    pub fn admit(&self, taken: usize, used: usize, len: usize) -> Result<(), String> {
        if taken >= self.records {
            return Err(format!(
                "sent more than the {} records asked for",
                self.records
            ));
        }
        if used.saturating_add(len) > self.bytes {
            return Err(format!("sent more than {} bytes of records", self.bytes));
        }
        Ok(())
    }
}

/// A peer that did not answer, and why.
pub(crate) fn failure(node: &NodeId, reason: impl Into<String>) -> pb::PeerFailure {
    pb::PeerFailure {
        node_id: node.to_string(),
        reason: reason.into(),
    }
}

pub(crate) fn status_reason(s: &tonic::Status) -> String {
    match s.code() {
        tonic::Code::DeadlineExceeded => "deadline exceeded".into(),
        tonic::Code::Unavailable => "unavailable".into(),
        code => format!("refused ({code:?}): {}", s.message()),
    }
}

/// The answer inside a reply, or the failure that names the peer and why.
pub(crate) fn answered<T>(peer: &NodeId, reply: Reply<T>) -> Result<T, pb::PeerFailure> {
    match reply {
        Reply::Unreachable(reason) => Err(failure(peer, reason)),
        Reply::TimedOut => Err(failure(peer, "deadline exceeded")),
        Reply::Refused(s) => Err(failure(peer, status_reason(&s))),
        Reply::Overran(why) => Err(failure(peer, format!("answer dropped: {why}"))),
        Reply::Answered(a) => Ok(a),
    }
}

/// The owner's statement of one answered item, checked (see [`provenance::verify_answer`]): a
/// peer answers only for records it owns, signed for this node and this request.
fn owner_statement(
    keys: &PeerKeys,
    signed: Option<&pb::SignedDisclosure>,
    (peer, me, request_id): (&NodeId, &NodeId, &str),
) -> Result<pb::DisclosureStatement, pb::PeerFailure> {
    provenance::verify_answer(keys, signed, (peer, me, request_id))
        .map_err(|e| failure(peer, format!("response refused: {e}")))
}

/// A peer's lookup reply to this node (`me`): its hits if it answered and signed the answer for
/// `request_id` with its own key, and each hit carries its own (the owner's) signed statement,
/// otherwise a failure naming it. What each hit shows is what its statement says.
pub fn classify_lookup(
    (peer, me): (&NodeId, &NodeId),
    request_id: &str,
    keys: &PeerKeys,
    reply: Reply<pb::LookupResponse>,
) -> Result<pb::PeerAnswer, pb::PeerFailure> {
    let mut resp = answered(peer, reply)?;
    if resp.hits.len() > MAX_LOOKUP_HITS {
        return Err(failure(
            peer,
            format!("answer dropped: more than {MAX_LOOKUP_HITS} hits"),
        ));
    }
    let sig = resp.signature.take();
    keys.verify_response(peer, request_id, &resp.encode_to_vec(), sig.as_ref())
        .map_err(|e| failure(peer, format!("response refused: {e}")))?;
    for h in &mut resp.hits {
        let st = owner_statement(keys, h.owner_disclosure.as_ref(), (peer, me, request_id))?;
        h.reference = st.reference;
        h.disclosed = st.record;
        h.handling = st.handling;
        h.redacted_fields = st.redacted_fields;
        h.policy_version = st.policy_version;
        h.policy_rule = st.policy_rule;
    }
    Ok(pb::PeerAnswer {
        node_id: peer.to_string(),
        hit: resp.hit,
        hits: resp.hits,
    })
}

/// A peer's query reply to this node (`me`): its records if it answered and signed each one for
/// `request_id` with its own key and each carries its own (the owner's) signed statement (one
/// bad signature refuses them all), otherwise a failure naming it. What each record shows is
/// what its statement says.
pub fn classify_query(
    (peer, me): (&NodeId, &NodeId),
    request_id: &str,
    keys: &PeerKeys,
    reply: Reply<Vec<pb::DisclosedRecord>>,
) -> Result<pb::PeerRecords, pb::PeerFailure> {
    let records = answered(peer, reply)?;
    let mut verified = Vec::with_capacity(records.len());
    for mut r in records {
        let sig = r.signature.take();
        keys.verify_response(peer, request_id, &r.encode_to_vec(), sig.as_ref())
            .map_err(|e| failure(peer, format!("response refused: {e}")))?;
        r.signature = sig;
        let st = owner_statement(keys, r.owner_disclosure.as_ref(), (peer, me, request_id))?;
        r.reference = st.reference;
        r.record = st.record;
        r.handling = st.handling;
        r.redacted_fields = st.redacted_fields;
        r.policy_version = st.policy_version;
        r.policy_rule = st.policy_rule;
        verified.push(r);
    }
    Ok(pb::PeerRecords {
        node_id: peer.to_string(),
        records: verified,
    })
}

/// The copy kept of an item whose owner's statement was verified by the classification.
fn copy_of(signed: Option<&pb::SignedDisclosure>, now: i64) -> Option<pb::ReceivedRecord> {
    let signed = signed?.clone();
    let st = pb::DisclosureStatement::decode(signed.statement.as_slice()).ok()?;
    Some(provenance::copy_of(st, signed, now, None))
}

/// The copies to keep of every hit received, as their owners' statements say, with the
/// owner's signature and the expiry its retention sets. A "hit only" answer holds nothing to
/// keep.
pub fn lookup_copies(answers: &[pb::PeerAnswer], now: i64) -> Vec<pb::ReceivedRecord> {
    answers
        .iter()
        .flat_map(|a| a.hits.iter())
        .filter(|h| !h.hit_only)
        .filter_map(|h| copy_of(h.owner_disclosure.as_ref(), now))
        .collect()
}

/// The copies to keep of every record received, as their owners' statements say, with the
/// owner's signature and the expiry its retention sets. A "hit only" answer holds nothing to
/// keep.
pub fn query_copies(answers: &[pb::PeerRecords], now: i64) -> Vec<pb::ReceivedRecord> {
    answers
        .iter()
        .flat_map(|a| a.records.iter())
        .filter(|r| !r.hit_only)
        .filter_map(|r| copy_of(r.owner_disclosure.as_ref(), now))
        .collect()
}

// ---- drivers ----

/// Checks the inquiry, signs its context for `request` (binding its body) and audits the
/// request before anything is sent.
pub(crate) async fn open_request<R: SignedRequest>(
    node: &NodeContext,
    inquiry: &pb::Inquiry,
    what: &str,
    request: &mut R,
) -> Result<pb::RequestContext, FanoutError> {
    let rc = request_context(
        &node.node_id,
        inquiry,
        new_request_id(),
        node.clock.now_secs(),
    )?;
    request.sign_with(&node.signing, rc.clone());
    let (n, ev) = (node.clone(), sent_event(&rc, what));
    tokio::task::spawn_blocking(move || n.audit.append(vec![ev], n.clock.now_secs()))
        .await
        .map_err(|e| FanoutError::Audit(e.to_string()))?
        .map_err(|e| FanoutError::Audit(e.to_string()))?;
    Ok(rc)
}

/// Runs `call` against `peer` within `wait`, saying how it ended.
pub(crate) async fn call_peer<T, F>(
    node: &NodeContext,
    peer: &NodeId,
    wait: Duration,
    call: impl FnOnce(
        tracenet_proto::v1::peer_exchange_client::PeerExchangeClient<
            crate::hub::channel::PeerChannel,
        >,
    ) -> F,
) -> Reply<T>
where
    F: Future<Output = Result<T, tonic::Status>>,
{
    let client = match node.peers.get(peer) {
        Ok(c) => c,
        Err(e) => return Reply::Unreachable(e.to_string()),
    };
    match tokio::time::timeout(wait, call(client)).await {
        Err(_) => Reply::TimedOut,
        Ok(Err(s)) => Reply::Refused(s),
        Ok(Ok(a)) => Reply::Answered(a),
    }
}

/// Hit/no-hit lookup across all known peers. `kind` is the `LookupKind` of the term (a serial
/// number or a ballistic reference), sent as asked.
pub async fn lookup(
    node: &NodeContext,
    inquiry: pb::Inquiry,
    serial_number: String,
    manufacturer: String,
    kind: i32,
) -> Result<pb::FederatedLookupResponse, FanoutError> {
    if crate::serial::normalise(&serial_number).is_none() {
        return Err(FanoutError::BadArgument(
            "serial_number has nothing to search for".into(),
        ));
    }
    if pb::LookupKind::try_from(kind).is_err() {
        return Err(FanoutError::BadArgument("unknown lookup kind".into()));
    }
    let mut request = pb::LookupRequest {
        context: None,
        serial_number,
        manufacturer,
        kind,
    };
    let via_hub = inquiry.via_hub;
    let rc = open_request(node, &inquiry, "federated lookup", &mut request).await?;
    let wait = deadline(node.fanout_deadline, &inquiry);
    if via_hub {
        let (answers, failed) =
            crate::hub::regional::lookup(node, &request, &rc.request_id, wait).await?;
        keep_copies(node, lookup_copies(&answers, node.clock.now_secs())).await?;
        return Ok(pb::FederatedLookupResponse {
            request_id: rc.request_id,
            answers,
            failed,
        });
    }
    let keys = node.roster.keys();
    let mut tasks = JoinSet::new();
    for peer in node.peers.record_holders() {
        let (node, keys, rid) = (node.clone(), keys.clone(), rc.request_id.clone());
        let req = request.clone();
        tasks.spawn(async move {
            let reply = call_peer(&node, &peer, wait, |mut client| async move {
                Ok(client.lookup(req).await?.into_inner())
            })
            .await;
            classify_lookup((&peer, &node.node_id), &rid, &keys, reply)
        });
    }
    let (answers, failed) = gather(tasks, |a: &pb::PeerAnswer| a.node_id.clone()).await;
    let copies = lookup_copies(&answers, node.clock.now_secs());
    keep_copies(node, copies).await?;
    Ok(pb::FederatedLookupResponse {
        request_id: rc.request_id,
        answers,
        failed,
    })
}

/// Asks one peer for its statistical tables of a period (purpose statistics, or border risk
/// analysis for a route report; any other purpose stated in the inquiry is replaced by
/// statistics). The answer counts only if signed by that peer for this request and about its
/// own records.
pub async fn statistics(
    node: &NodeContext,
    peer: &NodeId,
    mut inquiry: pb::Inquiry,
    year: u32,
    quarter: u32,
) -> Result<pb::StatisticsResponse, FanoutError> {
    if inquiry.purpose != pb::Purpose::BorderRiskAnalysis as i32 {
        inquiry.purpose = pb::Purpose::Statistics as i32;
    }
    let mut request = pb::StatisticsRequest {
        context: None,
        year,
        quarter,
    };
    let what = format!("statistics tables from {peer}");
    let rc = open_request(node, &inquiry, &what, &mut request).await?;
    let wait = deadline(node.fanout_deadline, &inquiry);
    let reply = call_peer(node, peer, wait, |mut client| async move {
        Ok(client.statistics_tables(request).await?.into_inner())
    })
    .await;
    let keys = node.roster.keys();
    let failed = |reason: String| FanoutError::Peer(format!("{peer}: {reason}"));
    let resp = match reply {
        Reply::Answered(r) => r,
        Reply::Refused(s) => return Err(failed(status_reason(&s))),
        Reply::TimedOut => return Err(failed("deadline exceeded".into())),
        Reply::Unreachable(why) | Reply::Overran(why) => return Err(failed(why)),
    };
    let mut body = resp.clone();
    let sig = body.signature.take();
    keys.verify_response(peer, &rc.request_id, &body.encode_to_vec(), sig.as_ref())
        .map_err(|e| failed(format!("bad signature: {e}")))?;
    if resp.node_id != peer.to_string() {
        return Err(failed("tables about another node".into()));
    }
    Ok(resp)
}

/// Waits for every peer's task; answers and failures sorted by node.
pub(crate) async fn gather<A: 'static>(
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
        .map_err(|e| FanoutError::Storage(e.to_string()))?
        .map_err(|e| FanoutError::Storage(e.to_string()))
}

/// Reads a peer's record stream within `budget`. Beyond it, reading stops (dropping the stream
/// cancels the call, so the peer stops sending) and the reason is returned instead of records.
async fn read_capped(
    mut stream: tonic::Streaming<pb::DisclosedRecord>,
    budget: Budget,
) -> Result<Result<Vec<pb::DisclosedRecord>, String>, tonic::Status> {
    let (mut records, mut used) = (Vec::new(), 0usize);
    while let Some(r) = stream.message().await? {
        let len = r.encoded_len();
        if let Err(why) = budget.admit(records.len(), used, len) {
            return Ok(Err(why));
        }
        used += len;
        records.push(r);
    }
    Ok(Ok(records))
}

/// Record query across all known peers.
pub async fn query(
    node: &NodeContext,
    inquiry: pb::Inquiry,
    filter: pb::RecordFilter,
    limit_per_peer: u32,
) -> Result<pb::FederatedQueryResponse, FanoutError> {
    // The limit is sent explicitly (and signed), so what a peer may return is known here and
    // enforced.
    let limit = asked_limit(limit_per_peer);
    let mut request = pb::QueryRecordsRequest {
        context: None,
        filter: Some(filter),
        limit,
    };
    let rc = open_request(node, &inquiry, "federated query", &mut request).await?;
    let wait = deadline(node.fanout_deadline, &inquiry);
    let keys = node.roster.keys();
    let budget = Budget::for_limit(limit);
    let mut tasks = JoinSet::new();
    for peer in node.peers.record_holders() {
        let (node, keys, rid) = (node.clone(), keys.clone(), rc.request_id.clone());
        let req = request.clone();
        tasks.spawn(async move {
            let reply = call_peer(&node, &peer, wait, |mut client| async move {
                let stream = client.query_records(req).await?.into_inner();
                read_capped(stream, budget).await
            })
            .await;
            let reply = match reply {
                Reply::Answered(Err(why)) => Reply::Overran(why),
                Reply::Answered(Ok(records)) => Reply::Answered(records),
                Reply::Unreachable(r) => Reply::Unreachable(r),
                Reply::TimedOut => Reply::TimedOut,
                Reply::Refused(s) => Reply::Refused(s),
                Reply::Overran(why) => Reply::Overran(why),
            };
            classify_query((&peer, &node.node_id), &rid, &keys, reply)
        });
    }
    let (answers, failed) = gather(tasks, |a: &pb::PeerRecords| a.node_id.clone()).await;
    let copies = query_copies(&answers, node.clock.now_secs());
    keep_copies(node, copies).await?;
    Ok(pb::FederatedQueryResponse {
        request_id: rc.request_id,
        answers,
        failed,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::envelope::SigningKey;
    use crate::fixtures::node;

    fn key(id: &str) -> SigningKey {
        let pk8 = SigningKey::generate_pkcs8().unwrap();
        SigningKey::from_pkcs8(&pk8, node(id)).unwrap()
    }

    fn keys(of: &[&SigningKey]) -> PeerKeys {
        PeerKeys::new(
            of.iter()
                .map(|k| (k.node().clone(), k.public_key()))
                .collect::<HashMap<_, _>>(),
        )
    }

    /// The statement `owner` signs for a record disclosed to FRA-POL for `request_id`.
    fn disclosure(owner: &SigningKey, request_id: &str, days: u32) -> pb::SignedDisclosure {
        let st = provenance::statement(
            owner.node(),
            "x",
            (
                None,
                Some(pb::Handling {
                    no_onward_without_consent: true,
                    retention_days: days,
                    ..Default::default()
                }),
            ),
            (4, "r1"),
            vec![],
            (&node("FRA-POL"), request_id, 5),
        );
        owner.sign_disclosure(&st)
    }

    fn signed_lookup(by: &SigningKey, request_id: &str) -> pb::LookupResponse {
        signed_hits(by, request_id, vec![disclosure(by, request_id, 0)])
    }

    fn signed_hits(
        by: &SigningKey,
        request_id: &str,
        statements: Vec<pb::SignedDisclosure>,
    ) -> pb::LookupResponse {
        let mut resp = pb::LookupResponse {
            hit: true,
            hits: statements
                .into_iter()
                .map(|d| pb::LookupHit {
                    policy_rule: "r1".into(),
                    owner_disclosure: Some(d),
                    ..Default::default()
                })
                .collect(),
            signature: None,
        };
        resp.signature = Some(by.sign_response(request_id, &resp.encode_to_vec()));
        resp
    }

    #[test]
    fn a_peers_answer_is_read_within_its_record_and_byte_budget() {
        assert_eq!(asked_limit(0), DEFAULT_LIMIT_PER_PEER);
        assert_eq!(asked_limit(u32::MAX), MAX_LIMIT_PER_PEER);
        assert_eq!(asked_limit(7), 7);
        let b = Budget::for_limit(2);
        assert!(b.admit(0, 0, 10).is_ok() && b.admit(1, 10, 10).is_ok());
        assert!(b.admit(2, 20, 1).unwrap_err().contains("2 records"));
        assert!(
            b.admit(0, MAX_BYTES_PER_PEER - 5, 6)
                .unwrap_err()
                .contains("bytes")
        );
        assert!(b.admit(0, usize::MAX, usize::MAX).is_err(), "no overflow");
        // An overrun names the peer; nothing of its answer is kept.
        let f = classify_query(
            (&node("DEU-BKA"), &node("FRA-POL")),
            "r1",
            &keys(&[]),
            Reply::Overran("sent more than the 2 records asked for".into()),
        )
        .unwrap_err();
        assert_eq!(f.node_id, "DEU-BKA");
        assert!(f.reason.starts_with("answer dropped"), "{}", f.reason);
    }

    #[test]
    fn a_lookup_answer_with_too_many_hits_is_dropped() {
        let deu = key("DEU-BKA");
        let mut resp = pb::LookupResponse {
            hit: true,
            hits: vec![pb::LookupHit::default(); MAX_LOOKUP_HITS + 1],
            signature: None,
        };
        resp.signature = Some(deu.sign_response("r1", &resp.encode_to_vec()));
        let f = classify_lookup(
            (&node("DEU-BKA"), &node("FRA-POL")),
            "r1",
            &keys(&[&deu]),
            Reply::Answered(resp),
        )
        .unwrap_err();
        assert!(f.reason.contains("hits"), "{}", f.reason);
    }

    #[test]
    fn a_lookup_answer_counts_only_when_signed_by_that_peer_for_this_request() {
        let (deu, ita) = (key("DEU-BKA"), key("ITA-POL"));
        let ks = keys(&[&deu, &ita]);
        let peer = (&node("DEU-BKA"), &node("FRA-POL"));
        let ok = classify_lookup(peer, "r1", &ks, Reply::Answered(signed_lookup(&deu, "r1")));
        let ok = ok.unwrap();
        assert!(ok.hit && ok.hits.len() == 1 && ok.node_id == "DEU-BKA");
        // Signed for another request (a replayed answer), or by another node: refused.
        for resp in [signed_lookup(&deu, "r0"), signed_lookup(&ita, "r1")] {
            let f = classify_lookup(peer, "r1", &ks, Reply::Answered(resp)).unwrap_err();
            assert_eq!(f.node_id, "DEU-BKA");
            assert!(f.reason.starts_with("response refused: "), "{}", f.reason);
        }
        let mut unsigned = signed_lookup(&deu, "r1");
        unsigned.signature = None;
        assert!(classify_lookup(peer, "r1", &ks, Reply::Answered(unsigned)).is_err());
        // A tampered answer no longer matches its signature.
        let mut tampered = signed_lookup(&deu, "r1");
        tampered.hits[0].policy_rule = "r2".into();
        assert!(classify_lookup(peer, "r1", &ks, Reply::Answered(tampered)).is_err());
    }

    #[test]
    fn a_peer_answers_only_for_its_own_records_under_their_owners_signature() {
        let (deu, ita) = (key("DEU-BKA"), key("ITA-POL"));
        let ks = keys(&[&deu, &ita]);
        let peer = (&node("DEU-BKA"), &node("FRA-POL"));
        // What a hit shows comes from the owner's statement, not the unsigned fields.
        let mut resp = signed_lookup(&deu, "r1");
        resp.hits[0].policy_rule = "made up".into();
        resp.signature = None;
        resp.signature = Some(deu.sign_response("r1", &resp.encode_to_vec()));
        let ok = classify_lookup(peer, "r1", &ks, Reply::Answered(resp)).unwrap();
        assert_eq!(ok.hits[0].policy_rule, "r1");
        // A hit naming another owner (even with that owner's genuine statement, replayed from
        // another request), a hit without a statement, one for another request: all refused.
        for statements in [
            vec![disclosure(&ita, "r1", 0)],
            vec![disclosure(&deu, "r0", 0)],
            vec![disclosure(&deu, "r1", 0), disclosure(&ita, "r1", 0)],
        ] {
            let resp = signed_hits(&deu, "r1", statements);
            let f = classify_lookup(peer, "r1", &ks, Reply::Answered(resp)).unwrap_err();
            assert!(f.reason.starts_with("response refused: "), "{}", f.reason);
        }
        let mut bare = signed_hits(&deu, "r1", vec![]);
        bare.hits.push(pb::LookupHit::default());
        bare.signature = None;
        bare.signature = Some(deu.sign_response("r1", &bare.encode_to_vec()));
        assert!(classify_lookup(peer, "r1", &ks, Reply::Answered(bare)).is_err());
    }

    #[test]
    fn failures_name_the_peer_and_why() {
        let ks = keys(&[]);
        let peer = (&node("DEU-BKA"), &node("FRA-POL"));
        let reason = |reply: Reply<pb::LookupResponse>| {
            classify_lookup(peer, "r1", &ks, reply).unwrap_err().reason
        };
        assert_eq!(reason(Reply::TimedOut), "deadline exceeded");
        assert_eq!(
            reason(Reply::Unreachable("no endpoint".into())),
            "no endpoint"
        );
        assert_eq!(
            reason(Reply::Refused(tonic::Status::unavailable("down"))),
            "unavailable"
        );
        assert_eq!(
            reason(Reply::Refused(tonic::Status::deadline_exceeded("slow"))),
            "deadline exceeded"
        );
        assert_eq!(
            reason(Reply::Refused(tonic::Status::permission_denied("barred"))),
            "refused (PermissionDenied): barred"
        );
        // An answer from a peer whose key is unknown is refused, not trusted.
        let unknown = classify_lookup(
            peer,
            "r1",
            &ks,
            Reply::Answered(signed_lookup(&key("DEU-BKA"), "r1")),
        );
        assert!(unknown.unwrap_err().reason.starts_with("response refused"));
    }

    #[test]
    fn one_badly_signed_record_refuses_the_whole_query_answer() {
        let deu = key("DEU-BKA");
        let ks = keys(&[&deu]);
        let peer = (&node("DEU-BKA"), &node("FRA-POL"));
        let record = |rule: &str, request_id: &str| {
            let mut r = pb::DisclosedRecord {
                policy_rule: rule.into(),
                owner_disclosure: Some(disclosure(&deu, "q1", 0)),
                ..Default::default()
            };
            r.signature = Some(deu.sign_response(request_id, &r.encode_to_vec()));
            r
        };
        let good = classify_query(
            peer,
            "q1",
            &ks,
            Reply::Answered(vec![record("a", "q1"), record("b", "q1")]),
        )
        .unwrap();
        assert_eq!(good.records.len(), 2);
        // Signatures stay on the records (the gateway may show them).
        assert!(good.records.iter().all(|r| r.signature.is_some()));
        let bad = classify_query(
            peer,
            "q1",
            &ks,
            Reply::Answered(vec![record("a", "q1"), record("b", "q0")]),
        );
        assert!(bad.is_err());
        let none = classify_query(peer, "q1", &ks, Reply::Answered(vec![])).unwrap();
        assert!(none.records.is_empty());
    }

    #[test]
    fn inquiries_need_a_purpose_and_a_known_agency_kind() {
        let me = node("FRA-POL");
        let mut inquiry = pb::Inquiry {
            purpose: pb::Purpose::Tracing as i32,
            agency_kind: pb::AgencyKind::Police as i32,
            case_reference: "C-1".into(),
            ..Default::default()
        };
        let rc = request_context(&me, &inquiry, "r1".into(), 42).unwrap();
        assert_eq!((rc.requester_node.as_str(), rc.issued_at), ("FRA-POL", 42));
        let e = sent_event(&rc, "federated lookup");
        assert_eq!(
            (e.kind, e.purpose.as_str()),
            (EventKind::RequestSent, "PURPOSE_TRACING")
        );
        inquiry.agency_kind = 99;
        assert!(request_context(&me, &inquiry, "r1".into(), 42).is_err());
        inquiry.agency_kind = 0;
        inquiry.purpose = 0;
        assert!(request_context(&me, &inquiry, "r1".into(), 42).is_err());
    }

    #[test]
    fn deadlines_default_and_are_capped() {
        let d = Duration::from_secs(3);
        let mut inquiry = pb::Inquiry::default();
        assert_eq!(deadline(d, &inquiry), d);
        inquiry.deadline_ms = 500;
        assert_eq!(deadline(d, &inquiry), Duration::from_millis(500));
        inquiry.deadline_ms = u32::MAX;
        assert_eq!(deadline(d, &inquiry), MAX_DEADLINE);
    }

    #[test]
    fn every_hit_received_is_kept_as_its_owner_signed_it() {
        let deu = key("DEU-BKA");
        let signed = disclosure(&deu, "r1", 2);
        let answers = vec![pb::PeerAnswer {
            node_id: "DEU-BKA".into(),
            hit: true,
            hits: vec![pb::LookupHit {
                policy_rule: "unsigned".into(),
                owner_disclosure: Some(signed.clone()),
                ..Default::default()
            }],
        }];
        let copies = lookup_copies(&answers, 9);
        assert_eq!(copies.len(), 1);
        let c = &copies[0];
        assert_eq!(
            (
                c.received_at,
                c.request_id.as_str(),
                c.policy_version,
                c.policy_rule.as_str()
            ),
            (9, "r1", 4, "r1")
        );
        assert!(c.handling.as_ref().unwrap().no_onward_without_consent);
        assert_eq!(c.owner_disclosure.as_ref(), Some(&signed));
        // Two days after the owner disclosed it (at 5).
        assert_eq!(c.expires_at, 5 + 2 * 86_400);
        assert!(c.forwarded_by.is_empty());
    }
}
