//! Directory state transitions, pure: every command is authorised here, inside the state machine,
//! from the writer's authenticated identity, so every replica reaches the same decision.
//!
//! - The very first command must be the secretariat admitting itself (genesis).
//! - Admission, suspension, reinstatement, revocation and role changes are the secretariat's.
//! - A member publishes only its own contact points, trace settings, sharing policy and marking
//!   practices (commands carry no target: they always apply to the writer).
//! - A revoked member is final; a suspended member may not publish.

use tracenet_proto::v1 as pb;

use crate::country::CountryCode;
use crate::ids::NodeId;
use crate::policy::Policy;

/// Why a directory command is refused. Every replica reaches the same refusal for the same
/// command and state; it is replicated as its text (the `Display` form). Never retryable as it
/// is: the command itself, or the writer's standing, must change first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The command names no operation.
    #[error("empty command")]
    Empty,
    /// The writer or a member's id is not a node id.
    #[error("{0}")]
    BadId(String),
    /// The named node is not a member.
    #[error("{0} is not a member")]
    NotMember(String),
    /// The writer is a member but not active (suspended or revoked).
    #[error("{node} is {status}")]
    WriterNotActive {
        /// The writer.
        node: String,
        /// Its status, as the protocol names it.
        status: &'static str,
    },
    /// Only the secretariat may do this.
    #[error("only the secretariat may do this; {node} is {role}")]
    NotSecretariat {
        /// The writer.
        node: String,
        /// Its role, as the protocol names it.
        role: &'static str,
    },
    /// Genesis: the first command must be the secretariat admitting itself.
    #[error("the first member must be the secretariat admitting itself")]
    Genesis,
    /// An admitted member's entry is malformed.
    #[error("{0}")]
    BadMember(String),
    /// The member to admit already is one.
    #[error("{0} is already a member")]
    AlreadyMember(String),
    /// The secretariat may not suspend, revoke or demote itself.
    #[error("the secretariat cannot {0} itself")]
    SelfTarget(&'static str),
    /// The member is not in the status the command needs.
    #[error("{node} is {what}")]
    WrongStatus {
        /// The member.
        node: String,
        /// What is wrong, e.g. "not active", "already revoked".
        what: &'static str,
    },
    /// The role named is not a known role.
    #[error("unknown role")]
    UnknownRole,
    /// A published list is longer than the directory keeps.
    #[error("at most {limit} {what}")]
    TooMany {
        /// The limit.
        limit: usize,
        /// What is listed.
        what: &'static str,
    },
    /// Trace response times are not positive, or urgent is longer than routine.
    #[error("response times must be positive and urgent no longer than routine")]
    ResponseTimes,
    /// The published sharing policy does not parse.
    #[error("policy: {0}")]
    BadPolicy(String),
    /// The policy's owner country is not the writer's.
    #[error("policy owner_country {owner} is not {writer}'s country")]
    PolicyOwner {
        /// The country the policy names.
        owner: String,
        /// The writer.
        writer: String,
    },
    /// A policy version must grow.
    #[error("policy version {version} is not newer than {last}")]
    PolicyVersion {
        /// The version published.
        version: u64,
        /// The version in force.
        last: u64,
    },
}

/// A command's outcome as replicated: applied, or refused with the reason.
pub fn apply(state: &mut pb::DirectoryState, cmd: &pb::DirectoryCommand) -> pb::DirectoryResponse {
    match decide(state, cmd) {
        Ok(()) => pb::DirectoryResponse {
            applied: true,
            refusal: String::new(),
        },
        Err(refusal) => pb::DirectoryResponse {
            applied: false,
            refusal: refusal.to_string(),
        },
    }
}

fn status(m: &pb::Member) -> pb::MemberStatus {
    pb::MemberStatus::try_from(m.status).unwrap_or(pb::MemberStatus::Unspecified)
}

fn role(m: &pb::Member) -> pb::MemberRole {
    pb::MemberRole::try_from(m.role).unwrap_or(pb::MemberRole::Unspecified)
}

fn active_member<'a>(
    state: &'a pb::DirectoryState,
    writer: &str,
) -> Result<&'a pb::Member, Refusal> {
    let m = state
        .members
        .get(writer)
        .ok_or_else(|| Refusal::NotMember(writer.to_owned()))?;
    match status(m) {
        pb::MemberStatus::Active => Ok(m),
        other => Err(Refusal::WriterNotActive {
            node: writer.to_owned(),
            status: other.as_str_name(),
        }),
    }
}

