//! End to end in a real headless browser (Debian's chromium through chromedriver): an officer
//! logs in, records a seizure (after a validation message), runs a federated lookup that finds a
//! record held by another country, sends a trace request from the hit row (the form filled from
//! the hit), the other country answers it in its own
//! console, the answer arrives, an analyst looks at routes, and the console switches to French.
//!
//! Every main page is saved as a PNG under `target/screenshots/` for a person to look at. The
//! test fails (never skips) when the browser or its driver is missing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use serde_json::json;
use tracenet_gateway::auth::Role;
use tracenet_tests::gateway::{PASSWORD, TestGateways};
use tracenet_tests::webdriver::Browser;

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("screenshots")
}

async fn snap(b: &Browser, name: &str) {
    b.screenshot(&shots().join(format!("{name}.png")))
        .await
        .unwrap();
}

async fn login(b: &Browser, base: &str, user: &str) {
    b.goto(&format!("{base}/login")).await.unwrap();
    b.fill("#username", user).await.unwrap();
    b.fill("#password", PASSWORD).await.unwrap();
    b.click("#login-submit").await.unwrap();
    b.find("#current-user").await.unwrap();
}

#[tokio::test]
async fn an_officer_works_a_case_end_to_end_in_a_real_browser() {
    let t = TestGateways::start(40).await.unwrap();
    let fra = t.fra.gw.url.clone();
    let deu = t.deu.gw.url.clone();
    let b = Browser::start().await.unwrap();

    // A record held by DEU only (recorded through DEU's API by its national system).
    let held = json!({
        "national_ref": "SYN-DEU-4242",
        "event": {"date": "2025-04-11", "place": {"country": "DEU", "locality": "Synthetic port"}, "seizing_agency": "AGENCY_KIND_CUSTOMS"},
        "context": {"seizure_kind": "SEIZURE_KIND_SEIZED"},
        "firearms": [{"serial_number": "DEU-4242-ZZ", "manufacturer": "Synthetic Arms", "model": "S-9", "marking_condition": "MARKING_CONDITION_INTACT"}]
    });
    let r = reqwest::Client::new()
        .post(t.deu.url("/api/v1/records"))
        .bearer_auth(t.deu.token(Role::Officer))
        .json(&held)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let created: serde_json::Value = r.json().await.unwrap();
    let held_id = created["record"]["id"].as_str().unwrap().to_owned();

    // Log in.
    b.goto(&format!("{fra}/")).await.unwrap();
    b.find("#login-form").await.unwrap();
    snap(&b, "01-login").await;
    login(&b, &fra, "all").await;
    b.find("#dashboard-counts").await.unwrap();
    snap(&b, "02-dashboard").await;

    // Record a seizure: first with a mistake, shown next to the field, then corrected.
    b.click("a[href='/records']").await.unwrap();
    b.click("#new-record").await.unwrap();
    b.fill("#f-national_ref", "SYN-FRA-E2E-1").await.unwrap();
    b.fill("#f-date", "2025-02-30").await.unwrap();
    b.select("#f-seizing_agency", "police").await.unwrap();
    b.select("#f-seizure_kind", "seized").await.unwrap();
    b.fill("#f-serial_number", "FRA-E2E-0001").await.unwrap();
    b.fill("#f-manufacturer", "Synthetic Arms").await.unwrap();
    b.select("#f-marking_condition", "intact").await.unwrap();
    b.fill("#f-route", "TUR;BGR;FRA").await.unwrap();
    b.select("#f-transport_mode", "road").await.unwrap();
    b.select("#f-concealment_method", "vehicle_compartment")
        .await
        .unwrap();
    b.click("#record-submit").await.unwrap();
    let msg = b.text("#err-date").await.unwrap();
    assert!(!msg.is_empty());
    snap(&b, "03-record-form-error").await;
    b.fill("#f-date", "2025-02-28").await.unwrap();
    b.click("#record-submit").await.unwrap();
    let shown = b.text("#v-national_ref").await.unwrap();
    assert_eq!(shown, "SYN-FRA-E2E-1");
    assert!(b.text("#v-route").await.unwrap().contains("TUR;BGR;FRA"));
    snap(&b, "04-record-detail").await;
    // The list: filter, sort, total and pages; the import page with its template and values.
    b.goto(&format!("{fra}/records")).await.unwrap();
    assert!(
        b.text("#records-summary")
            .await
            .unwrap()
            .contains("41 held"),
        "40 samples and the new record"
    );
    snap(&b, "04b-records").await;
    b.goto(&format!("{fra}/records/import")).await.unwrap();
    b.find("#import-columns").await.unwrap();
    snap(&b, "04c-import").await;
    b.goto(&format!("{fra}/")).await.unwrap();

    // Federated lookup: typed differently, found at DEU, not at ITA.
    b.click("a[href='/search']").await.unwrap();
    b.fill("#lookup-serial", "deu 4242 zz").await.unwrap();
    b.select("#lookup-purpose", "criminal_investigation")
        .await
        .unwrap();
    b.fill(
        "#lookup-legal",
        "Synthetic Code of Criminal Procedure art. 1",
    )
    .await
    .unwrap();
    b.fill("#lookup-case", "SYN-CASE-E2E").await.unwrap();
    b.click("#lookup-submit").await.unwrap();
    let hit = b.text("#lookup-results tr.hit").await.unwrap();
    assert!(
        hit.contains("DEU-CUS") && hit.contains("DEU-4242-ZZ"),
        "{hit}"
    );
    let rows = b.text("#lookup-results tbody").await.unwrap();
    assert!(rows.contains("ITA-POL"), "ITA's answer is listed: {rows}");
    assert!(
        !b.source()
            .await
            .unwrap()
            .contains("data-node=\"ITA-POL\" class=\"hit\"")
    );
    snap(&b, "05-federated-lookup").await;

    // Send a trace request to DEU from the hit row: the form comes filled from the hit.
    b.click("#lookup-results tr.hit a.send-trace")
        .await
        .unwrap();
    b.find("#trace-form").await.unwrap();
    assert_eq!(
        b.attribute("#t-serial_number", "value").await.unwrap(),
        "DEU-4242-ZZ"
    );
    assert_eq!(
        b.attribute("#t-manufacturer", "value").await.unwrap(),
        "Synthetic Arms"
    );
    assert_eq!(b.attribute("#t-model", "value").await.unwrap(), "S-9");
    // Every ITI field is on the form, the State picked from a list by name.
    for field in [
        "#t-import_country",
        "#t-import_year",
        "#t-year_of_manufacture",
        "#t-other_marking",
        "#t-other_marking_location",
        "#t-marking_condition",
        "#t-ammunition_calibre",
        "#t-part_kind",
    ] {
        b.find(field).await.unwrap();
    }
    b.select("#t-requested_country", "DEU").await.unwrap();
    assert!(
        b.text("#t-requested_country option[value='DEU']")
            .await
            .unwrap()
            .contains("Germany")
    );
    snap(&b, "05b-trace-form").await;
    b.fill(
        "#t-legal_basis",
        "Synthetic Code of Criminal Procedure art. 1",
    )
    .await
    .unwrap();
    b.fill("#t-reason", "Synthetic: weapon found at a crime scene")
        .await
        .unwrap();
    b.click("#trace-submit").await.unwrap();
    b.find("#trace-detail").await.unwrap();
    let trace_url = b.url().await.unwrap();
    snap(&b, "06-trace-sent").await;

    // DEU's tracing officer answers in DEU's console.
    login(&b, &deu, "all").await;
    b.goto(&format!("{deu}/traces")).await.unwrap();
    b.wait_for_text("#incoming-traces", "FRA-POL", true)
        .await
        .unwrap();
    b.click("#incoming-traces tbody a").await.unwrap();
    b.select("#a-outcome", "answered").await.unwrap();
    b.fill(
        "#a-remarks",
        "Synthetic: exported to a licensed dealer in 2019",
    )
    .await
    .unwrap();
    b.fill("#a-role", "dealer").await.unwrap();
    b.fill("#a-name", "Synthetic Dealer").await.unwrap();
    b.fill("#a-country", "DEU").await.unwrap();
    b.fill("#a-date", "2019-04-01").await.unwrap();
    snap(&b, "07-trace-answer-form").await;
    b.click("#answer-submit").await.unwrap();
    b.find("#trace-answer").await.unwrap();

    // The answer arrives at FRA.
    b.goto(&trace_url).await.unwrap();
    let status = b
        .wait_for_text("#trace-status", "Answered", true)
        .await
        .unwrap();
    assert_eq!(status, "Answered");
    assert!(
        b.text("#trace-remarks")
            .await
            .unwrap()
            .contains("licensed dealer")
    );
    assert!(b.text("#trace-history").await.unwrap().contains("Answered"));
    snap(&b, "08-trace-answered").await;

    // An analyst at DEU looks at routes across the federation.
    b.goto(&format!("{deu}/analysis")).await.unwrap();
    b.fill("#q-legal", "Synthetic Customs Act s. 2")
        .await
        .unwrap();
    b.click("#analysis-submit").await.unwrap();
    b.find("#analysis-results svg").await.unwrap();
    // Routes on a map: an arc per hop, and the same hops in a table beside it.
    b.find("#routes-map svg path.route").await.unwrap();
    b.find("#mode-maps figure svg path.route").await.unwrap();
    let hops = b.text("#routes-table tbody").await.unwrap();
    assert!(!hops.is_empty(), "the hops are listed for screen readers");
    let total: u64 = b
        .text("#analysis-total")
        .await
        .unwrap()
        .replace([',', '\u{202f}'], "")
        .parse()
        .unwrap();
    assert!(total > 0, "no records came back");
    b.resize(1280, 2900).await.unwrap();
    snap(&b, "09-analysis").await;
    b.resize(1280, 1100).await.unwrap();

    // The same analyst reads DEU's statistics: a table and a chart per questionnaire table,
    // SDG 16.4.2 and its proportion over the years.
    b.goto(&format!("{deu}/statistics?year=2024"))
        .await
        .unwrap();
    b.find("#statistics-results").await.unwrap();
    b.find("#table-firearms_by_category svg").await.unwrap();
    b.find("#sdg-series svg").await.unwrap();
    let sdg = b.text("#sdg-16-4-2").await.unwrap();
    assert!(sdg.starts_with("2024: ") && sdg.contains('%'), "{sdg}");
    b.resize(1280, 2900).await.unwrap();
    snap(&b, "09b-statistics").await;
    b.resize(1280, 1100).await.unwrap();

    // Directory and policy preview pages.
    b.goto(&format!("{fra}/directory")).await.unwrap();
    b.wait_for_text("#members-table", "DEU-CUS", false)
        .await
        .unwrap();
    snap(&b, "10-directory").await;
    // The assistance board: FRA publishes a need through the form, the board lists it.
    b.goto(&format!("{fra}/assistance/new?kind=need"))
        .await
        .unwrap();
    b.fill("#a-id", "fra-training").await.unwrap();
    b.select("#a-category", "training_identification")
        .await
        .unwrap();
    b.fill("#a-title", "Identification course for border officers")
        .await
        .unwrap();
    b.fill("#a-scope", "15 officers").await.unwrap();
    b.click("#a-public_scope").await.unwrap();
    snap(&b, "10a-assistance-form").await;
    b.click("#assistance-submit").await.unwrap();
    b.find("#need-details").await.unwrap();
    b.goto(&format!("{fra}/assistance")).await.unwrap();
    b.wait_for_text("#needs-table", "Identification course", false)
        .await
        .unwrap();
    snap(&b, "10b-assistance-board").await;
    // DEU's administrator previews what FRA would receive of that record for tracing.
    b.goto(&format!("{deu}/policy")).await.unwrap();
    b.find("#policy-rules").await.unwrap();
    b.fill("#p-record", &held_id).await.unwrap();
    b.select("#p-member", "FRA-POL").await.unwrap();
    b.select("#p-purpose", "tracing").await.unwrap();
    b.click("#preview-submit").await.unwrap();
    let preview = b.text("#preview-result").await.unwrap();
    assert!(
        preview.contains("fra-tracing") && preview.contains("DEU-4242-ZZ"),
        "{preview}"
    );
    assert!(
        !preview.contains("Synthetic port"),
        "the locality is not shared: {preview}"
    );
    snap(&b, "11-policy-preview").await;
    b.goto(&format!("{fra}/audit")).await.unwrap();
    b.find("#audit-table").await.unwrap();
    snap(&b, "12-audit").await;
    b.goto(&format!("{fra}/admin/access-log")).await.unwrap();
    b.find("#access-table").await.unwrap();
    snap(&b, "12b-access-log").await;
    b.goto(&format!("{fra}/no/such/page")).await.unwrap();
    b.find("#error-detail").await.unwrap();
    snap(&b, "12c-not-found").await;

    // Switch to French.
    b.goto(&format!("{fra}/")).await.unwrap();
    b.click("#lang-fr").await.unwrap();
    b.wait_for_text("h1", "Tableau de bord", false)
        .await
        .unwrap();
    assert_eq!(b.attribute("html", "lang").await.unwrap(), "fr");
    snap(&b, "13-dashboard-fr").await;
    b.goto(&trace_url).await.unwrap();
    let status = b.text("#trace-status").await.unwrap();
    assert_eq!(status, "Répondue");
    snap(&b, "14-trace-fr").await;
    b.goto(&format!("{fra}/records/new")).await.unwrap();
    assert!(b.source().await.unwrap().contains("Numéro de série"));
    snap(&b, "15-record-form-fr").await;
    // Every other main page in French, for the screenshot review.
    for (url, wait, name) in [
        (format!("{fra}/records"), "#records-table", "16-records-fr"),
        (
            format!("{fra}/records/import"),
            "#import-columns",
            "17-import-fr",
        ),
        (
            format!("{fra}/traces/new"),
            "#trace-form",
            "18-trace-form-fr",
        ),
        (
            format!("{fra}/directory"),
            "#members-table",
            "19-directory-fr",
        ),
        (
            format!("{fra}/assistance"),
            "#needs-table",
            "19b-assistance-fr",
        ),
        (
            format!("{fra}/assistance/experts"),
            "#experts-table",
            "19c-experts-fr",
        ),
        (format!("{fra}/audit"), "#audit-table", "20-audit-fr"),
        (
            format!("{fra}/admin/access-log"),
            "#access-table",
            "21-access-log-fr",
        ),
        (format!("{fra}/policy"), "#policy-rules", "22-policy-fr"),
        (
            format!("{fra}/no/such/page"),
            "#error-detail",
            "23-not-found-fr",
        ),
    ] {
        b.goto(&url).await.unwrap();
        b.find(wait).await.unwrap();
        snap(&b, name).await;
    }
    b.goto(&format!("{deu}/analysis")).await.unwrap();
    b.fill("#q-legal", "Synthetic Customs Act s. 2")
        .await
        .unwrap();
    b.click("#analysis-submit").await.unwrap();
    b.find("#routes-map svg path.route").await.unwrap();
    assert!(
        b.source()
            .await
            .unwrap()
            .contains("Itinéraires sur la carte")
    );
    b.resize(1280, 2900).await.unwrap();
    snap(&b, "24-analysis-fr").await;
    b.resize(1280, 1100).await.unwrap();
    b.goto(&format!("{deu}/statistics?year=2024"))
        .await
        .unwrap();
    b.find("#sdg-series svg").await.unwrap();
    let source = b.source().await.unwrap();
    assert!(source.contains("Indicateur ODD 16.4.2") && source.contains("Armes à feu par type"));
    snap(&b, "25-statistics-fr").await;

    b.close().await;
    t.shutdown().await.unwrap();
}
