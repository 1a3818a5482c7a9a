//! The Raft transport, server side: the `DirectoryRaft` gRPC service on the peer listener. The
//! caller's identity comes from its verified certificate (set by the listener), and each call
//! accepts only what Raft needs from that caller:
//!
//! - AppendEntries, InstallSnapshot and Vote only from configured voters, and only when the
//!   vote in the message names the caller itself as leader or candidate (both checks: a voter
//!   cannot speak in another's name, a learner not at all);
//! - every such message is checked for consistency (entries consecutive after `prev_log_id`, no
//!   term above the vote's, the current term's entries the caller's own, a snapshot's entries
//!   signed) before openraft sees it, so nothing from the network can trip the Raft core;
//! - Propose only from admitted members and configured voters, and only commands the caller
//!   wrote and signed itself ([`Directory::propose_forwarded`]);
//! - ReadIndex from members of the Raft group.

use std::sync::Arc;

use openraft::raft::InstallSnapshotRequest;
use tonic::{Request, Response, Status};
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::directory_raft_server::DirectoryRaft;

use super::codec::{
    opt_log_id_from_pb, opt_log_id_to_pb, req_vote, snapshot_meta_from_pb, vote_to_pb,
};
use super::network::append_from_pb;
use super::replica::Directory;
use super::state;
use super::types::{TypeConfig, raft_id};
use crate::auth::caller;
use crate::ids::{NodeId, PeerIdentity};
use tracenet_proto::stored;

/// The service, backed by this node's replica.
#[derive(Debug, Clone)]
pub struct RaftService {
    dir: Arc<Directory>,
}

impl RaftService {
    /// Serves `dir`.
    pub fn new(dir: Arc<Directory>) -> RaftService {
        RaftService { dir }
    }

    /// The caller, if it is a configured voter whose message names itself (`claimed`, the Raft
    /// id in the message's vote) as leader or candidate.
    fn leader<T>(
        &self,
        req: &Request<T>,
        claimed: Option<&pb::RaftVote>,
    ) -> Result<NodeId, Status> {
        let node = node_of(req)?;
        if !self.dir.may_lead(&node) {
            return Err(Status::permission_denied(format!(
                "{node} is not a configured voter of the directory and may not lead or elect"
            )));
        }
        let vote = claimed.ok_or_else(|| bad("missing vote"))?;
        if vote.node_id != raft_id(&node) {
            return Err(Status::permission_denied(format!(
                "{node} may only send Raft messages in its own name (the vote names Raft id {})",
                vote.node_id
            )));
        }
        Ok(node)
    }

    fn member<T>(&self, req: &Request<T>) -> Result<NodeId, Status> {
        let node = node_of(req)?;
        if !self.dir.may_speak_raft(&node) {
            return Err(Status::permission_denied(format!(
                "{node} is not in the directory's Raft group"
            )));
        }
        Ok(node)
    }
}

fn node_of<T>(req: &Request<T>) -> Result<NodeId, Status> {
    match caller(req)? {
        PeerIdentity::Node(n) => Ok(n.clone()),
        other => Err(Status::permission_denied(format!(
            "{} may not speak Raft",
            other.to_uri()
        ))),
    }
}

/// Checks an AppendEntries request against its own vote before openraft sees it: the entries
/// follow `prev_log_id` without gaps, no log id is of a later term than the vote, terms never go
/// down, and entries of the vote's term are the vote's leader's.
fn check_append(m: &pb::RaftAppendRequest) -> Result<(), Status> {
    let vote = m.vote.as_ref().ok_or_else(|| bad("missing vote"))?;
    if !vote.committed {
        return Err(bad("AppendEntries needs a committed (leader's) vote"));
    }
    let within = |l: &pb::RaftLogId, what: &str| {
        if l.term > vote.term || (l.term == vote.term && l.leader != vote.node_id) {
            Err(bad(format!(
                "{what} is not of the vote's leader or an earlier term"
            )))
        } else {
            Ok(())
        }
    };
    let mut next = 0u64;
    let mut term = 0u64;
    if let Some(p) = &m.prev_log_id {
        within(p, "prev_log_id")?;
        next = p
            .index
            .checked_add(1)
            .ok_or_else(|| bad("prev_log_id index overflows"))?;
        term = p.term;
    }
    for e in &m.entries {
        let l = e
            .log_id
            .as_ref()
            .ok_or_else(|| bad("entry without log id"))?;
        within(l, "an entry")?;
        if l.index != next {
            return Err(bad(format!("entry index {} where {next} was due", l.index)));
        }
        if l.term < term {
            return Err(bad("entry terms go down"));
        }
        term = l.term;
        next = next
            .checked_add(1)
            .ok_or_else(|| bad("entry index overflows"))?;
    }
    if let Some(c) = &m.leader_commit {
        within(c, "leader_commit")?;
    }
    Ok(())
}

fn bad(e: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("malformed Raft message: {e}"))
}

fn raft_failed(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("directory replica: {e}"))
}

