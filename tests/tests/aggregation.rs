//! Regional statistics by secure aggregation over real mutual TLS: a regional organisation's hub
//! computes the exact total of its four member States' tables (one of them outbound-only, asked
//! through the hub's own mailbox) while what it receives from each member is a masked vector
//! that shares no cell with that member's real table, and no member's table appears in the hub's
//! files; a member that stops is dropped out and the total is that of the others; members refuse
//! a round over a subset of the region, a caller that is not their hub, and rounds beyond their
//! budget for a period; a hub that tells the others a member dropped out while holding its
//! vector gets their pairwise masks with it but not its seed, so no cell of its table shows, and
//! the member reveals nothing for a list the others did not confirm.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use prost::Message;
use tracenet_node::config::Role;
use tracenet_node::envelope::SignedRequest;
use tracenet_node::stats::{self, Period, aggregate, round};
use tracenet_proto::v1 as pb;
use tracenet_tests::{ClientCert, NodeSpec, TestFederation, wait_for};

const HUB: usize = 1;
const BEL: usize = 2;
const DEU: usize = 3;
const FRA: usize = 4;
const NLD: usize = 5;
const ITA: usize = 6;
const MEMBERS: [usize; 4] = [BEL, DEU, FRA, NLD];
const YEAR: u16 = 2024;

/// Fresh request ids (a member's replay check refuses a reused one).
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Each member's policy: aggregates to its regional organisation's nodes, nothing suppressed
/// (so the test can compare exact totals).
fn policy(country: &str) -> String {
    format!(
        r#"
owner_country = "{country}"
version = 1
legal_basis = "Synthetic statistics law art. 3"

[[rules]]
id = "region-stats"
purposes = ["PURPOSE_STATISTICS"]
data_classes = ["DATA_CLASS_STATISTICS_AGGREGATE"]
audience = {{ organisations = ["WESTREG"] }}
statistics_min_cell = 1
"#
    )
}

/// Records of member `i`: a distinct number per member, so its table is its own.
fn records_of(t: &TestFederation, i: usize) -> Vec<pb::SeizureRecord> {
    let country = t.node(i).id.state().unwrap();
    (0..(30 + 17 * i as u64))
        .map(|n| tracenet_node::sample::record(country, n))
        .collect()
}

