//! The Raft transport, client side: openraft's RPCs sent as `DirectoryRaft` gRPC calls over the
//! same mutually authenticated peer connections as the exchange. The server's certificate must
//! name the node the Raft membership lists, so a Raft message never reaches an impostor.

use std::sync::Arc;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use tonic::transport::Channel;
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::directory_raft_client::DirectoryRaftClient;

use super::codec::{
    entry_from_pb, entry_to_pb, opt_log_id_from_pb, opt_log_id_to_pb, req_vote,
    snapshot_meta_to_pb, vote_to_pb,
};
use super::types::{RaftId, RaftPeer, TypeConfig};
use crate::client::PeerClients;
use crate::ids::NodeId;

/// Creates a client per Raft target, sharing the node's peer connections.
#[derive(Debug, Clone)]
pub struct Network {
    clients: Arc<PeerClients>,
}

impl Network {
    /// A network over the node's peer connections.
    pub fn new(clients: Arc<PeerClients>) -> Network {
        Network { clients }
    }
}

/// The Raft connection to one target.
#[derive(Debug)]
pub struct Connection {
    target: RaftId,
    peer: RaftPeer,
    clients: Arc<PeerClients>,
}

type RpcErr<E = openraft::error::Infallible> = RPCError<RaftId, RaftPeer, RaftError<RaftId, E>>;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failure(String);

fn unreachable<E: std::error::Error>(why: impl Into<String>) -> RpcErr<E> {
    RPCError::Unreachable(Unreachable::new(&Failure(why.into())))
}

fn from_status<E: std::error::Error>(s: &tonic::Status) -> RpcErr<E> {
    let f = Failure(format!("{:?}: {}", s.code(), s.message()));
    match s.code() {
        // Nobody answered, or the answer was a refusal to talk to us at all: back off.
        tonic::Code::Unavailable
        | tonic::Code::PermissionDenied
        | tonic::Code::Unauthenticated
        | tonic::Code::DeadlineExceeded => RPCError::Unreachable(Unreachable::new(&f)),
        _ => RPCError::Network(NetworkError::new(&f)),
    }
}

fn malformed<E: std::error::Error>(what: impl std::fmt::Display) -> RpcErr<E> {
    RPCError::Network(NetworkError::new(&Failure(format!(
        "malformed Raft reply: {what}"
    ))))
}

impl Connection {
    fn client(&self) -> Result<DirectoryRaftClient<Channel>, String> {
        let node = NodeId::parse(&self.peer.node_id).map_err(|e| e.to_string())?;
        let ch = self
            .clients
            .channel(&node, &self.peer.endpoint)
            .map_err(|e| e.to_string())?;
        Ok(DirectoryRaftClient::new(ch))
    }

    fn request<T>(msg: T, option: &RPCOption) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.set_timeout(option.hard_ttl());
        r
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: RaftId, node: &RaftPeer) -> Connection {
        Connection {
            target,
            peer: node.clone(),
            clients: self.clients.clone(),
        }
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<RaftId>, RpcErr> {
        let mut client = self.client().map_err(unreachable)?;
        let msg = pb::RaftAppendRequest {
            vote: Some(vote_to_pb(&rpc.vote)),
            prev_log_id: opt_log_id_to_pb(rpc.prev_log_id.as_ref()),
            entries: rpc.entries.iter().map(entry_to_pb).collect(),
            leader_commit: opt_log_id_to_pb(rpc.leader_commit.as_ref()),
        };
        let resp = client
            .append_entries(Self::request(msg, &option))
            .await
            .map_err(|s| from_status(&s))?
            .into_inner();
        use pb::raft_append_response::Result as R;
        match resp.result {
            Some(R::Success(_)) => Ok(AppendEntriesResponse::Success),
            Some(R::PartialSuccess(p)) => Ok(AppendEntriesResponse::PartialSuccess(
                opt_log_id_from_pb(p.matching.as_ref()),
            )),
            Some(R::Conflict(_)) => Ok(AppendEntriesResponse::Conflict),
            Some(R::HigherVote(v)) => Ok(AppendEntriesResponse::HigherVote(
                super::codec::vote_from_pb(&v),
            )),
            None => Err(malformed("empty append result")),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<RaftId>, RpcErr<InstallSnapshotError>> {
        let mut client = self.client().map_err(unreachable)?;
        let msg = pb::RaftSnapshotRequest {
            vote: Some(vote_to_pb(&rpc.vote)),
            meta: Some(snapshot_meta_to_pb(&rpc.meta)),
            offset: rpc.offset,
            data: rpc.data,
            done: rpc.done,
        };
        let resp = client
            .install_snapshot(Self::request(msg, &option))
            .await
            .map_err(|s| {
                if s.code() == tonic::Code::Aborted {
                    // The receiver expected another chunk: restart the transfer.
                    RPCError::RemoteError(RemoteError::new(
                        self.target,
                        RaftError::APIError(InstallSnapshotError::SnapshotMismatch(
                            openraft::error::SnapshotMismatch {
                                expect: openraft::SnapshotSegmentId {
                                    id: String::new(),
                                    offset: 0,
                                },
                                got: openraft::SnapshotSegmentId {
                                    id: String::new(),
                                    offset: 0,
                                },
                            },
                        )),
                    ))
                } else {
                    from_status(&s)
                }
            })?
            .into_inner();
        Ok(InstallSnapshotResponse {
            vote: req_vote(resp.vote.as_ref()).map_err(malformed)?,
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<RaftId>,
        option: RPCOption,
    ) -> Result<VoteResponse<RaftId>, RpcErr> {
        let mut client = self.client().map_err(unreachable)?;
        let msg = pb::RaftVoteRequest {
            vote: Some(vote_to_pb(&rpc.vote)),
            last_log_id: opt_log_id_to_pb(rpc.last_log_id.as_ref()),
        };
        let resp = client
            .vote(Self::request(msg, &option))
            .await
            .map_err(|s| from_status(&s))?
            .into_inner();
        Ok(VoteResponse {
            vote: req_vote(resp.vote.as_ref()).map_err(malformed)?,
            vote_granted: resp.vote_granted,
            last_log_id: opt_log_id_from_pb(resp.last_log_id.as_ref()),
        })
    }
}

/// Decodes an append request received from a peer.
pub fn append_from_pb(
    m: pb::RaftAppendRequest,
) -> Result<AppendEntriesRequest<TypeConfig>, super::codec::CodecError> {
    Ok(AppendEntriesRequest {
        vote: req_vote(m.vote.as_ref())?,
        prev_log_id: opt_log_id_from_pb(m.prev_log_id.as_ref()),
        entries: m
            .entries
            .into_iter()
            .map(entry_from_pb)
            .collect::<Result<_, _>>()?,
        leader_commit: opt_log_id_from_pb(m.leader_commit.as_ref()),
    })
}
