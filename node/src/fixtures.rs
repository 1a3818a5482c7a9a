//! Plain values the use-case tests share: a small federation's ids, a sharing policy with one
//! rule, and sample records with ids. Test-only, so the decisions are tested without a store,
//! ledger, audit log or socket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tracenet_proto::v1 as pb;

use crate::country::CountryCode;
use crate::envelope::PeerKeys;
use crate::ids::NodeId;
use crate::policy::Policy;
use crate::roster::{PeerInfo, RosterView};
use crate::sample;
use crate::trace::TraceSettings;

pub fn country(s: &str) -> CountryCode {
    CountryCode::parse(s).unwrap()
}

pub fn node(s: &str) -> NodeId {
    NodeId::parse(s).unwrap()
}

/// FRA's policy, version 7: rule `deu` shares seizures and trace results with DEU for criminal
/// investigations and tracing (serial numbers and manufacturers only); nothing else is shared.
pub fn policy() -> Policy {
    Policy::parse(pb::SharingPolicy {
        owner_country: "FRA".into(),
        version: 7,
        legal_basis: "Synthetic national law art. 1".into(),
        rules: vec![pb::PolicyRule {
            id: "deu".into(),
            audience: Some(pb::Audience {
                countries: vec!["DEU".into()],
                regions: vec![],
                agency_kinds: vec![],
            }),
            purposes: vec![
                pb::Purpose::CriminalInvestigation as i32,
                pb::Purpose::Tracing as i32,
            ],
            data_classes: vec![
                pb::DataClass::Seizure as i32,
                pb::DataClass::TraceResult as i32,
            ],
            fields: ["firearms.serial_number", "firearms.manufacturer"]
                .into_iter()
                .map(|f| pb::FieldRule {
                    field: f.into(),
                    treatment: pb::FieldTreatment::Allow as i32,
                    generalisation: 0,
                })
                .collect(),
            handling: Some(pb::Handling {
                no_onward_without_consent: true,
                ..Default::default()
            }),
            ..Default::default()
        }],
    })
    .unwrap()
}

/// FRA's sample record `n`, stored under id `id` (32 hex digits).
pub fn record(n: u64, id: &str) -> pb::SeizureRecord {
    let mut r = sample::record(country("FRA"), n);
    r.id = id.into();
    r
}

/// A request context from `from`, as the peer service hands it on once verified.
pub fn context(from: &str, purpose: pb::Purpose) -> pb::RequestContext {
    pb::RequestContext {
        request_id: "req-1".into(),
        requester_node: from.into(),
        agency_kind: pb::AgencyKind::Police as i32,
        purpose: purpose as i32,
        issued_at: 1000,
        ..Default::default()
    }
}

/// A roster view of FRA-POL with these peers (no signing keys), each answering urgent trace
/// requests in 2 days with escalation contact `desk@<id>`, and [`policy`] in force.
pub fn roster(peers: &[&str]) -> RosterView {
    RosterView {
        hubs: crate::roster::HubRoutes::default(),
        policy: Arc::new(policy()),
        keys: Arc::new(PeerKeys::new(HashMap::new())),
        peers: peers
            .iter()
            .map(|p| {
                let info = PeerInfo {
                    endpoint: format!("{p}.example:7000"),
                    regions: vec![],
                    trace: TraceSettings {
                        urgent_days: 2,
                        escalation_contact: format!("desk@{p}"),
                        ..TraceSettings::default()
                    },
                };
                (node(p), info)
            })
            .collect(),
        barred: HashMap::new(),
        revoked_fingerprints: HashSet::new(),
        fingerprints: HashMap::new(),
        local_gateway: HashSet::new(),
        local_admin: HashSet::new(),
        agency_kinds: HashMap::new(),
        policy_problem: None,
        from_directory: false,
        own_contact: String::new(),
    }
}