async fn federation() -> TestFederation {
    let mut specs = vec![
        NodeSpec::new("SECRETARIAT-DIR")
            .voter(Role::Secretariat)
            .organisation(pb::MemberKind::Secretariat, "CHE", &[]),
        NodeSpec::new("WESTREG-HUB").voter(Role::Hub).organisation(
            pb::MemberKind::RegionalOrganisation,
            "BEL",
            &["BEL", "DEU", "FRA", "NLD"],
        ),
        NodeSpec::new("BEL-FPJ")
            .with_policy(policy("BEL"))
            .member_of_hub("WESTREG-HUB", true),
    ];
    for (id, c) in [("DEU-BKA", "DEU"), ("FRA-POL", "FRA"), ("NLD-POL", "NLD")] {
        specs.push(
            NodeSpec::new(id)
                .with_policy(policy(c))
                .member_of_hub("WESTREG-HUB", false),
        );
    }
    // Outside the region: never asked.
    specs.push(NodeSpec::new("ITA-CAR").with_policy(policy("ITA")));
    let t = TestFederation::start_specs(&specs).await.unwrap();
    t.fed.found_directory().await.unwrap();
    for i in 0..specs.len() {
        wait_for("every sealing key in every replica", || async {
            let d = t
                .admin(i)
                .await
                .ok()?
                .get_directory(pb::GetDirectoryRequest::default())
                .await
                .ok()?
                .into_inner();
            let state = d.state?;
            let ready = ["BEL-FPJ", "DEU-BKA", "FRA-POL", "NLD-POL", "ITA-CAR"]
                .iter()
                .all(|n| {
                    state
                        .entries
                        .get(*n)
                        .is_some_and(|e| e.sealing_key.len() == 32)
                });
            let hub = state.members.get("WESTREG-HUB")?;
            (ready && hub.member_states.len() == 4).then_some(())
        })
        .await
        .unwrap();
    }
    for i in MEMBERS.into_iter().chain([ITA]) {
        t.admin(i)
            .await
            .unwrap()
            .import_batch(pb::ImportBatchRequest {
                records: records_of(&t, i),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    t
}

fn regional() -> pb::StatisticsLocalRequest {
    pb::StatisticsLocalRequest {
        year: u32::from(YEAR),
        regional: true,
        deadline_ms: 15_000,
        inquiry: Some(pb::Inquiry {
            agency_kind: pb::AgencyKind::Police as i32,
            legal_basis: "Synthetic regional statistics mandate".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A member's tables of the period, flattened into the round's layout (as the member computes
/// them: its records, no trace).
fn flat(t: &TestFederation, i: usize, layout: &round::RoundLayout) -> Vec<u64> {
    let report = stats::report(Period::year(YEAR), &records_of(t, i), &[], 0);
    aggregate::flatten(&report.tables, &layout.cells)
}

/// The regional tables a hub returned, flattened into the layout (every cell unsuppressed, a row
/// left out counting 0).
fn flat_published(resp: &pb::StatisticsResponse, layout: &round::RoundLayout) -> Vec<u64> {
    layout
        .cells
        .iter()
        .map(|c| {
            let t = resp.tables.iter().find(|t| t.id == c.table).unwrap();
            // Rows of countries no member has are left out of the published tables.
            let Some(r) = t.rows.iter().position(|x| *x == c.row) else {
                return 0;
            };
            let col = t.columns.iter().position(|x| *x == c.column).unwrap();
            let cell = &t.cells[r * (t.columns.len() + 1) + col];
            assert!(!cell.suppressed);
            cell.value
        })
        .collect()
}

fn sum(vs: &[Vec<u64>]) -> Vec<u64> {
    let mut out = vec![0u64; vs[0].len()];
    for v in vs {
        for (o, x) in out.iter_mut().zip(v) {
            *o += x;
        }
    }
    out
}

fn files(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.push(b);
        }
    }
    out
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A MASK request as the hub (or an impostor) would send it, signed by node `from`.
fn mask_request(
    t: &TestFederation,
    from: usize,
    id: &str,
    members: &[&str],
    digest: &[u8],
) -> pb::AggregationRequest {
    step_request(t, from, id, members, digest, Step::Mask)
}

/// A step of a round and what it carries.
enum Step<'a> {
    Mask,
    Confirm(&'a [&'a str]),
    Reveal(&'a [&'a str], Vec<pb::RoundConfirmation>),
}

/// A request for one step of round `id` as the hub (or an impostor) would send it, signed by
/// node `from`.
fn step_request(
    t: &TestFederation,
    from: usize,
    id: &str,
    members: &[&str],
    digest: &[u8],
    step: Step,
) -> pb::AggregationRequest {
    step_request_in(t, from, id, u32::from(YEAR), members, digest, step)
}

/// [`step_request`] for the tables of `year`.
fn step_request_in(
    t: &TestFederation,
    from: usize,
    id: &str,
    year: u32,
    members: &[&str],
    digest: &[u8],
    step: Step,
) -> pb::AggregationRequest {
    let list = |l: &[&str]| l.iter().map(|m| (*m).to_string()).collect();
    let (phase, received, confirmations) = match step {
        Step::Mask => (pb::AggregationPhase::Mask, Vec::new(), Vec::new()),
        Step::Confirm(r) => (pb::AggregationPhase::Confirm, list(r), Vec::new()),
        Step::Reveal(r, c) => (pb::AggregationPhase::Reveal, list(r), c),
    };
    let mut req = pb::AggregationRequest {
        context: None,
        round_id: id.into(),
        year,
        quarter: 0,
        members: list(members),
        layout_digest: digest.to_vec(),
        phase: phase as i32,
        received,
        confirmations,
    };
    req.sign_with(
        &t.signing_key(from).unwrap(),
        pb::RequestContext {
            request_id: format!("req-{id}-{}", NEXT.fetch_add(1, Ordering::Relaxed)),
            requester_node: t.node(from).id.to_string(),
            agency_kind: pb::AgencyKind::Police as i32,
            purpose: pb::Purpose::Statistics as i32,
            legal_basis: "synthetic".into(),
            issued_at: now(),
            ..Default::default()
        },
    );
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hub_learns_the_regional_total_and_nothing_of_any_one_member() {
    let mut t = federation().await;
    let layout = round::layout(Period::year(YEAR));
    let digest = round::layout_digest(&layout.cells);
    let own: Vec<Vec<u64>> = MEMBERS.iter().map(|&i| flat(&t, i, &layout)).collect();
    for v in &own {
        assert!(v.iter().sum::<u64>() > 0, "every member has figures");
    }

    // The round: the exact total of the four members, ITA not asked.
    let out = t
        .admin(HUB)
        .await
        .unwrap()
        .statistics_tables(regional())
        .await
        .unwrap()
        .into_inner();
    let r = out.round.unwrap();
    assert_eq!(r.members, ["BEL-FPJ", "DEU-BKA", "FRA-POL", "NLD-POL"]);
    assert_eq!(r.received, r.members);
    assert!(r.dropped.is_empty());
    assert!(
        r.tables_left_out
            .contains(&"ammunition_by_calibre".to_string())
    );
    let report = out.report.unwrap();
    assert_eq!(report.node_id, "WESTREG-HUB");
    assert!(report.tables.iter().all(|t| t.threshold == 1));
    assert_eq!(flat_published(&report, &layout), sum(&own));
    let sdg = report.sdg.unwrap();
    assert!(sdg.denominator > 0);
    assert!(!sdg.suppressed);

    // What the hub receives from a member is masked: no cell equals the member's own.
    let members = ["BEL-FPJ", "DEU-BKA", "FRA-POL", "NLD-POL"];
    let mut as_hub = t
        .peer_client(DEU, ClientCert::Of(HUB, "node"))
        .await
        .unwrap();
    let got = as_hub
        .aggregate_statistics(mask_request(&t, HUB, "probe-1", &members, &digest))
        .await
        .unwrap()
        .into_inner();
    let deu = &own[1];
    assert_eq!(got.masked.len(), deu.len());
    assert!(got.masked.iter().zip(deu).all(|(m, x)| m != x));
    // Asked again for the same round, it sends the same vector (no second sample to subtract).
    let again = as_hub
        .aggregate_statistics(mask_request(&t, HUB, "probe-1", &members, &digest))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.masked, got.masked);

    // Nothing of any member's table is in the hub's files: each member's non-empty tables,
    // encoded as a packed vector, is found nowhere (and is found in the encoding it would have).
    let hub_files = files(&t.node(HUB).config.data_dir);
    let mut checked = 0;
    for v in &own {
        for table in &layout.templates {
            let cells: Vec<u64> = layout
                .cells
                .iter()
                .zip(v)
                .filter(|(c, _)| c.table == table.id)
                .map(|(_, x)| *x)
                .collect();
            if cells.iter().filter(|x| **x > 0).count() < 3 {
                continue;
            }
            let needle = pb::AggregationResponse {
                masked: cells,
                ..Default::default()
            }
            .encode_to_vec();
            let needle = &needle[2..]; // the packed values, without field tag and length
            assert!(needle.len() >= 8);
            checked += 1;
            assert!(
                !hub_files
                    .iter()
                    .any(|f| f.windows(needle.len()).any(|w| w == needle)),
                "a member's {} table is in the hub's files",
                table.id
            );
        }
    }
    assert!(
        checked >= MEMBERS.len(),
        "each member has tables to look for"
    );
    // The hub's audit names the round and its members.
    let audit = t
        .admin(HUB)
        .await
        .unwrap()
        .list_audit(pb::ListAuditRequest {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(
        audit
            .iter()
            .any(|e| e.detail.contains(&r.round_id) && e.detail.contains("completed"))
    );
    // Each member audited its masked disclosure to the hub under its rule.
    let bel_audit = t
        .admin(BEL)
        .await
        .unwrap()
        .list_audit(pb::ListAuditRequest {
            kind: "disclosure".into(),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(bel_audit.iter().any(|e| e.peer == "WESTREG-HUB"
        && e.policy_rule == "region-stats"
        && e.detail.contains(&r.round_id)));

    // NLD stops: it drops out, the others reveal their masks with it, the total is theirs.
    t.stop(NLD).await.unwrap();
    let out = t
        .admin(HUB)
        .await
        .unwrap()
        .statistics_tables(pb::StatisticsLocalRequest {
            deadline_ms: 4_000,
            ..regional()
        })
        .await
        .unwrap()
        .into_inner();
    let r = out.round.unwrap();
    assert_eq!(r.received, ["BEL-FPJ", "DEU-BKA", "FRA-POL"]);
    assert_eq!(r.dropped.len(), 1);
    assert_eq!(r.dropped[0].node_id, "NLD-POL");
    assert_eq!(
        flat_published(&out.report.unwrap(), &layout),
        sum(&own[..3])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_refuse_a_subset_of_the_region_and_a_caller_that_is_not_their_hub() {
    let t = federation().await;
    let digest = round::layout_digest(&round::layout(Period::year(YEAR)).cells);

    // The hub leaving NLD out (so that two totals would differ by NLD's figures): refused.
    let subset = ["BEL-FPJ", "DEU-BKA", "FRA-POL"];
    let status = t
        .peer_client(DEU, ClientCert::Of(HUB, "node"))
        .await
        .unwrap()
        .aggregate_statistics(mask_request(&t, HUB, "subset-1", &subset, &digest))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");

    // Another member asking as if it were the hub: refused, whatever it claims.
    let members = ["BEL-FPJ", "DEU-BKA", "FRA-POL", "NLD-POL"];
    let status = t
        .peer_client(DEU, ClientCert::Of(FRA, "node"))
        .await
        .unwrap()
        .aggregate_statistics(mask_request(&t, FRA, "forged-1", &members, &digest))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");

    // A layout of another version: refused.
    let status = t
        .peer_client(DEU, ClientCert::Of(HUB, "node"))
        .await
        .unwrap()
        .aggregate_statistics(mask_request(&t, HUB, "layout-1", &members, b"other"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");

    // A confirmation or reveal for a round the member never masked: refused.
    let three = ["BEL-FPJ", "DEU-BKA", "FRA-POL"];
    for step in [Step::Confirm(&three), Step::Reveal(&three, Vec::new())] {
        let status = t
            .peer_client(DEU, ClientCert::Of(HUB, "node"))
            .await
            .unwrap()
            .aggregate_statistics(step_request(&t, HUB, "never-1", &members, &digest, step))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    }

    // A round id used again for another period (whose figures may be zero, so that the two
    // vectors' difference would be this period's): refused. Its masks would differ anyway,
    // derived from the whole round context.
    let mut hub = t
        .peer_client(DEU, ClientCert::Of(HUB, "node"))
        .await
        .unwrap();
    // (2023 and 1900: the budget of the period below stays whole.)
    let digest_of = |year: u16| round::layout_digest(&round::layout(Period::year(year)).cells);
    let first = step_request_in(
        &t,
        HUB,
        "reuse-1",
        2023,
        &members,
        &digest_of(2023),
        Step::Mask,
    );
    hub.aggregate_statistics(first).await.unwrap();
    let other_year = step_request_in(
        &t,
        HUB,
        "reuse-1",
        1900,
        &members,
        &digest_of(1900),
        Step::Mask,
    );
    let status = hub.aggregate_statistics(other_year).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("another period"), "{status:?}");

    // A hub flooding a member with rounds of one period: answered up to the budget, then
    // refused; a round already answered is still answered the same.
    let mut hub = t
        .peer_client(DEU, ClientCert::Of(HUB, "node"))
        .await
        .unwrap();
    let mut first = Vec::new();
    for n in 0..round::MAX_ROUNDS_PER_PERIOD {
        let got = hub
            .aggregate_statistics(mask_request(
                &t,
                HUB,
                &format!("flood-{n}"),
                &members,
                &digest,
            ))
            .await
            .unwrap()
            .into_inner();
        if n == 0 {
            first = got.masked;
        }
    }
    let status = hub
        .aggregate_statistics(mask_request(&t, HUB, "flood-over", &members, &digest))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    let again = hub
        .aggregate_statistics(mask_request(&t, HUB, "flood-0", &members, &digest))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.masked, first);

    // A member that is not a hub cannot run a round at all.
    let status = t
        .admin(DEU)
        .await
        .unwrap()
        .statistics_tables(regional())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hub_claiming_a_member_dropped_gets_nothing_that_unmasks_it() {
    let t = federation().await;
    let layout = round::layout(Period::year(YEAR));
    let digest = round::layout_digest(&layout.cells);
    let members = ["BEL-FPJ", "DEU-BKA", "FRA-POL", "NLD-POL"];
    let others = ["BEL-FPJ", "FRA-POL", "NLD-POL"];
    let index = |m: &str| MEMBERS[members.iter().position(|x| *x == m).unwrap()];
    let ask = |m: &str, step: Step| {
        let (t, i) = (&t, index(m));
        let req = step_request(t, HUB, "lie-1", &members, &digest, step);
        async move {
            t.peer_client(i, ClientCert::Of(HUB, "node"))
                .await
                .unwrap()
                .aggregate_statistics(req)
                .await
                .map(tonic::Response::into_inner)
        }
    };

    // The hub takes every member's vector, DEU's included.
    let mut y_deu = Vec::new();
    for m in members {
        let got = ask(m, Step::Mask).await.unwrap();
        if m == "DEU-BKA" {
            y_deu = got.masked;
        }
    }
    // Then tells the others that DEU dropped out: they confirm that list...
    let mut confirmations = Vec::new();
    for m in others {
        let got = ask(m, Step::Confirm(&others)).await.unwrap();
        assert_eq!(got.confirmation.len(), 64, "an Ed25519 signature");
        confirmations.push(pb::RoundConfirmation {
            node_id: m.into(),
            signature: got.confirmation,
        });
    }
    // ...and reveal their seeds and their pairwise masks with DEU.
    let mut unmasked = y_deu.clone();
    for m in others {
        let got = ask(m, Step::Reveal(&others, confirmations.clone()))
            .await
            .unwrap();
        assert_eq!(got.self_seed.len(), 32);
        assert_eq!(got.reveals.len(), 1);
        assert_eq!(got.reveals[0].dropped, "DEU-BKA");
        for (u, v) in unmasked.iter_mut().zip(&got.reveals[0].values) {
            *u = u.wrapping_add(*v);
        }
    }
    // Every pairwise mask is gone from DEU's vector, and it still shows none of DEU's figures:
    // its self mask is in (without it, this would be DEU's table).
    let deu = flat(&t, DEU, &layout);
    assert!(deu.iter().sum::<u64>() > 0);
    assert!(
        unmasked.iter().zip(&deu).all(|(u, x)| u != x),
        "a cell of DEU's table is visible"
    );

    // DEU reveals its seed only for a list it confirmed with every listed member's
    // confirmation. Asked to confirm the full list, it does (the list holds it)...
    let mine = ask("DEU-BKA", Step::Confirm(&members)).await.unwrap();
    let with_deu = |mut c: Vec<pb::RoundConfirmation>| {
        c.push(pb::RoundConfirmation {
            node_id: "DEU-BKA".into(),
            signature: mine.confirmation.clone(),
        });
        c
    };
    // ...but the others confirmed another list: their signatures do not verify for this one,
    // and without them the list is not confirmed.
    for (sent, why) in [
        (with_deu(confirmations.clone()), "does not verify"),
        (with_deu(Vec::new()), "did not confirm"),
    ] {
        let e = ask("DEU-BKA", Step::Reveal(&members, sent))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
        assert!(e.message().contains(why), "{e:?}");
    }
    // Nor does it reveal for the others' list, which it did not confirm (and is not on).
    let e = ask("DEU-BKA", Step::Reveal(&others, confirmations.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    // And a member confirms one list per round: FRA will not confirm the full list now.
    let e = ask("FRA-POL", Step::Confirm(&members)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("another list"), "{e:?}");
    t.shutdown().await.unwrap();
}
