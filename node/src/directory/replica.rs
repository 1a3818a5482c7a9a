//! A node's directory replica at run time: the openraft instance with our storage and transport,
//! writes (proposed here, forwarded to the leader when this node is not it), reads (local, or
//! linearizable through the leader's read index), the roster kept in step with every applied
//! change, and, on the leader, Raft membership kept in step with the directory's members.
//!
//! Roles: the configured voters form the Raft group; every admitted member becomes a learner
//! with a full replica; a revoked member is removed. Writes need a quorum of voters; reads never
//! do, so exchange keeps working from local replicas when quorum is lost.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState, SnapshotPolicy};
use tokio_util::sync::CancellationToken;
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::directory_raft_client::DirectoryRaftClient;

use super::membership;
use super::network::Network;
use super::raft_store::{self, Published, StateMachineStore};
use super::state::{self, Genesis};
use super::types::{Raft, RaftId, RaftPeer, raft_id};
use crate::client::PeerClients;
use crate::clock::Clock;
use crate::config::DirectoryConfig;
use crate::envelope::SigningKey;
use crate::ids::NodeId;
use crate::roster::Roster;

/// Why a directory operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// This node runs without a directory. Not retryable: configure `[directory]`.
    #[error("this node has no directory configured")]
    Disabled,
    /// No leader is known, or it could not be reached. Retryable: an election or a reconnect
    /// usually fixes it within seconds.
    #[error("no directory leader reachable: {0}; retry shortly")]
    NoLeader(String),
    /// The write was not committed in time: the voters have no quorum. Retryable once quorum
    /// returns; the command may still be applied then, so check the directory before resending.
    #[error(
        "directory write not committed within {0} ms (no quorum of voters?); it may still be applied when quorum returns"
    )]
    NotCommitted(u64),
    /// A linearizable read could not be confirmed in time. Retryable; a local read still works.
    #[error("linearizable read not confirmed within {0} ms (no quorum of voters?)")]
    ReadTimeout(u64),
    /// A linearizable read needs a leader confirmed by a quorum of voters, and there is none now.
    /// Retryable once quorum returns; a local (non-linearizable) read works meanwhile.
    #[error(
        "no linearizable read now: no leader confirmed by a quorum of directory voters; retry later or read this replica without linearizable"
    )]
    NoQuorumForRead,
    /// This node is revoked in the directory: nothing it writes is accepted. Not retryable.
    #[error("{0} is revoked in the directory; its writes are refused")]
    Revoked(String),
    /// Raft or its storage failed on this node. Not retryable without operator attention.
    #[error("directory replica failed: {0}")]
    Fatal(String),
    /// A forwarded proposal was refused before it was replicated: the caller may not propose,
    /// or the command is not its own, not signed by it, or a replay. Not retryable as it is.
    #[error("directory proposal refused: {0}")]
    Refused(String),
}

/// What a proposal forwarded to the leader came to when the call failed, told honestly: once the
/// command may have reached the leader (the deadline passed, which tonic reports as
/// DEADLINE_EXCEEDED or, when the client gives up first, CANCELLED; or the leader itself said
/// it could not commit in time), it may still be applied when quorum returns, so the caller is
/// told that and not "no leader, retry".
fn forward_failure(s: &tonic::Status, write_timeout_ms: u64) -> DirectoryError {
    let leader_says = s.message();
    match s.code() {
        tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
            DirectoryError::NotCommitted(write_timeout_ms)
        }
        tonic::Code::Unavailable if leader_says.starts_with("directory write not committed") => {
            DirectoryError::NotCommitted(write_timeout_ms)
        }
        // Refused by the leader (or its gate) before replication: not a leader problem, not
        // retryable.
        tonic::Code::PermissionDenied
        | tonic::Code::Unauthenticated
        | tonic::Code::FailedPrecondition => DirectoryError::Refused(
            leader_says
                .trim_start_matches("directory proposal refused: ")
                .to_owned(),
        ),
        // The leader's own "no leader" answer, without its prefix repeated.
        _ => DirectoryError::NoLeader(
            leader_says
                .trim_start_matches("no directory leader reachable: ")
                .trim_end_matches("; retry shortly")
                .to_owned(),
        ),
    }
}

