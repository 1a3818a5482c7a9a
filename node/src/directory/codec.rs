//! Conversions between openraft's types and their protobuf encodings, used both on disk (the
//! Raft log, vote and snapshots) and on the wire (the Raft transport), so there is one encoding
//! to version.
//!
//! On disk these messages are framed by the shared versioned codec ([`tracenet_proto::stored`]:
//! one format byte, then the message), like every stored value. Converting never panics on bad
//! input: a message from disk or from a peer that lacks a required field becomes a
//! [`CodecError`].

use std::collections::{BTreeMap, BTreeSet};

use tracenet_proto::v1 as pb;

use super::types::{
    Entry, LogId, Membership, RaftId, RaftPeer, SnapshotMeta, StoredMembership, TypeConfig, Vote,
};

/// Why a message could not be converted. Not retryable: the message is what it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// A required field is missing. Not retryable.
    #[error("missing {0}")]
    Missing(&'static str),
}

/// A log id to protobuf.
pub fn log_id_to_pb(l: &LogId) -> pb::RaftLogId {
    pb::RaftLogId {
        term: l.leader_id.term,
        leader: l.leader_id.node_id,
        index: l.index,
    }
}

/// A log id from protobuf.
pub fn log_id_from_pb(l: &pb::RaftLogId) -> LogId {
    openraft::LogId::new(openraft::CommittedLeaderId::new(l.term, l.leader), l.index)
}

/// An optional log id to protobuf.
pub fn opt_log_id_to_pb(l: Option<&LogId>) -> Option<pb::RaftLogId> {
    l.map(log_id_to_pb)
}

/// An optional log id from protobuf.
pub fn opt_log_id_from_pb(l: Option<&pb::RaftLogId>) -> Option<LogId> {
    l.map(log_id_from_pb)
}

/// A vote to protobuf.
pub fn vote_to_pb(v: &Vote) -> pb::RaftVote {
    pb::RaftVote {
        term: v.leader_id.term,
        node_id: v.leader_id.node_id,
        committed: v.committed,
    }
}

/// A vote from protobuf.
pub fn vote_from_pb(v: &pb::RaftVote) -> Vote {
    if v.committed {
        openraft::Vote::new_committed(v.term, v.node_id)
    } else {
        openraft::Vote::new(v.term, v.node_id)
    }
}

/// A required vote from protobuf.
pub fn req_vote(v: Option<&pb::RaftVote>) -> Result<Vote, CodecError> {
    v.map(vote_from_pb).ok_or(CodecError::Missing("vote"))
}

/// A membership to protobuf.
pub fn membership_to_pb(m: &Membership) -> pb::RaftMembership {
    pb::RaftMembership {
        configs: m
            .get_joint_config()
            .iter()
            .map(|c| pb::RaftVoterSet {
                voters: c.iter().copied().collect(),
            })
            .collect(),
        nodes: m
            .nodes()
            .map(|(id, n)| {
                (
                    *id,
                    pb::RaftPeer {
                        node_id: n.node_id.clone(),
                        endpoint: n.endpoint.clone(),
                    },
                )
            })
            .collect(),
    }
}

/// A membership from protobuf.
pub fn membership_from_pb(m: &pb::RaftMembership) -> Membership {
    let configs: Vec<BTreeSet<RaftId>> = m
        .configs
        .iter()
        .map(|c| c.voters.iter().copied().collect())
        .collect();
    let nodes: BTreeMap<RaftId, RaftPeer> = m
        .nodes
        .iter()
        .map(|(id, n)| {
            (
                *id,
                RaftPeer {
                    node_id: n.node_id.clone(),
                    endpoint: n.endpoint.clone(),
                },
            )
        })
        .collect();
    openraft::Membership::new(configs, nodes)
}

/// A stored membership to protobuf.
pub fn stored_membership_to_pb(m: &StoredMembership) -> pb::RaftStoredMembership {
    pb::RaftStoredMembership {
        log_id: opt_log_id_to_pb(m.log_id().as_ref()),
        membership: Some(membership_to_pb(m.membership())),
    }
}

/// A stored membership from protobuf.
pub fn stored_membership_from_pb(m: Option<&pb::RaftStoredMembership>) -> StoredMembership {
    match m {
        None => StoredMembership::default(),
        Some(m) => openraft::StoredMembership::new(
            opt_log_id_from_pb(m.log_id.as_ref()),
            m.membership
                .as_ref()
                .map(membership_from_pb)
                .unwrap_or_default(),
        ),
    }
}

