//! The real `tracenet-gateway` binary: `user add` reads the password from stdin and refuses a
//! short one, `run` serves the login page and accepts that user, and SIGTERM stops it cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tracenet-gateway");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn user_add(config: &std::path::Path, name: &str, password: &str) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(["user", "add", "--config"])
        .arg(config)
        .args(["--username", name, "--role", "officer", "--role", "analyst"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn user_add_then_run_then_login_then_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    tracenet_certs::write_dev_federation(&dir.path().join("certs"), &["FRA-POL".to_owned()])
        .unwrap();
    let port = free_port();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"data\"\n[node]\nnode_id = \"FRA-POL\"\n\
             address = \"127.0.0.1:1\"\nca = \"certs/ca.pem\"\ncert = \"certs/FRA-POL/gateway.pem\"\n\
             key = \"certs/FRA-POL/gateway.key\"\n"
        ),
    )
    .unwrap();

    let short = user_add(&config, "ana", "short");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12"));
    let ok = user_add(&config, "ana", "a synthetic passphrase");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let again = user_add(&config, "ana", "a synthetic passphrase");
    assert!(!again.status.success(), "a taken name must be refused");

    let mut server = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let page = loop {
        if let Ok(r) = http.get(format!("{base}/login")).send().await {
            break r.text().await.unwrap();
        }
        assert!(Instant::now() < deadline, "the gateway never listened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    let token = page[at..].split('"').next().unwrap().to_owned();
    let r = http
        .post(format!("{base}/login"))
        .form(&[
            ("csrf", token.as_str()),
            ("username", "ana"),
            ("password", "a synthetic passphrase"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::SEE_OTHER);

    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = server.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
}
