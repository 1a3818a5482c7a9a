//! Every certificate bound to what the node and the directory list: a gateway or admin
//! certificate the federation CA issued for the right identity is accepted on the local API only
//! if the node lists its fingerprint; a certificate revoked through the directory, and a
//! suspended member's node certificate, never complete a TLS handshake. Real nodes, real mTLS
//! sockets; every wait is on a condition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tracenet_certs::{Ca, IssuedCert, PeerIdentity, Validity};
use tracenet_devnet::NodeSpec;
use tracenet_node::config::Role;
use tracenet_node::ids::NodeId;
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::directory_command::Op;
use tracenet_proto::v1::node_api_client::NodeApiClient;
use tracenet_proto::v1::peer_exchange_client::PeerExchangeClient;
use tracenet_tests::{ClientCert, TestFederation, wait_for};

const WAIT: Duration = Duration::from_secs(20);

/// What someone holding the federation CA's key could mint.
fn mint(t: &TestFederation, identity: PeerIdentity) -> IssuedCert {
    let dir = t.cert_dir();
    let ca = Ca::from_pem(
        &std::fs::read_to_string(dir.join("ca.pem")).unwrap(),
        &std::fs::read_to_string(dir.join("ca.key")).unwrap(),
    )
    .unwrap();
    ca.issue(&identity, Validity::Current).unwrap()
}

fn fingerprint(cert: &IssuedCert) -> String {
    let path = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(path.path(), &cert.cert_pem).unwrap();
    tracenet_node::tls::fingerprint_of_pem_file(path.path()).unwrap()
}

/// A channel to node `target` (local or peer API) presenting `cert`; `None` when the handshake
/// already failed while connecting.
async fn channel_with(
    t: &TestFederation,
    target: usize,
    local_api: bool,
    cert: &IssuedCert,
) -> Option<Channel> {
    let node = t.node(target);
    let addr = if local_api {
        node.local_addr
    } else {
        node.peer_addr
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(
            std::fs::read(t.cert_dir().join("ca.pem")).unwrap(),
        ))
        .domain_name(node.id.dns_name())
        .identity(Identity::from_pem(&cert.cert_pem, &cert.key_pem));
    Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .ok()
}

/// The refusal came from the TLS layer: connecting failed, or (TLS 1.3 lets the client finish
/// first) the first call failed as a transport error, never an application status.
fn assert_handshake_refused<T: std::fmt::Debug>(r: Option<Result<T, tonic::Status>>, what: &str) {
    let Some(r) = r else { return };
    let status = r.expect_err(what);
    assert!(
        matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
        ),
        "{what}: the handshake completed and the application refused: {status:?}"
    );
}

async fn node_info(ch: Option<Channel>) -> Option<Result<pb::NodeInfo, tonic::Status>> {
    let ch = ch?;
    Some(
        NodeApiClient::new(ch)
            .get_node_info(pb::GetNodeInfoRequest {})
            .await
            .map(|r| r.into_inner()),
    )
}

async fn health(ch: Channel) -> Result<i32, tonic::Status> {
    tonic_health::pb::health_client::HealthClient::new(ch)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|r| r.into_inner().status)
}

