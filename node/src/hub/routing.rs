//! Which way a message to a peer goes: directly, or sealed through a hub. Pure: decided from the
//! roster (what the directory says of the target) and this node's `[hub]` configuration.

use crate::config::HubConfig;
use crate::ids::NodeId;
use crate::roster::RosterView;

/// How to reach a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Dial its peer API.
    Direct,
    /// Seal to `recipient_key` and hand it to `hub`.
    ViaHub {
        /// The hub that carries it.
        hub: NodeId,
        /// The recipient's published X25519 key.
        recipient_key: Vec<u8>,
    },
    /// This node is the target's hub and the target is outbound-only: seal to
    /// `recipient_key` and hold it in this node's own mailbox for the target to collect.
    OwnMailbox {
        /// The recipient's published X25519 key.
        recipient_key: Vec<u8>,
    },
}

/// Why a peer cannot be reached. Retrying helps once the directory says more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The target accepts no inbound connections and names no hub.
    #[error("{0} is outbound-only and names no hub")]
    NoHub(NodeId),
    /// The hub that would carry the message is not an active member with the hub role.
    #[error("hub {0} is not an active hub")]
    HubNotActive(NodeId),
    /// The target has published no sealing key, so nothing can be sealed to it.
    #[error("{0} has published no sealing key")]
    NoSealingKey(NodeId),
}

/// The route to `target` from `own`.
pub fn route(
    view: &RosterView,
    own: &NodeId,
    cfg: &HubConfig,
    target: &NodeId,
) -> Result<Route, RouteError> {
    let published = view.hubs.routes.get(target);
    let hub = match published {
        Some(r) if r.outbound_only => {
            let hub = NodeId::parse(&r.hub).map_err(|_| RouteError::NoHub(target.clone()))?;
            if &hub == own {
                let recipient_key = view
                    .hubs
                    .sealing_keys
                    .get(target)
                    .cloned()
                    .ok_or_else(|| RouteError::NoSealingKey(target.clone()))?;
                return Ok(Route::OwnMailbox { recipient_key });
            }
            hub
        }
        _ => match &cfg.hub {
            Some(h) if cfg.relay_all && h != target => h.clone(),
            _ => return Ok(Route::Direct),
        },
    };
    if !view.hubs.hubs.contains(&hub) || !view.peers.contains_key(&hub) {
        return Err(RouteError::HubNotActive(hub));
    }
    let recipient_key = view
        .hubs
        .sealing_keys
        .get(target)
        .cloned()
        .ok_or_else(|| RouteError::NoSealingKey(target.clone()))?;
    Ok(Route::ViaHub { hub, recipient_key })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tracenet_proto::v1 as pb;

    use super::*;
    use crate::fixtures;

    fn id(s: &str) -> NodeId {
        NodeId::parse(s).unwrap()
    }

    fn view() -> RosterView {
        let mut v = fixtures::roster(&["ITA-CAR", "DEU-BKA", "BEL-HUB"]);
        v.hubs.hubs.insert(id("BEL-HUB"));
        v.hubs.sealing_keys.insert(id("ITA-CAR"), vec![7; 32]);
        v.hubs.routes.insert(
            id("ITA-CAR"),
            pb::HubRoute {
                hub: "BEL-HUB".into(),
                outbound_only: true,
            },
        );
        v
    }

    #[test]
    fn outbound_only_members_are_reached_through_their_hub() {
        let r = route(
            &view(),
            &id("FRA-POL"),
            &HubConfig::default(),
            &id("ITA-CAR"),
        )
        .unwrap();
        assert_eq!(
            r,
            Route::ViaHub {
                hub: id("BEL-HUB"),
                recipient_key: vec![7; 32]
            }
        );
        assert_eq!(
            route(
                &view(),
                &id("FRA-POL"),
                &HubConfig::default(),
                &id("DEU-BKA")
            )
            .unwrap(),
            Route::Direct
        );
    }

    #[test]
    fn relay_all_goes_through_own_hub_except_to_the_hub() {
        let cfg = HubConfig {
            hub: Some(id("BEL-HUB")),
            relay_all: true,
            ..HubConfig::default()
        };
        let mut v = view();
        v.hubs.sealing_keys.insert(id("DEU-BKA"), vec![9; 32]);
        assert!(matches!(
            route(&v, &id("FRA-POL"), &cfg, &id("DEU-BKA")).unwrap(),
            Route::ViaHub { .. }
        ));
        assert_eq!(
            route(&v, &id("FRA-POL"), &cfg, &id("BEL-HUB")).unwrap(),
            Route::Direct
        );
    }

    #[test]
    fn refuses_without_key_or_active_hub_and_holds_own_members_messages() {
        let mut v = view();
        v.hubs.sealing_keys.clear();
        assert_eq!(
            route(&v, &id("FRA-POL"), &HubConfig::default(), &id("ITA-CAR")),
            Err(RouteError::NoSealingKey(id("ITA-CAR")))
        );
        let mut v = view();
        v.hubs.hubs.clear();
        assert_eq!(
            route(&v, &id("FRA-POL"), &HubConfig::default(), &id("ITA-CAR")),
            Err(RouteError::HubNotActive(id("BEL-HUB")))
        );
        assert_eq!(
            route(
                &view(),
                &id("BEL-HUB"),
                &HubConfig::default(),
                &id("ITA-CAR")
            ),
            Ok(Route::OwnMailbox {
                recipient_key: vec![7; 32]
            })
        );
    }
}
