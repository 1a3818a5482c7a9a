//! The local API for the people who oversee the node: what it is and holds (node info), what it
//! did (the audit log), and what its sharing policy would disclose of a record to a given
//! requester (a preview that discloses and audits nothing).

use tonic::{Request, Response, Status};
use tracenet_proto::v1 as pb;

use super::{ApiError, LocalApi, page_size};
use crate::disclose;
use crate::ids::{NodeId, RecordId};
use crate::store::StoreError;

pub(super) async fn node_info(
    api: &LocalApi,
    request: Request<pb::GetNodeInfoRequest>,
) -> Result<Response<pb::NodeInfo>, Status> {
    api.call(request, |c, _, _| {
        Ok(pb::NodeInfo {
            node_id: c.node_id.to_string(),
            country: c.country.to_string(),
            role: c.role.as_str().into(),
            record_count: c.store.count()?,
            version: env!("CARGO_PKG_VERSION").into(),
            peers: c.peers.known().iter().map(ToString::to_string).collect(),
            // An unreadable outbox must not hide the rest of the node's state.
            outbox_pending: c.ledger.pending().unwrap_or(0),
            signing_public_key: tracenet_ids::hex::encode(&c.signing.public_key()),
            policy_version: c.roster.policy().version(),
            policy_problem: c.roster.view().policy_problem.clone().unwrap_or_default(),
        })
    })
    .await
}

pub(super) async fn list_audit(
    api: &LocalApi,
    request: Request<pb::ListAuditRequest>,
) -> Result<Response<pb::ListAuditResponse>, Status> {
    api.call(request, |c, _, req| {
        let limit = page_size(req.limit);
        let entries = c.audit.list(&req.kind, &req.peer, req.after_seq, limit)?;
        Ok(pb::ListAuditResponse { entries })
    })
    .await
}

pub(super) async fn preview_disclosure(
    api: &LocalApi,
    request: Request<pb::PreviewDisclosureRequest>,
) -> Result<Response<pb::PreviewDisclosureResponse>, Status> {
    api.call(request, |c, _, req| {
        let id = RecordId::parse(req.record_id.trim())
            .map_err(|e| ApiError::BadArgument(e.to_string()))?;
        let who = NodeId::parse(req.requester_node.trim())
            .map_err(|e| ApiError::BadArgument(format!("requester_node: {e}")))?;
        let agency = pb::AgencyKind::try_from(req.agency_kind)
            .map_err(|_| ApiError::BadArgument("unknown agency_kind".into()))?;
        let purpose = match pb::Purpose::try_from(req.purpose) {
            Ok(p) if p != pb::Purpose::Unspecified => p,
            _ => return Err(ApiError::BadArgument("purpose is required".into())),
        };
        let record = c
            .store
            .get(id)?
            .and_then(|s| s.record)
            .ok_or(ApiError::Store(StoreError::NotFound(id)))?;
        Ok(disclose::preview(
            &c.roster.policy(),
            &who,
            c.roster.regions(&who),
            c.roster.member_kind(&who),
            agency,
            purpose,
            &record,
        ))
    })
    .await
}
