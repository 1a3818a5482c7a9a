//! Founding a dev federation's directory the way a real one is founded: the secretariat admits
//! itself, then admits every other node from its certificate, signing key and endpoint, and each
//! node publishes its own sharing policy and trace settings. Plus the waits the demo and the
//! tests use instead of sleeps (leader known, replica applied up to a condition).

use std::time::Duration;

use tracenet_proto::v1 as pb;
use tracenet_proto::v1::directory_command::Op;

use super::{DevFederation, DevnetError};
use tracenet_node::config::Role;
use tracenet_node::envelope::parse_public_key;
use tracenet_node::policy::Policy;
use tracenet_node::tls::fingerprint_of_pem_file;

/// How long founding steps wait for elections and replication.
pub const FOUNDING_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(25);

fn role_pb(r: Role) -> pb::MemberRole {
    match r {
        Role::National => pb::MemberRole::National,
        Role::Hub => pb::MemberRole::Hub,
        Role::Secretariat => pb::MemberRole::Secretariat,
    }
}

/// The dev federation's agency kinds, from the node id's agency part (POL police, CUS customs,
/// BGD border guard); anything else is left unspecified.
pub fn agency_kind_of(node_id: &str) -> pb::AgencyKind {
    match node_id.split('-').nth(1) {
        Some("POL") => pb::AgencyKind::Police,
        Some("CUS") => pb::AgencyKind::Customs,
        Some("BGD") => pb::AgencyKind::BorderGuard,
        _ => pb::AgencyKind::Unspecified,
    }
}

impl DevFederation {
    /// The index of the node with this id.
    pub fn index_of(&self, id: &str) -> Result<usize, DevnetError> {
        self.nodes
            .iter()
            .position(|n| n.id.as_str() == id)
            .ok_or_else(|| DevnetError::Usage(format!("no node {id}")))
    }

    /// The directory entry for node `i`, from its dev certificate, signing key and address.
    pub fn member_of(&self, i: usize) -> Result<pb::Member, DevnetError> {
        let n = self.node(i)?;
        let spec = self
            .specs
            .get(i)
            .ok_or_else(|| DevnetError::Usage(format!("no spec {i}")))?;
        let pub_path = n.cert_dir.join("signing.pub");
        let key_hex = std::fs::read_to_string(&pub_path)
            .map_err(|e| DevnetError::Usage(format!("{}: {e}", pub_path.display())))?;
        let signing_key = parse_public_key(&key_hex)
            .ok_or_else(|| DevnetError::Usage(format!("{} is not a key", pub_path.display())))?;
        Ok(pb::Member {
            node_id: n.id.to_string(),
            // A State's node has its State; an organisation has no country.
            country: n.id.state().map(|c| c.to_string()).unwrap_or_default(),
            organisation: format!("Synthetic agency {} (demo)", n.id),
            role: role_pb(spec.role) as i32,
            endpoint: n.peer_addr.to_string(),
            cert_fingerprint: fingerprint_of_pem_file(&n.cert_dir.join("node.pem"))?,
            signing_key,
            sealing_key: Vec::new(),
            status: 0,
            regions: spec.regions.clone(),
            agency_kind: agency_kind_of(n.id.as_str()) as i32,
            kind: self.member_kind_of(i) as i32,
            member_states: spec.member_states.clone(),
        })
    }

    /// Node `i`'s member kind: its spec's, else a national agency.
    pub fn member_kind_of(&self, i: usize) -> pb::MemberKind {
        self.specs
            .get(i)
            .and_then(|s| s.kind)
            .unwrap_or(pb::MemberKind::NationalAgency)
    }

    /// Whether node `i` is its State's designated tracing node in this federation (see
    /// [`crate::is_tracing_point`]).
    pub fn is_tracing_point(&self, i: usize) -> bool {
        let ids: Vec<_> = self.nodes.iter().map(|n| n.id.clone()).collect();
        self.nodes
            .get(i)
            .is_some_and(|n| crate::is_tracing_point(&ids, &self.specs, &n.id))
    }