impl RaftService {
    /// Checks a snapshot chunk before openraft sees it: its log ids are no later than the vote,
    /// and a snapshot sent whole (one chunk) must verify entry by entry against the signed
    /// commands it carries (chunked snapshots are verified when installed).
    fn check_snapshot(
        &self,
        m: &pb::RaftSnapshotRequest,
        meta: &pb::RaftSnapshotMeta,
    ) -> Result<(), Status> {
        let vote = m.vote.as_ref().ok_or_else(|| bad("missing vote"))?;
        let last = meta.last_log_id.as_ref();
        if last.is_some_and(|l| l.term > vote.term) {
            return Err(bad("snapshot of a later term than the vote"));
        }
        let membership_at = meta
            .last_membership
            .as_ref()
            .and_then(|s| s.log_id.as_ref());
        if let Some(ml) = membership_at
            && last.is_none_or(|l| ml.index > l.index)
        {
            return Err(bad("snapshot membership is later than the snapshot"));
        }
        if m.offset == 0 && m.done {
            let snap: pb::DirectorySnapshot = stored::decode(&m.data).map_err(bad)?;
            if snap.last_applied.as_ref() != last {
                return Err(bad("snapshot data and metadata disagree"));
            }
            let st = snap.state.unwrap_or_default();
            state::verify(&st, self.dir.genesis())
                .map_err(|e| Status::permission_denied(format!("snapshot refused: {e}")))?;
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl DirectoryRaft for RaftService {
    async fn append_entries(
        &self,
        request: Request<pb::RaftAppendRequest>,
    ) -> Result<Response<pb::RaftAppendResponse>, Status> {
        self.leader(&request, request.get_ref().vote.as_ref())?;
        check_append(request.get_ref())?;
        let rpc = append_from_pb(request.into_inner()).map_err(bad)?;
        let resp = self
            .dir
            .raft()
            .append_entries(rpc)
            .await
            .map_err(raft_failed)?;
        use openraft::raft::AppendEntriesResponse as A;
        use pb::raft_append_response::Result as R;
        let result = match resp {
            A::Success => R::Success(true),
            A::PartialSuccess(l) => R::PartialSuccess(pb::RaftPartialSuccess {
                matching: opt_log_id_to_pb(l.as_ref()),
            }),
            A::Conflict => R::Conflict(true),
            A::HigherVote(v) => R::HigherVote(vote_to_pb(&v)),
        };
        Ok(Response::new(pb::RaftAppendResponse {
            result: Some(result),
        }))
    }

    async fn vote(
        &self,
        request: Request<pb::RaftVoteRequest>,
    ) -> Result<Response<pb::RaftVoteResponse>, Status> {
        self.leader(&request, request.get_ref().vote.as_ref())?;
        let m = request.into_inner();
        if let (Some(v), Some(l)) = (&m.vote, &m.last_log_id)
            && l.term > v.term
        {
            return Err(bad("last_log_id is of a later term than the vote"));
        }
        let rpc = openraft::raft::VoteRequest {
            vote: req_vote(m.vote.as_ref()).map_err(bad)?,
            last_log_id: opt_log_id_from_pb(m.last_log_id.as_ref()),
        };
        let resp = self.dir.raft().vote(rpc).await.map_err(raft_failed)?;
        Ok(Response::new(pb::RaftVoteResponse {
            vote: Some(vote_to_pb(&resp.vote)),
            vote_granted: resp.vote_granted,
            last_log_id: opt_log_id_to_pb(resp.last_log_id.as_ref()),
        }))
    }

    async fn install_snapshot(
        &self,
        request: Request<pb::RaftSnapshotRequest>,
    ) -> Result<Response<pb::RaftSnapshotResponse>, Status> {
        self.leader(&request, request.get_ref().vote.as_ref())?;
        let m = request.into_inner();
        let meta = m.meta.as_ref().ok_or_else(|| bad("missing meta"))?;
        self.check_snapshot(&m, meta)?;
        let rpc = InstallSnapshotRequest::<TypeConfig> {
            vote: req_vote(m.vote.as_ref()).map_err(bad)?,
            meta: snapshot_meta_from_pb(meta),
            offset: m.offset,
            data: m.data,
            done: m.done,
        };
        match self.dir.raft().install_snapshot(rpc).await {
            Ok(resp) => Ok(Response::new(pb::RaftSnapshotResponse {
                vote: Some(vote_to_pb(&resp.vote)),
            })),
            Err(openraft::error::RaftError::APIError(e)) => Err(Status::aborted(e.to_string())),
            Err(e) => Err(raft_failed(e)),
        }
    }

    async fn propose(
        &self,
        request: Request<pb::ProposeRequest>,
    ) -> Result<Response<pb::DirectoryResponse>, Status> {
        // Only admitted members and configured voters, and only their own signed commands
        // (checked by the replica before anything is replicated).
        let writer = match caller(&request)? {
            PeerIdentity::Node(n) => n.clone(),
            other => {
                return Err(Status::permission_denied(format!(
                    "{} may not write to the directory",
                    other.to_uri()
                )));
            }
        };
        let cmd = request
            .into_inner()
            .command
            .ok_or_else(|| Status::invalid_argument("command is required"))?;
        Ok(Response::new(
            self.dir.propose_forwarded(&writer, cmd).await?,
        ))
    }

    async fn read_index(
        &self,
        request: Request<pb::ReadIndexRequest>,
    ) -> Result<Response<pb::ReadIndexResponse>, Status> {
        self.member(&request)?;
        Ok(Response::new(pb::ReadIndexResponse {
            index: self.dir.read_index().await?,
        }))
    }

    async fn state_digest(
        &self,
        request: Request<pb::StateDigestRequest>,
    ) -> Result<Response<pb::StateDigestResponse>, Status> {
        self.member(&request)?;
        let digest = self.dir.state_digest(request.get_ref().index);
        Ok(Response::new(pb::StateDigestResponse {
            known: digest.is_some(),
            digest: digest.map(|d| d.to_vec()).unwrap_or_default(),
        }))
    }
}
