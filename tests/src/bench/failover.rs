//! Directory failover with separate node processes: three voters and a learner are founded in
//! process (the dev federation's certificates, configuration and founding), then each is
//! stopped and started again as its own `tracenet-node` process on the same data and ports,
//! with the directory timers under test written into its configuration. The leader's process
//! is killed with SIGKILL; the figure is the time from the kill to the next directory write
//! committed through the learner (retried while the directory answers "unavailable").

use std::path::Path;
use std::time::{Duration, Instant};

use tracenet_devnet::NodeSpec;
use tracenet_node::config::Role;
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::directory_command::Op;

use super::memory::{Proc, node_binary, start, wait_serving};
use super::report::{Report, Samples};
use crate::{Error, TestFederation};

/// Parameters of the failover scenario.
#[derive(Debug, Clone, Copy)]
pub struct FailoverParams {
    /// Leader kills.
    pub kills: usize,
    /// Directory heartbeat in ms.
    pub heartbeat_ms: u64,
    /// Shortest election timeout in ms (the longest is twice this).
    pub election_timeout_ms: u64,
}

fn contacts(n: usize) -> Op {
    Op::PublishContacts(pb::ContactPoints {
        contacts: vec![pb::ContactPoint {
            function: "national focal point".into(),
            email: format!("failover.{n}@example.test"),
            ..Default::default()
        }],
    })
}

/// Rewrites the directory timers of a configuration written by the dev federation.
fn with_timers(path: &Path, p: &FailoverParams) -> Result<(), Error> {
    let text = std::fs::read_to_string(path)?;
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("heartbeat_ms") {
                format!("heartbeat_ms = {}", p.heartbeat_ms)
            } else if l.starts_with("election_timeout_ms") {
                format!("election_timeout_ms = {}", p.election_timeout_ms)
            } else {
                l.to_owned()
            }
        })
        .map(|l| l + "\n")
        .collect();
    std::fs::write(path, text)?;
    Ok(())
}

/// Waits until node `i`'s process answers on its local API.
async fn serving(t: &TestFederation, i: usize) -> Result<(), Error> {
    let n = t.node(i);
    wait_serving(
        &n.local_addr.to_string(),
        &t.fed.material(i, "admin")?,
        &n.id,
    )
    .await
}

/// Runs the scenario.
pub async fn run(p: FailoverParams) -> Result<Report, Error> {
    let bin = node_binary()?;
    let specs = [
        NodeSpec::new("CHE-SEC").voter(Role::Secretariat),
        NodeSpec::new("BEL-HUB").voter(Role::Hub),
        NodeSpec::new("AUT-HUB").voter(Role::Hub),
        NodeSpec::new("FRA-POL"),
    ];
    let mut t = TestFederation::start_specs(&specs).await?;
    t.fed.found_directory().await?;
    const LEARNER: usize = 3;
    let conf_dir = tempfile::tempdir()?;
    let mut configs = Vec::new();
    for i in 0..specs.len() {
        let path = conf_dir.path().join(format!("node{i}.toml"));
        t.node(i).write_config(&path)?;
        with_timers(&path, &p)?;
        configs.push(path);
    }
    for i in 0..specs.len() {
        t.stop(i).await?;
    }
    let mut procs: Vec<Option<Proc>> = Vec::new();
    for c in &configs {
        procs.push(Some(start(&bin, c)?));
    }
    for i in 0..specs.len() {
        serving(&t, i).await?;
    }
    let timeout = Duration::from_secs(60);
    t.fed.wait_for_leader(LEARNER).await?;
    // One committed write before timing: every process is up and the learner forwards.
    t.fed.propose_applied(LEARNER, contacts(0)).await?;

    let mut failover = Samples::with_capacity(p.kills);
    for round in 0..p.kills {
        let want = t
            .fed
            .wait_for_directory(LEARNER, "a leader", timeout, |v| !v.leader.is_empty())
            .await?;
        let old = t.fed.index_of(&want.leader)?;
        // Every voter in step (and holding the leader's lease) before the kill.
        for v in 0..3 {
            t.fed
                .wait_for_directory(v, "voter caught up", timeout, |d| {
                    d.applied_index >= want.applied_index && !d.leader.is_empty()
                })
                .await?;
        }
        let mut victim = procs
            .get_mut(old)
            .and_then(Option::take)
            .ok_or("leader process not running")?;
        let t0 = Instant::now();
        victim.0.kill()?;
        victim.0.wait()?;
        t.fed.propose_applied(LEARNER, contacts(round + 1)).await?;
        failover.push(t0.elapsed());
        drop(victim);
        let path = configs.get(old).ok_or("no configuration")?;
        if let Some(slot) = procs.get_mut(old) {
            *slot = Some(start(&bin, path)?);
        }
        serving(&t, old).await?;
        let applied = t
            .fed
            .wait_for_directory(LEARNER, "learner state", timeout, |_| true)
            .await?
            .applied_index;
        t.fed
            .wait_for_directory(old, "restarted voter caught up", timeout, |v| {
                v.applied_index >= applied && !v.leader.is_empty()
            })
            .await?;
    }
    drop(procs);

    let mut r = Report::new("directory failover: separate node processes, leader killed (SIGKILL)");
    r.param("kills", p.kills);
    r.param(
        "heartbeat / election timeout",
        format!(
            "{} ms / {}-{} ms",
            p.heartbeat_ms,
            p.election_timeout_ms,
            2 * p.election_timeout_ms
        ),
    );
    r.figure(
        "kill leader -> next committed write, p50",
        failover.quantile_us(0.5) / 1000.0,
        "ms",
    );
    r.figure(
        "kill leader -> next committed write, max",
        failover.quantile_us(1.0) / 1000.0,
        "ms",
    );
    Ok(r)
}