/// The leader a node that is not the leader named in its answer to a forwarded proposal
/// (`"... is not the leader (leader: X)"`), if it knew one.
fn named_leader(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once("is not the leader (leader: ")?;
    let name = rest.split(')').next()?;
    (!name.is_empty() && name != "unknown").then_some(name)
}

/// What the local API reports about the replica.
#[derive(Debug, Clone)]
pub struct ReplicaStatus {
    /// The leader this replica knows of.
    pub leader: Option<String>,
    /// The current term.
    pub term: u64,
    /// Voters and learners by node id.
    pub voters: Vec<String>,
    /// Learners by node id.
    pub learners: Vec<String>,
    /// Log index covered by the latest snapshot (0 when none).
    pub snapshot_index: u64,
    /// Log index up to which the log was purged (0 when none).
    pub purged_index: u64,
}

/// What a replica is wired to on its node.
#[derive(Debug, Clone)]
pub struct Wiring {
    /// The node's peer connections (Raft shares them with the exchange).
    pub clients: Arc<PeerClients>,
    /// The roster to keep in step with the replica.
    pub roster: Arc<Roster>,
    /// The node's clock (command times).
    pub clock: Arc<dyn Clock>,
    /// The node's signing key: every command it writes is signed with it.
    pub signing: Arc<SigningKey>,
    /// Stops the replica's background tasks.
    pub shutdown: CancellationToken,
}

/// A running directory replica.
pub struct Directory {
    me: NodeId,
    advertise: String,
    raft: Raft,
    sm: StateMachineStore,
    cfg: DirectoryConfig,
    clients: Arc<PeerClients>,
    clock: Arc<dyn Clock>,
    signing: Arc<SigningKey>,
    genesis: Arc<Genesis>,
    last_seq: std::sync::Mutex<u64>,
    /// Held from numbering a command of this node's to its outcome, so this node's commands
    /// reach the log in the order of their seq (a later one applied first would make the
    /// earlier one stale).
    writing: tokio::sync::Mutex<()>,
    /// Whether this replica's state digest differs from the leader's at the same index.
    diverged: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("me", &self.me)
            .field("advertise", &self.advertise)
            .finish_non_exhaustive()
    }
}

fn fatal(e: impl std::fmt::Display) -> DirectoryError {
    DirectoryError::Fatal(e.to_string())
}

impl Directory {
    /// Opens the replica's storage in `db`, starts Raft, initialises the group when configured
    /// to and not yet done, and keeps `roster` following the replica until `shutdown`.
    pub async fn start(
        me: NodeId,
        cfg: DirectoryConfig,
        advertise: String,
        db: &sled::Db,
        wiring: Wiring,
    ) -> Result<Arc<Directory>, DirectoryError> {
        let Wiring {
            clients,
            roster,
            clock,
            signing,
            shutdown,
        } = wiring;
        let genesis = Arc::new(cfg.genesis().map_err(fatal)?);
        let (log, sm) = raft_store::open(db, genesis.clone()).map_err(fatal)?;
        let config = openraft::Config {
            cluster_name: "tracenet-directory".into(),
            heartbeat_interval: cfg.heartbeat_ms,
            election_timeout_min: cfg.election_timeout_ms,
            election_timeout_max: cfg.election_timeout_ms * 2,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_every),
            max_in_snapshot_log_to_keep: cfg.snapshot_every,
            install_snapshot_timeout: 10_000,
            ..Default::default()
        }
        .validate()
        .map_err(fatal)?;
        let raft = Raft::new(
            raft_id(&me),
            Arc::new(config),
            Network::new(clients.clone()),
            log,
            sm.clone(),
        )
        .await
        .map_err(fatal)?;
        roster.apply_directory(&sm.current().state);

        if cfg.initialise && !raft.is_initialized().await.map_err(fatal)? {
            let mut members = BTreeMap::new();
            for v in &cfg.voters {
                let endpoint = if v.node_id == me {
                    advertise.clone()
                } else {
                    v.endpoint.clone()
                };
                members.insert(raft_id(&v.node_id), RaftPeer::new(&v.node_id, &endpoint));
            }
            match raft.initialize(members).await {
                Ok(()) => tracing::info!(node = %me, "directory group initialised"),
                // Already initialised (by an earlier start): nothing to do.
                Err(RaftError::APIError(e)) => {
                    tracing::info!(node = %me, reason = %e, "directory group already initialised")
                }
                Err(RaftError::Fatal(e)) => return Err(fatal(e)),
            }
        }

