//! The web console over HTTP against real nodes: sessions, CSRF, role checks on every page,
//! login throttling, form validation, bulk import, hostile input shown inert, and French.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use reqwest::StatusCode;
use serde_json::json;
use tracenet_gateway::auth::Role;
use tracenet_tests::gateway::{Console, PASSWORD, TestGateways, csrf_of};

async fn record_count(t: &TestGateways) -> usize {
    let v: serde_json::Value = reqwest::Client::new()
        .get(t.fra.url("/api/v1/records?page_size=200"))
        .bearer_auth(t.fra.token(Role::Officer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["items"].as_array().unwrap().len()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn sessions_are_strict_rotated_ended_and_expire() {
    let t = TestGateways::start(3).await.unwrap();
    let base = &t.fra.gw.url;

    // Not logged in: every page sends the browser to the login page.
    let anon = Console::new(base).unwrap();
    let r = anon
        .http
        .get(format!("{base}/records"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login?next=%2Frecords");

    // The session cookie is HttpOnly and SameSite=Strict, and new at every login.
    let c = Console::new(base).unwrap();
    let page = c
        .http
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = csrf_of(&page).unwrap();
    let r = c
        .http
        .post(format!("{base}/login"))
        .form(&[
            ("csrf", token.as_str()),
            ("username", "officer"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("tn_session_fra_pol="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let sid = cookie.split(';').next().unwrap().to_owned();
    let other = Console::logged_in(base, "officer").await.unwrap();
    let (s, _) = other.get("/records").await.unwrap();
    assert_eq!(s, StatusCode::OK);

    // Security headers on pages.
    let r = c.http.get(format!("{base}/records")).send().await.unwrap();
    let csp = r
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(r.headers().get("cache-control").unwrap(), "no-store");

    // Logging out ends the session server-side: the old cookie no longer works.
    let token = c.csrf().await.unwrap();
    c.post_raw("/logout", &[("csrf", &token)]).await.unwrap();
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = replay
        .get(format!("{base}/records"))
        .header("cookie", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "a logged-out session still works"
    );

    // Idle sessions expire (30 minutes by default).
    t.advance_clock(31 * 60);
    let r = other
        .http
        .get(format!("{base}/records"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "an idle session still works"
    );
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_or_origin_change_nothing() {
    let t = TestGateways::start(2).await.unwrap();
    let base = &t.fra.gw.url;
    let c = Console::logged_in(base, "officer").await.unwrap();
    let before = record_count(&t).await;
    let fields = [
        ("national_ref", "SYN-CSRF-1"),
        ("date", "2025-05-05"),
        ("country", "FRA"),
        ("seizing_agency", "police"),
        ("seizure_kind", "seized"),
        ("serial_number", "CSRF-1"),
        ("marking_condition", "intact"),
    ];
    let (s, _) = c.post_raw("/records", &fields).await.unwrap();
    assert_eq!(s, StatusCode::FORBIDDEN, "no token");
    let mut wrong = vec![("csrf", "forged-token")];
    wrong.extend_from_slice(&fields);
    let (s, _) = c.post_raw("/records", &wrong).await.unwrap();
    assert_eq!(s, StatusCode::FORBIDDEN, "wrong token");
    // Another site's form, even carrying a valid token, is refused by its Origin.
    let token = c.csrf().await.unwrap();
    let mut good = vec![("csrf", token.as_str())];
    good.extend_from_slice(&fields);
    let r = c
        .http
        .post(format!("{base}/records"))
        .header("origin", "http://evil.example")
        .form(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "cross-site origin");
    // A token from another session does not work either.
    let other = Console::logged_in(base, "all").await.unwrap();
    let foreign = other.csrf().await.unwrap();
    let mut theirs = vec![("csrf", foreign.as_str())];
    theirs.extend_from_slice(&fields);
    let (s, _) = c.post_raw("/records", &theirs).await.unwrap();
    assert_eq!(s, StatusCode::FORBIDDEN, "another session's token");
    // Multipart import without the token.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"national_ref,date\n".to_vec()).file_name("x.csv"),
    );
    let r = c
        .http
        .post(format!("{base}/records/import"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "upload without token");
    // The login form needs its own token too.
    let fresh = Console::new(base).unwrap();
    let (s, _) = fresh
        .post_raw("/login", &[("username", "officer"), ("password", PASSWORD)])
        .await
        .unwrap();
    assert_eq!(s, StatusCode::FORBIDDEN, "login without token");
    assert_eq!(
        record_count(&t).await,
        before,
        "a refused form changed something"
    );
    // With the token, it works.
    let (s, _) = c.post_raw("/records", &good).await.unwrap();
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(record_count(&t).await, before + 1);
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_page_checks_the_role() {
    let t = TestGateways::start(3).await.unwrap();
    let base = &t.fra.gw.url;
    // (page, a user allowed, a user refused)
    let pages: &[(&str, &str, &str)] = &[
        ("/records", "officer", "analyst"),
        ("/records/new", "officer", "tracer"),
        ("/records/import", "officer", "admin"),
        ("/search?serial=X", "tracer", "analyst"),
        ("/traces", "tracer", "officer"),
        ("/received", "officer", "analyst"),
        ("/watches", "tracer", "admin"),
        ("/traces/new", "tracer", "analyst"),
        ("/analysis", "analyst", "officer"),
        ("/statistics?year=2024", "analyst", "officer"),
        ("/policy", "admin", "officer"),
        ("/audit", "admin", "tracer"),
        ("/admin/users", "admin", "analyst"),
        ("/admin/tokens", "admin", "officer"),
        ("/admin/access-log", "admin", "tracer"),
    ];
    let mut sessions = std::collections::HashMap::new();
    for user in ["officer", "tracer", "analyst", "admin"] {
        sessions.insert(user, Console::logged_in(base, user).await.unwrap());
    }
    for (page, allowed, refused) in pages {
        let (s, body) = sessions[allowed].get(page).await.unwrap();
        assert_eq!(s, StatusCode::OK, "{allowed} on {page}: {body}");
        let (s, _) = sessions[refused].get(page).await.unwrap();
        assert_eq!(s, StatusCode::FORBIDDEN, "{refused} on {page}");
    }
    // Everyone sees the dashboard and the directory; navigation shows only allowed sections.
    for (user, c) in &sessions {
        let (s, body) = c.get("/").await.unwrap();
        assert_eq!(s, StatusCode::OK, "{user}");
        assert_eq!(
            body.contains("href=\"/audit\""),
            *user == "admin",
            "{user}'s navigation"
        );
        let (s, _) = c.get("/directory").await.unwrap();
        assert_eq!(s, StatusCode::OK, "{user}");
    }
    // POST routes refuse the wrong role as well.
    let (s, _) = sessions["analyst"]
        .post(
            "/lookup",
            &[
                ("serial_number", "X"),
                ("purpose", "tracing"),
                ("legal_basis", "b"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = sessions["officer"]
        .post(
            "/admin/users",
            &[
                ("username", "mallory"),
                ("password", "long-enough-password"),
                ("role_administrator", "1"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(t.fra.gw.app.store.user("mallory").unwrap().is_none());
    // The preview link shows on a record only for those who may preview, and fills the form.
    let (_, list) = sessions["officer"].get("/records").await.unwrap();
    let at = list.find("<td><a href=\"/records/").unwrap() + "<td><a href=\"/records/".len();
    let id = list[at..].split('"').next().unwrap().to_owned();
    let (_, mine) = sessions["officer"]
        .get(&format!("/records/{id}"))
        .await
        .unwrap();
    assert!(!mine.contains("id=\"preview-record\""));
    let all = Console::logged_in(base, "all").await.unwrap();
    let (_, theirs) = all.get(&format!("/records/{id}")).await.unwrap();
    assert!(
        theirs.contains(&format!("href=\"/policy?record_id={id}\"")),
        "{theirs}"
    );
    let (_, policy) = all.get(&format!("/policy?record_id={id}")).await.unwrap();
    assert!(policy.contains(&format!("value=\"{id}\"")));
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled() {
    let t = TestGateways::start(0).await.unwrap();
    let base = &t.fra.gw.url;
    let c = Console::new(base).unwrap();
    for _ in 0..5 {
        let s = c.login("officer", "wrong-password-123").await.unwrap();
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let s = c.login("officer", PASSWORD).await.unwrap();
    assert_eq!(
        s,
        StatusCode::TOO_MANY_REQUESTS,
        "the right password must wait too"
    );
    let s = c.login("analyst", PASSWORD).await.unwrap();
    assert_eq!(s, StatusCode::SEE_OTHER, "other users are not locked out");
    t.advance_clock(301);
    let s = Console::new(base)
        .unwrap()
        .login("officer", PASSWORD)
        .await
        .unwrap();
    assert_eq!(s, StatusCode::SEE_OTHER, "the lockout ends");
    let s = Console::new(base)
        .unwrap()
        .login("nobody", PASSWORD)
        .await
        .unwrap();
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn record_form_shows_problems_next_to_fields_and_imports_report_rows() {
    let t = TestGateways::start(0).await.unwrap();
    let base = &t.fra.gw.url;
    let c = Console::logged_in(base, "officer").await.unwrap();
    let (s, body) = c
        .post(
            "/records",
            &[
                ("national_ref", "SYN-F-1"),
                ("date", "2025-02-30"),
                ("country", "FRA"),
                ("seizing_agency", "police"),
                ("seizure_kind", "seized"),
                ("serial_number", "F-1"),
                ("route", "TUR;ZZ"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body.contains("id=\"err-date\""),
        "no message next to the date field:\n{body}"
    );
    assert!(
        body.contains("value=\"SYN-F-1\""),
        "the form lost what was typed"
    );
    assert_eq!(record_count(&t).await, 0);

    // A file with one bad row writes nothing and reports the row.
    let csv = "national_ref,date,country,seizing_agency,seizure_kind,serial_number,marking_condition\n\
               SYN-I-1,2025-01-01,FRA,police,seized,I-1,intact\n\
               SYN-I-2,2025-13-01,FRA,police,seized,I-2,intact\n\
               SYN-I-3,2025-01-03,FRA,police,seized,I-3,intact\n";
    let job = upload(&c, "bad.csv", csv).await;
    let body = wait_for_job(&c, &job).await;
    assert!(body.contains("data-phase=\"failed\""), "{body}");
    assert!(
        body.contains("<td>3</td>"),
        "the bad line (3) is not reported:\n{body}"
    );
    assert_eq!(
        record_count(&t).await,
        0,
        "a file with a bad row wrote something"
    );
    let good = csv.replace("2025-13-01", "2025-01-02");
    let job = upload(&c, "good.csv", &good).await;
    let body = wait_for_job(&c, &job).await;
    assert!(body.contains("data-phase=\"done\""), "{body}");
    assert!(body.contains("id=\"import-created\">3<"), "{body}");
    assert_eq!(record_count(&t).await, 3);
    let (s, _) = Console::logged_in(base, "all")
        .await
        .unwrap()
        .get(&format!("/records/import/{job}"))
        .await
        .unwrap();
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "another user's import job is not theirs to see"
    );
    t.shutdown().await.unwrap();
}

async fn upload(c: &Console, name: &str, text: &str) -> String {
    let token = c.csrf().await.unwrap();
    let form = reqwest::multipart::Form::new().text("csrf", token).part(
        "file",
        reqwest::multipart::Part::bytes(text.as_bytes().to_vec()).file_name(name.to_owned()),
    );
    let r = c
        .http
        .post(format!("{}/records/import", c.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    location(&r)
        .trim_start_matches("/records/import/")
        .to_owned()
}

async fn wait_for_job(c: &Console, job: &str) -> String {
    let deadline = std::time::Instant::now() + tracenet_tests::WAIT_LIMIT;
    loop {
        let (s, body) = c.get(&format!("/records/import/{job}")).await.unwrap();
        assert_eq!(s, StatusCode::OK);
        if !body.contains("data-phase=\"running\"") {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "import never finished"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn hostile_input_is_shown_inert() {
    let t = TestGateways::start(0).await.unwrap();
    let evil = "<script>alert('x')</script><img src=x onerror=alert(1)>";
    // A record at DEU whose fields carry markup, found by a lookup from FRA.
    let rec = json!({
        "national_ref": "SYN-EVIL-1",
        "event": {"date": "2025-06-01", "place": {"country": "DEU"}, "seizing_agency": "AGENCY_KIND_CUSTOMS"},
        "context": {"seizure_kind": "SEIZURE_KIND_SEIZED"},
        "firearms": [{"serial_number": "EVIL-1", "manufacturer": evil, "model": evil, "marking_condition": "MARKING_CONDITION_INTACT"}],
        "notes": evil
    });
    let r = reqwest::Client::new()
        .post(t.deu.url("/api/v1/records"))
        .bearer_auth(t.deu.token(Role::Officer))
        .json(&rec)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<serde_json::Value>().await.unwrap()["record"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deu = Console::logged_in(&t.deu.gw.url, "officer").await.unwrap();
    let fra = Console::logged_in(&t.fra.gw.url, "all").await.unwrap();
    let (_, detail) = deu.get(&format!("/records/{id}")).await.unwrap();
    let (_, list) = deu.get("/records").await.unwrap();
    let (_, search) = deu.get("/search?serial=EVIL-1").await.unwrap();
    let (_, lookup) = fra
        .post(
            "/lookup",
            &[
                ("serial_number", "evil-1"),
                ("purpose", "criminal_investigation"),
                ("legal_basis", "Synthetic basis"),
            ],
        )
        .await
        .unwrap();
    assert!(lookup.contains("data-node=\"DEU-CUS\""), "{lookup}");
    for (what, body) in [
        ("detail", &detail),
        ("list", &list),
        ("search", &search),
        ("lookup", &lookup),
    ] {
        assert!(
            !body.contains("<script>alert"),
            "{what} page carries live script:\n{body}"
        );
        assert!(
            !body.contains("<img src=x"),
            "{what} page carries a live tag:\n{body}"
        );
        assert!(
            body.contains("&lt;script&gt;") || body.contains("&#60;script&#62;") || what == "list",
            "{what}: the text is not shown escaped:\n{body}"
        );
    }
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_console_speaks_french_with_french_dates_and_numbers() {
    let t = TestGateways::start(1).await.unwrap();
    let base = &t.fra.gw.url;
    let c = Console::logged_in(base, "all").await.unwrap();
    let (_, en) = c.get("/records").await.unwrap();
    assert!(en.contains("Seizure records") && en.contains("lang=\"en\""));
    let r = c
        .http
        .get(format!("{base}/lang/fr?back=%2Frecords"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/records");
    let (_, fr) = c.get("/records").await.unwrap();
    assert!(
        fr.contains("lang=\"fr\"") && fr.contains("Fiches de saisie"),
        "{fr}"
    );
    assert!(!fr.contains("Seizure records"));
    let month_fr = [
        "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.",
        "déc.",
    ];
    assert!(
        month_fr.iter().any(|m| fr.contains(m)),
        "no French date:\n{fr}"
    );
    // The choice is remembered for the user across sessions.
    let again = Console::logged_in(base, "all").await.unwrap();
    let (_, page) = again.get("/").await.unwrap();
    assert!(page.contains("Tableau de bord"), "{page}");
    // An open redirect through the switch is refused.
    let anon = Console::new(base).unwrap();
    let r = anon
        .http
        .get(format!("{base}/lang/en?back=https://evil.example/"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/");
    // Errors are translated too.
    let (s, body) = again.get("/records/not-an-id").await.unwrap();
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("La requête n'est pas valide")
            || body.contains("La requête n&#39;est pas valide"),
        "{body}"
    );
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn administrators_publish_contact_points_to_the_directory() {
    let t = TestGateways::start(0).await.unwrap();
    let admin = Console::logged_in(&t.fra.gw.url, "admin").await.unwrap();
    let (s, page) = admin.get("/policy").await.unwrap();
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("focal.point@fra-pol.example"),
        "the founding contact is listed"
    );
    let (s, _) = admin
        .post(
            "/policy/contacts",
            &[
                ("function_0", "Tracing desk (synthetic)"),
                ("organisation_0", "Synthetic police"),
                ("email_0", "tracing.desk@fra-pol.example"),
                ("languages_0", "fr, en"),
                ("function_1", ""),
            ],
        )
        .await
        .unwrap();
    assert_eq!(s, StatusCode::SEE_OTHER);
    // The directory replicates it; DEU's console shows it, searchable.
    let deu = Console::logged_in(&t.deu.gw.url, "officer").await.unwrap();
    let deadline = std::time::Instant::now() + tracenet_tests::WAIT_LIMIT;
    loop {
        let (_, page) = deu.get("/directory?q=tracing+desk").await.unwrap();
        if page.contains("tracing.desk@fra-pol.example") {
            assert!(
                !page.contains("data-node=\"ITA-POL\""),
                "the search filters members"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the contact never reached DEU:\n{page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_node_without_a_directory_gets_a_note_not_an_error() {
    tracenet_node::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let fed = tracenet_devnet::DevFederation::start(dir.path(), &["FRA-POL"])
        .await
        .unwrap();
    let gw = fed
        .start_gateway(
            0,
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            &dir.path().join("gw"),
            tracenet_gateway::app::system_clock(),
        )
        .await
        .unwrap();
    gw.add_user("officer", PASSWORD, &[Role::Officer])
        .await
        .unwrap();
    let c = Console::logged_in(&gw.url, "officer").await.unwrap();
    let (s, page) = c.get("/directory").await.unwrap();
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("without a directory"), "{page}");
    let (s, _) = c.get("/").await.unwrap();
    assert_eq!(s, StatusCode::OK);
    gw.stop().await.unwrap();
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn return_paths_never_leave_the_site_nor_fail() {
    let t = TestGateways::start(0).await.unwrap();
    let base = &t.fra.gw.url;
    let anon = Console::new(base).unwrap();
    for back in [
        "/%09/evil.example/",
        "%2F%09%2Fevil.example%2F",
        "/%5C/evil.example",
        "%2F%2Fevil.example",
        "/%252F/evil",
        "https://evil.example/",
        "/%0D%0ASet-Cookie:%20x=1",
        "/records%0A",
    ] {
        let r = anon
            .http
            .get(format!("{base}/lang/en?back={back}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "back={back}");
        let to = location(&r);
        assert_eq!(to, "/", "back={back}");
        let (s, page) = anon.get(&format!("/login?next={back}")).await.unwrap();
        assert_eq!(s, StatusCode::OK, "next={back}");
        assert!(
            page.contains("name=\"next\" value=\"/\""),
            "next={back} kept in the login form:\n{page}"
        );
    }
    // The login form's own `next` field, sent with a tab, CR or LF, lands on the dashboard.
    for next in ["/\t/evil.example/", "/\r\nx", "//evil.example"] {
        let c = Console::new(base).unwrap();
        let (_, page) = c.get("/login").await.unwrap();
        let token = csrf_of(&page).unwrap();
        let r = c
            .http
            .post(format!("{base}/login"))
            .form(&[
                ("csrf", token.as_str()),
                ("username", "officer"),
                ("password", PASSWORD),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "next={next:?}");
        assert_eq!(location(&r), "/", "next={next:?}");
    }
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn logins_are_throttled_per_client_too_and_counted_before_verifying() {
    let t = TestGateways::start(0).await.unwrap();
    let base = &t.fra.gw.url;
    // Many names from one client: slowed after address_max_failures (20 by default).
    let mut statuses = Vec::new();
    for i in 0..30 {
        let s = Console::new(base)
            .unwrap()
            .login(&format!("guess{i}"), "wrong-password-123")
            .await
            .unwrap();
        statuses.push(s);
    }
    assert!(
        statuses[..20]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert!(
        statuses[20..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "30 names from one client were never slowed: {statuses:?}"
    );
    // A real user behind the same address waits no longer than a name lockout (300 s).
    let s = Console::new(base)
        .unwrap()
        .login("officer", PASSWORD)
        .await
        .unwrap();
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    t.advance_clock(301);
    let s = Console::new(base)
        .unwrap()
        .login("officer", PASSWORD)
        .await
        .unwrap();
    assert_eq!(s, StatusCode::SEE_OTHER, "the lockout ends");

    // Parallel guesses at one name: no more than max_failures (5) are verified.
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            Console::new(&base)
                .unwrap()
                .login("analyst", "wrong-password-123")
                .await
                .unwrap()
        }));
    }
    let mut verified = 0;
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::UNAUTHORIZED => verified += 1,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(verified <= 5, "{verified} parallel guesses were verified");
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn analysis_says_when_a_member_reached_the_limit() {
    let t = TestGateways::start(0).await.unwrap();
    let http = reqwest::Client::new();
    for chunk in 0..3 {
        let records: Vec<serde_json::Value> = (chunk * 401..(chunk + 1) * 401)
            .map(|i| {
                json!({
                    "national_ref": format!("SYN-LIM-{i}"),
                    "event": {"date": "2025-06-01", "place": {"country": "FRA"}, "seizing_agency": "AGENCY_KIND_POLICE"},
                    "context": {"seizure_kind": "SEIZURE_KIND_SEIZED"},
                    "firearms": [{"serial_number": format!("LIM-{i}"), "manufacturer": "Synthetic Arms", "marking_condition": "MARKING_CONDITION_INTACT"}],
                    "trafficking": {"route": [{"country": "TUR"}, {"country": "FRA"}], "transport_mode": "TRANSPORT_MODE_ROAD"}
                })
            })
            .collect();
        let r = http
            .post(t.fra.url("/api/v1/records/batch"))
            .bearer_auth(t.fra.token(Role::Officer))
            .json(&json!({ "records": records }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    }
    let c = Console::logged_in(&t.fra.gw.url, "analyst").await.unwrap();
    let form = [
        ("purpose", "border_risk_analysis"),
        ("legal_basis", "Synthetic basis"),
    ];
    let (s, page) = c.post("/analysis", &form).await.unwrap();
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("id=\"analysis-limited\""),
        "1,203 records held, 1,000 shown, and the page does not say so:\n{page}"
    );
    assert!(
        page.contains("first 1,000 records") && page.contains("FRA-POL."),
        "{page}"
    );
    let (s, csv) = c.post("/analysis/export", &form).await.unwrap();
    assert_eq!(s, StatusCode::OK);
    assert_eq!(csv.lines().count(), 1 + 1000 + 1, "header, rows, note");
    assert!(
        csv.lines().last().unwrap().contains("first 1,000"),
        "{}",
        csv.lines().last().unwrap()
    );
    // The API says it too.
    let v: serde_json::Value = http
        .post(t.fra.url("/api/v1/analysis"))
        .bearer_auth(t.fra.token(Role::Analyst))
        .json(&json!({"purpose": "border_risk_analysis", "legal_basis": "Synthetic basis"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["limited_members"],
        json!(["FRA-POL"]),
        "{}",
        v["limited_members"]
    );
    assert_eq!(v["limit_per_member"], 1000);
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_disclosure_preview_shows_the_quantity_band_and_refuses_in_plain_words() {
    let t = TestGateways::start(1).await.unwrap();
    let http = reqwest::Client::new();
    let list: serde_json::Value = http
        .get(t.fra.url("/api/v1/records?page_size=1"))
        .bearer_auth(t.fra.token(Role::Officer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = list["items"][0]["record"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let api: serde_json::Value = http
        .post(t.fra.url("/api/v1/policy/preview"))
        .bearer_auth(t.fra.token(Role::Administrator))
        .json(&json!({"record_id": id, "requester_node": "DEU-CUS", "agency_kind": "AGENCY_KIND_CUSTOMS", "purpose": "PURPOSE_BORDER_RISK_ANALYSIS"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let band = api["record"]["ammunition"][0]["quantity_band"]
        .as_str()
        .unwrap_or_else(|| panic!("the API preview has a band: {api}"))
        .to_owned();
    let admin = Console::logged_in(&t.fra.gw.url, "admin").await.unwrap();
    let (s, page) = admin
        .post(
            "/policy/preview",
            &[
                ("record_id", id.as_str()),
                ("requester_node", "DEU-CUS"),
                ("agency_kind", "customs"),
                ("purpose", "border_risk_analysis"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("data-allowed=\"true\""), "{page}");
    assert!(
        page.contains(&format!("<dd>{band}</dd>")),
        "the console leaves out the band {band} the API shows:\n{page}"
    );
    let refused = [
        ("record_id", id.as_str()),
        ("requester_node", "ITA-POL"),
        ("agency_kind", "police"),
        ("purpose", "tracing"),
    ];
    let (_, page) = admin.post("/policy/preview", &refused).await.unwrap();
    assert!(
        page.contains("No rule of policy version 1 shares seizure records with ITA for tracing."),
        "{page}"
    );
    assert!(
        !page.contains("DATA_CLASS_") && !page.contains("PURPOSE_TRACING"),
        "{page}"
    );
    admin.get("/lang/fr?back=%2F").await.unwrap();
    let (_, page) = admin.post("/policy/preview", &refused).await.unwrap();
    assert!(
        page.contains("Aucune règle de la version 1 de la politique")
            && page.contains("Fiches de saisie")
            && page.contains("Traçage"),
        "{page}"
    );
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_mistake_is_reported_at_once_in_the_form_and_the_import() {
    let t = TestGateways::start(0).await.unwrap();
    let c = Console::logged_in(&t.fra.gw.url, "officer").await.unwrap();
    let (s, body) = c
        .post(
            "/records",
            &[
                ("national_ref", "SYN-R-1"),
                ("date", "2025-02-30"),
                ("country", "FRA"),
                ("seizing_agency", "police"),
                ("seizure_kind", "seized"),
                ("serial_number", "R-1"),
                ("year_of_manufacture", "nineteen"),
                ("ammunition_calibre", "9x19mm"),
                ("ammunition_quantity", "-3"),
                ("route", "TUR;ZZ"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    for field in [
        "date",
        "year_of_manufacture",
        "ammunition_quantity",
        "route",
    ] {
        assert!(
            body.contains(&format!("id=\"err-{field}\"")),
            "no message next to {field} in this round:\n{body}"
        );
    }
    assert!(
        !body.contains("ammunition_ammunition_quantity") && !body.contains("id=\"form-errors\""),
        "a raw line above the form:\n{body}"
    );
    assert_eq!(record_count(&t).await, 0);

    let csv = "national_ref,date,country,seizing_agency,seizure_kind,serial_number,marking_condition,category,ammunition_calibre,ammunition_quantity,transport_mode\n\
               SYN-J-1,2025-01-01,FRA,police,seized,J-1,intact,,,,road\n\
               SYN-J-2,2025-01-02,FRA,police,seized,J-2,intact,,,,road\n\
               SYN-J-3,2025-13-01,FRA,police,seized,J-3,intact,laser,9x19mm,-3,teleport\n";
    let job = upload(&c, "four.csv", csv).await;
    let body = wait_for_job(&c, &job).await;
    assert!(body.contains("data-phase=\"failed\""), "{body}");
    assert!(
        body.contains("id=\"import-total\">3<"),
        "a 3-row file is counted:\n{body}"
    );
    assert_eq!(
        body.matches("<tr><td>4</td>").count(),
        4,
        "the row with 4 bad cells lists 4 problems:\n{body}"
    );
    assert_eq!(record_count(&t).await, 0);
    t.shutdown().await.unwrap();
}

/// The text a page shows, with askama's escapes of `'` and `&` undone (for comparisons).
fn plain(html: &str) -> String {
    html.replace("&#39;", "'")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#x27;", "'")
}

/// The seizures list filters, sorts, counts and pages; dashboard counts are links; the import
/// page offers a template and every column's allowed values; the 404 page keeps the node badge
/// and the navigation; the trace form picks the State by name.
#[tokio::test]
async fn the_records_list_filters_sorts_counts_and_pages() {
    let t = TestGateways::start(60).await.unwrap();
    let base = &t.fra.gw.url;
    let c = Console::logged_in(base, "all").await.unwrap();

    let (s, page) = c.get("/records").await.unwrap();
    assert_eq!(s, StatusCode::OK);
    let page = plain(&page);
    assert!(page.contains("id=\"records-filter\""), "a filter form");
    assert!(
        page.contains("Showing 1–50 of 60 matching records (60 held)."),
        "{page}"
    );
    assert!(page.contains("Page 1 of 2"));
    assert!(
        page.contains("<th aria-sort=\"descending\"><a href=\"/records?sort=date&dir=asc\">Date of seizure ▼</a>"),
        "latest seizures first by default: {page}"
    );
    assert_eq!(page.matches("<tr><td><a href=\"/records/").count(), 50);
    let (_, second) = c.get("/records?page=2").await.unwrap();
    assert_eq!(second.matches("<tr><td><a href=\"/records/").count(), 10);
    assert!(second.contains("id=\"prev-page\""));

    // Sorted by reference, both ways.
    let (_, asc) = c.get("/records?sort=ref&dir=asc").await.unwrap();
    let first_asc = asc.find("SYN-FRA-0000000").unwrap();
    assert!(first_asc < asc.find("SYN-FRA-0000001").unwrap());
    assert!(asc.contains("aria-sort=\"ascending\""));
    let (_, desc) = c.get("/records?sort=ref&dir=desc").await.unwrap();
    assert!(desc.find("SYN-FRA-0000059").unwrap() < desc.find("SYN-FRA-0000058").unwrap());

    // Filtered by reference text, by transport mode and by dates.
    let (_, one) = c.get("/records?q=fra-0000042").await.unwrap();
    let one = plain(&one);
    assert!(one.contains("of 1 matching records (60 held)"), "{one}");
    assert!(one.contains("SYN-FRA-0000042") && one.contains("id=\"filter-clear\""));
    let (_, none) = c.get("/records?from=2199-01-01").await.unwrap();
    assert!(plain(&none).contains("of 0 matching records"));
    let (_, road) = c.get("/records?transport=road").await.unwrap();
    let rows = road.matches("<tr><td><a href=\"/records/").count();
    assert!(rows < 50, "the transport filter narrows the list");

    // The dashboard's counts lead to their pages.
    let (_, dash) = c.get("/").await.unwrap();
    assert!(
        dash.contains("<a class=\"tile\" href=\"/records\">"),
        "{dash}"
    );
    assert!(dash.contains("<a class=\"tile\" href=\"/directory\">"));
    assert!(dash.contains("<a class=\"tile\" href=\"/traces#incoming-traces\">"));

    // Import: a template to download, every column with its allowed values.
    let (_, import) = c.get("/records/import").await.unwrap();
    assert!(import.contains("href=\"/records/import/template.csv\""));
    assert!(import.contains("id=\"import-columns\""));
    assert!(import.contains("<code>vehicle_compartment</code>"));
    assert!(import.contains("<code>maritime_container</code>"));
    let r = c
        .http
        .get(format!("{base}/records/import/template.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let csv = r.text().await.unwrap();
    assert!(csv.starts_with("national_ref,date,country,"), "{csv}");
    assert_eq!(csv.lines().count(), 2, "header and one example row");

    // 404: the node badge and the navigation, logged in or not.
    let (s, lost) = c.get("/no/such/page").await.unwrap();
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(lost.contains("FRA-POL"), "node badge: {lost}");
    assert!(lost.contains("href=\"/records\""), "navigation: {lost}");
    let anon = Console::new(base).unwrap();
    let (s, lost) = anon.get("/no/such/page").await.unwrap();
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(lost.contains("FRA-POL"), "node badge: {lost}");

    // The trace form: the State by name, the ISO code as the value.
    let (_, form) = c.get("/traces/new").await.unwrap();
    assert!(
        form.contains("<select id=\"t-requested_country\" name=\"requested_country\">"),
        "{form}"
    );
    assert!(form.contains("<option value=\"DEU\">Germany (DEU)</option>"));
    c.http
        .get(format!("{base}/lang/fr?back=%2F"))
        .send()
        .await
        .unwrap();
    let (_, form) = c.get("/traces/new").await.unwrap();
    assert!(form.contains("<option value=\"DEU\">Allemagne (DEU)</option>"));
    t.shutdown().await.unwrap();
}

/// In French, nothing the node writes in English shows through: trace history notes, audit
/// kinds and details, access-log actions, policy field paths.
#[tokio::test]
async fn french_pages_translate_what_the_node_writes() {
    let t = TestGateways::start(2).await.unwrap();
    let base = &t.fra.gw.url;
    let http = reqwest::Client::new();
    // A lookup (audit: request sent) and a trace request (history notes) from FRA.
    let r = http
        .post(t.fra.url("/api/v1/lookup"))
        .bearer_auth(t.fra.token(Role::Officer))
        .json(&json!({"serial_number": "NOPE-1", "purpose": "tracing", "legal_basis": "Synthetic basis"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let r = http
        .post(t.fra.url("/api/v1/traces"))
        .bearer_auth(t.fra.token(Role::TracingOfficer))
        .json(&json!({
            "firearm": {"serial_number": "FR-TR-1", "manufacturer": "Synthetic Arms"},
            "requested_country": "DEU", "reason": "Synthetic seizure", "legal_basis": "Synthetic basis",
            "urgency": "URGENCY_ROUTINE"
        }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let trace: serde_json::Value = r.json().await.unwrap();
    let trace_id = trace["request"]["id"].as_str().unwrap().to_owned();

    let c = Console::logged_in(base, "all").await.unwrap();
    c.http
        .get(format!("{base}/lang/fr?back=%2F"))
        .send()
        .await
        .unwrap();
    // Wait for delivery so the history has the node's notes.
    let mut page = String::new();
    for _ in 0..50 {
        page = plain(&c.get(&format!("/traces/{trace_id}")).await.unwrap().1);
        if page.contains("réponse de") || page.contains("accusé") || page.contains("Accusé") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for english in [
        "queued for",
        "received from",
        "response from",
        "acknowledged",
    ] {
        assert!(!page.contains(english), "{english} in {page}");
    }
    assert!(page.contains("en attente d'envoi à DEU-CUS"), "{page}");

    let (_, audit) = c.get("/audit").await.unwrap();
    let audit = plain(&audit);
    assert!(audit.contains("Demande envoyée"), "{audit}");
    for english in [
        "request sent",
        "lookup serial",
        "trace request to",
        "delivered after",
    ] {
        assert!(!audit.contains(english), "{english} in {audit}");
    }
    let (_, log) = c.get("/admin/access-log").await.unwrap();
    let log = plain(&log);
    assert!(log.contains("Recherche fédérée"), "{log}");
    for english in [
        "federated lookup",
        "send trace request",
        "view trace request",
    ] {
        assert!(!log.contains(english), "{english} in {log}");
    }
    let (_, policy) = c.get("/policy").await.unwrap();
    let policy = plain(&policy);
    assert!(policy.contains("Mode de dissimulation"), "{policy}");
    assert!(
        policy.contains("<td>Résultats de traçage</td>"),
        "a rule without field rules names its data class: {policy}"
    );
    for path in ["trafficking.route", "event.date", "case_reference"] {
        assert!(!policy.contains(path), "{path} in {policy}");
    }
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_hit_only_answer_shows_who_holds_the_record_and_whom_to_ask() {
    // The demo policies: ITA-POL answers FRA's serial lookups "hit only".
    let t = TestGateways::start(3).await.unwrap();
    let ita = tracenet_node::country::CountryCode::parse("ITA").unwrap();
    let serial = tracenet_node::sample::serial(ita, 2);
    let fra = Console::logged_in(&t.fra.gw.url, "all").await.unwrap();
    let (status, page) = fra
        .post(
            "/lookup",
            &[
                ("serial_number", serial.as_str()),
                ("purpose", "tracing"),
                ("legal_basis", "Synthetic basis"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{page}");
    let row = page
        .split("<tr")
        .find(|r| r.contains("data-node=\"ITA-POL\""))
        .unwrap_or_else(|| panic!("no ITA-POL row: {page}"));
    assert!(row.contains("Held by ITA-POL"), "{row}");
    assert!(row.contains("focal.point@ita-pol.example"), "{row}");
    // Nothing of the record: not even the serial that matched.
    assert!(!row.contains(&serial), "{row}");
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_watched_serial_raises_an_alert_on_the_dashboard_when_a_member_records_it() {
    let t = TestGateways::start(0).await.unwrap();
    let fra = Console::logged_in(&t.fra.gw.url, "officer").await.unwrap();
    // Kept on watch from the lookup form (its fields, posted to /watches).
    let serial = "SYN-WATCH-4411";
    let (s, page) = fra
        .post(
            "/watches",
            &[
                ("serial_number", serial),
                ("manufacturer", ""),
                ("purpose", "criminal_investigation"),
                ("legal_basis", "Synthetic basis"),
                ("case_reference", "SYN-C-9"),
                ("via_hub", "true"),
            ],
        )
        .await
        .unwrap();
    assert!(s.is_redirection() || s == StatusCode::OK, "{s}: {page}");
    let (_, list) = fra.get("/watches").await.unwrap();
    assert!(list.contains(serial), "{list}");
    // Every missing input at once, next to its field.
    let (s, page) = fra
        .post("/watches", &[("serial_number", "")])
        .await
        .unwrap();
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(page.matches("field-error").count(), 3, "{page}");
    // Wait for the first run (it only notes what is known), then DEU records the weapon.
    let watch = t
        .fra
        .gw
        .app
        .node
        .api()
        .list_watches(tracenet_proto::v1::ListWatchesRequest {})
        .await
        .unwrap()
        .into_inner()
        .watches
        .remove(0);
    tracenet_tests::wait_for("the first watch run", || async {
        let w = t
            .fra
            .gw
            .app
            .node
            .api()
            .list_watches(tracenet_proto::v1::ListWatchesRequest {})
            .await
            .ok()?
            .into_inner()
            .watches;
        w.iter()
            .any(|x| x.id == watch.id && x.baseline_taken)
            .then_some(())
    })
    .await
    .unwrap();
    let mut held = json!({
        "national_ref": "SYN-DEU-W1",
        "event": {"date": "2025-06-01", "place": {"country": "DEU", "locality": "Synthetic town"}, "seizing_agency": "AGENCY_KIND_POLICE"},
        "context": {"seizure_kind": "SEIZURE_KIND_SEIZED"},
        "firearms": [{"serial_number": serial, "manufacturer": "Synthetic Arms", "marking_condition": "MARKING_CONDITION_INTACT"}]
    });
    held["firearms"][0]["serial_number"] = json!(serial);
    let r = reqwest::Client::new()
        .post(t.deu.url("/api/v1/records"))
        .bearer_auth(t.deu.token(Role::Officer))
        .json(&held)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let dashboard = tracenet_tests::wait_for("the alert on the dashboard", || async {
        let (_, page) = fra.get("/").await.ok()?;
        page.contains("class=\"ack-alert\"").then_some(page)
    })
    .await
    .unwrap();
    let row = dashboard
        .split("<tr")
        .find(|r| r.contains("data-alert="))
        .unwrap();
    assert!(row.contains("DEU-CUS") && row.contains(serial), "{row}");
    let id = row
        .split("data-alert=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let (s, _) = fra
        .post(&format!("/watch-alerts/{id}/acknowledge"), &[])
        .await
        .unwrap();
    assert!(s.is_redirection() || s == StatusCode::OK, "{s}");
    let (_, after) = fra.get("/").await.unwrap();
    assert!(!after.contains("class=\"ack-alert\""), "{after}");
    let (_, list) = fra.get("/watches").await.unwrap();
    assert!(
        list.contains("officer"),
        "acknowledged by the officer: {list}"
    );
    // In French too.
    fra.get("/lang/fr?back=/watches").await.unwrap();
    let (_, fr) = fra.get("/watches").await.unwrap();
    assert!(fr.contains("Liste de surveillance"), "{fr}");
    t.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_trace_is_filled_from_a_seizure_asked_for_more_and_answered_in_parts_in_the_console() {
    let t = TestGateways::start(0).await.unwrap();
    let http = reqwest::Client::new();
    // FRA's seizure (synthetic): a firearm with its import marking, and an ammunition lot.
    let rec = json!({
        "national_ref": "SYN-FRA-TR-9",
        "case_reference": "SYN-CASE-9",
        "event": {"date": "2025-03-01", "place": {"country": "FRA", "locality": "Synthetic town"}, "seizing_agency": "AGENCY_KIND_POLICE"},
        "context": {"seizure_kind": "SEIZURE_KIND_SEIZED"},
        "firearms": [{"serial_number": "SYN-TR-9001", "manufacturer": "Synthetic Arms", "model": "S-3",
            "country_of_manufacture": "DEU", "year_of_manufacture": 2014,
            "import_marking": {"country": "FRA", "year": 2015},
            "other_markings": [{"text": "SYN-PROOF", "location": "barrel"}],
            "marking_condition": "MARKING_CONDITION_PARTLY_OBLITERATED"}],
        "ammunition": [{"calibre": "9x19", "quantity": "50", "manufacturer": "Synthetic Ammunition Works",
            "headstamp": "SYN 19", "lot": "SYN-LOT-77"}]
    });
    let created: serde_json::Value = http
        .post(t.fra.url("/api/v1/records"))
        .bearer_auth(t.fra.token(Role::Officer))
        .json(&rec)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let record_id = created["record"]["id"].as_str().unwrap().to_owned();
    let fra = Console::logged_in(&t.fra.gw.url, "all").await.unwrap();
    let (_, record_page) = fra.get(&format!("/records/{record_id}")).await.unwrap();
    assert!(
        record_page.contains(&format!("/traces/new?record={record_id}")),
        "{record_page}"
    );
    let (s, form) = fra
        .get(&format!("/traces/new?record={record_id}"))
        .await
        .unwrap();
    assert_eq!(s, StatusCode::OK, "{form}");
    for filled in [
        "value=\"SYN-TR-9001\"",
        "value=\"2014\"",
        "value=\"2015\"",
        "value=\"SYN-PROOF\"",
        "value=\"barrel\"",
        "value=\"9x19\"",
        "value=\"SYN 19\"",
        "value=\"SYN-LOT-77\"",
        &format!("value=\"{record_id}\""),
    ] {
        assert!(form.contains(filled), "{filled} not filled in: {form}");
    }
    assert!(form.contains("id=\"marking-practices\""), "{form}");
    // Sent as the form posts it (the officer only adds the reason and legal basis).
    let (s, page) = fra
        .post(
            "/traces",
            &[
                ("requested_country", "DEU"),
                ("serial_number", "SYN-TR-9001"),
                ("manufacturer", "Synthetic Arms"),
                ("country_of_manufacture", "DEU"),
                ("import_country", "FRA"),
                ("import_year", "2015"),
                ("marking_condition", "partly_obliterated"),
                ("ammunition_calibre", "9x19"),
                ("ammunition_quantity", "50"),
                ("ammunition_lot", "SYN-LOT-77"),
                ("seizure_record_id", &record_id),
                ("urgency", "routine"),
                ("legal_basis", "Synthetic basis"),
                ("reason", "Synthetic seizure"),
            ],
        )
        .await
        .unwrap();
    assert!(s.is_redirection() || s == StatusCode::OK, "{s}: {page}");
    let list: serde_json::Value = http
        .get(t.fra.url("/api/v1/traces?direction=outgoing"))
        .bearer_auth(t.fra.token(Role::TracingOfficer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sent = &list["items"][0];
    assert_eq!(
        sent["request"]["items"].as_array().unwrap().len(),
        2,
        "{sent}"
    );
    assert_eq!(
        sent["request"]["items"][1]["ammunition"]["lot"], "SYN-LOT-77",
        "the ammunition lot is traced: {sent}"
    );
    let id = sent["request"]["id"].as_str().unwrap().to_owned();

    // DEU asks for more information in its console; FRA answers in its own.
    let deu = Console::logged_in(&t.deu.gw.url, "all").await.unwrap();
    tracenet_tests::wait_for("DEU receives the request", || async {
        let (_, p) = deu.get(&format!("/traces/{id}")).await.ok()?;
        p.contains("id=\"answer-form\"").then_some(())
    })
    .await
    .unwrap();
    let (_, incoming) = deu.get(&format!("/traces/{id}")).await.unwrap();
    assert!(
        incoming.contains("9x19") && incoming.contains("SYN-TR-9001"),
        "{incoming}"
    );
    deu.post(
        &format!("/traces/{id}/answer"),
        &[
            ("outcome", "more_information_requested"),
            ("remarks", "Which barrel marking? (synthetic)"),
        ],
    )
    .await
    .unwrap();
    let asked = tracenet_tests::wait_for("FRA sees the question", || async {
        let (_, p) = fra.get(&format!("/traces/{id}")).await.ok()?;
        p.contains("id=\"inform-form\"").then_some(p)
    })
    .await
    .unwrap();
    assert!(asked.contains("Which barrel marking?"), "{asked}");
    fra.post(
        &format!("/traces/{id}/information"),
        &[("text", "SYN-PROOF on the barrel (synthetic)")],
    )
    .await
    .unwrap();
    tracenet_tests::wait_for("DEU sees the information", || async {
        let (_, p) = deu.get(&format!("/traces/{id}")).await.ok()?;
        p.contains("SYN-PROOF on the barrel").then_some(())
    })
    .await
    .unwrap();
    deu.post(
        &format!("/traces/{id}/answer"),
        &[
            ("outcome", "answered"),
            ("remarks", "Exported (synthetic)"),
            ("custody_role", "exporter"),
            ("custody_name", "Synthetic Exporter"),
            ("custody_country", "DEU"),
            ("next_country", "ITA"),
        ],
    )
    .await
    .unwrap();
    let answered = tracenet_tests::wait_for("FRA sees the answer", || async {
        let (_, p) = fra.get(&format!("/traces/{id}")).await.ok()?;
        p.contains("id=\"start-follow-on\"").then_some(p)
    })
    .await
    .unwrap();
    assert!(answered.contains("id=\"trace-messages\""), "{answered}");
    assert!(
        answered.contains(&format!("/traces/new?follows_on={id}&amp;requested=ITA")),
        "{answered}"
    );
    // The seizure says it was traced (its update follows the answer being applied).
    let r = tracenet_tests::wait_for("the seizure marked traced", || async {
        let r: serde_json::Value = http
            .get(t.fra.url(&format!("/api/v1/records/{record_id}")))
            .bearer_auth(t.fra.token(Role::Officer))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (r["record"]["tracing"]["traced"] == true).then_some(r)
    })
    .await
    .unwrap();
    assert_eq!(r["record"]["tracing"]["trace_requested"], true, "{r}");
    t.shutdown().await.unwrap();
}
