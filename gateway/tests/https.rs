//! HTTPS serving: with a `[tls]` section the gateway speaks TLS only and marks its cookies
//! `Secure` with the `__Host-` prefix, sends HSTS;
//! a plain-HTTP client gets no page.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;
use tracenet_gateway::config::{GatewayConfig, HttpsFiles, LoginConfig, NodeLink, SessionConfig};

#[tokio::test]
async fn https_serves_pages_with_secure_cookies_and_refuses_plain_http() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    tracenet_certs::write_dev_federation(&certs, &["FRA-POL".to_owned()]).unwrap();
    let node_dir = certs.join("FRA-POL");
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let cfg = GatewayConfig {
        listen: listener.local_addr().unwrap(),
        data_dir: dir.path().join("data"),
        node: NodeLink {
            node_id: tracenet_ids::NodeId::parse("FRA-POL").unwrap(),
            address: "127.0.0.1:1".into(),
            ca: certs.join("ca.pem"),
            cert: node_dir.join("gateway.pem"),
            key: node_dir.join("gateway.key"),
        },
        // The dev node certificate stands in for the console's web certificate.
        tls: Some(HttpsFiles {
            cert: node_dir.join("node.pem"),
            key: node_dir.join("node.key"),
        }),
        session: SessionConfig::default(),
        login: LoginConfig::default(),
        default_language: Default::default(),
        agency_kind: "police".into(),
        federated_deadline_ms: 3000,
        metrics: None,
    };
    cfg.check()
        .expect("TLS makes a non-loopback address acceptable");
    let app = tracenet_gateway::build(cfg, tracenet_gateway::app::system_clock()).unwrap();
    let stop = CancellationToken::new();
    let server = tokio::spawn(tracenet_gateway::run(app, listener, stop.clone()));

    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(certs.join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = ServerName::try_from("fra-pol.node.tracenet.test").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(b"GET /login HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tls.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let cookie = response
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: __host-tn_prelogin_fra_pol=")
        })
        .unwrap_or_else(|| panic!("no __Host- pre-login cookie:\n{response}"));
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(
        cookie.contains("; Path=/;") && !cookie.contains("Domain"),
        "{cookie}"
    );
    assert!(
        response
            .to_ascii_lowercase()
            .contains("\r\nstrict-transport-security: max-age=31536000\r\n"),
        "no HSTS over HTTPS:\n{response}"
    );

    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    plain
        .write_all(b"GET /login HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        plain.read_to_end(&mut buf),
    )
    .await;
    assert!(
        !String::from_utf8_lossy(&buf).contains("HTTP/1.1 200"),
        "plain HTTP was served"
    );

    stop.cancel();
    server.await.unwrap().unwrap();
}
