//! What the process tests share: the `tracenet-node` binary, free loopback ports, a child
//! process killed when dropped, and an admin client that waits for a node to come up.

// Each test binary uses part of this module.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use tonic::transport::Channel;
use tracenet_node::client::connect_local;
use tracenet_node::config::ClientCertFiles;
use tracenet_node::ids::NodeId;
use tracenet_node::tls::TlsMaterial;
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::node_api_client::NodeApiClient;

pub const BIN: &str = env!("CARGO_BIN_EXE_tracenet-node");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A node process, killed when dropped so a failing test leaves nothing running.
pub struct NodeProcess(pub Child);

impl NodeProcess {
    pub fn id(&self) -> u32 {
        self.0.id()
    }
    /// SIGKILL: no shutdown path runs.
    pub fn kill_9(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.0.wait().unwrap()
    }
    /// Whether the process has exited (it should not have, while it is expected to serve).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.try_wait().unwrap()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The admin client of node `node` (certificates under `certs/<node>/`) on `local`, once the
/// node answers there; `None` if it does not within `within`.
pub async fn try_admin(
    certs: &Path,
    node: &str,
    local: &str,
    within: Duration,
) -> Option<NodeApiClient<Channel>> {
    let tls = TlsMaterial::load_client(
        &certs.join("ca.pem"),
        &ClientCertFiles {
            cert: certs.join(node).join("admin.pem"),
            key: certs.join(node).join("admin.key"),
        },
    )
    .unwrap();
    let id = NodeId::parse(node).unwrap();
    // Poll until the local API answers: the process has started listening.
    let deadline = tokio::time::Instant::now() + within;
    let mut pause = Duration::from_millis(10);
    loop {
        if let Ok(mut c) = connect_local(local, &tls, &id).await
            && c.get_node_info(pb::GetNodeInfoRequest {}).await.is_ok()
        {
            return Some(c);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// The ids of every record the node lists, page by page.
pub async fn all_record_ids(c: &mut NodeApiClient<Channel>) -> BTreeSet<String> {
    let mut present = BTreeSet::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_records(pb::ListRecordsRequest {
                page_size: 500,
                page_token: token.clone(),
                newest_first: false,
            })
            .await
            .unwrap()
            .into_inner();
        present.extend(page.records.into_iter().map(|r| r.record.unwrap().id));
        if page.next_page_token.is_empty() {
            return present;
        }
        token = page.next_page_token;
    }
}
