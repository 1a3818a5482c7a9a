//! The embedded demo's scenario must keep passing: it is the newcomer's first contact.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tokio_util::sync::CancellationToken;
use tracenet_devnet::demo::{DemoOptions, run};

#[tokio::test]
async fn the_demo_scenario_passes() {
    tracenet_node::tls::install_crypto_provider();
    let summary = run(
        DemoOptions {
            scenario: true,
            records_per_node: 20,
            dir: None,
            gateway_port: 0,
        },
        CancellationToken::new(),
    )
    .await
    .unwrap();
    for expected in [
        "scenario passed",
        "DEU-CUS: HIT",
        "ITA-POL: no hit",
        "sent -> acknowledged -> more_information_requested -> acknowledged -> answered",
        "next State in the chain: ITA",
        "alert raised for a new hit at ITA-POL",
        "waits in the outbox",
        "delivered and acknowledged",
        "FRA-POL audit log verified offline",
        "its JSON API refuses a call without a token (401)",
        "forged directory write refused",
        "ITA-POL answers \"held by ITA-POL, ask them\"",
        "for the exact day",
        "FRA-POL: SDG 16.4.2 (traced or origin established / seized, found, surrendered): 2024 ",
        "CENTREG-HUB: regional SDG 16.4.2 for 2025 by secure aggregation over AUT-POL, DEU-CUS, ITA-POL",
    ] {
        assert!(
            summary.contains(expected),
            "missing '{expected}' in:\n{summary}"
        );
    }
    // The exact-day filter under a year rule found nothing.
    assert!(
        summary
            .lines()
            .any(|l| l.contains("for the exact day") && l.contains(": 0 record(s); for the year")),
        "{summary}"
    );
    assert!(
        summary.contains("recognised the caller as spiffe://tracenet/node/FRA-POL"),
        "{summary}"
    );
}
