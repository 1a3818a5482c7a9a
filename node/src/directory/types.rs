//! The Raft type configuration of the directory, and how tracenet node ids map onto Raft's
//! numeric ids.
//!
//! Raft ids are derived from node ids by hashing, so every replica computes the same id for the
//! same member without a registry, and an id learned from the network can always be checked
//! against the node id in a caller's certificate.

use std::fmt;
use std::io::Cursor;

use serde::{Deserialize, Serialize};
use tracenet_proto::v1 as pb;

use crate::ids::NodeId;

openraft::declare_raft_types!(
    /// The directory's Raft types: commands and responses are the directory protobufs.
    pub TypeConfig:
        D = pb::DirectoryCommand,
        R = pb::DirectoryResponse,
        NodeId = u64,
        Node = RaftPeer,
        SnapshotData = Cursor<Vec<u8>>,
);

/// Raft's id for a member.
pub type RaftId = u64;

/// A member of the Raft group: the tracenet node and where its peer API listens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftPeer {
    /// The tracenet node id (as text: openraft needs `Default`).
    pub node_id: String,
    /// host:port of its peer API.
    pub endpoint: String,
}

impl fmt::Display for RaftPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.node_id, self.endpoint)
    }
}

impl RaftPeer {
    /// The peer for a node at an endpoint.
    pub fn new(node: &NodeId, endpoint: &str) -> RaftPeer {
        RaftPeer {
            node_id: node.to_string(),
            endpoint: endpoint.to_owned(),
        }
    }
}

/// The Raft id of a node: the first eight bytes of SHA-256 over a domain tag and the node id.
pub fn raft_id(node: &NodeId) -> RaftId {
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        format!("tracenet-directory-raft-id\0{node}").as_bytes(),
    );
    let mut b = [0u8; 8];
    b.copy_from_slice(&d.as_ref()[..8]);
    u64::from_be_bytes(b)
}

/// Openraft's names for our types.
pub type LogId = openraft::LogId<RaftId>;
/// A vote.
pub type Vote = openraft::Vote<RaftId>;
/// A membership configuration.
pub type Membership = openraft::Membership<RaftId, RaftPeer>;
/// A membership with the log id it was stored at.
pub type StoredMembership = openraft::StoredMembership<RaftId, RaftPeer>;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A storage error.
pub type StorageError = openraft::StorageError<RaftId>;
/// Snapshot metadata.
pub type SnapshotMeta = openraft::SnapshotMeta<RaftId, RaftPeer>;
/// The Raft handle.
pub type Raft = openraft::Raft<TypeConfig>;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn raft_ids_are_stable_and_distinct() {
        let a = NodeId::parse("FRA-POL").unwrap();
        let b = NodeId::parse("DEU-CUS").unwrap();
        assert_eq!(raft_id(&a), raft_id(&a.clone()));
        assert_ne!(raft_id(&a), raft_id(&b));
    }
}
