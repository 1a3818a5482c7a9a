//! The replicated directory across real nodes on real sockets with mTLS: elections and failover,
//! quorum, catching up through a snapshot, authorisation of writes by certificate identity,
//! revocation enforced by every node, and exchange without quorum. Every wait is on a condition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tracenet_devnet::NodeSpec;
use tracenet_node::config::Role;
use tracenet_node::directory::types::raft_id;
use tracenet_node::envelope::SignedRequest;
use tracenet_node::ids::NodeId;
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::directory_command::Op;
use tracenet_proto::v1::directory_raft_client::DirectoryRaftClient;
use tracenet_tests::{ClientCert, TestFederation, wait_for};

const WAIT: Duration = Duration::from_secs(20);

/// Three voters (secretariat and two hubs) and two national learners; 0..3 are voters.
fn specs(snapshot_every: u64) -> Vec<NodeSpec> {
    vec![
        NodeSpec::new("CHE-SEC")
            .voter(Role::Secretariat)
            .snapshot_every(snapshot_every),
        NodeSpec::new("BEL-HUB")
            .voter(Role::Hub)
            .snapshot_every(snapshot_every),
        NodeSpec::new("AUT-HUB")
            .voter(Role::Hub)
            .snapshot_every(snapshot_every),
        NodeSpec::new("FRA-POL").in_regions(&["SYN-WEST"]),
        // Never snapshots by itself: a snapshot it holds came from the leader.
        NodeSpec::new("DEU-CUS").with_policy(
            r#"
owner_country = "DEU"
version = 1
legal_basis = "Synthetic test basis"

[[rules]]
id = "all-tracing"
purposes = ["PURPOSE_TRACING"]
data_classes = ["DATA_CLASS_SEIZURE"]
audience = { countries = ["FRA", "CHE", "BEL", "AUT"] }
fields = [{ field = "firearms.serial_number", treatment = "FIELD_TREATMENT_ALLOW" }]
"#,
        ),
    ]
}

async fn founded(snapshot_every: u64) -> TestFederation {
    let t = TestFederation::start_specs(&specs(snapshot_every))
        .await
        .unwrap();
    t.fed.found_directory().await.unwrap();
    t
}

fn contacts(email: &str) -> Op {
    Op::PublishContacts(pb::ContactPoints {
        contacts: vec![pb::ContactPoint {
            function: "national focal point".into(),
            organisation: "Synthetic agency".into(),
            email: email.into(),
            ..Default::default()
        }],
    })
}

fn sample(n: u64) -> pb::SeizureRecord {
    tracenet_node::sample::record(
        tracenet_node::country::CountryCode::parse("DEU").unwrap(),
        n,
    )
}

fn lookup_of(serial: &str) -> pb::FederatedLookupRequest {
    pb::FederatedLookupRequest {
        inquiry: Some(pb::Inquiry {
            purpose: pb::Purpose::Tracing as i32,
            agency_kind: pb::AgencyKind::Police as i32,
            legal_basis: "Synthetic test basis".into(),
            case_reference: "TEST-1".into(),
            deadline_ms: 0,
            via_hub: false,
        }),
        serial_number: serial.to_owned(),
        manufacturer: String::new(),
        ..Default::default()
    }
}

async fn leader_index(t: &TestFederation, from: usize) -> usize {
    let leader = t.fed.wait_for_leader(from).await.unwrap();
    t.fed.index_of(&leader).unwrap()
}

