//! The demo's directory part: three voters (secretariat and two hubs) and the national nodes as
//! learners. Shows the replicated directory, measures committed write latency and leader
//! failover on this machine, publishes a policy change and shows it on the next disclosure, and
//! revokes a member and shows its next call refused.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use tracenet_proto::v1 as pb;
use tracenet_proto::v1::directory_command::Op;

use super::{DemoError, call, check};
use crate::{DevFederation, DevnetError};
use tracenet_node::client::connect_directory;
use tracenet_node::directory::types::raft_id;
use tracenet_node::envelope::SigningKey;
use tracenet_node::sample;

const FRA: usize = 0;
const DEU: usize = 1;
const ITA: usize = 2;
const SEC: usize = 3;
/// Committed writes timed for the latency figure.
const TIMED_WRITES: usize = 20;

fn contacts(n: usize) -> Op {
    Op::PublishContacts(pb::ContactPoints {
        contacts: vec![pb::ContactPoint {
            function: "national focal point".into(),
            organisation: "Synthetic national police (demo)".into(),
            email: format!("focal.point.{n}@example.test"),
            phone: "+00 0000 0000".into(),
            languages: vec!["fr".into(), "en".into()],
            working_hours: "Mon-Fri 08:00-18:00".into(),
        }],
    })
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// FRA records ITA's border agency receives for a route query.
async fn ita_sees_from_fra(fed: &DevFederation) -> Result<usize, DemoError> {
    let via = sample::record(fed.nodes[FRA].id.country(), 0)
        .trafficking
        .and_then(|t| t.route.get(1).map(|p| p.country.clone()))
        .unwrap_or_default();
    let r = fed
        .admin_client(ITA)
        .await?
        .federated_query(pb::FederatedQueryRequest {
            inquiry: Some(pb::Inquiry {
                agency_kind: pb::AgencyKind::Police as i32,
                purpose: pb::Purpose::BorderRiskAnalysis as i32,
                legal_basis: "Synthetic legal basis (demo)".into(),
                case_reference: "SYN-DEMO-CASE".into(),
                deadline_ms: 3000,
                via_hub: false,
            }),
            filter: Some(pb::RecordFilter {
                route_country: via,
                ..Default::default()
            }),
            limit_per_peer: 50,
            include_local: false,
        })
        .await
        .map_err(call("route query from ITA-POL"))?
        .into_inner();
    Ok(r.answers
        .iter()
        .filter(|a| a.node_id == "FRA-POL")
        .map(|a| a.records.len())
        .sum())
}

/// DEU-CUS, a member turned hostile, tries to publish a share-everything policy in FRA-POL's
/// name: signed with its own key, sent to the leader as a proposal and to FRA-POL's replica as
/// replication reusing the leader's vote. Both are refused and FRA-POL's policy stays as it was.
async fn forged_write_refused(fed: &DevFederation, out: &mut String) -> Result<(), DemoError> {
    let deu = &fed.nodes[DEU];
    let key = SigningKey::load(&deu.cert_dir.join("signing.pk8"), deu.id.clone())
        .map_err(|e| DemoError::Check(format!("DEU-CUS signing key: {e}")))?;
    let v = fed
        .admin_client(FRA)
        .await?
        .get_directory(pb::GetDirectoryRequest {
            linearizable: false,
            ..Default::default()
        })
        .await
        .map_err(call("reading FRA-POL's directory"))?
        .into_inner();
    let version = |v: &pb::DirectoryView| {
        v.state
            .as_ref()
            .and_then(|s| s.entries.get("FRA-POL"))
            .and_then(|e| e.policies.last())
            .and_then(|p| p.policy.as_ref())
            .map_or(0, |p| p.version)
    };
    let before = version(&v);
    let mut cmd = pb::DirectoryCommand {
        at: 0,
        seq: u64::MAX / 2,
        op: Some(Op::PublishPolicy(pb::SharingPolicy {
            owner_country: "FRA".into(),
            version: 99,
            legal_basis: "forged".into(),
            rules: vec![],
        })),
        ..Default::default()
    };
    key.sign_directory_command(&mut cmd);
    cmd.writer = "FRA-POL".into();
    let tls = fed.material(DEU, "node")?;
    let leader = fed.wait_for_leader(FRA).await?;
    let li = fed.index_of(&leader)?;
    let ln = &fed.nodes[li];
    let proposed = connect_directory(&ln.peer_addr.to_string(), &tls, &ln.id)
        .await
        .map_err(DevnetError::from)?
        .propose(pb::ProposeRequest {
            command: Some(cmd.clone()),
        })
        .await;
    let fra = &fed.nodes[FRA];
    let entry = pb::RaftLogId {
        term: v.term,
        leader: raft_id(&ln.id),
        index: v.applied_index + 1,
    };
    let appended = connect_directory(&fra.peer_addr.to_string(), &tls, &fra.id)
        .await
        .map_err(DevnetError::from)?
        .append_entries(pb::RaftAppendRequest {
            vote: Some(pb::RaftVote {
                term: v.term,
                node_id: raft_id(&ln.id),
                committed: true,
            }),
            prev_log_id: Some(pb::RaftLogId {
                index: v.applied_index,
                ..entry
            }),
            entries: vec![pb::RaftEntry {
                log_id: Some(entry),
                payload: Some(pb::raft_entry::Payload::Command(cmd)),
            }],
            leader_commit: Some(entry),
        })
        .await;
    let (Err(p), Err(a)) = (proposed, appended) else {
        return Err(DemoError::Check(
            "a forged directory write was accepted".into(),
        ));
    };
    let after = fed
        .admin_client(FRA)
        .await?
        .get_directory(pb::GetDirectoryRequest {
            linearizable: false,
            ..Default::default()
        })
        .await
        .map_err(call("reading FRA-POL's directory"))?
        .into_inner();
    check(version(&after) == before, || {
        format!(
            "FRA-POL's policy changed from v{before} to v{}",
            version(&after)
        )
    })?;
    let _ = writeln!(
        out,
        "forged directory write refused: DEU-CUS's policy v99 in FRA-POL's name was refused by leader {leader} ({}) and by FRA-POL's replica ({}); FRA-POL's policy stays v{before}",
        p.message(),
        a.message()
    );
    Ok(())
}

/// Runs the directory part of the scenario (after the exchange part: it revokes ITA-POL).
pub async fn scenario(fed: &mut DevFederation, out: &mut String) -> Result<(), DemoError> {
    let v = fed
        .wait_for_directory(FRA, "the founded directory", Duration::from_secs(30), |v| {
            v.state
                .as_ref()
                .is_some_and(|s| s.members.len() == fed.nodes.len())
        })
        .await?;
    let _ = writeln!(
        out,
        "directory: {} members replicated to FRA-POL (a learner); leader {}, voters {:?}, learners {:?}",
        v.state.as_ref().map_or(0, |s| s.members.len()),
        v.leader,
        v.voters,
        v.learners
    );

    // Committed write latency, as a member sees it (forwarded to the leader).
    let mut times = Vec::with_capacity(TIMED_WRITES);
    for n in 0..TIMED_WRITES {
        let started = Instant::now();
        fed.propose_applied(FRA, contacts(n)).await?;
        times.push(started.elapsed());
    }
    times.sort();
    let _ = writeln!(
        out,
        "directory writes from FRA-POL, committed by the voters and applied: p50 {:.1} ms, max {:.1} ms over {TIMED_WRITES} writes",
        millis(times[TIMED_WRITES / 2]),
        millis(times[TIMED_WRITES - 1]),
    );

    forged_write_refused(fed, out).await?;

    // A policy change takes effect on the next disclosure.
    let before = ita_sees_from_fra(fed).await?;
    check(before > 0, || {
        "ITA-POL received no FRA records before the change".into()
    })?;
    let current = v
        .state
        .as_ref()
        .and_then(|s| s.entries.get("FRA-POL"))
        .and_then(|e| e.policies.last())
        .and_then(|p| p.policy.clone())
        .ok_or_else(|| DemoError::Check("FRA-POL has no published policy".into()))?;
    let mut next = current.clone();
    next.version += 1;
    next.rules.retain(|r| r.id != "ita-border-risk");
    fed.propose_applied(FRA, Op::PublishPolicy(next.clone()))
        .await?;
    fed.wait_for_directory(FRA, "FRA policy v2 applied", Duration::from_secs(10), |v| {
        v.state.as_ref().is_some_and(|s| {
            s.entries["FRA-POL"]
                .policies
                .last()
                .and_then(|p| p.policy.as_ref())
                == Some(&next)
        })
    })
    .await?;
    let after = ita_sees_from_fra(fed).await?;
    check(after == 0, || {
        format!("ITA-POL still received {after} FRA records after the policy change")
    })?;
    let _ = writeln!(
        out,
        "FRA-POL published sharing policy v{} without rule 'ita-border-risk': ITA-POL's route query received {before} FRA records before, {after} after",
        next.version
    );

    // Revocation: ITA-POL's next call is refused.
    fed.propose_applied(
        SEC,
        Op::Revoke(pb::StatusChange {
            node_id: "ITA-POL".into(),
            reason: "synthetic demo revocation".into(),
        }),
    )
    .await?;
    fed.wait_for_directory(FRA, "the revocation", Duration::from_secs(10), |v| {
        v.state
            .as_ref()
            .is_some_and(|s| s.members["ITA-POL"].status == pb::MemberStatus::Revoked as i32)
    })
    .await?;
    let refused = fed
        .admin_client(ITA)
        .await?
        .check_peer(pb::CheckPeerRequest {
            node_id: "FRA-POL".into(),
        })
        .await;
    let why = match refused {
        Ok(_) => {
            return Err(DemoError::Check(
                "FRA-POL still answered revoked ITA-POL".into(),
            ));
        }
        Err(s) => s.message().to_owned(),
    };
    check(why.contains("revoked"), || format!("refusal was: {why}"))?;
    let _ = writeln!(
        out,
        "secretariat revoked ITA-POL: its next call to FRA-POL was refused ({why})"
    );

    // Failover: stop the leader, time until the next committed write.
    let leader = fed.wait_for_leader(FRA).await?;
    let li = fed.index_of(&leader)?;
    let started = Instant::now();
    fed.stop(li).await?;
    let stopped = started.elapsed();
    fed.propose_applied(FRA, contacts(TIMED_WRITES)).await?;
    let failover = started.elapsed();
    let new_leader = fed.wait_for_leader(FRA).await?;
    check(new_leader != leader, || "no new leader was elected".into())?;
    let _ = writeln!(
        out,
        "stopped directory leader {leader} (graceful stop took {:.0} ms): {new_leader} took over and the next write committed {:.0} ms after the stop began",
        millis(stopped),
        millis(failover)
    );
    fed.restart(li).await?;
    Ok(())
}
