//! The gateway's JSON API, against real nodes over real mutual TLS: every route authorised,
//! unauthenticated, with the wrong role, and with bad input (a clear 4xx in problem+json that
//! changes nothing); pagination; and the OpenAPI document listing every route.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tracenet_gateway::auth::Role;
use tracenet_tests::gateway::{TestGateway, TestGateways};

struct Api<'a> {
    http: reqwest::Client,
    gw: &'a TestGateway,
}

impl<'a> Api<'a> {
    fn new(gw: &'a TestGateway) -> Api<'a> {
        Api {
            http: reqwest::Client::new(),
            gw,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        role: Option<Role>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, self.gw.url(&format!("/api/v1{path}")));
        if let Some(r) = role {
            req = req.bearer_auth(self.gw.token(r));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let ctype = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = resp.text().await.unwrap();
        if !status.is_success() {
            assert_eq!(
                ctype, "application/problem+json",
                "errors are problem+json: {status} {text}"
            );
        }
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn record_count(&self) -> usize {
        let mut n = 0;
        let mut token = String::new();
        loop {
            let (s, v) = self
                .call(
                    Method::GET,
                    &format!("/records?page_size=200&page_token={token}"),
                    Some(Role::Officer),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            n += v["items"].as_array().unwrap().len();
            token = v["next_page_token"].as_str().unwrap().to_owned();
            if token.is_empty() {
                return n;
            }
        }
    }
}

/// Unauthenticated, revoked-looking and wrong-role calls are refused for every route.
async fn refused_without_the_right_role(api: &Api<'_>, method: Method, path: &str, wrong: Role) {
    let body = (method != Method::GET).then(|| json!({}));
    let (s, v) = api.call(method.clone(), path, None, body.clone()).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "{method} {path} without token: {v}"
    );
    assert_eq!(v["status"], 401);
    let (s, _) = api
        .http
        .request(method.clone(), api.gw.url(&format!("/api/v1{path}")))
        .bearer_auth("tn_not-a-real-token")
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "{method} {path} with a made-up token"
    );
    let (s, v) = api.call(method.clone(), path, Some(wrong), body).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "{method} {path} as {wrong:?}: {v}"
    );
    assert!(v["type"].as_str().unwrap().ends_with("/forbidden"), "{v}");
}

/// A protobuf 64-bit number, which the proto3 JSON mapping writes as a string.
fn num(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a number: {v}"))
}

fn record(national_ref: &str, serial: &str) -> Value {
    json!({
        "national_ref": national_ref,
        "event": {"date": "2025-06-01", "place": {"country": "FRA", "locality": "Synthetic town"}, "seizing_agency": "AGENCY_KIND_POLICE"},
        "context": {"seizure_kind": "SEIZURE_KIND_SEIZED"},
        "firearms": [{"serial_number": serial, "manufacturer": "Synthetic Arms", "marking_condition": "MARKING_CONDITION_INTACT"}],
        "trafficking": {"route": [{"country": "TUR"}, {"country": "BGR"}, {"country": "FRA"}], "transport_mode": "TRANSPORT_MODE_ROAD"}
    })
}

#[tokio::test]
async fn records_routes_check_roles_and_input() {
    let t = TestGateways::start(12).await.unwrap();
    let api = Api::new(&t.fra);

    // List, with pagination through every record exactly once.
    refused_without_the_right_role(&api, Method::GET, "/records", Role::Analyst).await;
    let (s, first) = api
        .call(
            Method::GET,
            "/records?page_size=5",
            Some(Role::TracingOfficer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(first["items"].as_array().unwrap().len(), 5);
    assert!(!first["next_page_token"].as_str().unwrap().is_empty());
    assert_eq!(api.record_count().await, 12);
    let (s, v) = api
        .call(
            Method::GET,
            "/records?order=sideways",
            Some(Role::Officer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    // Create.
    refused_without_the_right_role(&api, Method::POST, "/records", Role::TracingOfficer).await;
    let (s, created) = api
        .call(
            Method::POST,
            "/records",
            Some(Role::Officer),
            Some(record("SYN-API-1", "API-0001")),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["record"]["id"].as_str().unwrap().to_owned();
    assert_eq!(api.record_count().await, 13);
    let mut bad = record("SYN-API-2", "API-0002");
    bad["event"]["date"] = json!("2025-02-30");
    let (s, v) = api
        .call(Method::POST, "/records", Some(Role::Officer), Some(bad))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["errors"][0]["field"], "event.date", "{v}");
    let (s, v) = api
        .call(
            Method::POST,
            "/records",
            Some(Role::Officer),
            Some(json!({"national_ref": 7})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("national_ref"),
        "{v}"
    );
    let (s, v) = api
        .call(
            Method::POST,
            "/records",
            Some(Role::Officer),
            Some(record("SYN-API-1", "X-1")),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "a duplicate national reference: {v}"
    );
    assert_eq!(api.record_count().await, 13, "bad input changed something");

    // Read.
    refused_without_the_right_role(
        &api,
        Method::GET,
        &format!("/records/{id}"),
        Role::Administrator,
    )
    .await;
    let (s, got) = api
        .call(
            Method::GET,
            &format!("/records/{id}"),
            Some(Role::TracingOfficer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["record"]["national_ref"], "SYN-API-1");
    let (s, _) = api
        .call(Method::GET, "/records/not-an-id", Some(Role::Officer), None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Another id (the last digit changed; 1 in 16 ids already ends in 0).
    let last = if id.ends_with('0') { '1' } else { '0' };
    let unknown = format!("{}{last}", &id[..id.len() - 1]);
    let (s, _) = api
        .call(
            Method::GET,
            &format!("/records/{unknown}"),
            Some(Role::Officer),
            None,
        )
        .await;
    assert!(
        s == StatusCode::NOT_FOUND || s == StatusCode::BAD_REQUEST,
        "{s}"
    );

    // Update, with optimistic concurrency.
    refused_without_the_right_role(&api, Method::PUT, &format!("/records/{id}"), Role::Analyst)
        .await;
    let revision = num(&got["revision"]);
    let mut edited = got["record"].clone();
    edited["notes"] = json!("synthetic note");
    let (s, v) = api
        .call(
            Method::PUT,
            &format!("/records/{id}"),
            Some(Role::Officer),
            Some(json!({"record": edited, "expected_revision": revision})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = api
        .call(
            Method::PUT,
            &format!("/records/{id}"),
            Some(Role::Officer),
            Some(json!({"record": edited, "expected_revision": revision})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "a stale revision must be refused: {v}"
    );
    let mut broken = edited.clone();
    broken["event"]["place"]["country"] = json!("ZZZ");
    let (s, _) = api
        .call(
            Method::PUT,
            &format!("/records/{id}"),
            Some(Role::Officer),
            Some(json!({"record": broken})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, after) = api
        .call(
            Method::GET,
            &format!("/records/{id}"),
            Some(Role::Officer),
            None,
        )
        .await;
    assert_eq!(
        after["record"]["event"]["place"]["country"], "FRA",
        "a refused update changed the record"
    );

    // Batch: all or nothing.
    refused_without_the_right_role(&api, Method::POST, "/records/batch", Role::Analyst).await;
    let mut rows: Vec<Value> = (0..4)
        .map(|i| record(&format!("SYN-B-{i}"), &format!("B-{i}")))
        .collect();
    rows[2]["event"]["date"] = json!("yesterday");
    let (s, v) = api
        .call(
            Method::POST,
            "/records/batch",
            Some(Role::Officer),
            Some(json!({"records": rows})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(
        api.record_count().await,
        13,
        "a refused batch wrote something"
    );
    rows[2]["event"]["date"] = json!("2025-01-02");
    let (s, v) = api
        .call(
            Method::POST,
            "/records/batch",
            Some(Role::Officer),
            Some(json!({"records": rows})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(num(&v["created"]), 4);

    // Local search.
    refused_without_the_right_role(&api, Method::GET, "/search?serial=API-0001", Role::Analyst)
        .await;
    let (s, v) = api
        .call(
            Method::GET,
            "/search?serial=api%200001",
            Some(Role::Officer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["items"].as_array().unwrap().len(),
        1,
        "normalised match: {v}"
    );
    let (s, v) = api
        .call(
            Method::GET,
            "/search?serial=api%200001&match=exact",
            Some(Role::Officer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        v["items"].as_array().unwrap().is_empty(),
        "exact match must not normalise"
    );
    let (s, _) = api
        .call(Method::GET, "/search?serial=", Some(Role::Officer), None)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // Unknown routes are problem+json too.
    let (s, _) = api
        .call(Method::GET, "/nothing-here", Some(Role::Officer), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn federation_routes_check_roles_and_input() {
    let t = TestGateways::start(30).await.unwrap();
    let fra = Api::new(&t.fra);
    let deu = Api::new(&t.deu);

    // A record held by DEU only.
    let mut held = record("SYN-DEU-1", "DEU-7788-XY");
    held["event"]["place"]["country"] = json!("DEU");
    let (s, v) = deu
        .call(Method::POST, "/records", Some(Role::Officer), Some(held))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // Lookup from FRA finds it at DEU only.
    refused_without_the_right_role(&fra, Method::POST, "/lookup", Role::Administrator).await;
    let ask = json!({"serial_number": "deu 7788 xy", "purpose": "criminal_investigation", "legal_basis": "Synthetic basis", "case_reference": "SYN-C-1"});
    let (s, v) = fra
        .call(Method::POST, "/lookup", Some(Role::Officer), Some(ask))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let answers = v["answers"].as_array().unwrap();
    let hit_at: Vec<&str> = answers
        .iter()
        .filter(|a| a["hit"] == true)
        .map(|a| a["node_id"].as_str().unwrap())
        .collect();
    assert_eq!(hit_at, vec!["DEU-CUS"], "{v}");
    // FRA keeps DEU's copy, with the expiry DEU's retention (730 days in the demo policy) sets.
    refused_without_the_right_role(&fra, Method::GET, "/received", Role::Analyst).await;
    let (s, v) = fra
        .call(Method::GET, "/received", Some(Role::Officer), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let copy = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["reference"]["owner_node"] == "DEU-CUS")
        .unwrap_or_else(|| panic!("no copy of DEU's record: {v}"));
    assert_eq!(copy["handling"]["retention_days"], 730, "{copy}");
    let secs = |field: &str| -> i64 { copy[field].as_str().unwrap().parse().unwrap() };
    assert!(
        secs("expires_at") > secs("received_at")
            && secs("expires_at") <= secs("received_at") + 730 * 86_400,
        "{copy}"
    );
    let (s, v) = fra
        .call(
            Method::POST,
            "/lookup",
            Some(Role::Officer),
            Some(json!({"serial_number": "X"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let fields: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["purpose", "legal_basis"]);

    // Trace requests: send from FRA, answer at DEU, see the answer at FRA.
    refused_without_the_right_role(&fra, Method::GET, "/traces", Role::Officer).await;
    refused_without_the_right_role(&fra, Method::POST, "/traces", Role::Analyst).await;
    let (s, v) = fra
        .call(
            Method::GET,
            "/traces?direction=sideways",
            Some(Role::TracingOfficer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = fra
        .call(
            Method::POST,
            "/traces",
            Some(Role::TracingOfficer),
            Some(json!({"reason": "no firearm"})),
        )
        .await;
    assert!(s.is_client_error(), "{s} {v}");
    let (_, none) = fra
        .call(Method::GET, "/traces", Some(Role::TracingOfficer), None)
        .await;
    assert!(
        none["items"].as_array().unwrap().is_empty(),
        "a refused request was recorded"
    );
    let send = json!({
        "firearm": {"serial_number": "DEU-7788-XY", "manufacturer": "Synthetic Arms"},
        "requested_country": "DEU", "reason": "Synthetic seizure", "legal_basis": "Synthetic basis",
        "urgency": "URGENCY_ROUTINE", "case_reference": "SYN-C-1"
    });
    let (s, sent) = fra
        .call(
            Method::POST,
            "/traces",
            Some(Role::TracingOfficer),
            Some(send),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sent}");
    let trace_id = sent["request"]["id"].as_str().unwrap().to_owned();
    refused_without_the_right_role(
        &fra,
        Method::GET,
        &format!("/traces/{trace_id}"),
        Role::Officer,
    )
    .await;
    let (s, _) = fra
        .call(
            Method::GET,
            "/traces/nope",
            Some(Role::TracingOfficer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Wait for delivery to DEU.
    let deadline = std::time::Instant::now() + tracenet_tests::WAIT_LIMIT;
    loop {
        let (s, _) = deu
            .call(
                Method::GET,
                &format!("/traces/{trace_id}"),
                Some(Role::TracingOfficer),
                None,
            )
            .await;
        if s == StatusCode::OK {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "trace request never reached DEU"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let answer_path = format!("/traces/{trace_id}/answer");
    refused_without_the_right_role(&deu, Method::POST, &answer_path, Role::Officer).await;
    let (s, v) = deu
        .call(
            Method::POST,
            &answer_path,
            Some(Role::TracingOfficer),
            Some(json!({"outcome": "TRACE_STATUS_SENT"})),
        )
        .await;
    assert!(
        s.is_client_error(),
        "an answer must be ANSWERED, RESTRICTED or DECLINED: {s} {v}"
    );
    let (s, v) = deu
        .call(
            Method::POST,
            &answer_path,
            Some(Role::TracingOfficer),
            Some(json!({"outcome": "TRACE_STATUS_ANSWERED", "remarks": "Synthetic: sold to a dealer",
                        "chain_of_custody": [{"role": "dealer", "name": "Synthetic Dealer", "country": "DEU", "date": "2019-04-01"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let deadline = std::time::Instant::now() + tracenet_tests::WAIT_LIMIT;
    loop {
        let (_, v) = fra
            .call(
                Method::GET,
                &format!("/traces/{trace_id}"),
                Some(Role::TracingOfficer),
                None,
            )
            .await;
        if v["status"] == "TRACE_STATUS_ANSWERED" {
            assert_eq!(v["response"]["remarks"], "Synthetic: sold to a dealer");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the answer never arrived: {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (s, page) = fra
        .call(
            Method::GET,
            "/traces?page_size=1",
            Some(Role::TracingOfficer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);

    // Statistics: DEU's own tables and SDG 16.4.2 for analysts, never for officers.
    refused_without_the_right_role(&deu, Method::GET, "/statistics?year=2024", Role::Officer).await;
    let (s, v) = deu
        .call(
            Method::GET,
            "/statistics?year=2024&series_from=2023",
            Some(Role::Analyst),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["report"]["node_id"], "DEU-CUS");
    assert!(v["report"]["tables"].as_array().unwrap().len() >= 11);
    assert_eq!(v["series"].as_array().unwrap().len(), 2);
    let (s, v) = deu
        .call(Method::GET, "/statistics?year=1", Some(Role::Analyst), None)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    // Analysis from DEU (customs) across the federation: FRA shares routes for border risk.
    refused_without_the_right_role(&deu, Method::POST, "/analysis", Role::Officer).await;
    let (s, v) = deu
        .call(
            Method::POST,
            "/analysis",
            Some(Role::Analyst),
            Some(json!({"purpose": "border_risk_analysis"})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "legal basis missing: {v}"
    );
    let (s, v) = deu
        .call(
            Method::POST,
            "/analysis",
            Some(Role::Analyst),
            Some(json!({"purpose": "PURPOSE_BORDER_RISK_ANALYSIS", "legal_basis": "Synthetic basis", "filter": {"date_from": "not a date"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = deu
        .call(
            Method::POST,
            "/analysis",
            Some(Role::Analyst),
            Some(json!({"purpose": "border_risk_analysis", "legal_basis": "Synthetic basis"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let from_fra = v["answers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["node_id"] == "FRA-POL")
        .expect("FRA answered");
    let recs = from_fra["records"].as_array().unwrap();
    assert!(!recs.is_empty(), "FRA shares route data with DEU: {v}");
    assert!(
        recs.iter()
            .all(|r| r["record"]["firearms"].as_array().is_none_or(Vec::is_empty)),
        "FRA's policy does not share firearms with DEU for risk analysis"
    );

    // Directory: every role may read it.
    for role in Role::ALL {
        let (s, v) = fra
            .call(Method::GET, "/directory/members", Some(role), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{role:?}: {v}");
        let ids: Vec<&str> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["node_id"].as_str().unwrap())
            .collect();
        assert!(
            ids.contains(&"DEU-CUS") && ids.contains(&"CHE-SEC"),
            "{ids:?}"
        );
    }
    let (s, _) = fra
        .call(Method::GET, "/directory/members", None, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Audit: administrators only; pagination by sequence.
    refused_without_the_right_role(&fra, Method::GET, "/audit", Role::Officer).await;
    let (s, v) = fra
        .call(
            Method::GET,
            "/audit?page_size=2",
            Some(Role::Administrator),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let first = v["items"].as_array().unwrap().clone();
    assert_eq!(first.len(), 2);
    let next = v["next_page_token"].as_str().unwrap().to_owned();
    let (_, v2) = fra
        .call(
            Method::GET,
            &format!("/audit?page_size=2&page_token={next}"),
            Some(Role::Administrator),
            None,
        )
        .await;
    assert!(num(&v2["items"][0]["seq"]) > num(&first[1]["seq"]));
    let (s, _) = fra
        .call(
            Method::GET,
            "/audit?page_token=x",
            Some(Role::Administrator),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Policy preview: DEU's rule for FRA shares the serial, not the route.
    let (_, list) = deu
        .call(
            Method::GET,
            "/records?order=newest&page_size=1",
            Some(Role::Officer),
            None,
        )
        .await;
    let rid = list["items"][0]["record"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    refused_without_the_right_role(&deu, Method::POST, "/policy/preview", Role::Officer).await;
    let (s, v) = deu
        .call(
            Method::POST,
            "/policy/preview",
            Some(Role::Administrator),
            Some(json!({"record_id": rid, "requester_node": "FRA-POL", "agency_kind": "AGENCY_KIND_POLICE", "purpose": "PURPOSE_TRACING"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["allowed"], true, "{v}");
    assert_eq!(v["policy_rule"], "fra-tracing");
    assert_eq!(v["record"]["firearms"][0]["serial_number"], "DEU-7788-XY");
    assert!(
        v["record"]["trafficking"].is_null(),
        "the route is not shared: {v}"
    );
    let (s, v) = deu
        .call(
            Method::POST,
            "/policy/preview",
            Some(Role::Administrator),
            Some(json!({"record_id": rid, "requester_node": "ITA-POL", "purpose": "PURPOSE_TRACING"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        v["allowed"].as_bool() != Some(true),
        "ITA gets nothing: {v}"
    );
    assert!(v["refusal"].as_str().unwrap().contains("ITA"), "{v}");
    let (s, _) = deu
        .call(
            Method::POST,
            "/policy/preview",
            Some(Role::Administrator),
            Some(json!({"record_id": rid, "requester_node": "nobody"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // The access log names the token and what it looked at.
    let log = t.fra.gw.app.store.access_log(0, 500).unwrap();
    assert!(log.iter().any(|e| e.who == "token:officer"
        && e.action == "federated lookup"
        && e.target == "deu 7788 xy"));
    assert!(
        log.iter()
            .filter(|e| e.who.starts_with("token:"))
            .all(|e| e.via == "api")
    );
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn analysts_get_what_the_analysis_needs_never_whole_records() {
    let t = TestGateways::start(3).await.unwrap();
    let fra = Api::new(&t.fra);
    let (s, _) = fra
        .call(Method::GET, "/records", Some(Role::Analyst), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "analysts do not read records");
    let (s, v) = fra
        .call(
            Method::POST,
            "/analysis",
            Some(Role::Analyst),
            Some(json!({"purpose": "border_risk_analysis", "legal_basis": "Synthetic basis"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let own = v["answers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["node_id"] == "FRA-POL")
        .expect("this node's own records are in the analysis");
    let recs = own["records"].as_array().unwrap();
    assert_eq!(recs.len(), 3, "{own}");
    for a in v["answers"].as_array().unwrap() {
        for d in a["records"].as_array().into_iter().flatten() {
            let r = &d["record"];
            for hidden in [
                "persons",
                "case_reference",
                "notes",
                "national_ref",
                "id",
                "ammunition",
            ] {
                assert!(r.get(hidden).is_none(), "{hidden} given to an analyst: {d}");
            }
            assert!(r["event"].get("place").is_none(), "{d}");
            assert!(
                r["firearms"]
                    .as_array()
                    .is_none_or(|f| f.iter().all(|f| f.get("serial_number").is_none())),
                "{d}"
            );
            assert!(d["reference"].get("reference").is_none(), "{d}");
        }
    }
    let r = &recs[0]["record"];
    assert!(
        r["trafficking"]["route"]
            .as_array()
            .is_some_and(|x| !x.is_empty()),
        "the route is what the analysis needs: {r}"
    );
    assert!(r["event"]["date"].is_string(), "{r}");
    // An officer reading the same record still sees it whole.
    let (s, list) = fra
        .call(
            Method::GET,
            "/records?page_size=1",
            Some(Role::Officer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        list["items"][0]["record"]["persons"][0]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("Synthetic Person")),
        "{list}"
    );
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn query_body_and_method_refusals_are_problem_json() {
    let t = TestGateways::start(0).await.unwrap();
    let api = Api::new(&t.fra);
    // `call` asserts that every error is application/problem+json.
    for path in [
        "/records?page_size=abc",
        "/records?page_size=-1",
        "/traces?page_size=1e9",
        "/audit?page_size=x",
    ] {
        let role = if path.starts_with("/traces") {
            Role::TracingOfficer
        } else if path.starts_with("/audit") {
            Role::Administrator
        } else {
            Role::Officer
        };
        let (s, v) = api.call(Method::GET, path, Some(role), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert_eq!(v["status"], 400, "{v}");
        assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()), "{v}");
    }
    let (s, v) = api
        .call(Method::DELETE, "/records", Some(Role::Officer), None)
        .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{v}");
    assert!(
        v["type"].as_str().unwrap().ends_with("/method-not-allowed"),
        "{v}"
    );
    let (s, v) = api
        .call(
            Method::PUT,
            "/records/batch",
            Some(Role::Officer),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{v}");
    // A body over the API's limit.
    let big = format!(
        "{{\"records\": [], \"pad\": \"{}\"}}",
        "x".repeat(17 * 1024 * 1024)
    );
    let resp = api
        .http
        .post(t.fra.url("/api/v1/records/batch"))
        .bearer_auth(t.fra.token(Role::Officer))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let v: Value = resp.json().await.unwrap();
    assert!(v["detail"].as_str().unwrap().contains("16777216"), "{v}");
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_batch_the_node_cannot_take_at_once_is_a_clear_413_not_a_500() {
    let t = TestGateways::start(0).await.unwrap();
    let api = Api::new(&t.fra);
    let records: Vec<Value> = (0..2000)
        .map(|i| {
            let mut r = record(&format!("SYN-BIG-{i}"), &format!("BIG-{i}"));
            r["notes"] = json!("Synthetic note. ".repeat(250));
            r
        })
        .collect();
    let body = json!({ "records": records });
    assert!(body.to_string().len() > 8_000_000);
    let (s, v) = api
        .call(
            Method::POST,
            "/records/batch",
            Some(Role::Officer),
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(v["type"].as_str().unwrap().ends_with("/too-large"), "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("4194304"),
        "the limit is named: {v}"
    );
    assert_eq!(api.record_count().await, 0, "nothing was written");
    // The same records in batches under the limit go through.
    let (s, v) = api
        .call(
            Method::POST,
            "/records/batch",
            Some(Role::Officer),
            Some(json!({ "records": records_slice(0, 500) })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(api.record_count().await, 500);
    t.shutdown().await.unwrap();
}

fn records_slice(from: usize, to: usize) -> Vec<Value> {
    (from..to)
        .map(|i| {
            let mut r = record(&format!("SYN-BIG-{i}"), &format!("BIG-{i}"));
            r["notes"] = json!("Synthetic note. ".repeat(250));
            r
        })
        .collect()
}

#[tokio::test]
async fn watch_list_routes_check_roles_and_input() {
    let t = TestGateways::start(0).await.unwrap();
    let fra = Api::new(&t.fra);
    refused_without_the_right_role(&fra, Method::GET, "/watches", Role::Analyst).await;
    refused_without_the_right_role(&fra, Method::POST, "/watches", Role::Administrator).await;
    refused_without_the_right_role(&fra, Method::GET, "/watch-alerts", Role::Analyst).await;

    // Every missing input at once, and an unknown field refused.
    let (s, v) = fra
        .call(
            Method::POST,
            "/watches",
            Some(Role::Officer),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let fields: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["serial_number", "purpose", "legal_basis"]);
    let (s, v) = fra
        .call(
            Method::POST,
            "/watches",
            Some(Role::Officer),
            Some(json!({"serial_number": "X1", "colour": "red"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    let ask = json!({"serial_number": "SYN-WATCH-77", "purpose": "criminal_investigation", "legal_basis": "Synthetic basis", "note": "synthetic"});
    let (s, w) = fra
        .call(Method::POST, "/watches", Some(Role::Officer), Some(ask))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{w}");
    assert_eq!(w["kind"], "WATCH_KIND_SERIAL", "{w}");
    let id = w["id"].as_str().unwrap().to_owned();
    let (s, v) = fra
        .call(Method::GET, "/watches", Some(Role::TracingOfficer), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == id.as_str()),
        "{v}"
    );
    let (s, v) = fra
        .call(
            Method::GET,
            "/watch-alerts?unacknowledged=true",
            Some(Role::Officer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["unacknowledged"], 0, "{v}");
    let (s, v) = fra
        .call(
            Method::POST,
            "/watch-alerts/00000000000000ff/acknowledge",
            Some(Role::Officer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");

    let (s, v) = fra
        .call(
            Method::DELETE,
            &format!("/watches/{id}"),
            Some(Role::Officer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["removed"], id.as_str());
    let (s, v) = fra
        .call(
            Method::DELETE,
            &format!("/watches/{id}"),
            Some(Role::Officer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_each_exists() {
    let t = TestGateways::start(0).await.unwrap();
    let http = reqwest::Client::new();
    let doc: Value = http
        .get(t.fra.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 11, "{paths:?}");
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let concrete = path.replace("{id}", "x");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = http
                .request(m, t.fra.url(&format!("/api/v1{concrete}")))
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} is documented but does not exist (or is open)"
            );
        }
    }
    t.shutdown().await.unwrap();
}

/// Every limit the OpenAPI document declares is enforced (a 400, never silently clamped), the
/// responses are described with their required fields, 64-bit numbers are read as strings (as
/// the proto3 JSON mapping writes them), and a batch refused row by row lists every problem
/// (a 422, not a 503 because the node's answer was larger than the gateway would read).
#[tokio::test]
async fn declared_limits_are_enforced_and_responses_described() {
    let t = TestGateways::start(3).await.unwrap();
    let api = Api::new(&t.fra);
    let doc: Value = api
        .http
        .get(t.fra.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list_params = doc["paths"]["/records"]["get"]["parameters"].to_string();
    assert!(list_params.contains("\"maximum\":200"), "{list_params}");
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["RecordList"]["required"],
        json!(["items", "next_page_token"])
    );
    assert_eq!(schemas["SeizureRecord"]["additionalProperties"], false);
    assert!(
        schemas["TransportMode"]
            .to_string()
            .contains("TRANSPORT_MODE_ROAD")
    );
    assert_eq!(
        doc["paths"]["/records"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
            ["$ref"],
        "#/components/schemas/RecordResponse"
    );

    for (path, role) in [
        ("/records?page_size=0", Role::Officer),
        ("/records?page_size=201", Role::Officer),
        ("/records?order=", Role::Officer),
        ("/records?page_token=zz", Role::Officer),
        ("/records/0123", Role::Officer),
        ("/traces?page_size=201", Role::TracingOfficer),
        ("/traces?direction=", Role::TracingOfficer),
        ("/traces?page_token=%2B5", Role::TracingOfficer),
        ("/audit?page_size=1001", Role::Administrator),
        ("/search?serial=%C3%A9.%C3%A9", Role::Officer),
        ("/search?serial=A1&match=", Role::Officer),
    ] {
        let (s, v) = api.call(Method::GET, path, Some(role), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
    }
    let (s, v) = api
        .call(
            Method::GET,
            "/records?page_size=200",
            Some(Role::Officer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = api
        .call(
            Method::POST,
            "/analysis",
            Some(Role::Analyst),
            Some(json!({"purpose": "statistics", "legal_basis": "Synthetic basis", "filter": {"route_country": "deu"}})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "lower-case codes are not in the declared list: {v}"
    );
    let (s, v) = api
        .call(
            Method::POST,
            "/lookup",
            Some(Role::Officer),
            Some(json!({"serial_number": "X1", "purpose": "Tracing", "legal_basis": "b", "extra": 1})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "unknown fields are refused: {v}"
    );

    // 64-bit numbers as strings, as GET returns them, are read back.
    let mut rec = record("SYN-API-Q1", "Q1-0001");
    rec["ammunition"] = json!([{"calibre": "9x19", "quantity": "90"}]);
    let (s, v) = api
        .call(Method::POST, "/records", Some(Role::Officer), Some(rec))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["record"]["ammunition"][0]["quantity"], "90");

    // A large batch refused row by row lists every row's problems.
    let empty: Vec<Value> = (0..5000).map(|_| json!({})).collect();
    let (s, v) = api
        .call(
            Method::POST,
            "/records/batch",
            Some(Role::Officer),
            Some(json!({ "records": empty })),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["errors"].as_array().unwrap().len() >= 5000,
        "every row is listed"
    );
    t.shutdown().await.unwrap();
}
