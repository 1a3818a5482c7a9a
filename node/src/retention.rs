//! Retention of received copies: a background task deletes every copy whose owner's
//! `retention_days` has run out (the expiry is computed when the copy is kept, see
//! [`crate::provenance::expires_at`]), auditing each purge before it deletes the copy.
//!
//! Time is the node's [`crate::clock::Clock`], so tests move an injected clock instead of waiting.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracenet_proto::v1 as pb;

use crate::audit::{Event, EventKind};
use crate::context::NodeContext;
use crate::ids::NodeId;
use crate::ledger::LedgerError;
use crate::provenance::{expired, expiry};

/// Default time between two sweeps.
pub const DEFAULT_SWEEP: Duration = Duration::from_secs(60);

/// Why a sweep stopped. The next sweep tries again.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// The ledger could not be read or written.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The purge could not be audited, so the copy was kept.
    #[error("audit log unavailable: {0}")]
    Audit(String),
}

/// The audit event of one purge.
pub fn purge_event(copy: &pb::ReceivedRecord) -> Event {
    let reference = copy.reference.clone().unwrap_or_default();
    let days = copy.handling.as_ref().map_or(0, |h| h.retention_days);
    Event {
        peer: reference.owner_node,
        request_id: copy.request_id.clone(),
        detail: format!(
            "received copy purged: the owner's retention of {days} day(s) ended at {}",
            expiry(copy)
        ),
        record_refs: vec![reference.reference],
        ..Event::new(EventKind::RetentionPurge)
    }
}

/// Purges every copy past its retention now: each is audited, then deleted. Blocking.
pub fn sweep(ctx: &NodeContext) -> Result<usize, RetentionError> {
    let now = ctx.clock.now_secs();
    let mut purged = 0;
    for copy in expired(ctx.ledger.list_received()?, now) {
        let reference = copy.reference.clone().unwrap_or_default();
        // A copy whose owner id does not parse was never kept by this release; skip it.
        let Ok(owner) = NodeId::parse(&reference.owner_node) else {
            continue;
        };
        crate::audit::audit_then(
            || {
                ctx.audit
                    .append(vec![purge_event(&copy)], now)
                    .map(drop)
                    .map_err(|e| RetentionError::Audit(e.to_string()))
            },
            || Ok(ctx.ledger.remove_received(&owner, &reference.reference)?),
        )?;
        purged += 1;
    }
    Ok(purged)
}

/// Sweeps every `every` until `shutdown`.
pub async fn run(ctx: NodeContext, every: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let c = ctx.clone();
        match tokio::task::spawn_blocking(move || sweep(&c)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(purged = n, "received copies past retention purged"),
            Ok(Err(e)) => tracing::warn!(error = %e, "retention sweep failed"),
            Err(_) => tracing::error!("retention sweep task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_purge_is_audited_with_the_owner_and_reference() {
        let copy = pb::ReceivedRecord {
            reference: Some(pb::RecordRef {
                owner_node: "FRA-POL".into(),
                reference: "r1".into(),
            }),
            handling: Some(pb::Handling {
                retention_days: 3,
                ..Default::default()
            }),
            expires_at: 99,
            ..Default::default()
        };
        let e = purge_event(&copy);
        assert_eq!(e.kind, EventKind::RetentionPurge);
        assert_eq!(
            (e.peer.as_str(), e.record_refs.as_slice()),
            ("FRA-POL", &["r1".to_owned()][..])
        );
        assert!(e.detail.contains("3 day(s)"), "{}", e.detail);
    }
}
