//! The local API's directory calls: read the replica (locally or linearizably) and propose
//! commands written by this node. Policies are validated here before they are proposed, so a bad
//! file is refused with its reasons instead of becoming a replicated refusal.

use tonic::Status;
use tracenet_proto::v1 as pb;

use crate::context::NodeContext;
use crate::directory::replica::{Directory, DirectoryError};
use crate::policy::Policy;

fn replica(ctx: &NodeContext) -> Result<&Directory, Status> {
    ctx.directory
        .as_deref()
        .ok_or_else(|| DirectoryError::Disabled.into())
}

/// The directory as this replica holds it, or linearizably.
pub async fn get(ctx: &NodeContext, linearizable: bool) -> Result<pb::DirectoryView, Status> {
    let dir = replica(ctx)?;
    let published = if linearizable {
        dir.linearizable().await?
    } else {
        dir.local()
    };
    let status = dir.status();
    Ok(pb::DirectoryView {
        state: Some((*published.state).clone()),
        applied_index: published.applied_index,
        leader: status.leader.unwrap_or_default(),
        term: status.term,
        voters: status.voters,
        learners: status.learners,
        snapshot_index: status.snapshot_index,
        purged_index: status.purged_index,
    })
}

/// Proposes `cmd` as written by this node. An admission of this node itself with no keys is
/// completed from its own certificate, signing key and advertised endpoint (how the secretariat
/// founds the directory).
pub async fn propose(
    ctx: &NodeContext,
    mut cmd: pb::DirectoryCommand,
) -> Result<pb::DirectoryResponse, Status> {
    use pb::directory_command::Op;
    let dir = replica(ctx)?;
    match cmd.op.as_mut() {
        None => return Err(Status::invalid_argument("command has no operation")),
        Some(Op::Admit(m)) if m.node_id == ctx.node_id.as_str() => {
            if m.signing_key.is_empty() {
                m.signing_key = ctx.signing.public_key();
            }
            if m.cert_fingerprint.is_empty() {
                m.cert_fingerprint = ctx.cert_fingerprint.clone();
            }
            if m.endpoint.is_empty() {
                m.endpoint = dir.advertise().to_owned();
            }
            if m.country.is_empty() {
                m.country = ctx.country.to_string();
            }
        }
        Some(Op::PublishPolicy(p)) => {
            let parsed = Policy::parse(p.clone())
                .map_err(|e| Status::invalid_argument(format!("policy: {e}")))?;
            if parsed.owner() != ctx.country {
                return Err(Status::invalid_argument(format!(
                    "policy owner_country {} is not this node's country {}",
                    parsed.owner(),
                    ctx.country
                )));
            }
        }
        Some(_) => {}
    }
    Ok(dir.propose(cmd).await?)
}
