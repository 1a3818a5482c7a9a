//! The directory: committed write latency with three voters on loopback (as the leader's own
//! node sees it, and as a learner sees it through forwarding), and leader failover time: from
//! the moment the leader is stopped to the next write committed through a learner.

use std::time::{Duration, Instant};

use tracenet_devnet::NodeSpec;
use tracenet_node::config::Role;
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::directory_command::Op;

use super::report::{Report, Samples};
use crate::{Error, TestFederation};

fn contacts(n: usize) -> Op {
    Op::PublishContacts(pb::ContactPoints {
        contacts: vec![pb::ContactPoint {
            function: "national focal point".into(),
            email: format!("bench.{n}@example.test"),
            ..Default::default()
        }],
    })
}

/// Runs the scenario: `writes` timed writes from each side, `failovers` leader stops.
pub async fn run(writes: usize, failovers: usize) -> Result<Report, Error> {
    let specs = [
        NodeSpec::new("CHE-SEC").voter(Role::Secretariat),
        NodeSpec::new("BEL-HUB").voter(Role::Hub),
        NodeSpec::new("AUT-HUB").voter(Role::Hub),
        NodeSpec::new("FRA-POL"),
    ];
    let mut t = TestFederation::start_specs(&specs).await?;
    t.fed.found_directory().await?;
    const LEARNER: usize = 3;
    let leader = t.fed.index_of(&t.fed.wait_for_leader(LEARNER).await?)?;

    let mut on_leader = Samples::with_capacity(writes);
    let mut via_learner = Samples::with_capacity(writes);
    for n in 0..writes {
        let t0 = Instant::now();
        t.fed.propose_applied(leader, contacts(n)).await?;
        on_leader.push(t0.elapsed());
        let t0 = Instant::now();
        t.fed.propose_applied(LEARNER, contacts(n)).await?;
        via_learner.push(t0.elapsed());
    }

    let mut failover = Samples::with_capacity(failovers);
    for round in 0..failovers {
        let old_name = t.fed.wait_for_leader(LEARNER).await?;
        let old = t.fed.index_of(&old_name)?;
        let t0 = Instant::now();
        t.stop(old).await?;
        t.fed
            .propose_applied(LEARNER, contacts(writes + round))
            .await?;
        failover.push(t0.elapsed());
        t.restart(old).await?;
        // The restarted voter must be back in step before the next round.
        let want = t
            .fed
            .wait_for_directory(LEARNER, "learner state", Duration::from_secs(30), |_| true)
            .await?
            .applied_index;
        t.fed
            .wait_for_directory(
                old,
                "restarted voter caught up",
                Duration::from_secs(30),
                |v| v.applied_index >= want && !v.leader.is_empty(),
            )
            .await?;
    }

    let mut r = Report::new("directory: committed writes and failover (3 voters, loopback)");
    r.param("writes per side", writes);
    r.param("failovers", failovers);
    r.param(
        "heartbeat / election timeout",
        "100 ms / 500-1000 ms (dev settings)",
    );
    r.figure(
        "write on the leader's node p50",
        on_leader.quantile_us(0.5) / 1000.0,
        "ms",
    );
    r.figure(
        "write on the leader's node p99",
        on_leader.quantile_us(0.99) / 1000.0,
        "ms",
    );
    r.figure(
        "write via a learner (forwarded) p50",
        via_learner.quantile_us(0.5) / 1000.0,
        "ms",
    );
    r.figure(
        "write via a learner (forwarded) p99",
        via_learner.quantile_us(0.99) / 1000.0,
        "ms",
    );
    if !failover.is_empty() {
        r.figure(
            "failover: stop leader -> next committed write, p50",
            failover.quantile_us(0.5) / 1000.0,
            "ms",
        );
        r.figure("failover: max", failover.quantile_us(1.0) / 1000.0, "ms");
    }
    t.shutdown().await?;
    Ok(r)
}
