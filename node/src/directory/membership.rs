//! Which Raft membership the directory leader wants, pure: every admitted member that is not a
//! voter is a learner with a full replica; a learner that is no longer such a member (revoked,
//! or gone from the directory) is removed. Voters come from configuration; the only change made
//! to them here is that a voter the secretariat revoked leaves the voter set (as long as at least
//! one voter remains). [`super::replica`] applies the plan through Raft, one change at a time.

use std::collections::{BTreeMap, BTreeSet};

use tracenet_proto::v1 as pb;

use super::types::{RaftId, RaftPeer, raft_id};
use crate::ids::NodeId;

/// The Raft membership as the leader sees it now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    /// Voters.
    pub voters: BTreeSet<RaftId>,
    /// Learners.
    pub learners: BTreeSet<RaftId>,
}

/// What to change: learners to add, then learners to remove.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Members to add as learners, with where they listen.
    pub add: BTreeMap<RaftId, RaftPeer>,
    /// Learners to remove.
    pub remove: BTreeSet<RaftId>,
    /// Voters the secretariat revoked, to remove from the voter set.
    pub remove_voters: BTreeSet<RaftId>,
}

impl Plan {
    /// Whether nothing needs to change.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty() && self.remove_voters.is_empty()
    }
}

/// The change that brings `current` in line with the directory's `members`. A member whose
/// node id does not parse is ignored (it cannot be reached or authenticated anyway).
pub fn plan<'a>(members: impl IntoIterator<Item = &'a pb::Member>, current: &Current) -> Plan {
    let mut wanted = BTreeMap::new();
    let mut remove_voters = BTreeSet::new();
    for member in members {
        let Ok(id) = NodeId::parse(&member.node_id) else {
            continue;
        };
        if member.status == pb::MemberStatus::Revoked as i32 {
            if current.voters.contains(&raft_id(&id)) {
                remove_voters.insert(raft_id(&id));
            }
            continue;
        }
        let rid = raft_id(&id);
        if !current.voters.contains(&rid) {
            wanted.insert(rid, RaftPeer::new(&id, &member.endpoint));
        }
    }
    let remove = current
        .learners
        .iter()
        .filter(|id| !wanted.contains_key(id))
        .copied()
        .collect();
    let add = wanted
        .into_iter()
        .filter(|(rid, _)| !current.learners.contains(rid))
        .collect();
    if remove_voters.len() >= current.voters.len() {
        remove_voters.clear(); // Never leave the group without voters.
    }
    Plan {
        add,
        remove,
        remove_voters,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn member(id: &str, status: pb::MemberStatus) -> pb::Member {
        pb::Member {
            node_id: id.into(),
            endpoint: format!("{id}.example:7000"),
            status: status as i32,
            ..Default::default()
        }
    }

    fn rid(id: &str) -> RaftId {
        raft_id(&NodeId::parse(id).unwrap())
    }

    #[test]
    fn admitted_members_become_learners_and_departed_ones_are_removed() {
        let members = [
            member("FRA-POL", pb::MemberStatus::Active),
            member("DEU-BKA", pb::MemberStatus::Active),
            member("ITA-POL", pb::MemberStatus::Suspended),
            member("ESP-GC", pb::MemberStatus::Revoked),
        ];
        let current = Current {
            voters: BTreeSet::from([rid("FRA-POL")]),
            // ESP-GC was revoked; NLD-POL is no longer in the directory at all.
            learners: BTreeSet::from([rid("ITA-POL"), rid("ESP-GC"), rid("NLD-POL")]),
        };
        let p = plan(&members, &current);
        // The voter stays as it is; a suspended member keeps its replica.
        assert_eq!(p.add.keys().copied().collect::<Vec<_>>(), [rid("DEU-BKA")]);
        assert_eq!(
            p.add[&rid("DEU-BKA")],
            RaftPeer {
                node_id: "DEU-BKA".into(),
                endpoint: "DEU-BKA.example:7000".into()
            }
        );
        assert_eq!(p.remove, BTreeSet::from([rid("ESP-GC"), rid("NLD-POL")]));
    }

    #[test]
    fn a_membership_in_line_with_the_directory_needs_no_change() {
        let members = [
            member("FRA-POL", pb::MemberStatus::Active),
            member("DEU-BKA", pb::MemberStatus::Active),
        ];
        let current = Current {
            voters: BTreeSet::from([rid("FRA-POL")]),
            learners: BTreeSet::from([rid("DEU-BKA")]),
        };
        assert!(plan(&members, &current).is_empty());
        // Voters are never removed here, even when the directory does not list them.
        let no_members: [pb::Member; 0] = [];
        assert!(
            plan(
                &no_members,
                &Current {
                    voters: current.voters.clone(),
                    learners: BTreeSet::new(),
                }
            )
            .is_empty()
        );
    }

    #[test]
    fn a_revoked_voter_leaves_the_voter_set_but_never_the_last_one() {
        let members = [
            member("CHE-SEC", pb::MemberStatus::Active),
            member("BEL-HUB", pb::MemberStatus::Revoked),
        ];
        let current = Current {
            voters: BTreeSet::from([rid("CHE-SEC"), rid("BEL-HUB")]),
            learners: BTreeSet::new(),
        };
        assert_eq!(
            plan(&members, &current).remove_voters,
            BTreeSet::from([rid("BEL-HUB")])
        );
        let alone = Current {
            voters: BTreeSet::from([rid("BEL-HUB")]),
            learners: BTreeSet::new(),
        };
        assert!(plan(&members, &alone).remove_voters.is_empty());
    }

    #[test]
    fn members_with_unusable_ids_are_ignored() {
        let members = [member("not a node", pb::MemberStatus::Active)];
        assert!(plan(&members, &Current::default()).is_empty());
    }
}
