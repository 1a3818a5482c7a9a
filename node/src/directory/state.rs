//! Directory state transitions, pure: every command is authorised here, inside the state machine,
//! from the writer's signature, so every replica reaches the same decision whoever the leader is.
//!
//! - Every command is signed by its writer (`DirectoryCommand` in directory.proto documents the
//!   bytes) and verified against the writer's key as the directory already holds it; its `seq`
//!   must exceed the writer's last applied one (no replays). Unsigned, badly signed and replayed
//!   commands are refused.
//! - The very first command must be the pinned secretariat ([`Genesis`], from the configuration)
//!   admitting itself with its pinned key and certificate fingerprint.
//! - Admission, suspension, reinstatement, revocation and role changes are the secretariat's.
//! - A member publishes only its own contact points, trace settings, sharing policy and marking
//!   practices (commands carry no target: they always apply to the writer).
//! - A member lists the fingerprints of its own gateway and admin certificates
//!   (`PublishLocalCertificates`); it may revoke those (`RevokeCertificate`), the secretariat
//!   any certificate.
//! - A State's node publishes which nodes of its State receive trace requests
//!   (`PublishTracingDesignation`); an organisation's node may not, and no node may name
//!   another State's or an organisation's node.
//! - A member's kind is consistent with its id: a national agency's id starts with its country;
//!   a regional organisation, international body or secretariat has no country and its id
//!   starts with its organisation code; only a regional organisation lists member States.
//! - A revoked member is final; a suspended member may not publish.
//!
//! The state keeps, per member, the signed commands that produced its record and entries
//! (`MemberProofs`), so [`verify`] checks a whole state, such as an installed snapshot, entry by
//! entry without trusting whoever sent it.

use tracenet_proto::v1 as pb;

use super::assistance;
use crate::country::CountryCode;
use crate::envelope::verify_directory_command;
use crate::ids::{Affiliation, NodeId};
use crate::policy::Policy;

/// The founding secretariat every replica is configured with (`[directory.secretariat]`): the
/// only node whose self-admission may found the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    /// Its node id.
    pub node_id: NodeId,
    /// SHA-256 of its node certificate, lowercase hex.
    pub cert_fingerprint: String,
    /// Its Ed25519 public key (32 bytes).
    pub signing_key: Vec<u8>,
    /// How many published policy versions are kept per member, the latest included (at least
    /// 1). Part of the replicated rules: the same on every replica.
    pub policy_history: usize,
}

/// Policy versions kept per member unless `[directory] policy_history` says otherwise.
pub const DEFAULT_POLICY_HISTORY: usize = 10;

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
    /// Genesis: the first command must be the pinned secretariat admitting itself with its
    /// pinned key and certificate.
    #[error(
        "the first member must be the secretariat admitting itself: {0} with the signing key and certificate fingerprint the configuration pins"
    )]
    Genesis(String),
    /// The command carries no signature.
    #[error("the command from {0} is not signed")]
    Unsigned(String),
    /// The signature does not verify with the writer's key as the directory holds it.
    #[error("the signature of {0} does not verify with its key in the directory")]
    BadSignature(String),
    /// The command's sequence number is not above the writer's last applied one: a replay, or a
    /// resend of a command already applied.
    #[error("{writer}'s command seq {seq} is not above its last applied seq {last}")]
    Replayed {
        /// The writer.
        writer: String,
        /// The command's seq.
        seq: u64,
        /// The writer's last applied seq.
        last: u64,
    },
    /// The very same command (writer, seq and signature) is kept in the state: a resend of a
    /// command already applied. Not an error for the caller: [`apply`] answers it as applied.
    #[error("{writer}'s command seq {seq} was already applied")]
    AlreadyApplied {
        /// The writer.
        writer: String,
        /// The command's seq.
        seq: u64,
    },
    /// A state (snapshot) entry does not match the signed commands kept with it.
    #[error("directory entry does not verify: {0}")]
    BadProof(String),
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
    /// A certificate fingerprint is not a SHA-256 in hex.
    #[error("certificate fingerprint {0:?} is not a SHA-256 in hex")]
    BadFingerprint(String),
    /// The certificate is already revoked.
    #[error("certificate {0} is already revoked")]
    AlreadyRevoked(String),
    /// A member may revoke only a gateway or admin certificate it lists itself.
    #[error(
        "{writer} may revoke only certificates it lists as its gateway or admin; {fingerprint} is not"
    )]
    NotOwnCertificate {
        /// The writer.
        writer: String,
        /// The fingerprint it asked to revoke.
        fingerprint: String,
    },
    /// An organisation's node owns no records, so it publishes no sharing policy.
    #[error("{0} is an organisation's node: it publishes no sharing policy")]
    OrganisationPolicy(String),
    /// Only a State's node designates its State's tracing node.
    #[error("{0} is not a State's node: only a State's nodes designate its tracing node")]
    NotAStateNode(String),
    /// A tracing designation names a node that is not an active member of the writer's State.
    #[error("{node} is not an active member of {state}: a State designates only its own nodes")]
    NotOwnStateNode {
        /// The node named.
        node: String,
        /// The writer's State.
        state: String,
    },
    /// A tracing designation names a weapon category that is unknown, unspecified or listed
    /// twice.
    #[error("weapon category {0} is unknown or listed twice")]
    BadCategory(i32),
    /// A published audit checkpoint must be a 32-byte chain value at a sequence above the one
    /// published before (a lower one would hide a truncated log).
    #[error(
        "audit checkpoint {seq} is not above the published {last} (or its hash is not 32 bytes)"
    )]
    AuditCheckpoint {
        /// The sequence published.
        seq: u64,
        /// The sequence published before.
        last: u64,
    },
    /// An assistance entry, proposal or step is malformed.
    #[error("assistance: {0}")]
    AssistanceInvalid(String),
    /// The need, offer or match named is not in the directory.
    #[error("assistance: no {what} {id}")]
    AssistanceUnknown {
        /// "need", "offer" or "match".
        what: &'static str,
        /// Its id (`<author>/<id>`).
        id: String,
    },
    /// The need or offer is closed.
    #[error("assistance: {0} is closed")]
    AssistanceClosed(String),
    /// The donor already used that match id.
    #[error("assistance: match {0} already exists")]
    AssistanceDuplicate(String),
    /// Only the donor and the requesting State record steps of a match.
    #[error("assistance: {writer} is not a party to match {match_id}")]
    AssistanceNotParty {
        /// The writer.
        writer: String,
        /// The match.
        match_id: String,
    },
    /// Only the requesting State (the need's author) accepts or declines a match.
    #[error(
        "assistance: only the requesting State accepts or declines match {match_id}; {writer} is not it"
    )]
    AssistanceNotRequester {
        /// The writer.
        writer: String,
        /// The match.
        match_id: String,
    },
    /// A match's status moves forward only, along open -> matched -> in progress -> delivered ->
    /// closed.
    #[error("assistance: a match cannot go from {from} to {to}")]
    AssistanceTransition {
        /// Its status.
        from: &'static str,
        /// The status asked for.
        to: &'static str,
    },
    /// A sealing key must be a 32-byte X25519 public key (the length given).
    #[error("a sealing key is a 32-byte X25519 public key, not {0} bytes")]
    SealingKey(usize),
    /// A hub route must name a member with the hub role, other than the writer.
    #[error("hub route refused: {0}")]
    HubRoute(String),
}

/// At most this many gateway (and as many admin) certificates per member.
const MAX_LOCAL_CERTIFICATES: usize = 20;

/// A fingerprint as the directory keeps it: 64 hex digits, lowercase.
fn fingerprint(f: &str) -> Result<String, Refusal> {
    if f.len() != 64 || !f.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Refusal::BadFingerprint(f.chars().take(80).collect()));
    }
    Ok(f.to_ascii_lowercase())
}