/// A log entry to protobuf.
pub fn entry_to_pb(e: &Entry) -> pb::RaftEntry {
    use pb::raft_entry::Payload;
    let payload = match &e.payload {
        openraft::EntryPayload::Blank => Payload::Blank(true),
        openraft::EntryPayload::Normal(cmd) => Payload::Command(cmd.clone()),
        openraft::EntryPayload::Membership(m) => Payload::Membership(membership_to_pb(m)),
    };
    pb::RaftEntry {
        log_id: Some(log_id_to_pb(&e.log_id)),
        payload: Some(payload),
    }
}

/// A log entry from protobuf.
pub fn entry_from_pb(e: pb::RaftEntry) -> Result<Entry, CodecError> {
    use pb::raft_entry::Payload;
    let log_id = log_id_from_pb(e.log_id.as_ref().ok_or(CodecError::Missing("log_id"))?);
    let payload = match e.payload.ok_or(CodecError::Missing("payload"))? {
        Payload::Blank(_) => openraft::EntryPayload::Blank,
        Payload::Command(c) => openraft::EntryPayload::Normal(c),
        Payload::Membership(m) => openraft::EntryPayload::Membership(membership_from_pb(&m)),
    };
    Ok(openraft::Entry::<TypeConfig> { log_id, payload })
}

/// Snapshot metadata to protobuf.
pub fn snapshot_meta_to_pb(m: &SnapshotMeta) -> pb::RaftSnapshotMeta {
    pb::RaftSnapshotMeta {
        last_log_id: opt_log_id_to_pb(m.last_log_id.as_ref()),
        last_membership: Some(stored_membership_to_pb(&m.last_membership)),
        snapshot_id: m.snapshot_id.clone(),
    }
}

/// Snapshot metadata from protobuf.
pub fn snapshot_meta_from_pb(m: &pb::RaftSnapshotMeta) -> SnapshotMeta {
    openraft::SnapshotMeta {
        last_log_id: opt_log_id_from_pb(m.last_log_id.as_ref()),
        last_membership: stored_membership_from_pb(m.last_membership.as_ref()),
        snapshot_id: m.snapshot_id.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tracenet_proto::stored;

    use super::*;

    #[test]
    fn entries_round_trip() {
        let lid = openraft::LogId::new(openraft::CommittedLeaderId::new(3, 7), 42);
        let mut nodes = BTreeMap::new();
        nodes.insert(
            7,
            RaftPeer {
                node_id: "CHE-SEC".into(),
                endpoint: "127.0.0.1:1".into(),
            },
        );
        nodes.insert(
            9,
            RaftPeer {
                node_id: "FRA-POL".into(),
                endpoint: "127.0.0.1:2".into(),
            },
        );
        let m = openraft::Membership::new(vec![BTreeSet::from([7])], nodes);
        for payload in [
            openraft::EntryPayload::Blank,
            openraft::EntryPayload::Normal(pb::DirectoryCommand {
                writer: "CHE-SEC".into(),
                at: 5,
                seq: 3,
                signature: vec![1, 2, 3],
                op: None,
            }),
            openraft::EntryPayload::Membership(m),
        ] {
            let e = openraft::Entry::<TypeConfig> {
                log_id: lid,
                payload,
            };
            let bytes = stored::encode(&entry_to_pb(&e));
            let back = entry_from_pb(stored::decode(&bytes).unwrap()).unwrap();
            assert_eq!(format!("{e:?}"), format!("{back:?}"));
        }
    }

    #[test]
    fn bad_bytes_are_errors() {
        assert_eq!(
            stored::decode::<pb::RaftEntry>(&[9, 1, 2]).unwrap_err(),
            stored::CodecError::UnsupportedFormat(9)
        );
        assert!(stored::decode::<pb::RaftEntry>(&[]).is_err());
        assert!(stored::decode::<pb::RaftEntry>(&[1, 0xff, 0xff]).is_err());
        assert!(entry_from_pb(pb::RaftEntry::default()).is_err());
    }

    #[test]
    fn votes_round_trip() {
        for v in [
            openraft::Vote::new(4, 2),
            openraft::Vote::new_committed(5, 1),
        ] {
            assert_eq!(vote_from_pb(&vote_to_pb(&v)), v);
        }
    }
}