#[tokio::test]
async fn the_local_api_accepts_only_the_gateway_and_admin_certificates_the_node_lists() {
    let t = TestFederation::start(2).await.unwrap();
    let fra = NodeId::parse("FRA-POL").unwrap();
    // Another certificate for FRA-POL's gateway and admin identities, from the same CA.
    for minted in [
        mint(&t, PeerIdentity::Gateway(fra.clone())),
        mint(&t, PeerIdentity::Admin(fra.clone())),
    ] {
        assert_handshake_refused(
            node_info(channel_with(&t, 0, true, &minted).await).await,
            "a second certificate for FRA-POL's gateway or admin on its local API",
        );
    }
    // FRA-POL's own (listed) gateway certificate on DEU-CUS's local API.
    let mut c = t
        .local_client(1, ClientCert::Of(0, "gateway"))
        .await
        .unwrap();
    let err = c
        .get_node_info(pb::GetNodeInfoRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    // The listed ones keep working.
    for cert in [ClientCert::Of(0, "gateway"), ClientCert::Of(0, "admin")] {
        let mut c = t.local_client(0, cert).await.unwrap();
        let info = c.get_node_info(pb::GetNodeInfoRequest {}).await.unwrap();
        assert_eq!(info.into_inner().node_id, "FRA-POL");
    }
    t.shutdown().await.unwrap();
}

/// A secretariat voter and two national learners.
async fn founded() -> TestFederation {
    let t = TestFederation::start_specs(&[
        NodeSpec::new("CHE-SEC").voter(Role::Secretariat),
        NodeSpec::new("FRA-POL"),
        NodeSpec::new("DEU-CUS"),
    ])
    .await
    .unwrap();
    t.fed.found_directory().await.unwrap();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_certificate_revoked_in_the_directory_is_refused_and_the_listed_one_works() {
    let t = founded().await;
    let fra = NodeId::parse("FRA-POL").unwrap();
    let second = mint(&t, PeerIdentity::Gateway(fra));
    let dev_gateway = t.node(1).config.local_certificates.gateway_fingerprints[0].clone();
    // Not listed yet: refused.
    assert_handshake_refused(
        node_info(channel_with(&t, 1, true, &second).await).await,
        "an unlisted gateway certificate",
    );
    // FRA-POL lists a second gateway certificate in the directory (its admin, not its gateway).
    let list = Op::PublishLocalCertificates(pb::LocalCertificates {
        gateway_fingerprints: vec![dev_gateway, fingerprint(&second)],
        admin_fingerprints: t
            .node(1)
            .config
            .local_certificates
            .admin_fingerprints
            .clone(),
    });
    let by_gateway = t
        .local_client(1, ClientCert::Of(1, "gateway"))
        .await
        .unwrap()
        .propose_directory(pb::ProposeDirectoryRequest {
            command: Some(pb::DirectoryCommand {
                op: Some(list.clone()),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(
        by_gateway.code(),
        tonic::Code::PermissionDenied,
        "{by_gateway:?}"
    );
    t.fed.propose_applied(1, list).await.unwrap();
    let mut open = wait_for("the second gateway certificate accepted", || async {
        let ch = channel_with(&t, 1, true, &second).await?;
        let mut c = NodeApiClient::new(ch);
        c.get_node_info(pb::GetNodeInfoRequest {}).await.ok()?;
        Some(c)
    })
    .await
    .unwrap();
    // DEU-CUS may not revoke FRA-POL's certificate; FRA-POL may.
    let revoke = Op::RevokeCertificate(pb::CertificateRevocation {
        cert_fingerprint: fingerprint(&second),
        reason: "synthetic: console host lost".into(),
    });
    let r = t.fed.propose(2, revoke.clone()).await.unwrap();
    assert!(!r.applied && r.refusal.contains("may revoke only"), "{r:?}");
    t.fed.propose_applied(1, revoke).await.unwrap();
    t.fed
        .wait_for_directory(1, "the revocation", WAIT, |v| {
            v.state
                .as_ref()
                .is_some_and(|s| s.revocations.iter().any(|r| r.node_id == "FRA-POL"))
        })
        .await
        .unwrap();
    // Refused on the connection opened before, and at the handshake of a new one.
    let on_open = open
        .get_node_info(pb::GetNodeInfoRequest {})
        .await
        .unwrap_err();
    assert_eq!(on_open.code(), tonic::Code::PermissionDenied, "{on_open:?}");
    assert!(on_open.message().contains("revoked"), "{on_open:?}");
    assert_handshake_refused(
        node_info(channel_with(&t, 1, true, &second).await).await,
        "a revoked gateway certificate",
    );
    // The listed dev gateway certificate keeps working.
    let info = t
        .local_client(1, ClientCert::Of(1, "gateway"))
        .await
        .unwrap()
        .get_node_info(pb::GetNodeInfoRequest {})
        .await
        .unwrap();
    assert_eq!(info.into_inner().node_id, "FRA-POL");
    t.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_members_node_certificate_does_not_complete_a_handshake() {
    let t = founded().await;
    let d = &t.node(1).cert_dir;
    let cert = IssuedCert {
        principal: PeerIdentity::Node(t.node(1).id.clone()),
        cert_pem: std::fs::read_to_string(d.join("node.pem")).unwrap(),
        key_pem: std::fs::read_to_string(d.join("node.key")).unwrap(),
    };
    // Before: FRA-POL's node certificate gets a health answer from DEU-CUS.
    let ch = channel_with(&t, 2, false, &cert).await.unwrap();
    health(ch).await.unwrap();
    let suspend = pb::StatusChange {
        node_id: "FRA-POL".into(),
        reason: "synthetic test suspension".into(),
    };
    t.fed
        .propose_applied(0, Op::Suspend(suspend.clone()))
        .await
        .unwrap();
    t.wait_for_member_status(2, "FRA-POL", pb::MemberStatus::Suspended)
        .await
        .unwrap();
    // Neither health nor the exchange: the handshake itself fails.
    for target in [0, 2] {
        let ch = channel_with(&t, target, false, &cert).await;
        assert_handshake_refused(
            match ch {
                None => None,
                Some(ch) => Some(health(ch).await),
            },
            "health with a suspended member's certificate",
        );
        let ch = channel_with(&t, target, false, &cert).await;
        assert_handshake_refused(
            match ch {
                None => None,
                Some(ch) => Some(PeerExchangeClient::new(ch).ping(pb::PingRequest {}).await),
            },
            "ping with a suspended member's certificate",
        );
    }
    // Reinstated, it is let in again.
    t.fed
        .propose_applied(0, Op::Reinstate(suspend))
        .await
        .unwrap();
    wait_for("FRA-POL let in again", || async {
        let ch = channel_with(&t, 2, false, &cert).await?;
        PeerExchangeClient::new(ch)
            .ping(pb::PingRequest {})
            .await
            .ok()
    })
    .await
    .unwrap();
    t.shutdown().await.unwrap();
}