/// The lists as kept: every fingerprint checked and lowercased, each list bounded.
fn local_certificates(c: &pb::LocalCertificates) -> Result<pb::LocalCertificates, Refusal> {
    if c.gateway_fingerprints.len() > MAX_LOCAL_CERTIFICATES
        || c.admin_fingerprints.len() > MAX_LOCAL_CERTIFICATES
    {
        return Err(Refusal::TooMany {
            limit: MAX_LOCAL_CERTIFICATES,
            what: "gateway or admin certificates",
        });
    }
    let all = |l: &[String]| {
        l.iter()
            .map(|f| fingerprint(f))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(pb::LocalCertificates {
        gateway_fingerprints: all(&c.gateway_fingerprints)?,
        admin_fingerprints: all(&c.admin_fingerprints)?,
    })
}

/// A command's outcome as replicated: applied, or refused with the reason. `genesis` is the
/// pinned founding secretariat.
pub fn apply(
    state: &mut pb::DirectoryState,
    genesis: &Genesis,
    cmd: &pb::DirectoryCommand,
) -> pb::DirectoryResponse {
    match decide(state, genesis, cmd) {
        Ok(()) => pb::DirectoryResponse {
            applied: true,
            ..Default::default()
        },
        // A resend (its effect is already in the state, which stays as it is).
        Err(Refusal::AlreadyApplied { .. }) => pb::DirectoryResponse {
            applied: true,
            already_applied: true,
            ..Default::default()
        },
        Err(refusal) => pb::DirectoryResponse {
            applied: false,
            refusal: refusal.to_string(),
            ..Default::default()
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
    let kind = pb::MemberKind::try_from(m.kind)
        .map_err(|_| Refusal::BadMember("kind is not a known member kind".into()))?;
    match (id.affiliation(), kind) {
        // A State's node is a national agency (unspecified: admitted before kinds existed).
        (
            Affiliation::State(state),
            pb::MemberKind::NationalAgency | pb::MemberKind::Unspecified,
        ) => {
            let country =
                CountryCode::parse(&m.country).map_err(|e| Refusal::BadMember(e.to_string()))?;
            if *state != country {
                return bad(format!("{} does not belong to {country}", m.node_id));
            }
        }
        (Affiliation::State(_), other) => {
            return bad(format!(
                "{} is a State's node id; a {} needs an organisation code as its id prefix",
                m.node_id,
                other.as_str_name()
            ));
        }
        (Affiliation::Organisation(_), pb::MemberKind::Unspecified) => {
            return bad(format!(
                "{} is an organisation's node: its member kind is required",
                m.node_id
            ));
        }
        (Affiliation::Organisation(_), pb::MemberKind::NationalAgency) => {
            return bad(format!(
                "{} is an organisation's node id; a national agency's id starts with its country",
                m.node_id
            ));
        }
        (Affiliation::Organisation(_), _) => {
            if !m.country.is_empty() {
                return bad(format!(
                    "{} is an organisation's node: it has no country",
                    m.node_id
                ));
            }
        }
    }
    if kind == pb::MemberKind::RegionalOrganisation {
        if m.member_states.is_empty() || m.member_states.len() > 250 {
            return bad("a regional organisation lists 1 to 250 member States".into());
        }
        let mut seen = std::collections::HashSet::new();
        for c in &m.member_states {
            let parsed = CountryCode::parse(c).map_err(|e| Refusal::BadMember(e.to_string()))?;
            if parsed.as_str() != c || !seen.insert(parsed) {
                return bad(format!(
                    "member State {c:?} is not an uppercase ISO alpha-3 code listed once"
                ));
            }
        }
    } else if !m.member_states.is_empty() {
        return bad("only a regional organisation lists member States".into());
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
    if pb::AgencyKind::try_from(m.agency_kind).is_err() {
        return bad("agency_kind is not a known agency kind".into());
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

/// The key `cmd`'s writer signs with as `state` holds it (the pinned key before genesis).
fn writer_key<'a>(
    state: &'a pb::DirectoryState,
    genesis: &'a Genesis,
    writer: &str,
) -> Result<&'a [u8], Refusal> {
    if state.members.is_empty() {
        if writer != genesis.node_id.as_str() {
            return Err(Refusal::Genesis(genesis.node_id.to_string()));
        }
        return Ok(&genesis.signing_key);
    }
    state
        .members
        .get(writer)
        .map(|m| m.signing_key.as_slice())
        .ok_or_else(|| Refusal::NotMember(writer.to_owned()))
}

/// Checks that `cmd` is signed by its writer with the key `state` holds for it and is not a
/// replay. What the leader checks before replicating a proposal, and the first thing
/// [`apply`] checks.
pub fn authenticate(
    state: &pb::DirectoryState,
    genesis: &Genesis,
    cmd: &pb::DirectoryCommand,
) -> Result<(), Refusal> {
    let writer = NodeId::parse(&cmd.writer).map_err(|e| Refusal::BadId(e.to_string()))?;
    let w = writer.as_str();
    let key = writer_key(state, genesis, w)?;
    if cmd.signature.is_empty() {
        return Err(Refusal::Unsigned(w.to_owned()));
    }
    verify_directory_command(key, cmd).map_err(|_| Refusal::BadSignature(w.to_owned()))?;
    let last = state.proofs.get(w).map_or(0, |p| p.last_seq);
    if cmd.seq <= last {
        // The same signed command still kept (so still in effect): a resend, not a replay of a
        // superseded one. The signature is over everything, so equal writer, seq and signature
        // means the same command.
        let same = |c: &pb::DirectoryCommand| {
            c.writer == cmd.writer && c.seq == cmd.seq && c.signature == cmd.signature
        };
        if state.proofs.values().any(|p| kept(p).any(same))
            || state
                .assistance_matches
                .iter()
                .flat_map(|m| m.commands.iter())
                .any(same)
        {
            return Err(Refusal::AlreadyApplied {
                writer: w.to_owned(),
                seq: cmd.seq,
            });
        }
        return Err(Refusal::Replayed {
            writer: w.to_owned(),
            seq: cmd.seq,
            last,
        });
    }
    Ok(())
}

/// Every signed command kept in `p`.
fn kept(p: &pb::MemberProofs) -> impl Iterator<Item = &pb::DirectoryCommand> {
    [
        &p.admit,
        &p.status,
        &p.contacts,
        &p.trace,
        &p.marking_practices,
        &p.audit_checkpoint,
        &p.local_certificates,
        &p.sealing_key,
        &p.hub_route,
        &p.tracing_designation,
    ]
    .into_iter()
    .flatten()
    .chain(p.policies.iter())
    .chain(p.roles.iter())
    .chain(p.certificate_revocations.iter())
    .chain(p.assistance_entries.iter())
}

fn proofs<'a>(state: &'a mut pb::DirectoryState, node: &str) -> &'a mut pb::MemberProofs {
    state.proofs.entry(node.to_owned()).or_default()
}

fn decide(
    state: &mut pb::DirectoryState,
    genesis: &Genesis,
    cmd: &pb::DirectoryCommand,
) -> Result<(), Refusal> {
    use pb::directory_command::Op;
    let writer = NodeId::parse(&cmd.writer).map_err(|e| Refusal::BadId(e.to_string()))?;
    let w = writer.as_str();
    let op = cmd.op.as_ref().ok_or(Refusal::Empty)?;
    authenticate(state, genesis, cmd)?;
    let wrong = |node: &str, what: &'static str| {
        Err(Refusal::WrongStatus {
            node: node.to_owned(),
            what,
        })
    };
    match op {
        Op::Admit(m) => {
            if state.members.is_empty() {
                if !is_genesis(genesis, w, m) {
                    return Err(Refusal::Genesis(genesis.node_id.to_string()));
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
            m.cert_fingerprint = m.cert_fingerprint.to_ascii_lowercase();
            proofs(state, &m.node_id).admit = Some(cmd.clone());
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
            proofs(state, &s.node_id).status = Some(cmd.clone());
        }
        Op::Reinstate(s) => {
            secretariat(state, w)?;
            let t = target(state, &s.node_id)?;
            if status(t) != pb::MemberStatus::Suspended {
                return wrong(&s.node_id, "not suspended");
            }
            t.status = pb::MemberStatus::Active as i32;
            proofs(state, &s.node_id).status = Some(cmd.clone());
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
            proofs(state, &s.node_id).status = Some(cmd.clone());
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
            proofs(state, &r.node_id).roles.push(cmd.clone());
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
            proofs(state, w).contacts = Some(cmd.clone());
        }
        Op::PublishTraceSettings(t) => {
            active_member(state, w)?;
            if t.routine_days == 0 || t.urgent_days == 0 || t.urgent_days > t.routine_days {
                return Err(Refusal::ResponseTimes);
            }
            state.entries.entry(w.to_owned()).or_default().trace = Some(t.clone());
            proofs(state, w).trace = Some(cmd.clone());
        }
        Op::PublishPolicy(p) => {
            active_member(state, w)?;
            let parsed = Policy::parse(p.clone()).map_err(|e| Refusal::BadPolicy(e.to_string()))?;
            let Some(own) = writer.state() else {
                return Err(Refusal::OrganisationPolicy(w.to_owned()));
            };
            if parsed.owner() != own {
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
            // Older versions are dropped with their signed commands, so the kept history still
            // verifies command by command and its size stays bounded.
            let keep = genesis.policy_history.max(1);
            let excess = entries.policies.len().saturating_sub(keep);
            entries.policies.drain(..excess);
            let kept = proofs(state, w);
            kept.policies.push(cmd.clone());
            let excess = kept.policies.len().saturating_sub(keep);
            kept.policies.drain(..excess);
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
            proofs(state, w).marking_practices = Some(cmd.clone());
        }
        Op::PublishLocalCertificates(c) => {
            active_member(state, w)?;
            let kept = local_certificates(c)?;
            state
                .entries
                .entry(w.to_owned())
                .or_default()
                .local_certificates = Some(kept);
            proofs(state, w).local_certificates = Some(cmd.clone());
        }
        Op::RevokeCertificate(r) => {
            let m = active_member(state, w)?;
            let f = fingerprint(&r.cert_fingerprint)?;
            if role(m) != pb::MemberRole::Secretariat {
                let listed = state
                    .entries
                    .get(w)
                    .and_then(|e| e.local_certificates.as_ref())
                    .is_some_and(|l| {
                        l.gateway_fingerprints.contains(&f) || l.admin_fingerprints.contains(&f)
                    });
                if !listed {
                    return Err(Refusal::NotOwnCertificate {
                        writer: w.to_owned(),
                        fingerprint: f,
                    });
                }
            }
            if state.revocations.iter().any(|x| x.cert_fingerprint == f) {
                return Err(Refusal::AlreadyRevoked(f));
            }
            state.revocations.push(pb::Revocation {
                node_id: w.to_owned(),
                cert_fingerprint: f,
                reason: r.reason.clone(),
                at: cmd.at,
            });
            proofs(state, w).certificate_revocations.push(cmd.clone());
        }
        Op::PublishAuditCheckpoint(a) => {
            active_member(state, w)?;
            let entries = state.entries.entry(w.to_owned()).or_default();
            let last = entries.audit_checkpoint.as_ref().map_or(0, |a| a.seq);
            if a.seq <= last || a.chain_hash.len() != 32 {
                return Err(Refusal::AuditCheckpoint { seq: a.seq, last });
            }
            entries.audit_checkpoint = Some(a.clone());
            proofs(state, w).audit_checkpoint = Some(cmd.clone());
        }
        Op::PublishAssistance(e) => {
            active_member(state, w)?;
            assistance::check_entry(e)?;
            assistance::put_entry(state.entries.entry(w.to_owned()).or_default(), e)?;
            assistance::put_proof(&mut proofs(state, w).assistance_entries, cmd);
        }
        Op::ProposeAssistance(p) => {
            active_member(state, w)?;
            assistance::check_proposal(state, w, p)?;
            state.assistance_matches.push(assistance::start(cmd, p));
        }
        Op::AssistanceStep(s) => {
            active_member(state, w)?;
            let m = state
                .assistance_matches
                .iter_mut()
                .find(|m| m.id == s.match_id)
                .ok_or_else(|| Refusal::AssistanceUnknown {
                    what: "match",
                    id: s.match_id.chars().take(140).collect(),
                })?;
            // Applied to a copy: a refused step leaves the match as it was.
            let mut next = m.clone();
            assistance::step(&mut next, cmd, s)?;
            *m = next;
        }
        Op::PublishSealingKey(k) => {
            active_member(state, w)?;
            sealing_key(k)?;
            state.entries.entry(w.to_owned()).or_default().sealing_key = k.public_key.clone();
            proofs(state, w).sealing_key = Some(cmd.clone());
        }
        Op::PublishHubRoute(r) => {
            active_member(state, w)?;
            hub_route(state, w, r)?;
            state.entries.entry(w.to_owned()).or_default().hub_route = Some(r.clone());
            proofs(state, w).hub_route = Some(cmd.clone());
        }
        Op::PublishTracingDesignation(d) => {
            active_member(state, w)?;
            let kept = tracing_designation(state, &writer, d, cmd.at)?;
            state
                .entries
                .entry(w.to_owned())
                .or_default()
                .tracing_designation = Some(kept);
            proofs(state, w).tracing_designation = Some(cmd.clone());
        }
    }
    proofs(state, w).last_seq = cmd.seq;
    Ok(())
}

/// A sealing key is a 32-byte X25519 public key.
fn sealing_key(k: &pb::SealingKey) -> Result<(), Refusal> {
    match k.public_key.len() {
        32 => Ok(()),
        n => Err(Refusal::SealingKey(n)),
    }
}

/// A member routes through a hub that is a member with the hub role (never itself).
fn hub_route(state: &pb::DirectoryState, writer: &str, r: &pb::HubRoute) -> Result<(), Refusal> {
    if r.hub.is_empty() {
        return match r.outbound_only {
            true => Err(Refusal::HubRoute(
                "an outbound-only member must name its hub".into(),
            )),
            false => Ok(()),
        };
    }
    if r.hub == writer {
        return Err(Refusal::HubRoute("a member cannot be its own hub".into()));
    }
    match state.members.get(&r.hub) {
        Some(m) if role(m) == pb::MemberRole::Hub => Ok(()),
        Some(_) => Err(Refusal::HubRoute(format!("{} is not a hub", r.hub))),
        None => Err(Refusal::HubRoute(format!("{} is not a member", r.hub))),
    }
}

/// At most this many per-category entries in a tracing designation.
const MAX_CATEGORY_DESIGNATIONS: usize = 32;

/// The designation as kept: written by a State's node, naming only active members of the same
/// State, each weapon category known and listed once; `published_at` is the command's `at`.
fn tracing_designation(
    state: &pb::DirectoryState,
    writer: &NodeId,
    d: &pb::TracingDesignation,
    at: i64,
) -> Result<pb::TracingDesignation, Refusal> {
    let own = writer
        .state()
        .ok_or_else(|| Refusal::NotAStateNode(writer.to_string()))?;
    if d.categories.len() > MAX_CATEGORY_DESIGNATIONS {
        return Err(Refusal::TooMany {
            limit: MAX_CATEGORY_DESIGNATIONS,
            what: "category designations",
        });
    }
    let own_node = |node: &str| -> Result<(), Refusal> {
        let refuse = || Refusal::NotOwnStateNode {
            node: node.chars().take(64).collect(),
            state: own.to_string(),
        };
        let id = NodeId::parse(node).map_err(|_| refuse())?;
        let m = state.members.get(node).ok_or_else(refuse)?;
        if !id.is_of_state(own) || status(m) != pb::MemberStatus::Active {
            return Err(refuse());
        }
        Ok(())
    };
    own_node(&d.node_id)?;
    let mut seen = std::collections::HashSet::new();
    for c in &d.categories {
        let known = pb::WeaponCategory::try_from(c.category)
            .is_ok_and(|k| k != pb::WeaponCategory::Unspecified);
        if !known || !seen.insert(c.category) {
            return Err(Refusal::BadCategory(c.category));
        }
        own_node(&c.node_id)?;
    }
    Ok(pb::TracingDesignation {
        node_id: d.node_id.clone(),
        categories: d.categories.clone(),
        published_at: at,
    })
}

fn is_genesis(genesis: &Genesis, writer: &str, m: &pb::Member) -> bool {
    writer == genesis.node_id.as_str()
        && m.node_id == writer
        && role(m) == pb::MemberRole::Secretariat
        && m.signing_key == genesis.signing_key
        && m.cert_fingerprint
            .eq_ignore_ascii_case(&genesis.cert_fingerprint)
}

/// Checks a whole state, as a snapshot carries it, against the signed commands kept with it:
/// every admission chains to the pinned genesis through secretariat signatures, every status and
/// role change is signed by a secretariat, every member's entries are what its own signed
/// commands published, and the members, entries and revocations are exactly what those commands
/// produce. A state that fails is refused as a whole.
pub fn verify(state: &pb::DirectoryState, genesis: &Genesis) -> Result<(), Refusal> {
    let rebuilt = rebuild(state, genesis)?;
    let bad = |what: &str| Err(Refusal::BadProof(what.to_owned()));
    if rebuilt.members != state.members {
        return bad("members differ from their signed admissions and status changes");
    }
    if rebuilt.entries != state.entries {
        return bad("entries differ from what their members signed");
    }
    let sorted = |r: &[pb::Revocation]| {
        let mut r = r.to_vec();
        r.sort_by(|a, b| {
            (&a.node_id, &a.cert_fingerprint, a.at).cmp(&(&b.node_id, &b.cert_fingerprint, b.at))
        });
        r
    };
    if sorted(&rebuilt.revocations) != sorted(&state.revocations) {
        return bad("revocations differ from the signed revocations");
    }
    if rebuilt.assistance_matches != state.assistance_matches {
        return bad("assistance matches differ from their signed commands");
    }
    Ok(())
}

fn rebuild(state: &pb::DirectoryState, genesis: &Genesis) -> Result<pb::DirectoryState, Refusal> {
    use pb::directory_command::Op;
    let bad = |why: String| Refusal::BadProof(why);
    let mut out = pb::DirectoryState::default();
    if state.proofs.is_empty() {
        return Ok(out);
    }
    let signed_by = |cmd: &pb::DirectoryCommand, key: &[u8]| {
        verify_directory_command(key, cmd).map_err(|_| Refusal::BadSignature(cmd.writer.clone()))
    };
    let admitted = |cmd: &pb::DirectoryCommand, id: &str| -> Result<pb::Member, Refusal> {
        match cmd.op.as_ref() {
            Some(Op::Admit(m)) if m.node_id == id => {
                let mut m = m.clone();
                m.status = pb::MemberStatus::Active as i32;
                m.cert_fingerprint = m.cert_fingerprint.to_ascii_lowercase();
                Ok(m)
            }
            _ => Err(bad(format!("the admission of {id} is not one"))),
        }
    };
    // Genesis first, then every admission whose signer is already admitted, until none is left.
    let g = genesis.node_id.as_str();
    let gp = state
        .proofs
        .get(g)
        .and_then(|p| p.admit.as_ref())
        .ok_or_else(|| Refusal::Genesis(g.to_owned()))?;
    let gm = admitted(gp, g)?;
    if !is_genesis(genesis, &gp.writer, &gm) {
        return Err(Refusal::Genesis(g.to_owned()));
    }
    signed_by(gp, &genesis.signing_key)?;
    out.members.insert(g.to_owned(), gm);
    // A secretariat signer: admitted (so its key is trusted), and admitted as or made a
    // secretariat at some point by a signed role change (checked below).
    let ever_secretariat = |id: &str| {
        state.proofs.get(id).is_some_and(|p| {
            let admitted_as = matches!(
                p.admit.as_ref().and_then(|c| c.op.as_ref()),
                Some(Op::Admit(m)) if role(m) == pb::MemberRole::Secretariat
            );
            admitted_as
                || p.roles.iter().any(|c| {
                    matches!(&c.op, Some(Op::ChangeRole(r)) if r.role == pb::MemberRole::Secretariat as i32)
                })
        })
    };
    let secretariat_key = |out: &pb::DirectoryState, cmd: &pb::DirectoryCommand| {
        let signer = out.members.get(&cmd.writer)?;
        ever_secretariat(&cmd.writer).then(|| signer.signing_key.clone())
    };
    loop {
        let mut progress = false;
        for (id, p) in &state.proofs {
            if out.members.contains_key(id) {
                continue;
            }
            let cmd = p
                .admit
                .as_ref()
                .ok_or_else(|| bad(format!("{id} has no signed admission")))?;
            let Some(key) = secretariat_key(&out, cmd) else {
                continue;
            };
            signed_by(cmd, &key)?;
            out.members.insert(id.clone(), admitted(cmd, id)?);
            progress = true;
        }
        if !progress {
            break;
        }
    }
    if let Some(id) = state
        .proofs
        .keys()
        .find(|id| !out.members.contains_key(*id))
    {
        return Err(bad(format!(
            "the admission of {id} is not signed by an admitted secretariat"
        )));
    }
    // Status and role changes, signed by a secretariat.
    let ids: Vec<String> = out.members.keys().cloned().collect();
    for id in &ids {
        let p = &state.proofs[id];
        for cmd in p.roles.iter().chain(p.status.as_ref()) {
            let key = secretariat_key(&out, cmd)
                .ok_or_else(|| bad(format!("a change of {id} is not signed by a secretariat")))?;
            signed_by(cmd, &key)?;
            let m = out
                .members
                .get_mut(id)
                .ok_or_else(|| bad(format!("{id} vanished")))?;
            match cmd.op.as_ref() {
                Some(Op::ChangeRole(r)) if r.node_id == *id => m.role = r.role,
                Some(Op::Suspend(s)) if s.node_id == *id => {
                    m.status = pb::MemberStatus::Suspended as i32
                }
                Some(Op::Reinstate(s)) if s.node_id == *id => {
                    m.status = pb::MemberStatus::Active as i32
                }
                Some(Op::Revoke(s)) if s.node_id == *id => {
                    m.status = pb::MemberStatus::Revoked as i32;
                    out.revocations.push(pb::Revocation {
                        node_id: id.clone(),
                        cert_fingerprint: m.cert_fingerprint.clone(),
                        reason: s.reason.clone(),
                        at: cmd.at,
                    });
                }
                _ => return Err(bad(format!("a change of {id} is not about {id}"))),
            }
        }
    }
    // Each member's own publications, signed by itself.
    for id in &ids {
        let p = &state.proofs[id];
        let key = out.members[id].signing_key.clone();
        let own = |cmd: &pb::DirectoryCommand| {
            if cmd.writer != *id {
                return Err(bad(format!(
                    "an entry of {id} was written by {}",
                    cmd.writer
                )));
            }
            signed_by(cmd, &key)
        };
        let mut e = pb::MemberEntries::default();
        let mut any = false;
        if let Some(cmd) = &p.contacts {
            own(cmd)?;
            let Some(Op::PublishContacts(c)) = &cmd.op else {
                return Err(bad(format!("contacts of {id}")));
            };
            e.contacts = c.contacts.clone();
            any = true;
        }
        if let Some(cmd) = &p.trace {
            own(cmd)?;
            let Some(Op::PublishTraceSettings(t)) = &cmd.op else {
                return Err(bad(format!("trace settings of {id}")));
            };
            e.trace = Some(t.clone());
            any = true;
        }
        for cmd in &p.policies {
            own(cmd)?;
            let Some(Op::PublishPolicy(pol)) = &cmd.op else {
                return Err(bad(format!("a policy of {id}")));
            };
            e.policies.push(pb::PublishedPolicy {
                policy: Some(pol.clone()),
                published_at: cmd.at,
            });
            any = true;
        }
        if let Some(cmd) = &p.marking_practices {
            own(cmd)?;
            let Some(Op::PublishMarkingPractices(m)) = &cmd.op else {
                return Err(bad(format!("marking practices of {id}")));
            };
            e.marking_practices = m.practices.clone();
            any = true;
        }
        if let Some(cmd) = &p.local_certificates {
            own(cmd)?;
            let Some(Op::PublishLocalCertificates(c)) = &cmd.op else {
                return Err(bad(format!("local certificates of {id}")));
            };
            e.local_certificates = Some(local_certificates(c)?);
            any = true;
        }
        // Certificate revocations: signed by their writer. Whether a member's revocation named
        // its own certificate was checked when it was applied (see the residual risks).
        for cmd in &p.certificate_revocations {
            own(cmd)?;
            let Some(Op::RevokeCertificate(r)) = &cmd.op else {
                return Err(bad(format!("a certificate revocation by {id}")));
            };
            out.revocations.push(pb::Revocation {
                node_id: id.clone(),
                cert_fingerprint: fingerprint(&r.cert_fingerprint)?,
                reason: r.reason.clone(),
                at: cmd.at,
            });
        }
        if let Some(cmd) = &p.audit_checkpoint {
            own(cmd)?;
            let Some(Op::PublishAuditCheckpoint(a)) = &cmd.op else {
                return Err(bad(format!("audit checkpoint of {id}")));
            };
            e.audit_checkpoint = Some(a.clone());
            any = true;
        }
        for cmd in &p.assistance_entries {
            own(cmd)?;
            let Some(Op::PublishAssistance(a)) = &cmd.op else {
                return Err(bad(format!("an assistance entry of {id}")));
            };
            assistance::check_entry(a)?;
            assistance::put_entry(&mut e, a)?;
            any = true;
        }
        if let Some(cmd) = &p.sealing_key {
            own(cmd)?;
            let Some(Op::PublishSealingKey(k)) = &cmd.op else {
                return Err(bad(format!("sealing key of {id}")));
            };
            sealing_key(k)?;
            e.sealing_key = k.public_key.clone();
            any = true;
        }
        if let Some(cmd) = &p.hub_route {
            own(cmd)?;
            let Some(Op::PublishHubRoute(r)) = &cmd.op else {
                return Err(bad(format!("hub route of {id}")));
            };
            e.hub_route = Some(r.clone());
            any = true;
        }
        // Whom a designation named was checked against the state when it was applied (like
        // the revocations above); the roster keeps only nodes still active of the same State.
        if let Some(cmd) = &p.tracing_designation {
            own(cmd)?;
            let Some(Op::PublishTracingDesignation(d)) = &cmd.op else {
                return Err(bad(format!("tracing designation of {id}")));
            };
            e.tracing_designation = Some(pb::TracingDesignation {
                node_id: d.node_id.clone(),
                categories: d.categories.clone(),
                published_at: cmd.at,
            });
            any = true;
        }
        if any {
            out.entries.insert(id.clone(), e);
        }
    }
    // Matches, each replayed from its signed commands with the members' keys.
    let key_of = |id: &str| out.members.get(id).map(|m| m.signing_key.clone());
    let matches = state
        .assistance_matches
        .iter()
        .map(|m| assistance::replay(m, &key_of))
        .collect::<Result<Vec<_>, _>>()?;
    out.assistance_matches = matches;
    // No kept command may be above its writer's last applied seq (else replays would pass).
    let in_matches = state
        .assistance_matches
        .iter()
        .flat_map(|m| m.commands.iter());
    for cmds in state
        .proofs
        .values()
        .map(|p| kept(p).collect::<Vec<_>>())
        .chain(std::iter::once(in_matches.collect()))
    {
        for cmd in cmds {
            let last = state.proofs.get(&cmd.writer).map_or(0, |w| w.last_seq);
            if cmd.seq > last {
                return Err(bad(format!(
                    "{}'s last seq is below a command it signed",
                    cmd.writer
                )));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests {
    use super::*;
    use crate::envelope::SigningKey;
    use pb::directory_command::Op;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};

    /// One key per node id for the whole test run.
    pub(crate) fn key(id: &str) -> Arc<SigningKey> {
        static KEYS: OnceLock<Mutex<HashMap<String, Arc<SigningKey>>>> = OnceLock::new();
        let mut keys = KEYS.get_or_init(Default::default).lock().unwrap();
        keys.entry(id.to_owned())
            .or_insert_with(|| {
                let pkcs8 = SigningKey::generate_pkcs8().unwrap();
                Arc::new(SigningKey::from_pkcs8(&pkcs8, NodeId::parse(id).unwrap()).unwrap())
            })
            .clone()
    }

    pub(crate) fn genesis() -> Genesis {
        Genesis {
            node_id: NodeId::parse("CHE-SEC").unwrap(),
            cert_fingerprint: "ab".repeat(32),
            signing_key: key("CHE-SEC").public_key(),
            policy_history: 3,
        }
    }

    fn apply(s: &mut pb::DirectoryState, c: &pb::DirectoryCommand) -> pb::DirectoryResponse {
        super::apply(s, &genesis(), c)
    }

    pub(crate) fn member(id: &str, role: pb::MemberRole) -> pb::Member {
        let node = NodeId::parse(id).unwrap();
        pb::Member {
            node_id: id.into(),
            country: node.state().map(|c| c.to_string()).unwrap_or_default(),
            organisation: format!("Synthetic {id}"),
            role: role as i32,
            endpoint: format!("{}.example.test:7400", id.to_lowercase()),
            cert_fingerprint: "ab".repeat(32),
            signing_key: key(id).public_key(),
            sealing_key: vec![],
            status: 0,
            regions: vec![],
            agency_kind: 0,
            kind: 0,
            member_states: vec![],
        }
    }

    /// An organisation's member of `kind`, with these member States.
    pub(crate) fn org_member(id: &str, kind: pb::MemberKind, states: &[&str]) -> pb::Member {
        pb::Member {
            kind: kind as i32,
            member_states: states.iter().map(|s| (*s).to_owned()).collect(),
            ..member(id, pb::MemberRole::Hub)
        }
    }

    static SEQ: AtomicU64 = AtomicU64::new(1);

    /// A command written and signed by `signer` (the writer is the signer).
    pub(crate) fn signed(signer: &str, op: Op) -> pb::DirectoryCommand {
        let mut c = pb::DirectoryCommand {
            writer: String::new(),
            at: 100,
            seq: SEQ.fetch_add(1, Ordering::Relaxed),
            signature: vec![],
            op: Some(op),
        };
        key(signer).sign_directory_command(&mut c);
        c
    }

    fn cmd(writer: &str, op: Op) -> pb::DirectoryCommand {
        signed(writer, op)
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
    fn member_kinds_must_agree_with_the_node_id() {
        let mut s = founded();
        let admit = |m: pb::Member| cmd("CHE-SEC", Op::Admit(m));
        let regional = pb::MemberKind::RegionalOrganisation;
        // An organisation without a kind, or posing as a national agency.
        let mut m = org_member("ECOWAS-HUB", pb::MemberKind::Unspecified, &["GHA"]);
        m.member_states.clear();
        refused(&mut s, admit(m), "member kind is required");
        let m = org_member("ECOWAS-HUB", pb::MemberKind::NationalAgency, &[]);
        refused(
            &mut s,
            admit(m),
            "national agency's id starts with its country",
        );
        // An organisation has no country.
        let mut m = org_member("ECOWAS-HUB", regional, &["GHA", "SEN"]);
        m.country = "GHA".into();
        refused(&mut s, admit(m), "has no country");
        // A State's node id cannot be an organisation.
        let m = org_member("BEL-HUB", regional, &["BEL", "NLD"]);
        refused(&mut s, admit(m), "needs an organisation code");
        // Member States: a regional organisation's only, valid, each once.
        refused(
            &mut s,
            admit(org_member("ECOWAS-HUB", regional, &[])),
            "1 to 250 member States",
        );
        refused(
            &mut s,
            admit(org_member("ECOWAS-HUB", regional, &["GHA", "GHA"])),
            "listed once",
        );
        refused(
            &mut s,
            admit(org_member("ECOWAS-HUB", regional, &["XXX"])),
            "XXX",
        );
        refused(
            &mut s,
            admit(org_member(
                "UNODC-GFP",
                pb::MemberKind::InternationalBody,
                &["AUT"],
            )),
            "only a regional organisation",
        );
        let mut national = member("ITA-POL", pb::MemberRole::National);
        national.member_states = vec!["ITA".into()];
        refused(&mut s, admit(national), "only a regional organisation");
        // Consistent members are admitted.
        for m in [
            org_member("ECOWAS-HUB", regional, &["GHA", "SEN"]),
            org_member("UNODC-GFP", pb::MemberKind::InternationalBody, &[]),
            org_member("SECRETARIAT-DIR", pb::MemberKind::Secretariat, &[]),
            pb::Member {
                kind: pb::MemberKind::NationalAgency as i32,
                ..member("ITA-POL", pb::MemberRole::National)
            },
        ] {
            let id = m.node_id.clone();
            let r = apply(&mut s, &admit(m));
            assert!(r.applied, "{id}: {}", r.refusal);
        }
        assert_eq!(s.members["ECOWAS-HUB"].country, "");
        assert_eq!(verify(&s, &genesis()), Ok(()));
        // An organisation's node owns no records: it publishes no sharing policy.
        refused(
            &mut s,
            cmd(
                "ECOWAS-HUB",
                Op::PublishPolicy(pb::SharingPolicy {
                    owner_country: "GHA".into(),
                    version: 1,
                    legal_basis: "synthetic".into(),
                    rules: vec![],
                }),
            ),
            "publishes no sharing policy",
        );
    }

    fn designation(node: &str, categories: &[(pb::WeaponCategory, &str)]) -> Op {
        Op::PublishTracingDesignation(pb::TracingDesignation {
            node_id: node.into(),
            categories: categories
                .iter()
                .map(|(c, n)| pb::CategoryDesignation {
                    category: *c as i32,
                    node_id: (*n).into(),
                })
                .collect(),
            published_at: 0,
        })
    }

    #[test]
    fn a_states_nodes_designate_its_tracing_node_and_nobody_else_does() {
        let mut s = founded();
        for m in [
            member("FRA-CUS", pb::MemberRole::National),
            member("FRA-OLD", pb::MemberRole::National),
            org_member("ECOWAS-HUB", pb::MemberKind::RegionalOrganisation, &["GHA"]),
        ] {
            assert!(apply(&mut s, &cmd("CHE-SEC", Op::Admit(m))).applied);
        }
        let stop = pb::StatusChange {
            node_id: "FRA-OLD".into(),
            reason: "synthetic".into(),
        };
        assert!(apply(&mut s, &cmd("CHE-SEC", Op::Suspend(stop))).applied);
        use pb::WeaponCategory as W;
        // Refusals: another State's node, an organisation's node, a node that is not an active
        // member, an organisation writing, a bad or repeated category.
        refused(
            &mut s,
            cmd("FRA-POL", designation("DEU-CUS", &[])),
            "not an active member of FRA",
        );
        refused(
            &mut s,
            cmd(
                "FRA-POL",
                designation("FRA-POL", &[(W::Shotgun, "ECOWAS-HUB")]),
            ),
            "not an active member of FRA",
        );
        refused(
            &mut s,
            cmd("FRA-POL", designation("FRA-NEW", &[])),
            "not an active member of FRA",
        );
        refused(
            &mut s,
            cmd("FRA-POL", designation("FRA-OLD", &[])),
            "not an active member of FRA",
        );
        refused(
            &mut s,
            cmd("ECOWAS-HUB", designation("ECOWAS-HUB", &[])),
            "not a State's node",
        );
        refused(
            &mut s,
            cmd("DEU-CUS", designation("FRA-POL", &[])),
            "not an active member of DEU",
        );
        refused(
            &mut s,
            cmd(
                "FRA-POL",
                designation("FRA-POL", &[(W::Unspecified, "FRA-CUS")]),
            ),
            "weapon category 0",
        );
        refused(
            &mut s,
            cmd(
                "FRA-POL",
                designation(
                    "FRA-POL",
                    &[(W::Shotgun, "FRA-CUS"), (W::Shotgun, "FRA-POL")],
                ),
            ),
            "listed twice",
        );
        // Any active node of the State may publish it, naming any active node of the State.
        let c = cmd(
            "FRA-CUS",
            designation("FRA-POL", &[(W::Shotgun, "FRA-CUS")]),
        );
        let r = apply(&mut s, &c);
        assert!(r.applied, "{}", r.refusal);
        let kept = s.entries["FRA-CUS"].tracing_designation.clone().unwrap();
        assert_eq!(kept.node_id, "FRA-POL");
        assert_eq!(
            kept.published_at, c.at,
            "the command's time, not the writer's claim"
        );
        assert_eq!(s.proofs["FRA-CUS"].tracing_designation.as_ref(), Some(&c));
        assert_eq!(verify(&s, &genesis()), Ok(()));
        // A suspended node of the State may not publish.
        refused(
            &mut s,
            cmd("FRA-OLD", designation("FRA-POL", &[])),
            "SUSPENDED",
        );
        // A snapshot whose designation was altered does not verify.
        let mut forged = s.clone();
        if let Some(d) = forged
            .entries
            .get_mut("FRA-CUS")
            .and_then(|e| e.tracing_designation.as_mut())
        {
            d.node_id = "FRA-CUS".into();
        }
        assert!(verify(&forged, &genesis()).is_err());
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
    fn a_resent_command_is_already_applied_and_an_old_one_not_newer() {
        let mut s = founded();
        let publish = cmd("FRA-POL", Op::PublishContacts(pb::ContactPoints::default()));
        assert!(apply(&mut s, &publish).applied);
        let before = s.clone();
        let again = apply(&mut s, &publish);
        assert!(again.applied && again.already_applied, "{again:?}");
        assert_eq!(s, before, "a resend changes nothing");
        // The same seq with another body is not the same command.
        let mut other = publish.clone();
        other.op = Some(Op::PublishContacts(pb::ContactPoints {
            contacts: vec![pb::ContactPoint::default()],
        }));
        key("FRA-POL").sign_directory_command(&mut other);
        let r = apply(&mut s, &other);
        assert!(!r.applied && r.refusal.contains("not above"), "{r:?}");
        // A superseded command is no longer kept: a replay, refused as not newer.
        let newer = cmd("FRA-POL", Op::PublishContacts(pb::ContactPoints::default()));
        assert!(apply(&mut s, &newer).applied);
        let r = apply(&mut s, &publish);
        assert!(!r.applied && r.refusal.contains("not above"), "{r:?}");
    }

    #[test]
    fn policy_history_keeps_the_latest_versions_and_still_verifies() {
        let mut s = founded();
        let policy = |version: u64| pb::SharingPolicy {
            owner_country: "FRA".into(),
            version,
            legal_basis: "synthetic".into(),
            rules: vec![],
        };
        for v in 1..=5 {
            let r = apply(&mut s, &cmd("FRA-POL", Op::PublishPolicy(policy(v))));
            assert!(r.applied, "{}", r.refusal);
        }
        let versions = |s: &pb::DirectoryState| -> Vec<u64> {
            s.entries["FRA-POL"]
                .policies
                .iter()
                .map(|p| p.policy.as_ref().unwrap().version)
                .collect()
        };
        // The test genesis keeps three versions.
        assert_eq!(versions(&s), vec![3, 4, 5]);
        assert_eq!(s.proofs["FRA-POL"].policies.len(), 3);
        verify(&s, &genesis()).unwrap();
        // A dropped version is still not newer than the one in force.
        refused(
            &mut s,
            cmd("FRA-POL", Op::PublishPolicy(policy(2))),
            "not newer",
        );
        assert_eq!(versions(&s), vec![3, 4, 5]);
    }

    #[test]
    fn audit_checkpoints_are_the_writers_own_only_grow_and_verify_in_a_snapshot() {
        let mut s = founded();
        let anchor = |seq: u64, b: u8| pb::AuditAnchor {
            seq,
            chain_hash: vec![b; 32],
        };
        let publish = |a| cmd("FRA-POL", Op::PublishAuditCheckpoint(a));
        assert!(apply(&mut s, &publish(anchor(64, 1))).applied);
        assert_eq!(s.entries["FRA-POL"].audit_checkpoint, Some(anchor(64, 1)));
        // A lower or equal sequence would let a truncated log match again.
        refused(&mut s, publish(anchor(64, 2)), "not above the published 64");
        refused(&mut s, publish(anchor(10, 2)), "not above the published 64");
        refused(
            &mut s,
            publish(pb::AuditAnchor {
                seq: 100,
                chain_hash: vec![1; 5],
            }),
            "not 32 bytes",
        );
        assert!(apply(&mut s, &publish(anchor(128, 3))).applied);
        assert!(!s.entries.contains_key("DEU-CUS"));
        verify(&s, &genesis()).unwrap();
        // A snapshot showing another checkpoint than the member signed is refused.
        let mut forged = s.clone();
        forged.entries.get_mut("FRA-POL").unwrap().audit_checkpoint = Some(anchor(64, 1));
        assert!(verify(&forged, &genesis()).is_err());
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
        let cmds = [
            cmd(
                "CHE-SEC",
                Op::Admit(member("CHE-SEC", pb::MemberRole::Secretariat)),
            ),
            cmd(
                "CHE-SEC",
                Op::Admit(member("FRA-POL", pb::MemberRole::National)),
            ),
            cmd("FRA-POL", Op::PublishContacts(pb::ContactPoints::default())),
        ];
        let (mut a, mut b) = (pb::DirectoryState::default(), pb::DirectoryState::default());
        for c in &cmds {
            assert!(apply(&mut a, c).applied);
            assert!(apply(&mut b, c).applied);
        }
        assert_eq!(a, b);
    }

    #[test]
    fn unsigned_forged_and_replayed_commands_are_refused() {
        let mut s = founded();
        let policy = pb::SharingPolicy {
            owner_country: "FRA".into(),
            version: 99,
            legal_basis: "forged".into(),
            rules: vec![],
        };
        // DEU-CUS signs a command in FRA-POL's name.
        let mut forged = signed("DEU-CUS", Op::PublishPolicy(policy.clone()));
        forged.writer = "FRA-POL".into();
        refused(&mut s, forged, "does not verify");
        let mut unsigned = signed("FRA-POL", Op::PublishPolicy(policy.clone()));
        unsigned.signature.clear();
        refused(&mut s, unsigned, "not signed");
        // A secretariat command signed by a national member's key but naming the secretariat.
        let mut revoke = signed(
            "FRA-POL",
            Op::Revoke(pb::StatusChange {
                node_id: "DEU-CUS".into(),
                reason: "forged".into(),
            }),
        );
        revoke.writer = "CHE-SEC".into();
        refused(&mut s, revoke, "does not verify");
        // A genuine command is applied once; the same bytes again change nothing (a resend,
        // answered as already applied).
        let genuine = signed("FRA-POL", Op::PublishPolicy(policy));
        assert!(apply(&mut s, &genuine).applied);
        let before = s.clone();
        assert!(apply(&mut s, &genuine).already_applied);
        assert_eq!(s, before);
    }

    #[test]
    fn genesis_is_pinned_to_the_configured_secretariat() {
        let mut s = pb::DirectoryState::default();
        // A voter (or anyone) founding as itself.
        refused(
            &mut s,
            cmd(
                "BEL-HUB",
                Op::Admit(member("BEL-HUB", pb::MemberRole::Secretariat)),
            ),
            "first member",
        );
        // The pinned id but another key.
        let mut wrong_key = member("CHE-SEC", pb::MemberRole::Secretariat);
        wrong_key.signing_key = key("BEL-HUB").public_key();
        let mut c = signed("BEL-HUB", Op::Admit(wrong_key));
        c.writer = "CHE-SEC".into();
        refused(&mut s, c, "does not verify");
        // The pinned id and key but another certificate.
        let mut wrong_cert = member("CHE-SEC", pb::MemberRole::Secretariat);
        wrong_cert.cert_fingerprint = "cd".repeat(32);
        refused(
            &mut s,
            cmd("CHE-SEC", Op::Admit(wrong_cert)),
            "first member",
        );
        // Fingerprints compare in one case.
        let mut upper = member("CHE-SEC", pb::MemberRole::Secretariat);
        upper.cert_fingerprint = "AB".repeat(32);
        assert!(apply(&mut s, &cmd("CHE-SEC", Op::Admit(upper))).applied);
        assert_eq!(s.members["CHE-SEC"].cert_fingerprint, "ab".repeat(32));
    }

    #[test]
    fn a_state_verifies_entry_by_entry_and_a_forged_entry_does_not() {
        let mut s = founded();
        let policy = |v: u64| pb::SharingPolicy {
            owner_country: "FRA".into(),
            version: v,
            legal_basis: "synthetic".into(),
            rules: vec![],
        };
        assert!(apply(&mut s, &cmd("FRA-POL", Op::PublishPolicy(policy(1)))).applied);
        let stop = pb::StatusChange {
            node_id: "DEU-CUS".into(),
            reason: "synthetic".into(),
        };
        assert!(apply(&mut s, &cmd("CHE-SEC", Op::Revoke(stop))).applied);
        verify(&s, &genesis()).unwrap();
        verify(&pb::DirectoryState::default(), &genesis()).unwrap();

        // A forged policy version without a signed command behind it.
        let mut forged = s.clone();
        forged.entries.get_mut("FRA-POL").unwrap().policies[0]
            .policy
            .as_mut()
            .unwrap()
            .version = 99;
        assert!(verify(&forged, &genesis()).is_err());
        // A forged command kept as proof.
        let mut forged = s.clone();
        let mut c = signed("DEU-CUS", Op::PublishPolicy(policy(99)));
        c.writer = "FRA-POL".into();
        forged.proofs.get_mut("FRA-POL").unwrap().policies.push(c);
        forged
            .entries
            .get_mut("FRA-POL")
            .unwrap()
            .policies
            .push(pb::PublishedPolicy {
                policy: Some(policy(99)),
                published_at: 100,
            });
        assert!(verify(&forged, &genesis()).is_err());
        // A member reinstated without the secretariat's word.
        let mut forged = s.clone();
        forged.members.get_mut("DEU-CUS").unwrap().status = pb::MemberStatus::Active as i32;
        assert!(verify(&forged, &genesis()).is_err());
        // A member admitted without a signed admission.
        let mut forged = s.clone();
        forged.members.insert(
            "ITA-POL".into(),
            member("ITA-POL", pb::MemberRole::National),
        );
        assert!(verify(&forged, &genesis()).is_err());
        // Another secretariat founding.
        let other = Genesis {
            node_id: NodeId::parse("BEL-HUB").unwrap(),
            ..genesis()
        };
        assert!(verify(&s, &other).is_err());
    }

    #[test]
    fn members_list_and_revoke_their_local_certificates_the_secretariat_any() {
        let mut s = founded();
        let (gw, admin, other) = ("AA".repeat(32), "bb".repeat(32), "cc".repeat(32));
        let list = |g: &str, a: &str| {
            Op::PublishLocalCertificates(pb::LocalCertificates {
                gateway_fingerprints: vec![g.to_owned()],
                admin_fingerprints: vec![a.to_owned()],
            })
        };
        let revoke = |f: &str| {
            Op::RevokeCertificate(pb::CertificateRevocation {
                cert_fingerprint: f.to_owned(),
                reason: "synthetic".into(),
            })
        };
        refused(&mut s, cmd("FRA-POL", list("xyz", &admin)), "not a SHA-256");
        assert!(apply(&mut s, &cmd("FRA-POL", list(&gw, &admin))).applied);
        let kept = s.entries["FRA-POL"].local_certificates.clone().unwrap();
        assert_eq!(
            kept.gateway_fingerprints,
            vec!["aa".repeat(32)],
            "lowercased"
        );
        // A member revokes only what it lists itself.
        refused(&mut s, cmd("DEU-CUS", revoke(&gw)), "may revoke only");
        refused(&mut s, cmd("FRA-POL", revoke(&other)), "may revoke only");
        assert!(apply(&mut s, &cmd("FRA-POL", revoke(&gw))).applied);
        refused(&mut s, cmd("FRA-POL", revoke(&gw)), "already revoked");
        // The secretariat revokes any certificate.
        assert!(apply(&mut s, &cmd("CHE-SEC", revoke(&other))).applied);
        let revoked: Vec<_> = s
            .revocations
            .iter()
            .map(|r| r.cert_fingerprint.clone())
            .collect();
        assert_eq!(revoked, vec!["aa".repeat(32), other.clone()]);
        // A suspended member may neither list nor revoke.
        let stop = pb::StatusChange {
            node_id: "FRA-POL".into(),
            reason: "synthetic".into(),
        };
        assert!(apply(&mut s, &cmd("CHE-SEC", Op::Suspend(stop))).applied);
        refused(&mut s, cmd("FRA-POL", revoke(&admin)), "SUSPENDED");
        refused(&mut s, cmd("FRA-POL", list(&gw, &admin)), "SUSPENDED");

        // The state verifies from its signed commands; a forged list or revocation does not.
        verify(&s, &genesis()).unwrap();
        let mut forged = s.clone();
        forged
            .entries
            .get_mut("FRA-POL")
            .unwrap()
            .local_certificates = Some(pb::LocalCertificates {
            gateway_fingerprints: vec!["dd".repeat(32)],
            admin_fingerprints: vec![],
        });
        assert!(verify(&forged, &genesis()).is_err());
        let mut forged = s.clone();
        forged.revocations.pop();
        assert!(verify(&forged, &genesis()).is_err());
        let mut forged = s.clone();
        let mut c = signed("DEU-CUS", revoke(&"ee".repeat(32)));
        c.writer = "FRA-POL".into();
        forged
            .proofs
            .get_mut("FRA-POL")
            .unwrap()
            .certificate_revocations
            .push(c);
        forged.revocations.push(pb::Revocation {
            node_id: "FRA-POL".into(),
            cert_fingerprint: "ee".repeat(32),
            reason: "synthetic".into(),
            at: 100,
        });
        assert!(verify(&forged, &genesis()).is_err());
    }

    mod property {
        use super::*;
        use proptest::prelude::*;

        const NODES: [&str; 4] = ["CHE-SEC", "FRA-POL", "DEU-CUS", "ITA-POL"];

        /// One step: who signs, whose name the command bears, what it does and to whom.
        #[derive(Debug, Clone)]
        struct Step {
            signer: usize,
            writer: usize,
            kind: u8,
            target: usize,
            n: u64,
        }

        fn step() -> impl Strategy<Value = Step> {
            (0..4usize, 0..4usize, 0..11u8, 0..4usize, 0..4u64).prop_map(
                |(signer, writer, kind, target, n)| Step {
                    signer,
                    writer,
                    kind,
                    target,
                    n,
                },
            )
        }

        fn op(s: &Step) -> Op {
            let target = NODES[s.target];
            let change = pb::StatusChange {
                node_id: target.into(),
                reason: "synthetic".into(),
            };
            match s.kind {
                0 => Op::PublishContacts(pb::ContactPoints {
                    contacts: vec![pb::ContactPoint {
                        email: format!("{}@example.test", s.n),
                        ..Default::default()
                    }],
                }),
                1 => Op::PublishPolicy(pb::SharingPolicy {
                    owner_country: target[..3].into(),
                    version: s.n + 1,
                    legal_basis: "synthetic".into(),
                    rules: vec![],
                }),
                2 => Op::PublishTraceSettings(pb::TraceServiceSettings {
                    routine_days: 10,
                    urgent_days: 1 + s.n as u32,
                    escalation_contact: String::new(),
                }),
                3 => Op::PublishMarkingPractices(pb::MarkingPractices {
                    practices: vec![pb::MarkingPractice {
                        manufacturer: format!("m{}", s.n),
                        ..Default::default()
                    }],
                }),
                4 => Op::Suspend(change),
                5 => Op::Reinstate(change),
                6 => Op::Revoke(change),
                7 => Op::ChangeRole(pb::RoleChange {
                    node_id: target.into(),
                    role: (s.n % 4) as i32,
                }),
                9 => Op::PublishLocalCertificates(pb::LocalCertificates {
                    gateway_fingerprints: vec![format!("{:064x}", s.n)],
                    admin_fingerprints: vec![format!("{:064X}", s.n + 1)],
                }),
                10 => Op::RevokeCertificate(pb::CertificateRevocation {
                    cert_fingerprint: format!("{:064x}", s.n),
                    reason: "synthetic".into(),
                }),
                _ => Op::Admit(member(target, pb::MemberRole::National)),
            }
        }

        /// What a member's own commands produced (its publications).
        fn own_proofs(p: Option<&pb::MemberProofs>) -> pb::MemberProofs {
            let p = p.cloned().unwrap_or_default();
            pb::MemberProofs {
                contacts: p.contacts,
                trace: p.trace,
                policies: p.policies,
                marking_practices: p.marking_practices,
                local_certificates: p.local_certificates,
                certificate_revocations: p.certificate_revocations,
                ..Default::default()
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]
            /// Random command sequences with random signers, some bearing another node's name:
            /// no member's entries change unless that member signed, no member's record changes
            /// unless an active secretariat signed, a command signed by anyone but its named
            /// writer changes nothing, and the state always verifies entry by entry.
            #[test]
            fn no_member_changes_another_members_entries(steps in prop::collection::vec(step(), 1..40)) {
                let mut s = founded();
                for st in &steps {
                    let mut c = signed(NODES[st.signer], op(st));
                    c.writer = NODES[st.writer].into();
                    let before = s.clone();
                    let signer = NODES[st.signer];
                    let signer_was_secretariat = before.members.get(signer).is_some_and(|m| {
                        role(m) == pb::MemberRole::Secretariat && status(m) == pb::MemberStatus::Active
                    });
                    let r = apply(&mut s, &c);
                    if st.signer != st.writer {
                        prop_assert!(!r.applied, "a forged command was applied: {c:?}");
                        prop_assert_eq!(&s, &before);
                    }
                    for id in NODES {
                        if id != signer {
                            prop_assert_eq!(s.entries.get(id), before.entries.get(id), "{}'s entries changed by {}", id, signer);
                            prop_assert_eq!(own_proofs(s.proofs.get(id)), own_proofs(before.proofs.get(id)));
                        }
                        if !signer_was_secretariat {
                            prop_assert_eq!(s.members.get(id), before.members.get(id), "{}'s record changed by {}", id, signer);
                        }
                    }
                    prop_assert!(verify(&s, &genesis()).is_ok(), "{:?}", verify(&s, &genesis()));
                }
            }
        }
    }
}