        let dir = Arc::new(Directory {
            me,
            advertise,
            raft,
            sm,
            cfg,
            clients,
            clock,
            signing,
            genesis,
            last_seq: std::sync::Mutex::new(0),
            writing: tokio::sync::Mutex::new(()),
            diverged: tokio::sync::watch::channel(false).0,
        });
        tokio::spawn(follow_roster(dir.clone(), roster, shutdown.clone()));
        tokio::spawn(check_divergence(dir.clone(), shutdown.clone()));
        tokio::spawn(reconcile_membership(dir.clone(), shutdown));
        Ok(dir)
    }

    /// The Raft handle (for the transport service and tests).
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// This node's id.
    pub fn node_id(&self) -> &NodeId {
        &self.me
    }

    /// Where other members reach this node's peer API.
    pub fn advertise(&self) -> &str {
        &self.advertise
    }

    /// The pinned founding secretariat.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The configuration.
    pub fn config(&self) -> &DirectoryConfig {
        &self.cfg
    }

    /// The replica's state as last applied (never waits, works without quorum).
    pub fn local(&self) -> Published {
        self.sm.current()
    }

    /// Follows every applied change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Published> {
        self.sm.subscribe()
    }

    /// Leader, term, voters and learners as this replica knows them.
    pub fn status(&self) -> ReplicaStatus {
        let m = self.raft.metrics().borrow().clone();
        let name = |id: RaftId| {
            m.membership_config
                .membership()
                .get_node(&id)
                .map(|n| n.node_id.clone())
                .unwrap_or_else(|| format!("raft:{id}"))
        };
        ReplicaStatus {
            leader: m.current_leader.map(name),
            term: m.current_term,
            voters: m
                .membership_config
                .membership()
                .voter_ids()
                .map(name)
                .collect(),
            learners: m
                .membership_config
                .membership()
                .learner_ids()
                .map(name)
                .collect(),
            snapshot_index: m.snapshot.map_or(0, |l| l.index),
            purged_index: m.purged.map_or(0, |l| l.index),
        }
    }

    /// Whether `node` may send AppendEntries, InstallSnapshot and Vote: only configured voters
    /// (never learners; the caller must also name itself as leader or candidate, which the
    /// transport checks).
    pub fn may_lead(&self, node: &NodeId) -> bool {
        self.cfg.is_voter(node)
    }

    /// Whether `node` may propose a command: a configured voter or an admitted member (in any
    /// status; the state machine refuses what its status does not allow).
    pub fn may_propose(&self, node: &NodeId) -> bool {
        self.cfg.is_voter(node) || self.sm.current().state.members.contains_key(node.as_str())
    }

    /// Whether `node` may ask for the read index: it is in the Raft membership or among the
    /// configured voters.
    pub fn may_speak_raft(&self, node: &NodeId) -> bool {
        if self.cfg.is_voter(node) {
            return true;
        }
        let id = raft_id(node);
        let m = self.raft.metrics().borrow().membership_config.clone();
        m.membership()
            .get_node(&id)
            .is_some_and(|n| n.node_id == node.as_str())
    }

    fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.write_timeout_ms)
    }

    /// The next sequence number for a command this node writes: above anything it used since it
    /// started, above what its replica last applied from it, and at least its clock in
    /// microseconds (so a restart does not reuse numbers).
    fn next_seq(&self) -> u64 {
        let applied = self
            .sm
            .current()
            .state
            .proofs
            .get(self.me.as_str())
            .map_or(0, |p| p.last_seq);
        let clock = u64::try_from(self.clock.now_secs())
            .unwrap_or(0)
            .saturating_mul(1_000_000);
        let mut last = self
            .last_seq
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let next = clock
            .max(applied.saturating_add(1))
            .max(last.saturating_add(1));
        *last = next;
        next
    }

    /// Proposes a command written by this node, signed with its key; forwarded, signature and
    /// all, to the leader if this node is not it.
    pub async fn propose(
        &self,
        mut cmd: pb::DirectoryCommand,
    ) -> Result<pb::DirectoryResponse, DirectoryError> {
        // Known locally: no leader would accept it, so say so instead of "retry".
        let revoked = self
            .sm
            .current()
            .state
            .members
            .get(self.me.as_str())
            .is_some_and(|m| m.status == pb::MemberStatus::Revoked as i32);
        if revoked {
            return Err(DirectoryError::Revoked(self.me.to_string()));
        }
        let _in_order = self.writing.lock().await;
        cmd.at = self.clock.now_secs();
        cmd.seq = self.next_seq();
        self.signing.sign_directory_command(&mut cmd);
        match self.write_here(cmd.clone()).await? {
            Ok(r) => Ok(r),
            Err(leader) => self.forward(leader, cmd).await,
        }
    }

    /// Publishes this node's latest audit checkpoint unless the directory already holds it (or a
    /// later one). With `wait_local`, then waits until the local replica shows it, so the node's
    /// own data directory holds the value `audit verify` compares the log with (not at shutdown:
    /// the peer listener is closed by then, so the leader cannot reach this replica; it catches up
    /// on the next start). Returns whether it was published.
    pub async fn publish_audit_checkpoint(
        &self,
        seq: u64,
        chain_hash: Vec<u8>,
        wait_local: bool,
    ) -> Result<bool, DirectoryError> {
        let published = |p: &Published| {
            p.state
                .entries
                .get(self.me.as_str())
                .and_then(|e| e.audit_checkpoint.as_ref())
                .map_or(0, |a| a.seq)
        };
        let current = self.sm.current();
        // Not an active member (not admitted yet, suspended or revoked): the command would only
        // be refused, so it is not sent.
        let active = current
            .state
            .members
            .get(self.me.as_str())
            .is_some_and(|m| m.status == pb::MemberStatus::Active as i32);
        if !active || published(&current) >= seq {
            return Ok(false);
        }
        let cmd = pb::DirectoryCommand {
            op: Some(pb::directory_command::Op::PublishAuditCheckpoint(
                pb::AuditAnchor { seq, chain_hash },
            )),
            ..Default::default()
        };
        let r = self.propose(cmd).await?;
        if !r.applied {
            return Err(DirectoryError::Refused(r.refusal));
        }
        if !wait_local {
            return Ok(true);
        }
        let mut rx = self.sm.subscribe();
        let seen = rx.wait_for(|p| published(p) >= seq);
        match tokio::time::timeout(self.write_timeout(), seen).await {
            Ok(Ok(_)) => Ok(true),
            Ok(Err(_)) => Err(fatal("state machine stopped")),
            Err(_) => Err(DirectoryError::ReadTimeout(self.cfg.write_timeout_ms)),
        }
    }

    /// Applies a command forwarded by `caller` (identity from its certificate) on this node,
    /// which must be the leader; it is not forwarded again. The caller must be a configured voter
    /// or an admitted member, the command must be its own and signed by it (checked against this
    /// replica's state); otherwise it is refused here and never replicated.
    pub async fn propose_forwarded(
        &self,
        caller: &NodeId,
        cmd: pb::DirectoryCommand,
    ) -> Result<pb::DirectoryResponse, DirectoryError> {
        if !self.may_propose(caller) {
            return Err(DirectoryError::Refused(format!(
                "{caller} is neither an admitted member nor a configured voter"
            )));
        }
        if cmd.writer != caller.as_str() {
            return Err(DirectoryError::Refused(format!(
                "{caller} may only forward its own commands, not {}'s",
                cmd.writer.chars().take(64).collect::<String>()
            )));
        }
        match state::authenticate(&self.sm.current().state, &self.genesis, &cmd) {
            Ok(()) => {}
            // A resend of a command already in effect: answered, not replicated again.
            Err(state::Refusal::AlreadyApplied { .. }) => {
                return Ok(pb::DirectoryResponse {
                    applied: true,
                    already_applied: true,
                    ..Default::default()
                });
            }
            Err(e) => return Err(DirectoryError::Refused(e.to_string())),
        }
        match self.write_here(cmd).await? {
            Ok(r) => Ok(r),
            Err(leader) => Err(DirectoryError::NoLeader(format!(
                "{} is not the leader (leader: {})",
                self.me,
                leader.map_or("unknown".into(), |l| l.node_id)
            ))),
        }
    }

    /// Writes through the local Raft; `Err(leader)` when this node is not the leader.
    async fn write_here(
        &self,
        cmd: pb::DirectoryCommand,
    ) -> Result<Result<pb::DirectoryResponse, Option<RaftPeer>>, DirectoryError> {
        match tokio::time::timeout(self.write_timeout(), self.raft.client_write(cmd)).await {
            Err(_) => Err(DirectoryError::NotCommitted(self.cfg.write_timeout_ms)),
            Ok(Ok(resp)) => Ok(Ok(resp.data)),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Ok(Err(f.leader_node))
            }
            Ok(Err(RaftError::APIError(e))) => Err(fatal(e)),
            Ok(Err(RaftError::Fatal(e))) => Err(fatal(e)),
        }
    }

    async fn leader_client(
        &self,
        leader: Option<RaftPeer>,
    ) -> Result<DirectoryRaftClient<tonic::transport::Channel>, DirectoryError> {
        let leader = leader.ok_or_else(|| DirectoryError::NoLeader("no leader elected".into()))?;
        let node =
            NodeId::parse(&leader.node_id).map_err(|e| DirectoryError::NoLeader(e.to_string()))?;
        let ch = self
            .clients
            .channel(&node, &leader.endpoint)
            .map_err(|e| DirectoryError::NoLeader(e.to_string()))?;
        Ok(DirectoryRaftClient::new(ch))
    }

    /// Sends `cmd` to `leader`; when that node is no longer the leader and names another, follows
    /// it once with the same signed command (a resend the state recognises as such).
    async fn forward(
        &self,
        leader: Option<RaftPeer>,
        cmd: pb::DirectoryCommand,
    ) -> Result<pb::DirectoryResponse, DirectoryError> {
        let first = leader.as_ref().map(|l| l.node_id.clone());
        let status = match self.send_proposal(leader, cmd.clone()).await? {
            Ok(r) => return Ok(r),
            Err(s) => s,
        };
        let next = named_leader(status.message())
            .filter(|n| first.as_deref() != Some(*n))
            .and_then(|n| NodeId::parse(n).ok())
            .and_then(|n| {
                let m = self.raft.metrics().borrow().clone();
                m.membership_config
                    .membership()
                    .get_node(&raft_id(&n))
                    .cloned()
            });
        let Some(next) = next else {
            return Err(forward_failure(&status, self.cfg.write_timeout_ms));
        };
        match self.send_proposal(Some(next), cmd).await? {
            Ok(r) => Ok(r),
            Err(s) => Err(forward_failure(&s, self.cfg.write_timeout_ms)),
        }
    }

    async fn send_proposal(
        &self,
        leader: Option<RaftPeer>,
        cmd: pb::DirectoryCommand,
    ) -> Result<Result<pb::DirectoryResponse, tonic::Status>, DirectoryError> {
        let mut client = self.leader_client(leader).await?;
        let mut req = tonic::Request::new(pb::ProposeRequest { command: Some(cmd) });
        req.set_timeout(self.write_timeout());
        Ok(client.propose(req).await.map(tonic::Response::into_inner))
    }

    /// The leader's read index: confirms leadership with a quorum and returns the log index a
    /// replica must have applied to serve a linearizable read.
    pub async fn read_index(&self) -> Result<u64, DirectoryError> {
        match tokio::time::timeout(self.write_timeout(), self.raft.ensure_linearizable()).await {
            Ok(Ok(l)) => Ok(l.map_or(0, |l| l.index)),
            // Not confirmed in time, leadership lost or no quorum: said plainly, without
            // openraft's internal ids.
            Err(_) | Ok(Err(RaftError::APIError(_))) => Err(DirectoryError::NoQuorumForRead),
            Ok(Err(RaftError::Fatal(e))) => Err(fatal(e)),
        }
    }

    /// The state as of now: the leader's read index, then this replica once it has caught up.
    pub async fn linearizable(&self) -> Result<Published, DirectoryError> {
        let leader = {
            let m = self.raft.metrics().borrow().clone();
            m.current_leader
                .and_then(|id| m.membership_config.membership().get_node(&id).cloned())
        };
        let index = if leader
            .as_ref()
            .is_some_and(|l| l.node_id == self.me.as_str())
        {
            self.read_index().await?
        } else {
            // No leader known, or the leader cannot confirm itself: no quorum for a read.
            let mut client = self
                .leader_client(leader)
                .await
                .map_err(|_| DirectoryError::NoQuorumForRead)?;
            let mut req = tonic::Request::new(pb::ReadIndexRequest {});
            req.set_timeout(self.write_timeout());
            client
                .read_index(req)
                .await
                .map_err(|_| DirectoryError::NoQuorumForRead)?
                .into_inner()
                .index
        };
        let mut rx = self.sm.subscribe();
        let caught_up = rx.wait_for(|p| p.applied_index >= index);
        match tokio::time::timeout(self.write_timeout(), caught_up).await {
            Ok(Ok(p)) => Ok(p.clone()),
            Ok(Err(_)) => Err(fatal("state machine stopped")),
            Err(_) => Err(DirectoryError::ReadTimeout(self.cfg.write_timeout_ms)),
        }
    }

    /// This replica's state digest at `index`, if recorded and still kept.
    pub fn state_digest(&self, index: u64) -> Option<[u8; 32]> {
        self.sm.digest_at(index)
    }

    /// Follows whether this replica diverged from the leader (true while it does).
    pub fn divergence(&self) -> tokio::sync::watch::Receiver<bool> {
        self.diverged.subscribe()
    }

    /// Compares this replica's newest recorded digest with the leader's at the same index and
    /// raises or clears the divergence alarm. Nothing to do on the leader itself or when either
    /// side holds no digest at that index.
    async fn check_digest(&self) {
        let m = self.raft.metrics().borrow().clone();
        if m.state == ServerState::Leader {
            return;
        }
        let Some((index, ours)) = self.sm.latest_digest() else {
            return;
        };
        let leader = m
            .current_leader
            .and_then(|id| m.membership_config.membership().get_node(&id).cloned());
        let Ok(mut client) = self.leader_client(leader).await else {
            return;
        };
        let mut req = tonic::Request::new(pb::StateDigestRequest { index });
        req.set_timeout(self.write_timeout());
        let Ok(answer) = client
            .state_digest(req)
            .await
            .map(tonic::Response::into_inner)
        else {
            return;
        };
        let leaders = answer.known.then_some(answer.digest.as_slice());
        match super::digest::compare(&ours, leaders) {
            super::digest::Comparison::Diverged => {
                if !*self.diverged.borrow() {
                    tracing::error!(
                        node = %self.me,
                        index,
                        "directory replica DIVERGED from the leader (state digests differ at the same index); the roster no longer follows it and the node reports unhealthy until it re-syncs (restart it with its replica removed to take the leader's snapshot)"
                    );
                }
                self.diverged.send_replace(true);
            }
            super::digest::Comparison::Same => {
                if self.diverged.send_replace(false) {
                    tracing::info!(node = %self.me, index, "directory replica agrees with the leader again");
                }
            }
            super::digest::Comparison::Unknown => {}
        }
    }

    /// Stops Raft.
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "directory Raft did not stop cleanly");
        }
    }

    /// On the leader, when no membership change is in progress: applies the [`membership::plan`]
    /// for the directory's members (learners added first, then departed ones removed).
    async fn reconcile(&self) {
        let m = self.raft.metrics().borrow().clone();
        if m.state != ServerState::Leader {
            return;
        }
        let membership = m.membership_config.membership();
        if membership.get_joint_config().len() > 1 {
            return; // A change is in progress.
        }
        let current = membership::Current {
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
        };
        let plan = membership::plan(self.sm.current().state.members.values(), &current);
        for (rid, peer) in plan.add {
            tracing::info!(learner = %peer, "adding directory learner");
            if let Err(e) = self.raft.add_learner(rid, peer.clone(), false).await {
                tracing::warn!(learner = %peer, error = %e, "could not add learner");
            }
        }
        if !plan.remove_voters.is_empty() {
            tracing::info!(voters = ?plan.remove_voters, "removing revoked voters from the directory group");
            if let Err(e) = self
                .raft
                .change_membership(ChangeMembers::RemoveVoters(plan.remove_voters), false)
                .await
            {
                tracing::warn!(error = %e, "could not remove revoked voters");
            }
            return; // One change at a time.
        }
        if !plan.remove.is_empty() {
            tracing::info!(learners = ?plan.remove, "removing revoked members from the directory group");
            if let Err(e) = self
                .raft
                .change_membership(ChangeMembers::RemoveNodes(plan.remove), false)
                .await
            {
                tracing::warn!(error = %e, "could not remove learners");
            }
        }
    }
}

