//! The roster: what the exchange needs to know about the federation right now (who the peers
//! are, where they listen, their signing keys, regions and trace settings, this node's own
//! sharing policy in force, and who is barred), derived from the directory replica.
//!
//! Before the directory holds any member, the roster comes from the node's configuration (the
//! bootstrap peer list and policy file). From the moment the replica holds members, the
//! directory alone decides: peers not in it are unknown, a suspended or revoked member is barred
//! on every listener, a member calling with any certificate other than the one the directory
//! lists for it is refused (fingerprints compared in lowercase hex), and the policy in force is
//! this node's latest published version. If that version does not parse, the node fails closed:
//! it discloses nothing ([`RosterView::policy_problem`] says why) rather than fall back to the
//! configuration file.
//!
//! The gateway and admin certificates this node's local API accepts are listed by fingerprint,
//! in the configuration (`[local_certificates]`, for bootstrap) and in this node's own
//! `LocalCertificates` entry of the directory; the view holds their union. A revoked
//! fingerprint is refused even when listed. With none listed, the local API admits nobody.
//!
//! Handlers read an immutable [`RosterView`] (one `Arc` clone, no lock held across awaits); the
//! directory swaps in a new view after every applied change.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};

use tracenet_proto::v1 as pb;

use crate::config::{LocalCertificatesConfig, NodeConfig};
use crate::country::CountryCode;
use crate::envelope::{PeerKeys, parse_public_key};
use crate::ids::NodeId;
use crate::policy::Policy;
use crate::trace::TraceSettings;

/// What the exchange knows of one peer.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerInfo {
    /// host:port of its peer API.
    pub endpoint: String,
    /// Regions it belongs to.
    pub regions: Vec<String>,
    /// Its published trace service settings.
    pub trace: TraceSettings,
}

/// Which of a State's nodes receives the trace requests sent to it, as the directory holds it:
/// the latest `TracingDesignation` published by an active node of that State, keeping only the
/// nodes that are active members of that State.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracingPoint {
    /// The node of the State that published it.
    pub published_by: NodeId,
    /// When (its command's `at`, seconds since the Unix epoch).
    pub published_at: i64,
    /// The node for any weapon category not listed in `by_category`.
    pub default: Option<NodeId>,
    /// Per weapon category (`pb::WeaponCategory` as its number), overriding `default`.
    pub by_category: BTreeMap<i32, NodeId>,
}

impl TracingPoint {
    /// The node receiving trace requests about a weapon of `category`.
    pub fn node_for(&self, category: pb::WeaponCategory) -> Option<&NodeId> {
        self.by_category
            .get(&(category as i32))
            .or(self.default.as_ref())
    }
}

/// Why a caller is barred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Barred {
    /// Suspended by the secretariat.
    Suspended,
    /// Revoked by the secretariat.
    Revoked,
    /// Not a member of the directory.
    NotMember,
    /// A member calling with a certificate other than the one the directory lists for it.
    WrongCertificate,
    /// A gateway or admin certificate this node does not list for its local API.
    UnlistedLocal,
}

impl Barred {
    /// Words for a refusal.
    pub fn as_str(&self) -> &'static str {
        match self {
            Barred::Suspended => "suspended",
            Barred::Revoked => "revoked",
            Barred::NotMember => "not a member of the directory",
            Barred::WrongCertificate => "its certificate is not the one the directory lists for it",
            Barred::UnlistedLocal => {
                "its certificate is not one this node lists for its gateway or admin \
                 ([local_certificates] in its configuration, or its directory entry)"
            }
        }
    }
}

