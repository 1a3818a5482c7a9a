//! Mutual TLS on both listeners: who gets in, who is refused, and the identity handlers see.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tracenet_proto::v1 as pb;
use tracenet_tests::{ClientCert, TestFederation};

/// The refusal must come from the TLS layer, before any gRPC handler or interceptor runs: either
/// connecting fails, or (TLS 1.3 lets the client finish first) the first call fails as a
/// transport error rather than an application status.
fn assert_transport_refusal<T: std::fmt::Debug>(r: Result<T, tonic::Status>, what: &str) {
    let status = r.expect_err(what);
    assert!(
        matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
        ),
        "{what}: refused too late, by the application: {status:?}"
    );
}

async fn refused_on_peer_api(fed: &TestFederation, target: usize, cert: ClientCert) {
    match fed.peer_client(target, cert.clone()).await {
        Err(_) => {} // refused during the handshake
        Ok(mut client) => assert_transport_refusal(
            client.ping(pb::PingRequest {}).await,
            &format!("peer API with {cert:?}"),
        ),
    }
}

async fn refused_on_local_api(fed: &TestFederation, target: usize, cert: ClientCert) {
    match fed.local_client(target, cert.clone()).await {
        Err(_) => {}
        Ok(mut client) => assert_transport_refusal(
            client.get_node_info(pb::GetNodeInfoRequest {}).await,
            &format!("local API with {cert:?}"),
        ),
    }
}

#[tokio::test]
async fn clients_without_a_valid_federation_certificate_are_refused_on_both_listeners() {
    let fed = TestFederation::start(2).await.unwrap();
    for cert in [
        ClientCert::None,
        ClientCert::Negative("rogue-node"),
        ClientCert::Negative("expired-node"),
    ] {
        refused_on_peer_api(&fed, 1, cert.clone()).await;
        refused_on_local_api(&fed, 1, cert).await;
    }
    // The node is still healthy after the refusals, and a good client still gets in.
    let mut ok = fed.peer_client(1, ClientCert::Of(0, "node")).await.unwrap();
    ok.ping(pb::PingRequest {}).await.unwrap();
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_peer_identity_reaching_the_handler_comes_from_the_certificate() {
    let fed = TestFederation::start(3).await.unwrap();
    let mut client = fed.peer_client(0, ClientCert::Of(2, "node")).await.unwrap();
    let pong = client.ping(pb::PingRequest {}).await.unwrap().into_inner();
    assert_eq!(pong.node_id, "FRA-POL");
    assert_eq!(pong.caller_identity, "spiffe://tracenet/node/ITA-POL");

    // Node-to-node through the node's own client, driven from the local API.
    let mut admin = fed.admin(1).await.unwrap();
    let seen = admin
        .check_peer(pb::CheckPeerRequest {
            node_id: "FRA-POL".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.peer_node_id, "FRA-POL");
    assert_eq!(
        seen.caller_identity_seen_by_peer,
        "spiffe://tracenet/node/DEU-CUS"
    );

    let unknown = admin
        .check_peer(pb::CheckPeerRequest {
            node_id: "KEN-DCI".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::Unavailable, "{unknown:?}");
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn only_the_nodes_own_gateway_and_admin_may_call_its_local_api() {
    let fed = TestFederation::start(2).await.unwrap();
    for cert in [
        ClientCert::Of(0, "node"),    // a node certificate, even the node's own
        ClientCert::Of(1, "node"),    // a peer
        ClientCert::Of(1, "gateway"), // another node's gateway
        ClientCert::Of(1, "admin"),   // another node's admin
    ] {
        let mut c = fed.local_client(0, cert.clone()).await.unwrap();
        let err = c
            .get_node_info(pb::GetNodeInfoRequest {})
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            tonic::Code::PermissionDenied,
            "{cert:?}: {err:?}"
        );
    }
    for cert in [ClientCert::Of(0, "gateway"), ClientCert::Of(0, "admin")] {
        let mut c = fed.local_client(0, cert.clone()).await.unwrap();
        let info = c.get_node_info(pb::GetNodeInfoRequest {}).await.unwrap();
        assert_eq!(info.into_inner().node_id, "FRA-POL");
    }
    // Gateways and admin tools may not use the peer API.
    for cert in [ClientCert::Of(0, "gateway"), ClientCert::Of(1, "admin")] {
        let mut c = fed.peer_client(0, cert.clone()).await.unwrap();
        let err = c.ping(pb::PingRequest {}).await.unwrap_err();
        assert_eq!(
            err.code(),
            tonic::Code::PermissionDenied,
            "{cert:?}: {err:?}"
        );
    }
    fed.shutdown().await.unwrap();
}

#[tokio::test]
async fn oversized_messages_are_refused_with_a_clear_status_on_both_listeners() {
    let fed = TestFederation::start(1).await.unwrap();
    let big = "X".repeat(5 * 1024 * 1024);

    let mut peer = fed.peer_client(0, ClientCert::Of(0, "node")).await.unwrap();
    let err = peer
        .lookup(pb::LookupRequest {
            context: None,
            serial_number: big.clone(),
            manufacturer: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::OutOfRange, "{err:?}");
    assert!(err.message().contains("too large"), "{err:?}");

    let mut admin = fed.admin(0).await.unwrap();
    let mut rec = tracenet_node::sample::record("FRA".parse().unwrap(), 1);
    rec.notes = big;
    let err = admin
        .create_record(pb::CreateRecordRequest { record: Some(rec) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::OutOfRange, "{err:?}");
    let info = admin
        .get_node_info(pb::GetNodeInfoRequest {})
        .await
        .unwrap();
    assert_eq!(info.into_inner().record_count, 0);
    fed.shutdown().await.unwrap();
}
