//! A small run of every benchmark scenario (tiny sizes, seconds) so the harness cannot rot. It
//! checks that each scenario runs end to end and measures something sensible; it never asserts
//! on how fast anything is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tracenet_tests::bench::report::Report;
use tracenet_tests::bench::{
    central, directory, failover, fanout, gateway, hub, memory, micro, peer, scale, sled_open,
    store,
};

fn all_positive(r: &Report) {
    assert!(!r.figures.is_empty(), "{}", r.table());
    for f in &r.figures {
        assert!(
            f.value > 0.0 && f.value.is_finite(),
            "{}: {}",
            f.name,
            r.table()
        );
        if let Some(b) = f.baseline {
            assert!(
                b > 0.0 && b.is_finite(),
                "baseline of {}: {}",
                f.name,
                r.table()
            );
        }
    }
    assert!(r.json().starts_with('{'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_and_fanout_scenarios_run() {
    let r = peer::run(peer::PeerParams {
        sequential: 20,
        total: 64,
        in_flight: 8,
    })
    .await
    .unwrap();
    all_positive(&r);
    // Both variants are reported; the scenario itself fails unless each answer carries its
    // variant's hits (one, or none).
    for kind in ["hit", "no hit"] {
        assert!(
            r.get(&format!("{kind}: sequential p50 (vs floor)"))
                .is_some()
        );
    }
    let r = fanout::run(&[1, 2], 5).await.unwrap();
    all_positive(&r);
    assert!(r.get("2 peer(s) p99").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_scenario_runs() {
    let r = hub::run(5).await.unwrap();
    all_positive(&r);
    assert!(
        r.get("relayed through the mailbox of an outbound-only member p50")
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_scenario_runs() {
    let r = store::run(
        store::StoreParams {
            records: 300,
            batch: 100,
            searches: 20,
        },
        &|_| {},
    )
    .await
    .unwrap();
    all_positive(&r);
    assert!(r.get("node store size / raw data").is_some());
}

#[test]
fn micro_scenario_runs() {
    all_positive(&micro::run(200, 20).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_scenario_runs() {
    let r = gateway::run(gateway::GatewayParams {
        records: 20,
        sequential: 20,
        total: 40,
        in_flight: 4,
    })
    .await
    .unwrap();
    all_positive(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_scenario_runs() {
    let r = directory::run(5, 1).await.unwrap();
    all_positive(&r);
    assert!(r.get("failover: max").is_some());
}

/// Needs the `tracenet-node` binary, which `cargo test --workspace` builds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_scenario_runs_on_a_real_node_process() {
    let r = memory::run(300, 1, &|_| {}).await.unwrap();
    all_positive(&r);
    assert_eq!(r.params[0].1, "300", "the restarted node holds the records");
}

/// Needs the `tracenet-node` binary, which `cargo test --workspace` builds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_scenario_runs_on_real_node_processes() {
    let r = scale::run(
        &scale::ScaleParams {
            sizes: vec![200, 400],
            batch: 100,
            searches: 10,
            load_secs: 1,
            queries: 3,
        },
        &|_| {},
    )
    .await
    .unwrap();
    all_positive(&r);
    assert!(r.get("400: wildcard search p99 (vs bare unary)").is_some());
    for row in [
        "resident memory while importing (peak)",
        "start-up after the import (spawn -> serving)",
        "start-up again (spawn -> serving)",
    ] {
        assert!(r.get(&format!("400: {row}")).is_some(), "{row}");
    }
    // Below 1,000 records the federated query asks for (and must return) every record.
    for size in [200u32, 400] {
        let n = r
            .get(&format!("{size}: federated query: records returned"))
            .unwrap();
        assert_eq!(n.value, f64::from(size));
        assert!(r.get(&format!("{size}: federated query p99")).is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_open_scenario_runs() {
    let r = sled_open::run(3000, 1000, &|_| {}).await.unwrap();
    all_positive(&r);
    for row in ["first open after writing", "second open", "third open"] {
        assert!(r.get(row).is_some(), "{row}");
    }
}

/// Needs the `tracenet-node` binary, which `cargo test --workspace` builds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_scenario_runs_on_real_node_processes() {
    let r = failover::run(failover::FailoverParams {
        kills: 1,
        heartbeat_ms: 100,
        election_timeout_ms: 500,
    })
    .await
    .unwrap();
    all_positive(&r);
}

/// Passes whether or not PostgreSQL is installed: without its server binaries the scenario
/// skips, and the test only checks that it says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn central_scenario_runs_or_skips_without_postgresql() {
    let p = central::CentralParams {
        records: 50,
        batch: 25,
        queries: 5,
    };
    match central::run(p, &|_| {}).await.unwrap() {
        central::Outcome::Ran(r) => {
            all_positive(&r);
            assert!(r.get("no hit p99 (federated vs central)").is_some());
        }
        central::Outcome::Skipped(why) => assert!(!why.is_empty()),
    }
}
