//! Keeps this node's sealing key and hub route in the directory: after start, and whenever the
//! directory's copy differs from what this node holds and is configured with, it publishes them
//! (signed by this node, like every directory fact of its own).

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracenet_proto::v1 as pb;

use crate::config::HubConfig;
use crate::directory::replica::Directory;
use crate::ids::NodeId;

/// What this node wants the directory to say of it.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// Its X25519 public key.
    pub sealing_key: Vec<u8>,
    /// Its hub route (absent: no hub).
    pub route: Option<pb::HubRoute>,
}

impl Wanted {
    /// From the node's key and `[hub]` section.
    pub fn new(sealing_key: [u8; 32], cfg: &HubConfig) -> Wanted {
        Wanted {
            sealing_key: sealing_key.to_vec(),
            route: cfg.hub.as_ref().map(|h| pb::HubRoute {
                hub: h.to_string(),
                outbound_only: cfg.outbound_only,
            }),
        }
    }

    /// The commands that would bring `entries` (this node's, as the directory holds them) to
    /// what is wanted; empty when they say it already.
    pub fn missing(&self, entries: Option<&pb::MemberEntries>) -> Vec<pb::directory_command::Op> {
        use pb::directory_command::Op;
        let mut ops = Vec::new();
        if entries.is_none_or(|e| e.sealing_key != self.sealing_key) {
            ops.push(Op::PublishSealingKey(pb::SealingKey {
                public_key: self.sealing_key.clone(),
            }));
        }
        let held = entries.and_then(|e| e.hub_route.clone());
        if let Some(r) = &self.route
            && held.as_ref() != Some(r)
        {
            ops.push(Op::PublishHubRoute(r.clone()));
        }
        if self.route.is_none() && held.is_some_and(|h| !h.hub.is_empty()) {
            ops.push(Op::PublishHubRoute(pb::HubRoute::default()));
        }
        ops
    }
}

/// Publishes what is missing whenever the directory changes, until `shutdown`. Proposals that
/// fail (no leader yet, not admitted yet) are tried again on the next change or after a while.
pub async fn run(
    me: NodeId,
    dir: std::sync::Arc<Directory>,
    wanted: Wanted,
    shutdown: CancellationToken,
) {
    let mut rx = dir.subscribe();
    loop {
        let ops = {
            let p = rx.borrow_and_update();
            let active = p
                .state
                .members
                .get(me.as_str())
                .is_some_and(|m| m.status == pb::MemberStatus::Active as i32);
            match active {
                true => wanted.missing(p.state.entries.get(me.as_str())),
                false => Vec::new(),
            }
        };
        for op in ops {
            let cmd = pb::DirectoryCommand {
                op: Some(op),
                ..Default::default()
            };
            match dir.propose(cmd).await {
                Ok(r) if !r.applied => tracing::warn!(refusal = %r.refusal, "hub entry refused"),
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "hub entry not published yet"),
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = rx.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn publishes_only_what_differs() {
        let cfg = HubConfig {
            hub: Some(NodeId::parse("BEL-HUB").unwrap()),
            outbound_only: true,
            ..HubConfig::default()
        };
        let w = Wanted::new([5; 32], &cfg);
        assert_eq!(w.missing(None).len(), 2);
        let held = pb::MemberEntries {
            sealing_key: vec![5; 32],
            hub_route: w.route.clone(),
            ..Default::default()
        };
        assert!(w.missing(Some(&held)).is_empty());
        let none = Wanted::new([5; 32], &HubConfig::default());
        assert_eq!(none.missing(Some(&held)).len(), 1);
    }
}