fn secretariat(state: &pb::DirectoryState, writer: &str) -> Result<(), Refusal> {
    let m = active_member(state, writer)?;
    if role(m) == pb::MemberRole::Secretariat {
        Ok(())
    } else {
        Err(Refusal::NotSecretariat {
            node: writer.to_owned(),
            role: role(m).as_str_name(),
        })
    }
}

fn check_member(m: &pb::Member) -> Result<(), Refusal> {
    let bad = |why: String| Err(Refusal::BadMember(why));
    let id = NodeId::parse(&m.node_id).map_err(|e| Refusal::BadId(e.to_string()))?;
    let country = CountryCode::parse(&m.country).map_err(|e| Refusal::BadMember(e.to_string()))?;
    if id.country() != country {
        return bad(format!("{} does not belong to {country}", m.node_id));
    }
    if role(m) == pb::MemberRole::Unspecified {
        return bad("a member needs a role".into());
    }
    if m.endpoint.trim().is_empty() || m.endpoint.len() > 255 {
        return bad("a member needs a peer API endpoint (host:port)".into());
    }
    if m.signing_key.len() != 32 {
        return bad("signing_key must be a 32-byte Ed25519 public key".into());
    }
    if !m.sealing_key.is_empty() && m.sealing_key.len() != 32 {
        return bad("sealing_key must be empty or a 32-byte X25519 public key".into());
    }
    if m.cert_fingerprint.len() != 64 || !m.cert_fingerprint.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return bad("cert_fingerprint must be a SHA-256 in hex".into());
    }
    Ok(())
}

fn target<'a>(
    state: &'a mut pb::DirectoryState,
    node_id: &str,
) -> Result<&'a mut pb::Member, Refusal> {
    state
        .members
        .get_mut(node_id)
        .ok_or_else(|| Refusal::NotMember(node_id.to_owned()))
}