    /// Proposes a directory command as node `i`, retrying while no leader is elected yet.
    pub async fn propose(&self, i: usize, op: Op) -> Result<pb::DirectoryResponse, DevnetError> {
        let deadline = tokio::time::Instant::now() + FOUNDING_TIMEOUT;
        let mut client = self.admin_client(i).await?;
        loop {
            let req = pb::ProposeDirectoryRequest {
                command: Some(pb::DirectoryCommand {
                    writer: String::new(),
                    at: 0,
                    seq: 0,
                    signature: Vec::new(),
                    op: Some(op.clone()),
                }),
            };
            match client.propose_directory(req).await {
                Ok(r) => return Ok(r.into_inner()),
                Err(s)
                    if s.code() == tonic::Code::Unavailable
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(POLL * 4).await;
                }
                Err(s) => {
                    return Err(DevnetError::Usage(format!(
                        "directory write on {}: {}",
                        self.node(i)?.id,
                        s.message()
                    )));
                }
            }
        }
    }

    /// As [`DevFederation::propose`], and the command must be applied.
    pub async fn propose_applied(&self, i: usize, op: Op) -> Result<(), DevnetError> {
        let r = self.propose(i, op).await?;
        if r.applied {
            Ok(())
        } else {
            Err(DevnetError::Usage(format!(
                "directory refused: {}",
                r.refusal
            )))
        }
    }

    /// Waits until node `i`'s replica satisfies `pred`, returning the view that did.
    pub async fn wait_for_directory(
        &self,
        i: usize,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&pb::DirectoryView) -> bool,
    ) -> Result<pb::DirectoryView, DevnetError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut client = self.admin_client(i).await?;
        loop {
            let last = client
                .get_directory(pb::GetDirectoryRequest {
                    linearizable: false,
                    ..Default::default()
                })
                .await
                .map(tonic::Response::into_inner);
            if let Ok(v) = &last
                && pred(v)
            {
                return Ok(v.clone());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(DevnetError::Usage(format!(
                    "timed out waiting on {} for {what}; last view: {:?}",
                    self.node(i)?.id,
                    last.map(|v| (v.leader, v.applied_index, v.voters, v.learners))
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until node `i` knows a leader, and returns it.
    pub async fn wait_for_leader(&self, i: usize) -> Result<String, DevnetError> {
        Ok(self
            .wait_for_directory(i, "a leader", FOUNDING_TIMEOUT, |v| !v.leader.is_empty())
            .await?
            .leader)
    }

    /// Founds the directory: the first secretariat voter admits itself and every other node,
    /// each node publishes a synthetic contact point, its trace settings and its policy (if its
    /// spec has one), and every
    /// running node's replica ends up holding all of it.
    pub async fn found_directory(&self) -> Result<(), DevnetError> {
        let sec = self
            .specs
            .iter()
            .position(|s| s.voter && s.role == Role::Secretariat)
            .ok_or_else(|| DevnetError::Usage("no secretariat voter".into()))?;
        self.wait_for_leader(sec).await?;
        self.propose_applied(
            sec,
            Op::Admit(pb::Member {
                node_id: self.node(sec)?.id.to_string(),
                organisation: "Synthetic federation secretariat (demo)".into(),
                role: pb::MemberRole::Secretariat as i32,
                regions: self.specs[sec].regions.clone(),
                kind: self.member_kind_of(sec) as i32,
                member_states: self.specs[sec].member_states.clone(),
                ..Default::default()
            }),
        )
        .await?;
        for i in 0..self.nodes.len() {
            if i != sec {
                // A write that timed out is retried as a new command; if the first one was
                // applied after all, the member is already there, which is what founding wants.
                let r = self.propose(sec, Op::Admit(self.member_of(i)?)).await?;
                if !r.applied && !r.refusal.contains("is already a member") {
                    return Err(DevnetError::Usage(format!(
                        "directory refused: {}",
                        r.refusal
                    )));
                }
            }
        }
        for i in 0..self.nodes.len() {
            let c = &self.node(i)?.config;
            self.propose_applied(
                i,
                Op::PublishTraceSettings(pb::TraceServiceSettings {
                    routine_days: c.trace.routine_days,
                    urgent_days: c.trace.urgent_days,
                    escalation_contact: c.trace.escalation_contact.clone(),
                }),
            )
            .await?;
            let id = c.node_id.to_string();
            self.propose_applied(
                i,
                Op::PublishContacts(pb::ContactPoints {
                    contacts: vec![pb::ContactPoint {
                        function: "National firearms focal point (synthetic)".into(),
                        organisation: format!("Synthetic agency {id}"),
                        email: format!("focal.point@{}.example", id.to_ascii_lowercase()),
                        phone: "+00 000 000 000 (synthetic)".into(),
                        languages: vec!["en".into(), "fr".into()],
                        working_hours: "Mon-Fri 08:00-18:00 UTC".into(),
                    }],
                }),
            )
            .await?;
            // The gateway and admin certificates its configuration lists, in the directory too.
            let local = &c.local_certificates;
            if !local.is_empty() {
                self.propose_applied(
                    i,
                    Op::PublishLocalCertificates(pb::LocalCertificates {
                        gateway_fingerprints: local.gateway_fingerprints.clone(),
                        admin_fingerprints: local.admin_fingerprints.clone(),
                    }),
                )
                .await?;
            }
            if let Some(text) = &self.specs[i].policy {
                let p = Policy::from_toml(text)
                    .map_err(|e| DevnetError::Usage(format!("policy of {}: {e}", c.node_id)))?;
                self.propose_applied(i, Op::PublishPolicy(p.source().clone()))
                    .await?;
            }
        }
        // Each State's designated tracing node publishes its designation.
        for i in 0..self.nodes.len() {
            if self.is_tracing_point(i) {
                let id = self.node(i)?.id.to_string();
                self.propose_applied(
                    i,
                    Op::PublishTracingDesignation(pb::TracingDesignation {
                        node_id: id,
                        ..Default::default()
                    }),
                )
                .await?;
            }
        }
        let n = self.nodes.len();
        let want = self
            .wait_for_directory(sec, "the founding entries", FOUNDING_TIMEOUT, |_| true)
            .await?
            .applied_index;
        for i in 0..n {
            if self.node(i)?.is_running() {
                self.wait_for_directory(i, "all members", FOUNDING_TIMEOUT, |v| {
                    v.applied_index >= want
                        && v.state.as_ref().is_some_and(|s| s.members.len() == n)
                })
                .await?;
            }
        }
        Ok(())
    }
}