/// Keeps the roster in step with the replica, except while the replica diverged from the leader:
/// then the roster keeps what it had, and catches up once the replica agrees again.
async fn follow_roster(dir: Arc<Directory>, roster: Arc<Roster>, shutdown: CancellationToken) {
    let mut rx = dir.subscribe();
    let mut diverged = dir.divergence();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = rx.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            changed = diverged.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
        if *diverged.borrow_and_update() {
            continue;
        }
        let state = rx.borrow_and_update().state.clone();
        roster.apply_directory(&state);
    }
}

/// How often a replica compares its state digest with the leader's.
const DIGEST_CHECK_EVERY: Duration = Duration::from_secs(2);

async fn check_divergence(dir: Arc<Directory>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(DIGEST_CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        dir.check_digest().await;
    }
}

async fn reconcile_membership(dir: Arc<Directory>, shutdown: CancellationToken) {
    let mut applied = dir.subscribe();
    let mut metrics = dir.raft.metrics();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = applied.changed() => if r.is_err() { return },
            r = metrics.changed() => if r.is_err() { return },
            _ = tick.tick() => {}
        }
        dir.reconcile().await;
    }
}

#[cfg(test)]
mod forward_tests {
    use super::*;

    #[test]
    fn a_forwarded_write_that_may_still_apply_says_so() {
        for status in [
            tonic::Status::deadline_exceeded("timeout expired"),
            tonic::Status::cancelled("Timeout expired"),
            tonic::Status::unavailable(DirectoryError::NotCommitted(2000).to_string()),
        ] {
            let e = forward_failure(&status, 2000);
            assert!(
                matches!(e, DirectoryError::NotCommitted(2000)),
                "{status:?}: {e:?}"
            );
            assert!(e.to_string().contains("may still be applied"));
        }
    }