fn decide(state: &mut pb::DirectoryState, cmd: &pb::DirectoryCommand) -> Result<(), Refusal> {
    use pb::directory_command::Op;
    let writer = NodeId::parse(&cmd.writer).map_err(|e| Refusal::BadId(e.to_string()))?;
    let w = writer.as_str();
    let op = cmd.op.as_ref().ok_or(Refusal::Empty)?;
    let wrong = |node: &str, what: &'static str| {
        Err(Refusal::WrongStatus {
            node: node.to_owned(),
            what,
        })
    };
    match op {
        Op::Admit(m) => {
            if state.members.is_empty() {
                if m.node_id != w || role(m) != pb::MemberRole::Secretariat {
                    return Err(Refusal::Genesis);
                }
            } else {
                secretariat(state, w)?;
            }
            check_member(m)?;
            if state.members.contains_key(&m.node_id) {
                return Err(Refusal::AlreadyMember(m.node_id.clone()));
            }
            let mut m = m.clone();
            m.status = pb::MemberStatus::Active as i32;
            state.members.insert(m.node_id.clone(), m);
        }
        Op::Suspend(s) => {
            secretariat(state, w)?;
            if s.node_id == w {
                return Err(Refusal::SelfTarget("suspend"));
            }
            let t = target(state, &s.node_id)?;
            if status(t) != pb::MemberStatus::Active {
                return wrong(&s.node_id, "not active");
            }
            t.status = pb::MemberStatus::Suspended as i32;
        }
        Op::Reinstate(s) => {
            secretariat(state, w)?;
            let t = target(state, &s.node_id)?;
            if status(t) != pb::MemberStatus::Suspended {
                return wrong(&s.node_id, "not suspended");
            }
            t.status = pb::MemberStatus::Active as i32;
        }
        Op::Revoke(s) => {
            secretariat(state, w)?;
            if s.node_id == w {
                return Err(Refusal::SelfTarget("revoke"));
            }
            let t = target(state, &s.node_id)?;
            if status(t) == pb::MemberStatus::Revoked {
                return wrong(&s.node_id, "already revoked");
            }
            t.status = pb::MemberStatus::Revoked as i32;
            let fingerprint = t.cert_fingerprint.clone();
            state.revocations.push(pb::Revocation {
                node_id: s.node_id.clone(),
                cert_fingerprint: fingerprint,
                reason: s.reason.clone(),
                at: cmd.at,
            });
        }
        Op::ChangeRole(r) => {
            secretariat(state, w)?;
            let new = pb::MemberRole::try_from(r.role).unwrap_or(pb::MemberRole::Unspecified);
            if new == pb::MemberRole::Unspecified {
                return Err(Refusal::UnknownRole);
            }
            if r.node_id == w && new != pb::MemberRole::Secretariat {
                return Err(Refusal::SelfTarget("demote"));
            }
            let t = target(state, &r.node_id)?;
            if status(t) == pb::MemberStatus::Revoked {
                return wrong(&r.node_id, "revoked");
            }
            t.role = new as i32;
        }
        Op::PublishContacts(c) => {
            active_member(state, w)?;
            if c.contacts.len() > 50 {
                return Err(Refusal::TooMany {
                    limit: 50,
                    what: "contact points",
                });
            }
            state.entries.entry(w.to_owned()).or_default().contacts = c.contacts.clone();
        }
        Op::PublishTraceSettings(t) => {
            active_member(state, w)?;
            if t.routine_days == 0 || t.urgent_days == 0 || t.urgent_days > t.routine_days {
                return Err(Refusal::ResponseTimes);
            }
            state.entries.entry(w.to_owned()).or_default().trace = Some(t.clone());
        }
        Op::PublishPolicy(p) => {
            active_member(state, w)?;
            let parsed = Policy::parse(p.clone()).map_err(|e| Refusal::BadPolicy(e.to_string()))?;
            if parsed.owner() != writer.country() {
                return Err(Refusal::PolicyOwner {
                    owner: parsed.owner().to_string(),
                    writer: w.to_owned(),
                });
            }
            let entries = state.entries.entry(w.to_owned()).or_default();
            let last = entries
                .policies
                .last()
                .and_then(|p| p.policy.as_ref())
                .map_or(0, |p| p.version);
            if p.version <= last {
                return Err(Refusal::PolicyVersion {
                    version: p.version,
                    last,
                });
            }
            entries.policies.push(pb::PublishedPolicy {
                policy: Some(p.clone()),
                published_at: cmd.at,
            });
        }
        Op::PublishMarkingPractices(m) => {
            active_member(state, w)?;
            if m.practices.len() > 500 {
                return Err(Refusal::TooMany {
                    limit: 500,
                    what: "marking practices",
                });
            }
            state
                .entries
                .entry(w.to_owned())
                .or_default()
                .marking_practices = m.practices.clone();
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use pb::directory_command::Op;

    fn member(id: &str, role: pb::MemberRole) -> pb::Member {
        pb::Member {
            node_id: id.into(),
            country: id[..3].into(),
            organisation: format!("Synthetic {id}"),
            role: role as i32,
            endpoint: format!("{}.example.test:7400", id.to_lowercase()),
            cert_fingerprint: "ab".repeat(32),
            signing_key: vec![7; 32],
            sealing_key: vec![],
            status: 0,
            regions: vec![],
        }
    }

    fn cmd(writer: &str, op: Op) -> pb::DirectoryCommand {
        pb::DirectoryCommand {
            writer: writer.into(),
            at: 100,
            op: Some(op),
        }
    }

    fn founded() -> pb::DirectoryState {
        let mut s = pb::DirectoryState::default();
        let r = apply(
            &mut s,
            &cmd(
                "CHE-SEC",
                Op::Admit(member("CHE-SEC", pb::MemberRole::Secretariat)),
            ),
        );
        assert!(r.applied, "{}", r.refusal);
        for id in ["FRA-POL", "DEU-CUS"] {
            let r = apply(
                &mut s,
                &cmd("CHE-SEC", Op::Admit(member(id, pb::MemberRole::National))),
            );
            assert!(r.applied, "{}", r.refusal);
        }
        s
    }

    fn refused(s: &mut pb::DirectoryState, c: pb::DirectoryCommand, why: &str) {
        let before = s.clone();
        let r = apply(s, &c);
        assert!(!r.applied, "applied: {c:?}");
        assert!(r.refusal.contains(why), "'{}' lacks '{why}'", r.refusal);
        assert_eq!(*s, before, "a refused command changed the state");
    }

    #[test]
    fn genesis_must_be_the_secretariat_admitting_itself() {
        let mut s = pb::DirectoryState::default();
        refused(
            &mut s,
            cmd(
                "FRA-POL",
                Op::Admit(member("FRA-POL", pb::MemberRole::National)),
            ),
            "first member",
        );
        refused(
            &mut s,
            cmd(
                "CHE-SEC",
                Op::Admit(member("FRA-POL", pb::MemberRole::Secretariat)),
            ),
            "first member",
        );
        let s = founded();
        assert_eq!(s.members.len(), 3);
        assert_eq!(s.members["FRA-POL"].status, pb::MemberStatus::Active as i32);
    }

    #[test]
    fn only_the_secretariat_admits_suspends_and_revokes() {
        let mut s = founded();
        refused(
            &mut s,
            cmd(
                "FRA-POL",
                Op::Admit(member("ITA-POL", pb::MemberRole::National)),
            ),
            "only the secretariat",
        );
        let stop = |id: &str| pb::StatusChange {
            node_id: id.into(),
            reason: "synthetic".into(),
        };
        refused(
            &mut s,
            cmd("FRA-POL", Op::Suspend(stop("DEU-CUS"))),
            "only the secretariat",
        );
        refused(
            &mut s,
            cmd("FRA-POL", Op::Revoke(stop("DEU-CUS"))),
            "only the secretariat",
        );
        assert!(apply(&mut s, &cmd("CHE-SEC", Op::Suspend(stop("DEU-CUS")))).applied);
        refused(
            &mut s,
            cmd("DEU-CUS", Op::PublishContacts(pb::ContactPoints::default())),
            "SUSPENDED",
        );
        assert!(apply(&mut s, &cmd("CHE-SEC", Op::Reinstate(stop("DEU-CUS")))).applied);
        assert!(apply(&mut s, &cmd("CHE-SEC", Op::Revoke(stop("DEU-CUS")))).applied);
        assert_eq!(s.revocations.len(), 1);
        assert_eq!(s.revocations[0].cert_fingerprint, "ab".repeat(32));
        refused(
            &mut s,
            cmd("CHE-SEC", Op::Reinstate(stop("DEU-CUS"))),
            "not suspended",
        );
        refused(
            &mut s,
            cmd("CHE-SEC", Op::Revoke(stop("CHE-SEC"))),
            "cannot revoke itself",
        );
    }

    #[test]
    fn admissions_are_checked() {
        let mut s = founded();
        let mut bad = member("ITA-POL", pb::MemberRole::National);
        bad.country = "FRA".into();
        refused(&mut s, cmd("CHE-SEC", Op::Admit(bad)), "does not belong");
        let mut bad = member("ITA-POL", pb::MemberRole::National);
        bad.signing_key = vec![1; 5];
        refused(&mut s, cmd("CHE-SEC", Op::Admit(bad)), "signing_key");
        refused(
            &mut s,
            cmd(
                "CHE-SEC",
                Op::Admit(member("FRA-POL", pb::MemberRole::National)),
            ),
            "already a member",
        );
    }

    #[test]
    fn members_publish_only_their_own_entries_and_policies_must_be_theirs_and_newer() {
        let mut s = founded();
        let policy = |country: &str, version: u64| pb::SharingPolicy {
            owner_country: country.into(),
            version,
            legal_basis: "synthetic".into(),
            rules: vec![],
        };
        assert!(apply(&mut s, &cmd("FRA-POL", Op::PublishPolicy(policy("FRA", 1)))).applied);
        refused(
            &mut s,
            cmd("FRA-POL", Op::PublishPolicy(policy("DEU", 2))),
            "not FRA-POL's country",
        );
        refused(
            &mut s,
            cmd("FRA-POL", Op::PublishPolicy(policy("FRA", 1))),
            "not newer",
        );
        assert!(apply(&mut s, &cmd("FRA-POL", Op::PublishPolicy(policy("FRA", 2)))).applied);
        assert_eq!(s.entries["FRA-POL"].policies.len(), 2, "history kept");
        assert!(!s.entries.contains_key("DEU-CUS"));

        let contacts = pb::ContactPoints {
            contacts: vec![pb::ContactPoint {
                function: "national focal point".into(),
                email: "focal.point@example.test".into(),
                ..Default::default()
            }],
        };
        assert!(apply(&mut s, &cmd("DEU-CUS", Op::PublishContacts(contacts))).applied);
        assert_eq!(s.entries["DEU-CUS"].contacts.len(), 1);
        assert!(s.entries["FRA-POL"].contacts.is_empty());
        refused(
            &mut s,
            cmd("ITA-POL", Op::PublishContacts(pb::ContactPoints::default())),
            "not a member",
        );
        refused(
            &mut s,
            cmd(
                "FRA-POL",
                Op::PublishTraceSettings(pb::TraceServiceSettings {
                    routine_days: 5,
                    urgent_days: 9,
                    escalation_contact: String::new(),
                }),
            ),
            "urgent no longer",
        );
    }

    #[test]
    fn applying_is_deterministic() {
        let a = founded();
        let b = founded();
        assert_eq!(a, b);
    }
}
