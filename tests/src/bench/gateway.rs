//! The gateway's JSON API against the local API it fronts: reading one record through
//! `GET /api/v1/records/{id}` (bearer token, capability check, node call over mutual TLS, an
//! access-log entry flushed, JSON) against `NodeApi/GetRecord` called directly with the admin
//! certificate; the same for a federated hit/no-hit lookup; and one console page (HTML, 50 rows).

use std::sync::Arc;

use tracenet_gateway::auth::Role;
use tracenet_proto::v1 as pb;

use super::peer::{throughput, timed};
use super::report::Report;
use crate::Error;
use crate::gateway::{Console, TestGateways};

/// Parameters of the gateway scenario.
#[derive(Debug, Clone, Copy)]
pub struct GatewayParams {
    /// Records loaded into each node.
    pub records: u64,
    /// Sequential calls timed for latency.
    pub sequential: usize,
    /// Calls made for the throughput figure.
    pub total: usize,
    /// Calls in flight for the throughput figure.
    pub in_flight: usize,
}

async fn ok(r: reqwest::Response) -> Result<(), Error> {
    let status = r.status();
    let _ = r.bytes().await?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("gateway answered {status}").into())
    }
}

/// Runs the scenario on three national nodes with the demo policies and FRA-POL's gateway.
pub async fn run(p: GatewayParams) -> Result<Report, Error> {
    let t = TestGateways::start(p.records).await?;
    let mut admin = t.fed.admin_client(0).await?;
    let ids: Arc<Vec<String>> = Arc::new(
        admin
            .list_records(pb::ListRecordsRequest {
                page_size: 1000,
                ..Default::default()
            })
            .await?
            .into_inner()
            .records
            .into_iter()
            .filter_map(|r| r.record.map(|r| r.id))
            .collect(),
    );
    if ids.is_empty() {
        return Err("no records to read".into());
    }
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let token = t.fra.token(Role::Officer).to_owned();
    let url = |id: &str| t.fra.url(&format!("/api/v1/records/{id}"));

    let api = timed(p.sequential, |i| {
        let req = http.get(url(&ids[i % ids.len()])).bearer_auth(&token);
        async move { ok(req.send().await?).await }
    })
    .await?;
    let local = timed(p.sequential, |i| {
        let mut c = admin.clone();
        let id = ids[i % ids.len()].clone();
        async move {
            c.get_record(pb::GetRecordRequest { id }).await?;
            Ok(())
        }
    })
    .await?;

    let api_rate = {
        let (http, token, ids) = (http.clone(), token.clone(), ids.clone());
        let base = t.fra.url("/api/v1/records/");
        throughput(p.total, p.in_flight, move |i| {
            let req = http
                .get(format!("{base}{}", ids[i % ids.len()]))
                .bearer_auth(&token);
            async move { ok(req.send().await?).await }
        })
        .await?
    };
    let local_rate = {
        let (c, ids) = (admin.clone(), ids.clone());
        throughput(p.total, p.in_flight, move |i| {
            let mut c = c.clone();
            let id = ids[i % ids.len()].clone();
            async move {
                c.get_record(pb::GetRecordRequest { id }).await?;
                Ok(())
            }
        })
        .await?
    };

    let lookups = (p.sequential / 4).max(5);
    let api_lookup = timed(lookups, |i| {
        let req = http
            .post(t.fra.url("/api/v1/lookup"))
            .bearer_auth(&token)
            .json(&serde_json::json!({
                "serial_number": format!("BENCH-{i}"),
                "purpose": "criminal_investigation",
                "legal_basis": "Synthetic benchmark basis"
            }));
        async move { ok(req.send().await?).await }
    })
    .await?;
    let local_lookup = timed(lookups, |i| {
        let mut c = admin.clone();
        async move {
            c.federated_lookup(pb::FederatedLookupRequest {
                inquiry: Some(pb::Inquiry {
                    agency_kind: pb::AgencyKind::Police as i32,
                    purpose: pb::Purpose::CriminalInvestigation as i32,
                    legal_basis: "Synthetic benchmark basis".into(),
                    case_reference: String::new(),
                    deadline_ms: 3000,
                    via_hub: false,
                }),
                serial_number: format!("BENCH-L-{i}"),
                manufacturer: String::new(),
                ..Default::default()
            })
            .await?;
            Ok(())
        }
    })
    .await?;

    let console = Console::logged_in(&t.fra.gw.url, "officer").await?;
    let page = timed((p.sequential / 4).max(5), |_| {
        let c = console.clone();
        async move {
            let (s, _) = c.get("/records").await?;
            if s.is_success() {
                Ok(())
            } else {
                Err(format!("console answered {s}").into())
            }
        }
    })
    .await?;

    let mut r = Report::new("gateway");
    r.param("records per node", p.records);
    r.param("sequential calls", p.sequential);
    r.param("throughput calls", p.total);
    r.param("in flight", p.in_flight);
    r.versus(
        "record read p50 (API vs local API)",
        api.quantile_us(0.5),
        local.quantile_us(0.5),
        "us",
    );
    r.versus(
        "record read p99 (API vs local API)",
        api.quantile_us(0.99),
        local.quantile_us(0.99),
        "us",
    );
    r.versus("record reads per second", api_rate, local_rate, "req/s");
    r.versus(
        "federated lookup p50 (API vs local API)",
        api_lookup.quantile_us(0.5),
        local_lookup.quantile_us(0.5),
        "us",
    );
    r.figure(
        "console records page p50 (50 rows)",
        page.quantile_us(0.5),
        "us",
    );
    r.figure(
        "console records page p99 (50 rows)",
        page.quantile_us(0.99),
        "us",
    );
    t.shutdown().await?;
    Ok(r)
}