async fn view(t: &TestFederation, i: usize) -> pb::DirectoryView {
    t.admin(i)
        .await
        .unwrap()
        .get_directory(pb::GetDirectoryRequest {
            linearizable: false,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

fn email_of(v: &pb::DirectoryView, node: &str) -> Option<String> {
    v.state
        .as_ref()?
        .entries
        .get(node)?
        .contacts
        .first()
        .map(|c| c.email.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn founding_replicates_members_to_voters_and_learners() {
    let t = founded(1000).await;
    let v = view(&t, 4).await;
    assert_eq!(v.voters.len(), 3, "{v:?}");
    let mut learners = v.learners.clone();
    learners.sort();
    assert_eq!(learners, vec!["DEU-CUS", "FRA-POL"]);
    let s = v.state.unwrap();
    assert_eq!(s.members.len(), 5);
    assert_eq!(
        s.entries["DEU-CUS"]
            .policies
            .last()
            .unwrap()
            .policy
            .as_ref()
            .unwrap()
            .version,
        1
    );
    // A linearizable read from a learner goes through the leader's read index.
    let lin = t
        .admin(3)
        .await
        .unwrap()
        .get_directory(pb::GetDirectoryRequest {
            linearizable: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(lin.applied_index >= v.applied_index);
    t.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_stopped_a_new_leader_is_elected_and_writes_continue() {
    let mut t = founded(1000).await;
    let old = leader_index(&t, 3).await;
    t.stop(old).await.unwrap();
    let survivor = (0..3).find(|i| *i != old).unwrap();
    let old_name = t.node(old).id.to_string();
    let new_leader = t
        .fed
        .wait_for_directory(survivor, "a new leader", WAIT, |v| {
            !v.leader.is_empty() && v.leader != old_name
        })
        .await
        .unwrap()
        .leader;
    assert_ne!(new_leader, old_name);
    // A learner writes through the new leader.
    t.fed
        .propose_applied(3, contacts("after.failover@example.test"))
        .await
        .unwrap();
    t.fed
        .wait_for_directory(4, "the write replicated", WAIT, |v| {
            email_of(v, "FRA-POL").as_deref() == Some("after.failover@example.test")
        })
        .await
        .unwrap();
    // The old leader comes back as a follower and catches up.
    t.restart(old).await.unwrap();
    t.fed
        .wait_for_directory(old, "catch-up after restart", WAIT, |v| {
            email_of(v, "FRA-POL").as_deref() == Some("after.failover@example.test")
        })
        .await
        .unwrap();
    t.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_cannot_write_the_majority_can_and_exchange_goes_on() {
    let mut t = founded(1000).await;
    // Seed a record on DEU-CUS that FRA-POL may look up.
    let mut deu = t.admin(4).await.unwrap();
    let created = deu
        .create_record(pb::CreateRecordRequest {
            record: Some(sample(7)),
        })
        .await
        .unwrap()
        .into_inner()
        .record
        .unwrap();
    let serial = created.firearms[0].serial_number.clone();

    // Two of three voters stop: one voter is a minority.
    t.stop(1).await.unwrap();
    t.stop(2).await.unwrap();
    let refused = t
        .admin(3)
        .await
        .unwrap()
        .propose_directory(pb::ProposeDirectoryRequest {
            command: Some(pb::DirectoryCommand {
                op: Some(contacts("minority@example.test")),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(
        refused.message().contains("retry") || refused.message().contains("quorum"),
        "the error says it is retryable: {}",
        refused.message()
    );

    // A linearizable read says plainly that there is no quorum (no internal Raft ids).
    let read = t
        .admin(3)
        .await
        .unwrap()
        .get_directory(pb::GetDirectoryRequest {
            linearizable: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(read.code(), tonic::Code::Unavailable, "{read:?}");
    assert!(
        read.message().contains("quorum") && !read.message().contains("Some("),
        "{}",
        read.message()
    );

    // Exchange between members keeps working from local replicas.
    let found = t
        .admin(3)
        .await
        .unwrap()
        .federated_lookup(lookup_of(&serial))
        .await
        .unwrap()
        .into_inner();
    assert!(
        found
            .answers
            .iter()
            .any(|a| a.node_id == "DEU-CUS" && a.hit),
        "{found:?}"
    );

    // A majority again: writes resume.
    t.restart(1).await.unwrap();
    t.fed
        .propose_applied(3, contacts("majority@example.test"))
        .await
        .unwrap();
    t.fed
        .wait_for_directory(0, "the write after quorum returned", WAIT, |v| {
            email_of(v, "FRA-POL").as_deref() == Some("majority@example.test")
        })
        .await
        .unwrap();
    t.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_learner_catches_up_through_a_snapshot() {
    let mut specs = specs(3);
    specs[4].snapshot_every = 100_000;
    let mut t = TestFederation::start_specs(&specs).await.unwrap();
    t.fed.found_directory().await.unwrap();
    let stopped_at = view(&t, 4).await.applied_index;
    t.stop(4).await.unwrap();
    for n in 0..12 {
        t.fed
            .propose_applied(3, contacts(&format!("change.{n}@example.test")))
            .await
            .unwrap();
    }
    // Every voter has purged entries DEU-CUS lacks: only a snapshot can bring it up to date.
    for voter in 0..3 {
        t.fed
            .wait_for_directory(voter, "log purged past the stopped learner", WAIT, |v| {
                v.snapshot_index > stopped_at && v.purged_index > stopped_at
            })
            .await
            .unwrap();
    }
    t.restart(4).await.unwrap();
    let caught = t
        .fed
        .wait_for_directory(4, "catch-up", WAIT, |v| {
            email_of(v, "FRA-POL").as_deref() == Some("change.11@example.test")
        })
        .await
        .unwrap();
    assert!(
        caught.snapshot_index > 0,
        "DEU-CUS never snapshots by itself, so its snapshot was installed from the leader: {caught:?}"
    );
    t.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_authorised_by_certificate_identity() {
    let t = founded(1000).await;
    t.fed
        .propose_applied(3, contacts("fra.desk@example.test"))
        .await
        .unwrap();
    // DEU-CUS forges a command naming FRA-POL and sends it straight to the leader.
    let leader = leader_index(&t, 4).await;
    let ch = t
        .channel(leader, false, ClientCert::Of(4, "node"))
        .await
        .unwrap();
    let forged = DirectoryRaftClient::new(ch)
        .propose(pb::ProposeRequest {
            command: Some(pb::DirectoryCommand {
                writer: "FRA-POL".into(),
                op: Some(Op::PublishPolicy(pb::SharingPolicy {
                    owner_country: "FRA".into(),
                    version: 99,
                    legal_basis: "forged".into(),
                    rules: vec![],
                })),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(forged.code(), tonic::Code::PermissionDenied, "{forged:?}");
    assert!(
        forged.message().contains("only forward its own"),
        "refused before replication: {}",
        forged.message()
    );
    // A national member may not admit, suspend or revoke.
    let r = t
        .fed
        .propose(
            4,
            Op::Revoke(pb::StatusChange {
                node_id: "FRA-POL".into(),
                reason: "forged".into(),
            }),
        )
        .await
        .unwrap();
    assert!(
        !r.applied && r.refusal.contains("only the secretariat"),
        "{r:?}"
    );
    // Its own contacts change; FRA-POL's do not.
    t.fed
        .propose_applied(4, contacts("deu.desk@example.test"))
        .await
        .unwrap();
    let v = t
        .fed
        .wait_for_directory(3, "DEU contacts", WAIT, |v| {
            email_of(v, "DEU-CUS").as_deref() == Some("deu.desk@example.test")
        })
        .await
        .unwrap();
    assert_eq!(
        email_of(&v, "FRA-POL").as_deref(),
        Some("fra.desk@example.test")
    );
    let fra_policies = &v.state.unwrap().entries["FRA-POL"].policies;
    assert!(
        fra_policies.is_empty(),
        "no forged policy: {fra_policies:?}"
    );
    t.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_member_is_refused_by_every_node_including_open_connections() {
    let t = founded(1000).await;
    // FRA-POL opens connections to every other node before it is revoked.
    let mut open = Vec::new();
    for i in [0, 1, 2, 4] {
        let mut c = t.peer_client(i, ClientCert::Of(3, "node")).await.unwrap();
        c.ping(pb::PingRequest {}).await.unwrap();
        open.push((i, c));
    }
    t.fed
        .propose_applied(
            0,
            Op::Revoke(pb::StatusChange {
                node_id: "FRA-POL".into(),
                reason: "synthetic test revocation".into(),
            }),
        )
        .await
        .unwrap();
    for (i, c) in &mut open {
        let i = *i;
        t.wait_for_member_status(i, "FRA-POL", pb::MemberStatus::Revoked)
            .await
            .unwrap();
        let on_open = c.ping(pb::PingRequest {}).await.unwrap_err();
        assert_eq!(
            on_open.code(),
            tonic::Code::PermissionDenied,
            "node {i}: {on_open:?}"
        );
        assert!(
            on_open.message().contains("revoked"),
            "{}",
            on_open.message()
        );
        // A new connection does not even complete its handshake.
        if let Ok(mut fresh) = t.peer_client(i, ClientCert::Of(3, "node")).await {
            let on_new = fresh.ping(pb::PingRequest {}).await.unwrap_err();
            assert_handshake_refused(&on_new);
        }
    }
    // Its own writes are never applied. When its replica applied the revocation before the
    // leader took it out of the group, the refusal says so and that retrying will not help;
    // when the leader removed it first (a race with replication), no other node completes a
    // handshake with it any more, so the write cannot reach a leader at all.
    let saw_it = t
        .wait_for_member_status(3, "FRA-POL", pb::MemberStatus::Revoked)
        .await
        .is_ok();
    let own = t
        .admin(3)
        .await
        .unwrap()
        .propose_directory(pb::ProposeDirectoryRequest {
            command: Some(pb::DirectoryCommand {
                op: Some(contacts("revoked@example.test")),
                ..Default::default()
            }),
        })
        .await;
    match own {
        Ok(r) => assert!(
            !r.into_inner().applied,
            "a revoked member's write was applied"
        ),
        Err(own) if saw_it => {
            assert_eq!(own.code(), tonic::Code::PermissionDenied, "{own:?}");
            assert!(own.message().contains("revoked"), "{}", own.message());
        }
        Err(_) => {}
    }
    let v = view(&t, 0).await;
    assert_ne!(
        email_of(&v, "FRA-POL").as_deref(),
        Some("revoked@example.test"),
        "a revoked member's contact point was published"
    );
    // Raft refuses it too, and the leader takes it out of the group.
    if let Ok(ch) = t.channel(0, false, ClientCert::Of(3, "node")).await {
        let vote = DirectoryRaftClient::new(ch)
            .vote(pb::RaftVoteRequest {
                vote: Some(pb::RaftVote {
                    term: 1000,
                    node_id: 1,
                    committed: false,
                }),
                last_log_id: None,
            })
            .await
            .unwrap_err();
        assert_handshake_refused(&vote);
    }
    t.fed
        .wait_for_directory(0, "FRA-POL removed from the group", WAIT, |v| {
            !v.learners.iter().any(|l| l == "FRA-POL")
        })
        .await
        .unwrap();
    // Other members no longer list it as a peer.
    let peers = wait_for("DEU-CUS to drop FRA-POL", || async {
        let info = t
            .admin(4)
            .await
            .ok()?
            .get_node_info(pb::GetNodeInfoRequest {})
            .await
            .ok()?
            .into_inner();
        (!info.peers.iter().any(|p| p == "FRA-POL")).then_some(info.peers)
    })
    .await
    .unwrap();
    assert!(peers.iter().any(|p| p == "CHE-SEC"), "{peers:?}");
    t.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_policy_takes_effect_on_the_next_disclosure() {
    let t = founded(1000).await;
    let mut deu = t.admin(4).await.unwrap();
    let rec = deu
        .create_record(pb::CreateRecordRequest {
            record: Some(sample(3)),
        })
        .await
        .unwrap()
        .into_inner()
        .record
        .unwrap();
    let serial = rec.firearms[0].serial_number.clone();
    let lookup = || async {
        t.admin(3)
            .await
            .unwrap()
            .federated_lookup(lookup_of(&serial))
            .await
            .unwrap()
            .into_inner()
            .answers
            .into_iter()
            .find(|a| a.node_id == "DEU-CUS")
            .unwrap()
    };
    assert!(lookup().await.hit, "policy v1 shares with FRA");
    // Version 2 no longer lists FRA.
    t.fed
        .propose_applied(
            4,
            Op::PublishPolicy(pb::SharingPolicy {
                owner_country: "DEU".into(),
                version: 2,
                legal_basis: "Synthetic test basis, amended".into(),
                rules: vec![],
            }),
        )
        .await
        .unwrap();
    t.fed
        .wait_for_directory(4, "policy v2 applied", WAIT, |v| {
            v.state.as_ref().is_some_and(|s| {
                s.entries["DEU-CUS"]
                    .policies
                    .last()
                    .and_then(|p| p.policy.as_ref())
                    .map(|p| p.version)
                    == Some(2)
            })
        })
        .await
        .unwrap();
    let after = lookup().await;
    assert!(!after.hit, "policy v2 shares nothing: {after:?}");
    t.shutdown().await.unwrap();
}

fn rid(id: &str) -> u64 {
    raft_id(&NodeId::parse(id).unwrap())
}

/// A command in `writer`'s name, signed by `signer`'s key (a forgery unless they are the same).
fn forged_by(t: &TestFederation, signer: usize, writer: &str, op: Op) -> pb::DirectoryCommand {
    let mut c = pb::DirectoryCommand {
        at: 1,
        seq: u64::MAX / 2,
        op: Some(op),
        ..Default::default()
    };
    t.signing_key(signer)
        .unwrap()
        .sign_directory_command(&mut c);
    c.writer = writer.into();
    c
}

fn permissive_fra_policy() -> pb::SharingPolicy {
    pb::SharingPolicy {
        owner_country: "FRA".into(),
        version: 99,
        legal_basis: "forged".into(),
        rules: vec![],
    }
}

/// FRA-POL's record and entries as node `i` holds them, and its policy version in force there.
async fn fra_as_seen_by(t: &TestFederation, i: usize) -> (i32, usize) {
    let v = view(t, i).await;
    let s = v.state.unwrap();
    (
        s.members["FRA-POL"].status,
        s.entries.get("FRA-POL").map_or(0, |e| e.policies.len()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learners_forged_snapshot_and_entries_are_refused_and_change_nothing() {
    let t = founded(1000).await;
    let before: Vec<_> = {
        let mut b = Vec::new();
        for i in 0..5 {
            b.push(fra_as_seen_by(&t, i).await);
        }
        b
    };
    let v = view(&t, 4).await;
    let leader = t.fed.wait_for_leader(4).await.unwrap();
    // DEU-CUS (a learner with a full replica) forges a snapshot in which FRA-POL shares
    // everything, and a log entry in which the secretariat revokes FRA-POL.
    let mut state = v.state.clone().unwrap();
    state
        .entries
        .entry("FRA-POL".into())
        .or_default()
        .policies
        .push(pb::PublishedPolicy {
            policy: Some(permissive_fra_policy()),
            published_at: 0,
        });
    let membership = pb::RaftStoredMembership {
        log_id: Some(pb::RaftLogId {
            term: 1,
            leader: rid(&leader),
            index: 0,
        }),
        membership: Some(pb::RaftMembership {
            configs: vec![pb::RaftVoterSet {
                voters: v.voters.iter().map(|n| rid(n)).collect(),
            }],
            nodes: ["CHE-SEC", "BEL-HUB", "AUT-HUB", "FRA-POL", "DEU-CUS"]
                .iter()
                .map(|n| {
                    (
                        rid(n),
                        pb::RaftPeer {
                            node_id: (*n).into(),
                            endpoint: t.node(t.fed.index_of(n).unwrap()).peer_addr.to_string(),
                        },
                    )
                })
                .collect(),
        }),
    };
    let me = rid("DEU-CUS");
    let last = pb::RaftLogId {
        term: v.term + 1,
        leader: me,
        index: v.applied_index + 1000,
    };
    let data = tracenet_proto::stored::encode(&pb::DirectorySnapshot {
        last_applied: Some(last),
        membership: Some(membership.clone()),
        state: Some(state),
        snapshot_id: "forged".into(),
    });
    let revoke = forged_by(
        &t,
        4,
        "CHE-SEC",
        Op::Revoke(pb::StatusChange {
            node_id: "FRA-POL".into(),
            reason: "forged".into(),
        }),
    );
    for target in 0..4 {
        let ch = t
            .channel(target, false, ClientCert::Of(4, "node"))
            .await
            .unwrap();
        let mut c = DirectoryRaftClient::new(ch);
        let snap = c
            .install_snapshot(pb::RaftSnapshotRequest {
                vote: Some(pb::RaftVote {
                    term: v.term + 1,
                    node_id: me,
                    committed: true,
                }),
                meta: Some(pb::RaftSnapshotMeta {
                    last_log_id: Some(last),
                    last_membership: Some(membership.clone()),
                    snapshot_id: "forged".into(),
                }),
                offset: 0,
                data: data.clone(),
                done: true,
            })
            .await
            .unwrap_err();
        assert_eq!(snap.code(), tonic::Code::PermissionDenied, "{snap:?}");
        // AppendEntries both in its own name (a higher vote) and reusing the leader's vote.
        for vote in [
            pb::RaftVote {
                term: v.term + 1,
                node_id: me,
                committed: true,
            },
            pb::RaftVote {
                term: v.term,
                node_id: rid(&leader),
                committed: true,
            },
        ] {
            let entry_id = pb::RaftLogId {
                term: vote.term,
                leader: vote.node_id,
                index: v.applied_index + 1,
            };
            let append = c
                .append_entries(pb::RaftAppendRequest {
                    vote: Some(vote),
                    prev_log_id: Some(pb::RaftLogId {
                        index: v.applied_index,
                        ..entry_id
                    }),
                    entries: vec![pb::RaftEntry {
                        log_id: Some(entry_id),
                        payload: Some(pb::raft_entry::Payload::Command(revoke.clone())),
                    }],
                    leader_commit: Some(entry_id),
                })
                .await
                .unwrap_err();
            assert_eq!(append.code(), tonic::Code::PermissionDenied, "{append:?}");
        }
    }
    // Nothing changed on any replica, and the directory still takes writes everywhere.
    t.fed
        .propose_applied(3, contacts("fra.after@example.test"))
        .await
        .unwrap();
    for (i, b) in before.iter().enumerate() {
        t.fed
            .wait_for_directory(i, "the write after the forgeries", WAIT, |v| {
                email_of(v, "FRA-POL").as_deref() == Some("fra.after@example.test")
            })
            .await
            .unwrap();
        assert_eq!(fra_as_seen_by(&t, i).await, *b, "node {i}");
    }
    let info = t
        .admin(3)
        .await
        .unwrap()
        .get_node_info(pb::GetNodeInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_ne!(info.policy_version, 99);
    t.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_command_from_a_valid_leader_is_refused_by_apply() {
    let t = founded(1000).await;
    let leader_i = leader_index(&t, 3).await;
    let leader = t.node(leader_i).id.to_string();
    // The leader itself (a compromised voter) appends, to FRA-POL's replica, a policy in
    // FRA-POL's name that DEU-CUS signed.
    let forged = forged_by(&t, 4, "FRA-POL", Op::PublishPolicy(permissive_fra_policy()));
    let ch = t
        .channel(3, false, ClientCert::Of(leader_i, "node"))
        .await
        .unwrap();
    let mut c = DirectoryRaftClient::new(ch);
    let mut appended = None;
    for _ in 0..50 {
        let v = view(&t, 3).await;
        let at = |index| pb::RaftLogId {
            term: v.term,
            leader: rid(&leader),
            index,
        };
        let r = c
            .append_entries(pb::RaftAppendRequest {
                vote: Some(pb::RaftVote {
                    term: v.term,
                    node_id: rid(&leader),
                    committed: true,
                }),
                prev_log_id: Some(at(v.applied_index)),
                entries: vec![pb::RaftEntry {
                    log_id: Some(at(v.applied_index + 1)),
                    payload: Some(pb::raft_entry::Payload::Command(forged.clone())),
                }],
                leader_commit: Some(at(v.applied_index + 1)),
            })
            .await
            .unwrap()
            .into_inner();
        if matches!(r.result, Some(pb::raft_append_response::Result::Success(_))) {
            appended = Some(v.applied_index + 1);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let index = appended.expect("the leader's AppendEntries was accepted");
    let v = t
        .fed
        .wait_for_directory(3, "the forged entry applied", WAIT, |v| {
            v.applied_index >= index
        })
        .await
        .unwrap();
    let policies = v
        .state
        .unwrap()
        .entries
        .get("FRA-POL")
        .map_or(0, |e| e.policies.len());
    assert_eq!(policies, 0, "the forged policy was refused by apply");
    t.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_pinned_secretariat_founds_the_directory() {
    let t = TestFederation::start_specs(&specs(1000)).await.unwrap();
    let leader = leader_index(&t, 0).await;
    // FRA-POL, neither a voter nor a member, proposes itself as secretariat.
    let mut me = t.fed.member_of(3).unwrap();
    me.role = pb::MemberRole::Secretariat as i32;
    let cmd = forged_by(&t, 3, "FRA-POL", Op::Admit(me));
    let ch = t
        .channel(leader, false, ClientCert::Of(3, "node"))
        .await
        .unwrap();
    match DirectoryRaftClient::new(ch)
        .propose(pb::ProposeRequest { command: Some(cmd) })
        .await
    {
        Err(s) => assert_eq!(s.code(), tonic::Code::PermissionDenied, "{s:?}"),
        Ok(r) => assert!(!r.get_ref().applied, "FRA-POL founded the directory"),
    }
    // A voter (BEL-HUB) founding as secretariat is refused: by the leader before replication
    // when BEL-HUB forwards it, by every replica's apply when BEL-HUB leads.
    let bel = t.admin(1).await.unwrap();
    let outcome = wait_for("BEL-HUB's founding to be decided", || {
        let mut bel = bel.clone();
        async move {
            let r = bel
                .propose_directory(pb::ProposeDirectoryRequest {
                    command: Some(pb::DirectoryCommand {
                        op: Some(Op::Admit(pb::Member {
                            node_id: "BEL-HUB".into(),
                            role: pb::MemberRole::Secretariat as i32,
                            ..Default::default()
                        })),
                        ..Default::default()
                    }),
                })
                .await;
            match r {
                Err(s) if s.code() == tonic::Code::Unavailable => None,
                Err(s) => Some(Err(s)),
                Ok(r) => Some(Ok(r.into_inner())),
            }
        }
    })
    .await
    .unwrap();
    match outcome {
        Ok(r) => {
            assert!(!r.applied, "BEL-HUB founded the directory");
            assert!(r.refusal.contains("first member"), "{}", r.refusal);
        }
        Err(s) => {
            assert_eq!(s.code(), tonic::Code::PermissionDenied, "{s:?}");
            assert!(s.message().contains("first member"), "{s:?}");
        }
    }
    // The pinned secretariat founds it.
    t.fed.found_directory().await.unwrap();
    let v = view(&t, 3).await;
    assert_eq!(
        v.state.unwrap().members["CHE-SEC"].role,
        pb::MemberRole::Secretariat as i32
    );
    t.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_certificate_for_an_admitted_identity_is_refused() {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let t = founded(1000).await;
    // Someone holding the federation CA's key mints another certificate for DEU-CUS.
    let dir = t.cert_dir();
    let ca = tracenet_certs::Ca::from_pem(
        &std::fs::read_to_string(dir.join("ca.pem")).unwrap(),
        &std::fs::read_to_string(dir.join("ca.key")).unwrap(),
    )
    .unwrap();
    let deu = NodeId::parse("DEU-CUS").unwrap();
    let minted = ca
        .issue(
            &tracenet_certs::PeerIdentity::Node(deu),
            tracenet_certs::Validity::Current,
        )
        .unwrap();
    for target in [0, 3] {
        let node = t.node(target);
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(
                std::fs::read(dir.join("ca.pem")).unwrap(),
            ))
            .domain_name(node.id.dns_name())
            .identity(Identity::from_pem(&minted.cert_pem, &minted.key_pem));
        // Refused at the handshake: connecting fails, or the first call does.
        let Ok(ch) = Endpoint::from_shared(format!("https://{}", node.peer_addr))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
        else {
            continue;
        };
        let ping = tracenet_proto::v1::peer_exchange_client::PeerExchangeClient::new(ch.clone())
            .ping(pb::PingRequest {})
            .await
            .unwrap_err();
        assert_handshake_refused(&ping);
        // Not even a write DEU-CUS signed itself gets through with it.
        let mut c = pb::DirectoryCommand {
            at: 1,
            seq: u64::MAX / 2,
            op: Some(contacts("minted@example.test")),
            ..Default::default()
        };
        t.signing_key(4).unwrap().sign_directory_command(&mut c);
        let propose = DirectoryRaftClient::new(ch)
            .propose(pb::ProposeRequest { command: Some(c) })
            .await
            .unwrap_err();
        assert_handshake_refused(&propose);
    }
    // DEU-CUS's listed certificate still works.
    t.peer_client(3, ClientCert::Of(4, "node"))
        .await
        .unwrap()
        .ping(pb::PingRequest {})
        .await
        .unwrap();
    t.shutdown().await.unwrap();
}

/// The call failed as a transport error (the server refused the certificate in the TLS
/// handshake), not with an application status.
fn assert_handshake_refused(status: &tonic::Status) {
    assert!(
        matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
        ),
        "the handshake completed and the application refused: {status:?}"
    );
}

/// How many records DEU-CUS answers FRA-POL's lookup of `serial` with.
async fn deu_hits(t: &TestFederation, serial: &str) -> usize {
    let found = t
        .admin(3)
        .await
        .unwrap()
        .federated_lookup(lookup_of(serial))
        .await
        .unwrap()
        .into_inner();
    found
        .answers
        .iter()
        .filter(|a| a.node_id == "DEU-CUS")
        .map(|a| a.hits.len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_published_policy_does_not_parse_discloses_nothing() {
    let mut t = founded(1000).await;
    let mut deu = t.admin(4).await.unwrap();
    let created = deu
        .create_record(pb::CreateRecordRequest {
            record: Some(sample(7)),
        })
        .await
        .unwrap()
        .into_inner()
        .record
        .unwrap();
    let serial = created.firearms[0].serial_number.clone();
    assert_eq!(
        deu_hits(&t, &serial).await,
        1,
        "DEU-CUS's published policy shares it"
    );
    // DEU-CUS's replica ends up holding a latest policy it cannot parse (as after a version skew
    // between replicas): written into its stored state while it is stopped.
    t.stop(4).await.unwrap();
    {
        let db =
            tracenet_node::store::open::open_db(&t.node(4).config.data_dir.join("records"), None)
                .unwrap();
        let tree = db.open_tree("raft_state_machine").unwrap();
        let mut snap: pb::DirectorySnapshot =
            tracenet_proto::stored::decode(&tree.get(b"applied").unwrap().unwrap()).unwrap();
        let state = snap.state.as_mut().unwrap();
        let policies = &mut state.entries.get_mut("DEU-CUS").unwrap().policies;
        let mut bad = policies.last().unwrap().clone();
        let p = bad.policy.as_mut().unwrap();
        p.version += 1;
        p.rules[0].purposes.clear();
        policies.push(bad);
        tree.insert(b"applied", tracenet_proto::stored::encode(&snap))
            .unwrap();
        db.flush().unwrap();
    }
    t.restart(4).await.unwrap();
    let info = t
        .admin(4)
        .await
        .unwrap()
        .get_node_info(pb::GetNodeInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        info.policy_problem.contains("discloses nothing"),
        "says why: {info:?}"
    );
    assert_eq!(info.policy_version, 0);
    assert_eq!(
        deu_hits(&t, &serial).await,
        0,
        "fails closed, not to the configuration"
    );
    t.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_police_node_claiming_the_customs_agency_kind_is_refused() {
    let t = founded(1000).await;
    let v = view(&t, 4).await;
    assert_eq!(
        v.state.unwrap().members["FRA-POL"].agency_kind,
        pb::AgencyKind::Police as i32,
        "the secretariat admitted FRA-POL as police"
    );
    let key = t.signing_key(3).unwrap();
    let lookup = |kind: pb::AgencyKind, id: &str| {
        let mut req = pb::LookupRequest {
            context: None,
            serial_number: "SYN-0001".into(),
            manufacturer: String::new(),
            ..Default::default()
        };
        req.sign_with(
            &key,
            pb::RequestContext {
                request_id: id.into(),
                requester_node: "FRA-POL".into(),
                agency_kind: kind as i32,
                purpose: pb::Purpose::Tracing as i32,
                legal_basis: "synthetic".into(),
                case_reference: String::new(),
                issued_at: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64,
                body_sha256: Vec::new(),
            },
        );
        req
    };
    let mut c = t.peer_client(4, ClientCert::Of(3, "node")).await.unwrap();
    let refused = c
        .lookup(lookup(pb::AgencyKind::Customs, "claims-customs"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("AGENCY_KIND_POLICE"),
        "{}",
        refused.message()
    );
    // As what it is, it is answered.
    c.lookup(lookup(pb::AgencyKind::Police, "claims-police"))
        .await
        .unwrap();
    t.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_voter_leaves_the_voter_set() {
    let t = founded(1000).await;
    t.fed
        .propose_applied(
            0,
            Op::Revoke(pb::StatusChange {
                node_id: "AUT-HUB".into(),
                reason: "synthetic test revocation of a voter".into(),
            }),
        )
        .await
        .unwrap();
    t.fed
        .wait_for_directory(0, "AUT-HUB out of the voters", WAIT, |v| {
            !v.voters.is_empty() && !v.voters.iter().any(|n| n == "AUT-HUB")
        })
        .await
        .unwrap();
    // The remaining voters still commit writes.
    t.fed
        .propose_applied(3, contacts("fra.after.voter@example.test"))
        .await
        .unwrap();
    t.shutdown().await.unwrap();
}

/// A retraction queued while its recipient is suspended waits in the outbox (never given up,
/// the reason kept on the item) and reaches the recipient once it is reinstated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retraction_waits_out_a_suspension_and_is_delivered_after_reinstatement() {
    let t = founded(1000).await;
    let mut deu = t.admin(4).await.unwrap();
    let rec = deu
        .create_record(pb::CreateRecordRequest {
            record: Some(sample(7)),
        })
        .await
        .unwrap()
        .into_inner()
        .record
        .unwrap();
    let serial = rec.firearms[0].serial_number.clone();
    let answer = t
        .admin(3)
        .await
        .unwrap()
        .federated_lookup(lookup_of(&serial))
        .await
        .unwrap()
        .into_inner();
    assert!(
        answer
            .answers
            .iter()
            .any(|a| a.node_id == "DEU-CUS" && a.hit),
        "{answer:?}"
    );
    let fra_holds = || async {
        t.admin(3)
            .await
            .ok()?
            .list_received(pb::ListReceivedRequest::default())
            .await
            .ok()
            .map(|r| {
                r.into_inner().records.iter().any(|c| {
                    c.reference
                        .as_ref()
                        .is_some_and(|r| r.owner_node == "DEU-CUS")
                })
            })
    };
    assert_eq!(fra_holds().await, Some(true));

    let suspend = pb::StatusChange {
        node_id: "FRA-POL".into(),
        reason: "synthetic test suspension".into(),
    };
    t.fed
        .propose_applied(0, Op::Suspend(suspend.clone()))
        .await
        .unwrap();
    t.wait_for_member_status(4, "FRA-POL", pb::MemberStatus::Suspended)
        .await
        .unwrap();
    deu.retract_record(pb::RetractRecordRequest { id: rec.id.clone() })
        .await
        .unwrap();
    // Several attempts fail while FRA-POL is suspended; the item stays pending with the reason.
    let waiting = wait_for("retraction retried while suspended", || async {
        let items = t
            .admin(4)
            .await
            .ok()?
            .list_outbox(pb::ListOutboxRequest::default())
            .await
            .ok()?
            .into_inner()
            .items;
        items
            .into_iter()
            .find(|i| i.id.starts_with("retract:") && i.attempts >= 3)
    })
    .await
    .unwrap();
    assert!(!waiting.dead, "{waiting:?}");
    assert!(waiting.last_error.contains("suspended"), "{waiting:?}");
    assert_eq!(fra_holds().await, Some(true));

    t.fed
        .propose_applied(0, Op::Reinstate(suspend))
        .await
        .unwrap();
    wait_for("the retraction delivered after reinstatement", || async {
        (fra_holds().await == Some(false)).then_some(())
    })
    .await
    .unwrap();
    wait_for("DEU-CUS's outbox drained", || async {
        let items = t
            .admin(4)
            .await
            .ok()?
            .list_outbox(pb::ListOutboxRequest::default())
            .await
            .ok()?
            .into_inner()
            .items;
        items.is_empty().then_some(())
    })
    .await
    .unwrap();
    t.shutdown().await.unwrap();
}

/// Finding L2: the audit checkpoint a node publishes in the directory anchors its log, so a tail
/// dropped from the log of a stopped node is reported by `audit verify` against the copy the
/// node's own replica holds (and every other replica).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_audit_tail_is_caught_against_the_published_checkpoint() {
    use tracenet_node::cli::{AuditCommand, Command, dispatch};
    let mut t = founded(1000).await;
    let created = t
        .admin(4)
        .await
        .unwrap()
        .create_record(pb::CreateRecordRequest {
            record: Some(sample(3)),
        })
        .await
        .unwrap()
        .into_inner()
        .record
        .unwrap();
    let serial = created.firearms[0].serial_number.clone();
    // FRA-POL's lookups are audited on DEU-CUS (request received, disclosure).
    for _ in 0..3 {
        t.admin(3)
            .await
            .unwrap()
            .federated_lookup(lookup_of(&serial))
            .await
            .unwrap();
    }
    // Stopping signs the final checkpoint and publishes it before Raft stops.
    t.stop(4).await.unwrap();
    let published = wait_for("DEU-CUS's audit checkpoint on the secretariat", || async {
        view(&t, 0)
            .await
            .state?
            .entries
            .get("DEU-CUS")?
            .audit_checkpoint
            .clone()
    })
    .await
    .unwrap();
    assert!(published.seq >= 2, "{published:?}");
    // The node's own replica receives it on its next start (its listener was closed when it was
    // published); stopped again, it holds the value `audit verify` reads.
    t.restart(4).await.unwrap();
    wait_for("DEU-CUS's own replica holding its checkpoint", || async {
        let own = view(&t, 4)
            .await
            .state?
            .entries
            .get("DEU-CUS")?
            .audit_checkpoint
            .clone()?;
        (own == published).then_some(())
    })
    .await
    .unwrap();
    t.stop(4).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("deu.toml");
    t.node(4).write_config(&config).unwrap();
    let verify = |given: Option<&pb::AuditAnchor>| {
        dispatch(Command::Audit {
            command: AuditCommand::Verify {
                config: config.clone(),
                published: given.map(|a| tracenet_node::audit::Published {
                    seq: a.seq,
                    chain_hash: a.chain_hash.clone(),
                }),
            },
        })
    };
    verify(None).await.unwrap();

    // Drop the last two entries and every checkpoint above what is left: the log alone would
    // still verify, the published checkpoint no longer matches.
    {
        let db =
            tracenet_node::store::open::open_db(&t.node(4).config.data_dir.join("records"), None)
                .unwrap();
        let entries = db.open_tree("audit").unwrap();
        let checkpoints = db.open_tree("audit_checkpoints").unwrap();
        let keep = published.seq - 2;
        for s in keep + 1..=published.seq {
            entries.remove(s.to_be_bytes()).unwrap();
            checkpoints.remove(s.to_be_bytes()).unwrap();
        }
        db.flush().unwrap();
    }
    // Against the node's own replica, and against the value read from another member.
    for given in [None, Some(&published)] {
        let err = verify(given).await.unwrap_err();
        assert!(
            err.contains("does NOT verify") && err.contains("truncated"),
            "{err}"
        );
    }
}

/// A command sent twice (an outcome-unknown retry) is recognised as the same command: the second
/// answer says it was already applied, and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_command_is_answered_as_already_applied() {
    let t = founded(1000).await;
    let leader = leader_index(&t, 0).await;
    let cmd = forged_by(&t, 3, "FRA-POL", contacts("resent@example.test"));
    let send = || async {
        let ch = t
            .channel(leader, false, ClientCert::Of(3, "node"))
            .await
            .unwrap();
        DirectoryRaftClient::new(ch)
            .propose(pb::ProposeRequest {
                command: Some(cmd.clone()),
            })
            .await
            .unwrap()
            .into_inner()
    };
    let first = send().await;
    assert!(first.applied && !first.already_applied, "{first:?}");
    let again = send().await;
    assert!(again.applied && again.already_applied, "{again:?}");
    assert!(again.refusal.is_empty(), "{again:?}");
    t.fed
        .wait_for_directory(4, "the contacts", WAIT, |v| {
            email_of(v, "FRA-POL").as_deref() == Some("resent@example.test")
        })
        .await
        .unwrap();
    t.shutdown().await.unwrap();
}

/// A replica whose applied state differs from the leader's at the same index (here: its stored
/// state edited while it was stopped) raises the divergence alarm: the node reports unhealthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diverged_replica_is_detected_and_reports_unhealthy() {
    use tracenet_proto::stored;
    let mut t = founded(1000).await;
    t.stop(4).await.unwrap();
    {
        let db =
            tracenet_node::store::open::open_db(&t.node(4).config.data_dir.join("records"), None)
                .unwrap();
        let tree = db.open_tree("raft_state_machine").unwrap();
        let mut applied: pb::DirectorySnapshot =
            stored::decode(&tree.get(b"applied").unwrap().unwrap()).unwrap();
        let state = applied.state.as_mut().unwrap();
        state.members.get_mut("FRA-POL").unwrap().organisation = "edited on disk".into();
        tree.insert(b"applied", stored::encode(&applied)).unwrap();
        db.flush().unwrap();
    }
    t.restart(4).await.unwrap();
    let health = |i: usize| {
        let t = &t;
        async move {
            let ch = t.channel(i, false, ClientCert::Of(i, "node")).await.ok()?;
            let r = tonic_health::pb::health_client::HealthClient::new(ch)
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .ok()?;
            Some(r.into_inner().status)
        }
    };
    // Enough new entries for every replica to record a digest at the same index.
    for n in 0..(tracenet_node::directory::digest::EVERY + 1) {
        t.fed
            .propose_applied(3, contacts(&format!("n{n}@example.test")))
            .await
            .unwrap();
    }
    let not_serving = tonic_health::pb::health_check_response::ServingStatus::NotServing as i32;
    wait_for("DEU-CUS to report its diverged replica", || async {
        (health(4).await? == not_serving).then_some(())
    })
    .await
    .unwrap();
    // The replicas that agree with the leader stay healthy.
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    assert_eq!(health(3).await, Some(serving));
    t.shutdown().await.unwrap();
}

/// Finding L3: the directory keeps a bounded policy history per member (10 versions by default)
/// and `GetDirectory` answers page by page, the pages adding up to the whole directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_history_is_bounded_and_the_directory_is_read_page_by_page() {
    let t = founded(1000).await;
    for version in 100..112u64 {
        let mut p = permissive_fra_policy();
        p.version = version;
        t.fed
            .propose_applied(3, Op::PublishPolicy(p))
            .await
            .unwrap();
    }
    let whole = t
        .fed
        .wait_for_directory(0, "FRA-POL's last policy", WAIT, |v| {
            v.state.as_ref().is_some_and(|s| {
                s.entries["FRA-POL"]
                    .policies
                    .last()
                    .and_then(|p| p.policy.as_ref())
                    .is_some_and(|p| p.version == 111)
            })
        })
        .await
        .unwrap();
    let state = whole.state.unwrap();
    let versions: Vec<u64> = state.entries["FRA-POL"]
        .policies
        .iter()
        .map(|p| p.policy.as_ref().unwrap().version)
        .collect();
    assert_eq!(versions, (102..112).collect::<Vec<_>>());
    assert_eq!(state.proofs["FRA-POL"].policies.len(), 10);

    // Two members a page: three pages, every member once, revocations in each.
    let mut admin = t.admin(0).await.unwrap();
    let (mut after, mut seen) = (String::new(), Vec::new());
    loop {
        let page = admin
            .get_directory(pb::GetDirectoryRequest {
                linearizable: false,
                page_after: after.clone(),
                page_size: 2,
            })
            .await
            .unwrap()
            .into_inner();
        let s = page.state.unwrap();
        assert!(s.members.len() <= 2, "{:?}", s.members.keys());
        let mut ids: Vec<String> = s.members.keys().cloned().collect();
        ids.sort();
        seen.extend(ids);
        if page.next_page_after.is_empty() {
            break;
        }
        after = page.next_page_after;
    }
    let mut all: Vec<String> = state.members.keys().cloned().collect();
    all.sort();
    assert_eq!(seen, all);
    t.shutdown().await.unwrap();
}

/// DEU-CUS's policy: trace results for FRA, only to agencies of `kind`.
fn deu_trace_results_for(kind: pb::AgencyKind, version: u64) -> pb::SharingPolicy {
    pb::SharingPolicy {
        owner_country: "DEU".into(),
        version,
        legal_basis: "Synthetic test basis".into(),
        rules: vec![pb::PolicyRule {
            id: format!("fra-{}", kind.as_str_name().to_ascii_lowercase()),
            audience: Some(pb::Audience {
                countries: vec!["FRA".into()],
                agency_kinds: vec![kind as i32],
                ..Default::default()
            }),
            purposes: vec![pb::Purpose::Tracing as i32],
            data_classes: vec![pb::DataClass::TraceResult as i32],
            ..Default::default()
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_result_rule_for_one_agency_kind_applies_to_the_kind_the_directory_lists() {
    let t = founded(1000).await;
    // DEU-CUS shares trace results with FRA's customs only; FRA-POL is listed as police.
    t.fed
        .propose_applied(
            4,
            Op::PublishPolicy(deu_trace_results_for(pb::AgencyKind::Customs, 2)),
        )
        .await
        .unwrap();
    let sent = t
        .admin(3)
        .await
        .unwrap()
        .send_trace_request(pb::SendTraceRequestRequest {
            firearm: Some(pb::FirearmIdentification {
                serial_number: "SYN-77-4321".into(),
                ..Default::default()
            }),
            requested_country: "DEU".into(),
            reason: "Synthetic seizure".into(),
            legal_basis: "Synthetic law".into(),
            urgency: pb::Urgency::Routine as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let id = sent.request.unwrap().id;
    wait_for("DEU-CUS receives the request", || async {
        let mut c = t.admin(4).await.ok()?;
        let traces = c
            .list_trace_requests(pb::ListTraceRequestsRequest {
                direction: "incoming".into(),
                ..Default::default()
            })
            .await
            .ok()?
            .into_inner()
            .traces;
        traces
            .iter()
            .any(|tr| tr.request.as_ref().is_some_and(|r| r.id == id))
            .then_some(())
    })
    .await
    .unwrap();
    let answer = pb::AnswerTraceRequestRequest {
        request_id: id.clone(),
        outcome: pb::TraceStatus::Answered as i32,
        chain_of_custody: vec![pb::CustodyLink {
            role: "manufacturer".into(),
            country: "DEU".into(),
            ..Default::default()
        }],
        remarks: "Synthetic answer".into(),
        ..Default::default()
    };
    let mut deu = t.admin(4).await.unwrap();
    let refused = deu.answer_trace_request(answer.clone()).await.unwrap_err();
    assert!(
        refused.message().contains("FRA"),
        "a police requester under a customs-only rule: {refused:?}"
    );
    // The same rule for police applies to FRA-POL as the directory lists it.
    t.fed
        .propose_applied(
            4,
            Op::PublishPolicy(deu_trace_results_for(pb::AgencyKind::Police, 3)),
        )
        .await
        .unwrap();
    let answered = wait_for("DEU-CUS applies its police rule", || async {
        let mut c = t.admin(4).await.ok()?;
        c.answer_trace_request(answer.clone()).await.ok()
    })
    .await
    .unwrap()
    .into_inner();
    assert_eq!(answered.status, pb::TraceStatus::Answered as i32);
    t.shutdown().await.unwrap();
}