/// One consistent picture of the federation.
#[derive(Debug, Clone)]
pub struct RosterView {
    /// This node's sharing policy in force.
    pub policy: Arc<Policy>,
    /// Signing keys of active peers.
    pub keys: Arc<PeerKeys>,
    /// Active peers (never this node), by id.
    pub peers: BTreeMap<NodeId, PeerInfo>,
    /// Members that are suspended or revoked.
    pub barred: HashMap<NodeId, Barred>,
    /// Fingerprints of revoked certificates (lowercase hex).
    pub revoked_fingerprints: HashSet<String>,
    /// The certificate fingerprint the directory lists for each member (lowercase hex).
    pub fingerprints: HashMap<NodeId, String>,
    /// The agency kind the directory lists for each member that has one.
    pub agency_kinds: HashMap<NodeId, pb::AgencyKind>,
    /// The member kind the directory lists for each member that has one.
    pub member_kinds: HashMap<NodeId, pb::MemberKind>,
    /// Each State's designated tracing node(s), for the States that published one.
    pub tracing_points: BTreeMap<CountryCode, TracingPoint>,
    /// Fingerprints of this node's own gateway certificates (lowercase hex): configuration and
    /// directory together.
    pub local_gateway: HashSet<String>,
    /// Fingerprints of this node's own admin certificates (lowercase hex), likewise.
    pub local_admin: HashSet<String>,
    /// Why this node discloses nothing, when its own policy in force in the directory does not
    /// parse (fail closed).
    pub policy_problem: Option<String>,
    /// Whether this view comes from the directory (true) or from configuration (false).
    pub from_directory: bool,
    /// This node's first point of contact as the directory lists it, in one line (empty when
    /// it lists none): what "hit only" answers tell a requester to ask.
    pub own_contact: String,
    /// How members are reached through hubs (sealing keys, hub routes), from the directory.
    pub hubs: HubRoutes,
}

/// How members are reached through hubs, as the directory lists it (empty before it does).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HubRoutes {
    /// Each active member's published X25519 sealing key (32 bytes).
    pub sealing_keys: HashMap<NodeId, Vec<u8>>,
    /// Each active member's published hub route.
    pub routes: HashMap<NodeId, pb::HubRoute>,
    /// Active members with the hub role.
    pub hubs: std::collections::BTreeSet<NodeId>,
    /// The member States each organisation's node lists (its region, for a hub).
    pub member_states: HashMap<NodeId, Vec<CountryCode>>,
}

impl RosterView {
    /// The member kind `node` is evaluated with by sharing policies: the directory's, or a
    /// national agency for a State's node listed without one (see [`crate::policy::member_kind`]).
    pub fn member_kind(&self, node: &NodeId) -> pb::MemberKind {
        crate::policy::member_kind(node.affiliation(), self.member_kinds.get(node).copied())
    }

    /// The node State `state` designates to receive trace requests about a weapon of
    /// `category`, if it designated one.
    pub fn designated_tracing_node(
        &self,
        state: CountryCode,
        category: pb::WeaponCategory,
    ) -> Option<&NodeId> {
        self.tracing_points.get(&state)?.node_for(category)
    }

    /// The active peers of State `state`, in id order.
    pub fn nodes_of_state(&self, state: CountryCode) -> Vec<NodeId> {
        self.peers
            .keys()
            .filter(|n| n.is_of_state(state))
            .cloned()
            .collect()
    }

    /// Whether `node` may call the exchange: deny suspended and revoked members, and, once the
    /// directory is in use, anyone not in it.
    /// A node the directory lists must present the very certificate it lists.
    pub fn check_caller(&self, node: &NodeId, fingerprint: Option<&str>) -> Result<(), Barred> {
        let presented = fingerprint.map(str::to_ascii_lowercase);
        if presented
            .as_ref()
            .is_some_and(|f| self.revoked_fingerprints.contains(f))
        {
            return Err(Barred::Revoked);
        }
        if let Some(b) = self.barred.get(node) {
            return Err(*b);
        }
        if let Some(listed) = self.fingerprints.get(node)
            && presented.as_deref() != Some(listed.as_str())
        {
            return Err(Barred::WrongCertificate);
        }
        // Listed and not barred: an active member (this node itself included).
        if self.from_directory && !self.fingerprints.contains_key(node) {
            return Err(Barred::NotMember);
        }
        Ok(())
    }

    /// Whether this node's own gateway (`gateway`) or admin certificate with `fingerprint` may
    /// call its local API: listed, and not revoked. Deny by default.
    pub fn check_local(&self, gateway: bool, fingerprint: Option<&str>) -> Result<(), Barred> {
        let Some(f) = fingerprint.map(str::to_ascii_lowercase) else {
            return Err(Barred::UnlistedLocal);
        };
        if self.revoked_fingerprints.contains(&f) {
            return Err(Barred::Revoked);
        }
        let listed = if gateway {
            &self.local_gateway
        } else {
            &self.local_admin
        };
        if listed.contains(&f) {
            Ok(())
        } else {
            Err(Barred::UnlistedLocal)
        }
    }

