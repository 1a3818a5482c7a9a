//! Per-item costs measured in a loop: policy evaluation per record disclosed (a realistic
//! multi-rule policy with generalisation and redaction), Ed25519 signing and verification per
//! request envelope, and audit appends per entry (each append is hash-chained and flushed, as a
//! disclosure requires). Baselines: cloning the record (the least a disclosure could cost) and
//! a raw sled insert with flush.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tracenet_node::audit::{AuditLog, Event, EventKind};
use tracenet_node::country::CountryCode;
use tracenet_node::envelope::{PeerKeys, ReplayGuard, SigningKey};
use tracenet_node::ids::NodeId;
use tracenet_node::policy::{self, Policy, Requester};
use tracenet_node::sample;
use tracenet_proto::v1 as pb;

use super::report::Report;
use crate::Error;

fn per_item_ns(n: usize, mut f: impl FnMut(usize) -> Result<(), Error>) -> Result<f64, Error> {
    let t0 = Instant::now();
    for i in 0..n {
        f(i)?;
    }
    Ok(t0.elapsed().as_nanos() as f64 / n.max(1) as f64)
}

/// Runs the scenario with `n` iterations per figure (`appends` for the audit log).
pub fn run(n: usize, appends: usize) -> Result<Report, Error> {
    let fra = CountryCode::parse("FRA")?;
    let policy = Policy::from_toml(tracenet_devnet::demo::policies::FRA)?;
    let requester = Requester {
        affiliation: tracenet_node::ids::Affiliation::State(CountryCode::parse("DEU")?),
        member_kind: pb::MemberKind::NationalAgency,
        regions: vec![],
        agency_kind: pb::AgencyKind::Customs,
        purpose: pb::Purpose::BorderRiskAnalysis,
    };
    let records: Vec<pb::SeizureRecord> = (0..1000).map(|k| sample::record(fra, k)).collect();
    let mut disclosed = 0usize;
    let eval = per_item_ns(n, |i| {
        if policy::evaluate(
            &policy,
            &requester,
            pb::DataClass::Seizure,
            &records[i % 1000],
        )
        .is_ok()
        {
            disclosed += 1;
        }
        Ok(())
    })?;
    if disclosed != n {
        return Err(format!("only {disclosed} of {n} records disclosed").into());
    }
    let mut sink = 0usize;
    let clone = per_item_ns(n, |i| {
        sink += records[i % 1000].clone().firearms.len();
        Ok(())
    })?;

    let node = NodeId::parse("DEU-CUS")?;
    let (pkcs8, _) = tracenet_certs::generate_signing_key()?;
    let key = SigningKey::from_pkcs8(&pkcs8, node.clone())?;
    let keys = PeerKeys::new(HashMap::from([(node.clone(), key.public_key())]));
    let guard = ReplayGuard::new(300, n + 10);
    let ctx = |i: usize| pb::RequestContext {
        request_id: format!("bench-{i}"),
        requester_node: "DEU-CUS".into(),
        agency_kind: pb::AgencyKind::Police as i32,
        purpose: pb::Purpose::Tracing as i32,
        legal_basis: "Synthetic benchmark basis".into(),
        case_reference: "SYN-1".into(),
        issued_at: 1000,
        body_sha256: Vec::new(),
    };
    let signed: Vec<pb::SignedContext> = (0..n.min(10_000))
        .map(|i| key.sign_context(&ctx(i)))
        .collect();
    let sign = per_item_ns(n, |i| {
        let _ = key.sign_context(&ctx(i));
        Ok(())
    })?;
    let verify = per_item_ns(signed.len(), |i| {
        guard.verify_context(&keys, Some(&signed[i]), &node, 1000)?;
        Ok(())
    })?;

    let dir = tempfile::tempdir()?;
    let db = sled::Config::new().path(dir.path()).open()?;
    let log = AuditLog::open(&db, Arc::new(key))?;
    let append = per_item_ns(appends, |i| {
        log.append(
            vec![Event {
                kind: EventKind::Disclosure,
                peer: "DEU-CUS".into(),
                request_id: format!("bench-{i}"),
                purpose: "PURPOSE_TRACING".into(),
                detail: "benchmark".into(),
                policy_version: 1,
                policy_rule: "r1".into(),
                record_refs: vec!["0123456789abcdef0123456789abcdef".into()],
                envelope: None,
            }],
            1000,
        )?;
        Ok(())
    })?;
    let raw = db.open_tree("bench_raw")?;
    let raw_insert = per_item_ns(appends, |i| {
        raw.insert((i as u64).to_be_bytes(), vec![0u8; 200])?;
        db.flush()?;
        Ok(())
    })?;

    let mut r = Report::new("per-item costs");
    r.param("iterations", n);
    r.param("audit appends", appends);
    r.param(
        "policy",
        "demo FRA policy, 3 rules; requester DEU customs, border risk analysis",
    );
    r.versus(
        "policy evaluation per record (vs record clone)",
        eval,
        clone,
        "ns",
    );
    r.figure("sign request context", sign, "ns");
    r.figure("verify request context (signature + replay)", verify, "ns");
    r.versus(
        "audit append per entry, flushed (vs raw sled insert + flush)",
        append,
        raw_insert,
        "ns",
    );
    let _ = sink;
    Ok(r)
}
