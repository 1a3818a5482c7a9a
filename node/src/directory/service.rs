//! The Raft transport, server side: the `DirectoryRaft` gRPC service on the peer listener. The
//! caller's identity comes from its verified certificate (set by the listener); only nodes in
//! the Raft membership or among the configured voters may speak Raft, and a forwarded command is
//! written under the caller's identity, never under a name the request carries.

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
use super::types::TypeConfig;
use crate::auth::caller;
use crate::ids::{NodeId, PeerIdentity};

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

    fn member<T>(&self, req: &Request<T>) -> Result<NodeId, Status> {
        let node = match caller(req)? {
            PeerIdentity::Node(n) => n.clone(),
            other => {
                return Err(Status::permission_denied(format!(
                    "{} may not speak Raft",
                    other.to_uri()
                )));
            }
        };
        if !self.dir.may_speak_raft(&node) {
            return Err(Status::permission_denied(format!(
                "{node} is not in the directory's Raft group"
            )));
        }
        Ok(node)
    }
}

fn bad(e: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("malformed Raft message: {e}"))
}

fn raft_failed(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("directory replica: {e}"))
}

#[tonic::async_trait]
impl DirectoryRaft for RaftService {
    async fn append_entries(
        &self,
        request: Request<pb::RaftAppendRequest>,
    ) -> Result<Response<pb::RaftAppendResponse>, Status> {
        self.member(&request)?;
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
        self.member(&request)?;
        let m = request.into_inner();
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
        self.member(&request)?;
        let m = request.into_inner();
        let meta = m.meta.as_ref().ok_or_else(|| bad("missing meta"))?;
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
        // Any federation node may propose; the state machine decides what its identity allows.
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
}