    /// The ids of the active peers, sorted.
    pub fn peer_ids(&self) -> Vec<NodeId> {
        self.peers.keys().cloned().collect()
    }
}

/// The roster of a running node, swapped as the directory changes.
#[derive(Debug)]
pub struct Roster {
    own: NodeId,
    config_policy: Arc<Policy>,
    config_local: LocalCertificatesConfig,
    current: RwLock<Arc<RosterView>>,
}

/// A contact point in one line: function, organisation, email, phone (those given).
fn contact_line(c: &pb::ContactPoint) -> String {
    [&c.function, &c.organisation, &c.email, &c.phone]
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn lowercase(list: &[String]) -> HashSet<String> {
    list.iter().map(|f| f.to_ascii_lowercase()).collect()
}

fn trace_from_pb(t: Option<&pb::TraceServiceSettings>) -> TraceSettings {
    let mut s = TraceSettings::default();
    if let Some(t) = t {
        s.routine_days = t.routine_days;
        s.urgent_days = t.urgent_days;
        s.escalation_contact = t.escalation_contact.clone();
    }
    s
}

impl Roster {
    /// A roster from the node's configuration (bootstrap peers and policy file).
    pub fn from_config(config: &NodeConfig, policy: Policy) -> Roster {
        let policy = Arc::new(policy);
        let mut keys = HashMap::new();
        let mut peers = BTreeMap::new();
        for p in &config.peers {
            if let Some(k) = p.signing_public_key.as_deref().and_then(parse_public_key) {
                keys.insert(p.node_id.clone(), k);
            }
            peers.insert(
                p.node_id.clone(),
                PeerInfo {
                    endpoint: p.endpoint.clone(),
                    regions: p.regions.clone(),
                    trace: p.trace.clone(),
                },
            );
        }
        // Bootstrap designations: the peer each State's entry marks as its tracing point.
        let tracing_points = config
            .peers
            .iter()
            .filter(|p| p.tracing_point)
            .filter_map(|p| {
                let point = TracingPoint {
                    published_by: p.node_id.clone(),
                    published_at: 0,
                    default: Some(p.node_id.clone()),
                    by_category: BTreeMap::new(),
                };
                Some((p.node_id.state()?, point))
            })
            .collect();
        let view = RosterView {
            policy: policy.clone(),
            keys: Arc::new(PeerKeys::new(keys)),
            peers,
            barred: HashMap::new(),
            revoked_fingerprints: HashSet::new(),
            fingerprints: HashMap::new(),
            agency_kinds: HashMap::new(),
            member_kinds: HashMap::new(),
            tracing_points,
            local_gateway: lowercase(&config.local_certificates.gateway_fingerprints),
            local_admin: lowercase(&config.local_certificates.admin_fingerprints),
            policy_problem: None,
            from_directory: false,
            own_contact: String::new(),
            hubs: HubRoutes::default(),
        };
        if config.local_certificates.is_empty() {
            tracing::warn!(
                node = %config.node_id,
                "no gateway or admin certificate is listed ([local_certificates]); the local API \
                 refuses every caller until this node lists some in the directory"
            );
        }
        Roster {
            own: config.node_id.clone(),
            config_policy: policy,
            config_local: config.local_certificates.clone(),
            current: RwLock::new(Arc::new(view)),
        }
    }

    /// The current view.
    pub fn view(&self) -> Arc<RosterView> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// This node's policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.view().policy.clone()
    }

    /// Signing keys of active peers.
    pub fn keys(&self) -> Arc<PeerKeys> {
        self.view().keys.clone()
    }

    /// A peer's regions (empty when unknown).
    pub fn regions(&self, node: &NodeId) -> Vec<String> {
        self.view()
            .peers
            .get(node)
            .map(|p| p.regions.clone())
            .unwrap_or_default()
    }

    /// The member kind `node` is evaluated with (see [`RosterView::member_kind`]).
    pub fn member_kind(&self, node: &NodeId) -> pb::MemberKind {
        self.view().member_kind(node)
    }

    /// A peer's trace settings, when it is known.
    pub fn trace_settings(&self, node: &NodeId) -> Option<TraceSettings> {
        self.view().peers.get(node).map(|p| p.trace.clone())
    }

    /// A peer's endpoint, when it is an active peer.
    pub fn endpoint(&self, node: &NodeId) -> Option<String> {
        self.view().peers.get(node).map(|p| p.endpoint.clone())
    }

    /// Rebuilds the view from a directory state. An empty directory keeps the configured view.
    pub fn apply_directory(&self, state: &pb::DirectoryState) {
        if state.members.is_empty() {
            return;
        }
        let view = self.derive(state);
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(view);
    }

    fn derive(&self, state: &pb::DirectoryState) -> RosterView {
        let mut keys = HashMap::new();
        let mut peers = BTreeMap::new();
        let mut barred = HashMap::new();
        let mut fingerprints = HashMap::new();
        let mut agency_kinds = HashMap::new();
        let mut hubs = HubRoutes::default();
        let mut member_kinds = HashMap::new();
        for m in state.members.values() {
            let Ok(id) = NodeId::parse(&m.node_id) else {
                continue;
            };
            fingerprints.insert(id.clone(), m.cert_fingerprint.to_ascii_lowercase());
            match pb::MemberKind::try_from(m.kind) {
                Ok(pb::MemberKind::Unspecified) | Err(_) => {}
                Ok(kind) => {
                    member_kinds.insert(id.clone(), kind);
                }
            }
            match pb::AgencyKind::try_from(m.agency_kind) {
                Ok(pb::AgencyKind::Unspecified) | Err(_) => {}
                Ok(kind) => {
                    agency_kinds.insert(id.clone(), kind);
                }
            }
            let entries = state.entries.get(&m.node_id);
            match pb::MemberStatus::try_from(m.status).unwrap_or(pb::MemberStatus::Unspecified) {
                pb::MemberStatus::Active => {}
                pb::MemberStatus::Suspended => {
                    barred.insert(id, Barred::Suspended);
                    continue;
                }
                _ => {
                    barred.insert(id, Barred::Revoked);
                    continue;
                }
            }
            if let Some(e) = entries {
                if e.sealing_key.len() == 32 {
                    hubs.sealing_keys.insert(id.clone(), e.sealing_key.clone());
                }
                if let Some(r) = &e.hub_route {
                    hubs.routes.insert(id.clone(), r.clone());
                }
            }
            if m.role == pb::MemberRole::Hub as i32 {
                hubs.hubs.insert(id.clone());
            }
            if !m.member_states.is_empty() {
                let states = m
                    .member_states
                    .iter()
                    .filter_map(|c| CountryCode::parse(c).ok())
                    .collect();
                hubs.member_states.insert(id.clone(), states);
            }
            if id == self.own {
                continue;
            }
            keys.insert(id.clone(), m.signing_key.clone());
            peers.insert(
                id,
                PeerInfo {
                    endpoint: m.endpoint.clone(),
                    regions: m.regions.clone(),
                    trace: trace_from_pb(entries.and_then(|e| e.trace.as_ref())),
                },
            );
        }
        let (policy, policy_problem) = self.own_policy(state);
        let published = state
            .entries
            .get(self.own.as_str())
            .and_then(|e| e.local_certificates.clone())
            .unwrap_or_default();
        let mut local_gateway = lowercase(&self.config_local.gateway_fingerprints);
        local_gateway.extend(lowercase(&published.gateway_fingerprints));
        let mut local_admin = lowercase(&self.config_local.admin_fingerprints);
        local_admin.extend(lowercase(&published.admin_fingerprints));
        RosterView {
            local_gateway,
            local_admin,
            policy,
            keys: Arc::new(PeerKeys::new(keys)),
            peers,
            barred,
            revoked_fingerprints: state
                .revocations
                .iter()
                .map(|r| r.cert_fingerprint.to_ascii_lowercase())
                .collect(),
            fingerprints,
            agency_kinds,
            member_kinds,
            tracing_points: tracing_points(state),
            policy_problem,
            from_directory: true,
            hubs,
            own_contact: state
                .entries
                .get(self.own.as_str())
                .and_then(|e| e.contacts.first())
                .map(contact_line)
                .unwrap_or_default(),
        }
    }

    /// This node's policy in force: its latest published version; the configuration's while it
    /// has published none; and, if the latest does not parse or is not this country's, nothing
    /// (deny all) with the reason.
    fn own_policy(&self, state: &pb::DirectoryState) -> (Arc<Policy>, Option<String>) {
        let latest = state
            .entries
            .get(self.own.as_str())
            .and_then(|e| e.policies.last());
        let Some(latest) = latest else {
            return (self.config_policy.clone(), None);
        };
        // A State's node has its State's policy; an organisation's node its seat's
        // (`country` in its configuration), which is what the configured policy is owned by.
        let own = self.config_policy.owner();
        let problem = match latest.policy.clone().map(Policy::parse) {
            None => "the latest published version is empty".to_owned(),
            Some(Err(e)) => format!("the latest published version does not parse: {e}"),
            Some(Ok(p)) if p.owner() != own => {
                format!(
                    "the latest published version is {}'s, not {own}'s",
                    p.owner()
                )
            }
            Some(Ok(p)) => return (Arc::new(p), None),
        };
        let why = format!(
            "this node discloses nothing: its policy in the directory is unusable ({problem})"
        );
        tracing::error!(node = %self.own, reason = %why, "failing closed");
        (Arc::new(Policy::deny_all(own)), Some(why))
    }
}

