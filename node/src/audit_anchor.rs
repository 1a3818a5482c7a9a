//! Anchoring the audit log outside the node: every `audit_publish_ms` (and at shutdown) the node
//! signs an audit checkpoint when anything is new and publishes its sequence and chain value in
//! the directory (`PublishAuditCheckpoint`, signed by the node, replicated to every member).
//! Whoever then truncates or rewrites the log on disk, even re-signing checkpoints with the key
//! beside it, no longer matches what the federation holds; `tracenet-node audit verify` checks it.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::directory::replica::{Directory, DirectoryError};

/// Signs a checkpoint (if anything is new) and publishes the latest one unless the directory
/// already holds it; `wait_local` as in [`Directory::publish_audit_checkpoint`]. Returns
/// whether a new value was published.
pub async fn publish_once(
    audit: &Arc<AuditLog>,
    directory: &Directory,
    clock: &dyn Clock,
    wait_local: bool,
) -> Result<bool, DirectoryError> {
    let now = clock.now_secs();
    let log = audit.clone();
    // Signing a checkpoint flushes the log: blocking I/O, off the async workers.
    let latest = tokio::task::spawn_blocking(move || {
        log.checkpoint(now)?;
        log.latest_checkpoint()
    })
    .await
    .map_err(|e| DirectoryError::Fatal(e.to_string()))?
    .map_err(|e| DirectoryError::Fatal(format!("audit log: {e}")))?;
    match latest {
        Some((seq, hash)) => {
            directory
                .publish_audit_checkpoint(seq, hash, wait_local)
                .await
        }
        None => Ok(false),
    }
}

/// Publishes every `every` until `shutdown` (the final publication is the server's, after the
/// last audited request). Failures are logged and retried on the next tick.
pub async fn run(
    audit: Arc<AuditLog>,
    directory: Arc<Directory>,
    clock: Arc<dyn Clock>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // The first tick is immediate: nothing to anchor yet.
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = publish_once(&audit, &directory, clock.as_ref(), true).await {
            tracing::warn!(error = %e, "could not publish the audit checkpoint in the directory");
        }
    }
}
