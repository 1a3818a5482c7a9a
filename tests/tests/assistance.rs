//! The cooperation and assistance board end to end, through two consoles on two nodes: a need
//! published by one State (DEU-CUS), an offer by another (FRA-POL), the offer ranked for the need
//! with its reasons, proposed, accepted by the requesting State only, in progress, delivered,
//! lessons learned; the need flagged as covered to a third member, which sees only the public
//! parts; the CSV export, the JSON API and French.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tracenet_gateway::auth::Role;
use tracenet_proto::v1 as pb;
use tracenet_tests::gateway::{Console, TestGateways};

/// Polls `path` on `c` until its body contains `what` (the other node's replica catches up).
async fn wait_for(c: &Console, path: &str, what: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (s, body) = c.get(path).await.unwrap();
        if s == StatusCode::OK && body.contains(what) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never showed {what:?}: {s} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn posted(c: &Console, path: &str, fields: &[(&str, &str)]) {
    let (s, body) = c.post(path, fields).await.unwrap();
    assert_eq!(s, StatusCode::SEE_OTHER, "POST {path}: {body}");
}

#[tokio::test]
async fn a_need_and_an_offer_matched_accepted_and_delivered_through_two_consoles() {
    let t = TestGateways::start(0).await.unwrap();
    let deu = Console::logged_in(&t.deu.gw.url, "admin").await.unwrap();
    let fra = Console::logged_in(&t.fra.gw.url, "admin").await.unwrap();

    // Writing is the administrator's: an officer reads the board but gets no form, and a post
    // without the session's CSRF token is refused.
    let officer = Console::logged_in(&t.deu.gw.url, "officer").await.unwrap();
    let (s, _) = officer.get("/assistance").await.unwrap();
    assert_eq!(s, StatusCode::OK);
    let (s, _) = officer.get("/assistance/new?kind=need").await.unwrap();
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = officer
        .post("/assistance/entries", &[("kind", "need"), ("id", "x")])
        .await
        .unwrap();
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = deu
        .post_raw("/assistance/entries", &[("kind", "need"), ("id", "x")])
        .await
        .unwrap();
    assert_eq!(s, StatusCode::FORBIDDEN);

    // DEU-CUS publishes a need; only the scope is public.
    posted(
        &deu,
        "/assistance/entries",
        &[
            ("kind", "need"),
            ("id", "deu-marking"),
            ("category", "marking"),
            ("priority", "1"),
            ("title", "Marking machines for the customs armoury"),
            ("description", "Confidential details of the armoury"),
            ("scope", "2 machines"),
            ("wanted_by", "2099-06-30"),
            ("languages", "de, en"),
            ("contact", "desk@deu.example"),
            ("region", "europe"),
            ("public_scope", "on"),
            ("status", "open"),
        ],
    )
    .await;
    // A need without a category is refused on the form, with the reason.
    let (s, body) = deu
        .post(
            "/assistance/entries",
            &[
                ("kind", "need"),
                ("id", "bad"),
                ("title", "x"),
                ("priority", "1"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(s, StatusCode::OK);
    assert!(
        body.contains("id=\"form-errors\"") && body.contains("category"),
        "{body}"
    );

    // FRA-POL publishes an offer of the same category for the same region.
    posted(
        &fra,
        "/assistance/entries",
        &[
            ("kind", "offer"),
            ("id", "fra-marking"),
            ("title", "Marking machine loan"),
            ("donor", "FRA-POL armoury"),
            ("cat_marking", "on"),
            ("capacity", "1"),
            ("regions", "europe"),
            ("until", "2099-12-31"),
            ("languages", "fr, en"),
            ("public_description", "on"),
            ("status", "open"),
        ],
    )
    .await;

    // FRA-POL sees the need with its own offer ranked for it and the reasons, but not the
    // parts DEU-CUS kept private; it proposes.
    let page = wait_for(
        &fra,
        "/assistance/needs/DEU-CUS/deu-marking",
        "propose-form",
    )
    .await;
    assert!(
        page.contains("same category") && page.contains("serves the need"),
        "{page}"
    );
    assert!(page.contains("2 machines"));
    assert!(
        !page.contains("Confidential details"),
        "a private part shown to another member"
    );
    posted(
        &fra,
        "/assistance/needs/DEU-CUS/deu-marking/propose",
        &[
            ("id", "m1"),
            ("offer_id", "fra-marking"),
            ("note", "Two machines"),
        ],
    )
    .await;
    let (_, page) = fra.get("/assistance/matches/FRA-POL/m1").await.unwrap();
    assert!(!page.contains("accept-match"), "the donor may not accept");

    // Only the requesting State accepts: the donor's attempt through the API is refused.
    let http = reqwest::Client::new();
    let r = http
        .post(t.fra.url("/api/v1/assistance/steps"))
        .bearer_auth(t.fra.token(Role::Administrator))
        .json(&json!({"match_id": "FRA-POL/m1", "status": "ASSISTANCE_STATUS_MATCHED"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let problem: Value = r.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("only the requesting State"),
        "{problem}"
    );
    // An officer may read the board but not write to it.
    let r = http
        .post(t.deu.url("/api/v1/assistance/steps"))
        .bearer_auth(t.deu.token(Role::Officer))
        .json(&json!({"match_id": "FRA-POL/m1", "status": "ASSISTANCE_STATUS_MATCHED"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // DEU-CUS accepts; FRA-POL records progress; DEU-CUS records delivery and a lesson.
    wait_for(&deu, "/assistance/matches/FRA-POL/m1", "accept-match").await;
    posted(
        &deu,
        "/assistance/matches/FRA-POL/m1/step",
        &[("step", "accept"), ("note", "Welcome")],
    )
    .await;
    wait_for(&fra, "/assistance/matches/FRA-POL/m1", "step-in-progress").await;
    posted(
        &fra,
        "/assistance/matches/FRA-POL/m1/step",
        &[("step", "in-progress"), ("note", "Shipped")],
    )
    .await;
    wait_for(&deu, "/assistance/matches/FRA-POL/m1", "step-delivered").await;
    posted(
        &deu,
        "/assistance/matches/FRA-POL/m1/step",
        &[("step", "delivered"), ("note", "Received")],
    )
    .await;
    posted(
        &deu,
        "/assistance/matches/FRA-POL/m1/step",
        &[
            ("step", "lessons"),
            ("lessons", "Train operators before delivery"),
        ],
    )
    .await;
    let page = wait_for(&fra, "/assistance/matches/FRA-POL/m1", "Train operators").await;
    for step in [
        "Proposed",
        "Matched",
        "In progress",
        "Delivered",
        "Shipped",
        "Received",
    ] {
        assert!(page.contains(step), "history lacks {step}: {page}");
    }

    // The board: the need is delivered and covered; a third member (ITA-POL, through its
    // node's local API) sees it covered, with only its public parts.
    let (_, board) = deu.get("/assistance").await.unwrap();
    assert!(
        board.contains("deu-marking") && board.contains("covered"),
        "{board}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let ita = loop {
        let b = t
            .fed
            .admin_client(2)
            .await
            .unwrap()
            .assistance_board(pb::AssistanceBoardRequest {})
            .await
            .unwrap()
            .into_inner();
        if b.matches.iter().any(|m| {
            m.r#match
                .as_ref()
                .is_some_and(|x| x.status == pb::AssistanceStatus::Delivered as i32)
        }) || tokio::time::Instant::now() >= deadline
        {
            break b;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let n = &ita.needs[0];
    assert!(n.covered && !n.whole);
    assert_eq!(n.status, pb::AssistanceStatus::Delivered as i32);
    let need = n.need.as_ref().unwrap();
    assert_eq!(need.description, "");
    assert_eq!(need.contact, "");
    assert_eq!(need.scope, "2 machines");
    let m = ita.matches[0].r#match.as_ref().unwrap();
    assert!(
        m.history.iter().all(|h| h.note.is_empty()),
        "notes shown to a non-party"
    );

    // CSV export of the board.
    let r = deu
        .http
        .get(format!("{}/assistance/export.csv", t.deu.gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csv = r.text().await.unwrap();
    assert!(
        csv.starts_with("kind,id,author,country,categories"),
        "{csv}"
    );
    assert!(
        csv.contains("need,deu-marking,DEU-CUS,DEU,marking"),
        "{csv}"
    );
    assert!(csv.contains("match,FRA-POL/m1"), "{csv}");

    // The JSON API reads the same board.
    let b: Value = http
        .get(t.fra.url("/api/v1/assistance/board"))
        .bearer_auth(t.fra.token(Role::Analyst))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(b["viewer"], "FRA-POL");
    assert!(
        b["matches"][0]["match"]["status"] == "ASSISTANCE_STATUS_DELIVERED",
        "{b}"
    );

    // The expert roster: consent is required, then the entry is searchable.
    let (s, body) = fra
        .post(
            "/assistance/entries",
            &[
                ("kind", "expert"),
                ("id", "x1"),
                ("name_or_function", "Firearms examiner"),
                ("cat_tracing_capacity", "on"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("consent"), "{body}");
    posted(
        &fra,
        "/assistance/entries",
        &[
            ("kind", "expert"),
            ("id", "x1"),
            ("name_or_function", "Firearms examiner"),
            ("cat_tracing_capacity", "on"),
            ("languages", "fr"),
            ("consent", "on"),
            ("public_name", "on"),
            ("public_languages", "on"),
        ],
    )
    .await;
    let page = wait_for(&deu, "/assistance/experts?q=examiner", "Firearms examiner").await;
    assert!(page.contains("experts-table"));
    let (_, page) = deu
        .get("/assistance/experts?q=nobody-like-this")
        .await
        .unwrap();
    assert!(!page.contains("Firearms examiner"));

    // French.
    let r = deu
        .http
        .get(format!("{}/lang/fr?back=%2Fassistance", t.deu.gw.url))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection());
    let (_, page) = deu.get("/assistance").await.unwrap();
    assert!(
        page.contains("Tableau de l'assistance") || page.contains("Tableau de l&#39;assistance"),
        "{page}"
    );
    assert!(page.contains("Livré"), "{page}");

    t.shutdown().await.unwrap();
}