/// Each State's designation in force: of the designations published by active nodes of that
/// State, the latest (ties broken by node id), keeping only the nodes it names that are active
/// members of the same State. The directory checked all of this when the designation was
/// published; members may have been suspended or revoked since.
fn tracing_points(state: &pb::DirectoryState) -> BTreeMap<CountryCode, TracingPoint> {
    let active_of = |node: &str, c: CountryCode| -> Option<NodeId> {
        let id = NodeId::parse(node).ok()?;
        let m = state.members.get(node)?;
        (id.is_of_state(c) && m.status == pb::MemberStatus::Active as i32).then_some(id)
    };
    let mut out: BTreeMap<CountryCode, TracingPoint> = BTreeMap::new();
    for (writer, e) in &state.entries {
        let Some(d) = e.tracing_designation.as_ref() else {
            continue;
        };
        let Some(c) = NodeId::parse(writer).ok().and_then(|w| w.state()) else {
            continue;
        };
        let Some(by) = active_of(writer, c) else {
            continue;
        };
        if out
            .get(&c)
            .is_some_and(|p| (p.published_at, &p.published_by) >= (d.published_at, &by))
        {
            continue;
        }
        let point = TracingPoint {
            published_by: by,
            published_at: d.published_at,
            default: active_of(&d.node_id, c),
            by_category: d
                .categories
                .iter()
                .filter_map(|x| Some((x.category, active_of(&x.node_id, c)?)))
                .collect(),
        };
        out.insert(c, point);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::country::CountryCode;

    fn roster() -> Roster {
        let own = NodeId::parse("FRA-POL").unwrap();
        let fra = CountryCode::parse("FRA").unwrap();
        Roster {
            own,
            config_policy: Arc::new(Policy::deny_all(fra)),
            config_local: LocalCertificatesConfig {
                gateway_fingerprints: vec!["AA".repeat(32)],
                admin_fingerprints: vec![],
            },
            current: RwLock::new(Arc::new(RosterView {
                local_gateway: HashSet::new(),
                local_admin: HashSet::new(),
                policy: Arc::new(Policy::deny_all(fra)),
                keys: Arc::new(PeerKeys::default()),
                peers: BTreeMap::new(),
                barred: HashMap::new(),
                revoked_fingerprints: HashSet::new(),
                fingerprints: HashMap::new(),
                agency_kinds: HashMap::new(),
                member_kinds: HashMap::new(),
                tracing_points: BTreeMap::new(),
                policy_problem: None,
                from_directory: false,
                own_contact: String::new(),
                hubs: HubRoutes::default(),
            })),
        }
    }

    fn member(id: &str, status: pb::MemberStatus) -> pb::Member {
        pb::Member {
            node_id: id.into(),
            country: id[..3].into(),
            role: pb::MemberRole::National as i32,
            endpoint: format!("{id}.example.test:1"),
            cert_fingerprint: format!("{id}-fp").to_ascii_lowercase(),
            signing_key: vec![1; 32],
            status: status as i32,
            ..Default::default()
        }
    }

    #[test]
    fn directory_members_replace_configured_peers_and_bar_the_rest() {
        let r = roster();
        let mut s = pb::DirectoryState::default();
        r.apply_directory(&s);
        assert!(
            !r.view().from_directory,
            "an empty directory keeps the configuration"
        );
        for (id, st) in [
            ("FRA-POL", pb::MemberStatus::Active),
            ("DEU-CUS", pb::MemberStatus::Active),
            ("ITA-POL", pb::MemberStatus::Suspended),
            ("ESP-POL", pb::MemberStatus::Revoked),
        ] {
            s.members.insert(id.into(), member(id, st));
        }
        s.revocations.push(pb::Revocation {
            node_id: "ESP-POL".into(),
            cert_fingerprint: "ESP-POL-fp".into(),
            ..Default::default()
        });
        r.apply_directory(&s);
        let v = r.view();
        let id = |s: &str| NodeId::parse(s).unwrap();
        assert_eq!(
            v.peer_ids(),
            vec![id("DEU-CUS")],
            "own node and barred members excluded"
        );
        assert!(
            v.check_caller(&id("DEU-CUS"), Some("DEU-CUS-FP")).is_ok(),
            "one case"
        );
        assert_eq!(
            v.check_caller(&id("DEU-CUS"), Some("another-fp")),
            Err(Barred::WrongCertificate),
            "another certificate for an admitted identity"
        );
        assert_eq!(
            v.check_caller(&id("DEU-CUS"), None),
            Err(Barred::WrongCertificate)
        );
        assert_eq!(v.check_caller(&id("ITA-POL"), None), Err(Barred::Suspended));
        assert_eq!(v.check_caller(&id("ESP-POL"), None), Err(Barred::Revoked));
        assert_eq!(v.check_caller(&id("NLD-POL"), None), Err(Barred::NotMember));
        assert_eq!(
            v.check_caller(&id("DEU-CUS"), Some("esp-pol-fp")),
            Err(Barred::Revoked),
            "a revoked certificate is refused whatever identity it names"
        );
    }

    #[test]
    fn the_local_api_accepts_listed_unrevoked_certificates_only() {
        let r = roster();
        let mut s = pb::DirectoryState::default();
        s.members.insert(
            "FRA-POL".into(),
            member("FRA-POL", pb::MemberStatus::Active),
        );
        s.entries.insert(
            "FRA-POL".into(),
            pb::MemberEntries {
                local_certificates: Some(pb::LocalCertificates {
                    gateway_fingerprints: vec!["bb".repeat(32)],
                    admin_fingerprints: vec!["cc".repeat(32)],
                }),
                ..Default::default()
            },
        );
        r.apply_directory(&s);
        let v = r.view();
        let (aa, bb, cc) = ("aa".repeat(32), "bb".repeat(32), "cc".repeat(32));
        assert!(v.check_local(true, Some(&aa)).is_ok(), "from configuration");
        assert!(v.check_local(true, Some(&bb)).is_ok(), "from the directory");
        assert!(v.check_local(false, Some(&cc)).is_ok());
        assert_eq!(
            v.check_local(false, Some(&bb)),
            Err(Barred::UnlistedLocal),
            "kind bound"
        );
        assert_eq!(
            v.check_local(true, Some(&"dd".repeat(32))),
            Err(Barred::UnlistedLocal)
        );
        assert_eq!(v.check_local(true, None), Err(Barred::UnlistedLocal));
        s.revocations.push(pb::Revocation {
            node_id: "FRA-POL".into(),
            cert_fingerprint: bb.clone(),
            ..Default::default()
        });
        r.apply_directory(&s);
        assert_eq!(r.view().check_local(true, Some(&bb)), Err(Barred::Revoked));
        assert!(r.view().check_local(true, Some(&aa)).is_ok());
    }

    #[test]
    fn the_latest_published_own_policy_is_in_force() {
        let r = roster();
        let mut s = pb::DirectoryState::default();
        s.members.insert(
            "FRA-POL".into(),
            member("FRA-POL", pb::MemberStatus::Active),
        );
        let p = |v: u64| pb::PublishedPolicy {
            policy: Some(pb::SharingPolicy {
                owner_country: "FRA".into(),
                version: v,
                legal_basis: "synthetic".into(),
                rules: vec![],
            }),
            published_at: 0,
        };
        s.entries.insert(
            "FRA-POL".into(),
            pb::MemberEntries {
                policies: vec![p(1), p(4)],
                ..Default::default()
            },
        );
        r.apply_directory(&s);
        assert_eq!(r.policy().version(), 4);
        assert!(r.view().policy_problem.is_none());

        // A latest version that does not parse: nothing is disclosed, and the view says why.
        let mut bad = p(5);
        bad.policy.as_mut().unwrap().owner_country = "not a country".into();
        s.entries.get_mut("FRA-POL").unwrap().policies.push(bad);
        r.apply_directory(&s);
        assert_eq!(r.policy().version(), 0, "deny all, not the configuration");
        assert!(r.policy().source().rules.is_empty());
        let why = r.view().policy_problem.clone().unwrap();
        assert!(why.contains("discloses nothing"), "{why}");
    }

    #[test]
    fn the_latest_designation_of_a_state_is_in_force_with_active_nodes_only() {
        let r = roster();
        let mut s = pb::DirectoryState::default();
        for (id, st) in [
            ("FRA-POL", pb::MemberStatus::Active),
            ("BEL-FPJ", pb::MemberStatus::Active),
            ("BEL-CUS", pb::MemberStatus::Active),
            ("BEL-OLD", pb::MemberStatus::Revoked),
        ] {
            s.members.insert(id.into(), member(id, st));
        }
        let designation =
            |node: &str, at: i64, cats: &[(pb::WeaponCategory, &str)]| pb::MemberEntries {
                tracing_designation: Some(pb::TracingDesignation {
                    node_id: node.into(),
                    categories: cats
                        .iter()
                        .map(|(c, n)| pb::CategoryDesignation {
                            category: *c as i32,
                            node_id: (*n).into(),
                        })
                        .collect(),
                    published_at: at,
                }),
                ..Default::default()
            };
        s.entries
            .insert("BEL-CUS".into(), designation("BEL-CUS", 10, &[]));
        s.entries.insert(
            "BEL-FPJ".into(),
            designation(
                "BEL-FPJ",
                20,
                &[
                    (pb::WeaponCategory::Shotgun, "BEL-CUS"),
                    (pb::WeaponCategory::MortarUnder75mm, "BEL-OLD"),
                ],
            ),
        );
        r.apply_directory(&s);
        let v = r.view();
        let bel = CountryCode::parse("BEL").unwrap();
        let id = |s: &str| NodeId::parse(s).unwrap();
        let node = |c| v.designated_tracing_node(bel, c).cloned();
        assert_eq!(
            node(pb::WeaponCategory::RifleOrCarbine),
            Some(id("BEL-FPJ"))
        );
        assert_eq!(node(pb::WeaponCategory::Shotgun), Some(id("BEL-CUS")));
        assert_eq!(
            node(pb::WeaponCategory::MortarUnder75mm),
            Some(id("BEL-FPJ")),
            "a revoked node is never designated"
        );
        assert_eq!(
            v.designated_tracing_node(
                CountryCode::parse("FRA").unwrap(),
                pb::WeaponCategory::Shotgun
            ),
            None
        );
        assert_eq!(v.nodes_of_state(bel), vec![id("BEL-CUS"), id("BEL-FPJ")]);
    }

    #[test]
    fn member_kinds_default_to_national_agency_for_states_only() {
        let r = roster();
        let mut s = pb::DirectoryState::default();
        s.members.insert(
            "DEU-CUS".into(),
            member("DEU-CUS", pb::MemberStatus::Active),
        );
        let mut hub = member("ECOWAS-HUB", pb::MemberStatus::Active);
        hub.country = String::new();
        hub.kind = pb::MemberKind::RegionalOrganisation as i32;
        s.members.insert("ECOWAS-HUB".into(), hub);
        r.apply_directory(&s);
        let id = |s: &str| NodeId::parse(s).unwrap();
        assert_eq!(
            r.member_kind(&id("DEU-CUS")),
            pb::MemberKind::NationalAgency
        );
        assert_eq!(
            r.member_kind(&id("ECOWAS-HUB")),
            pb::MemberKind::RegionalOrganisation
        );
        assert_eq!(r.member_kind(&id("UNODC-GFP")), pb::MemberKind::Unspecified);
    }
}