    #[test]
    fn a_stale_leader_names_the_leader_to_follow() {
        let stale = tonic::Status::unavailable(
            DirectoryError::NoLeader("BEL-HUB is not the leader (leader: AUT-HUB)".into())
                .to_string(),
        );
        assert_eq!(named_leader(stale.message()), Some("AUT-HUB"));
        assert_eq!(
            named_leader("BEL-HUB is not the leader (leader: unknown)"),
            None
        );
        assert_eq!(named_leader("no leader elected"), None);
    }

    #[test]
    fn a_revoked_writer_and_a_read_without_quorum_are_told_plainly() {
        let revoked = tonic::Status::from(DirectoryError::Revoked("FRA-POL".into()));
        assert_eq!(revoked.code(), tonic::Code::PermissionDenied);
        let gate = forward_failure(&tonic::Status::unauthenticated("certificate revoked"), 2000);
        assert!(matches!(gate, DirectoryError::Refused(_)), "{gate:?}");
        let read = tonic::Status::from(DirectoryError::NoQuorumForRead);
        assert_eq!(read.code(), tonic::Code::Unavailable);
        assert!(read.message().contains("quorum"), "{}", read.message());
        assert!(!read.message().contains("Some("), "{}", read.message());
    }

    #[test]
    fn refusals_and_leader_loss_keep_their_meaning_without_doubled_prefixes() {
        let refused = forward_failure(
            &tonic::Status::permission_denied("directory proposal refused: not a member"),
            2000,
        );
        assert_eq!(
            refused.to_string(),
            "directory proposal refused: not a member"
        );
        let stale = tonic::Status::unavailable(
            DirectoryError::NoLeader("no leader elected".into()).to_string(),
        );
        let e = forward_failure(&stale, 2000);
        assert_eq!(
            e.to_string(),
            "no directory leader reachable: no leader elected; retry shortly"
        );
    }
}
