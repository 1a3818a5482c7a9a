//! The one place where the node's errors become gRPC statuses, for both listeners.
//!
//! Every layer has its own error enum saying what went wrong and whether retrying helps; the
//! services (`api`, `peer`, `directory::service`) return those errors with `?` and these
//! conversions decide, once, which status code and which words a caller sees. Internal details
//! (engine messages, corrupt data) are logged here and never sent: a caller learns whether to
//! retry, not how the node stores things.

use tonic::{Code, Status};
use tracenet_proto::v1 as pb;

use crate::api::ApiError;
use crate::audit::AuditError;
use crate::auth::Refusal;
use crate::directory::replica::DirectoryError;
use crate::disclose::DiscloseError;
use crate::envelope::EnvelopeError;
use crate::fanout::FanoutError;
use crate::ledger::LedgerError;
use crate::limits::LimitError;
use crate::model::batch::row_errors;
use crate::provenance::ProvenanceError;
use crate::store::StoreError;
use crate::workflow::WorkflowError;

/// What a caller is told when local storage failed in a way that may pass.
pub(crate) const STORAGE_UNAVAILABLE: &str = "storage temporarily unavailable; retry later";

impl From<StoreError> for Status {
    fn from(s: StoreError) -> Status {
        match s {
            StoreError::NotFound(_) => Status::not_found(s.to_string()),
            StoreError::DuplicateNationalRef { .. } => Status::already_exists(s.to_string()),
            StoreError::RevisionMismatch { .. } => Status::aborted(s.to_string()),
            StoreError::MissingId => Status::invalid_argument(s.to_string()),
            StoreError::Engine(_) => {
                tracing::error!(error = %s, "store failure");
                Status::unavailable(STORAGE_UNAVAILABLE)
            }
            StoreError::Corrupt(_) | StoreError::UnsupportedVersion(_) => {
                tracing::error!(error = %s, "store data problem");
                Status::internal("internal storage error")
            }
        }
    }
}

impl From<LedgerError> for Status {
    fn from(e: LedgerError) -> Status {
        match e {
            LedgerError::NotFound(m) => Status::not_found(m),
            LedgerError::Conflict(m) => Status::failed_precondition(m),
            LedgerError::Engine(_) | LedgerError::Corrupt(_) => {
                tracing::error!(error = %e, "ledger failure");
                Status::unavailable(STORAGE_UNAVAILABLE)
            }
        }
    }
}

/// An audit append that failed before an answer could leave: nothing was disclosed.
pub fn audit_before_answer(e: AuditError) -> Status {
    tracing::error!(error = %e, "audit append failed");
    Status::unavailable("audit log unavailable; nothing was disclosed")
}

/// A batch of field problems as `INVALID_ARGUMENT`, the first twenty in the message and every
/// one in the standard details (`google.rpc.Status` with a `google.rpc.BadRequest`, and a
/// `RowErrors` keeping line numbers; see `tracenet_proto::rpc`), so any gRPC client reads them.
fn invalid(errors: Vec<pb::RowError>) -> Status {
    let summary = errors
        .iter()
        .take(20)
        .map(|r| {
            if r.line > 0 {
                format!("line {}: {}: {}", r.line, r.field, r.reason)
            } else {
                format!("{}: {}", r.field, r.reason)
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    let details =
        tracenet_proto::rpc::field_error_details(Code::InvalidArgument as i32, &summary, &errors);
    Status::with_details(Code::InvalidArgument, summary, details.into())
}

impl From<WorkflowError> for Status {
    fn from(w: WorkflowError) -> Status {
        match w {
            WorkflowError::Invalid(errs) => invalid(row_errors(0, errs).collect()),
            WorkflowError::NoNode(_)
            | WorkflowError::NoDesignation { .. }
            | WorkflowError::Policy(_) => Status::failed_precondition(w.to_string()),
            WorkflowError::Ledger(l) => l.into(),
            WorkflowError::Store(s) => s.into(),
            WorkflowError::Audit(_) => {
                tracing::error!(error = %w, "workflow audit failure");
                Status::unavailable(STORAGE_UNAVAILABLE)
            }
        }
    }
}

impl From<LimitError> for Status {
    fn from(e: LimitError) -> Status {
        invalid(row_errors(0, e.0).collect())
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        match e {
            ApiError::Invalid(errors) => invalid(errors),
            ApiError::BadArgument(m) => Status::invalid_argument(m),
            ApiError::Store(s) => s.into(),
            ApiError::Task => Status::internal("internal error"),
            ApiError::Workflow(w) => w.into(),
            ApiError::AdminOnly(_) => Status::permission_denied(e.to_string()),
            ApiError::Peer { .. } => Status::unavailable(e.to_string()),
            ApiError::Watch(w) => w.into(),
        }
    }
}

impl From<crate::watch::WatchError> for Status {
    fn from(e: crate::watch::WatchError) -> Status {
        use crate::watch::WatchError;
        match e {
            WatchError::Invalid(errors) => invalid(errors),
            WatchError::NotFound(_) => Status::not_found(e.to_string()),
            WatchError::Full => Status::resource_exhausted(e.to_string()),
            WatchError::Storage(_) | WatchError::Corrupt(_) | WatchError::Audit(_) => {
                tracing::error!(error = %e, "watch list failure");
                Status::unavailable(STORAGE_UNAVAILABLE)
            }
        }
    }
}

impl From<DiscloseError> for Status {
    fn from(e: DiscloseError) -> Status {
        match e {
            DiscloseError::BadArgument(m) => Status::invalid_argument(m),
            DiscloseError::Refused(r) => Status::permission_denied(r.to_string()),
            DiscloseError::Denied(d) => Status::permission_denied(d.to_string()),
            DiscloseError::Store(_) | DiscloseError::Ledger(_) => {
                tracing::error!(error = %e, "storage failure answering a peer");
                Status::unavailable(STORAGE_UNAVAILABLE)
            }
        }
    }
}

impl From<FanoutError> for Status {
    fn from(e: FanoutError) -> Status {
        match e {
            FanoutError::BadArgument(m) => Status::invalid_argument(m),
            FanoutError::Audit(m) => {
                tracing::error!(error = %m, "audit append failed");
                Status::unavailable("audit log unavailable; nothing was sent")
            }
            FanoutError::Peer(m) => Status::failed_precondition(format!("peer {m}")),
            FanoutError::NoHub(m) => Status::failed_precondition(m),
            FanoutError::Storage(m) => {
                tracing::error!(error = %m, "keeping received copies failed");
                Status::unavailable(STORAGE_UNAVAILABLE)
            }
        }
    }
}

impl From<Refusal> for Status {
    fn from(r: Refusal) -> Status {
        match r {
            Refusal::NoIdentity(_) => Status::unauthenticated(r.to_string()),
            Refusal::NotAllowed { .. } | Refusal::Barred { .. } => {
                Status::permission_denied(r.to_string())
            }
        }
    }
}

impl From<EnvelopeError> for Status {
    fn from(e: EnvelopeError) -> Status {
        match e {
            EnvelopeError::Missing | EnvelopeError::Malformed(_) | EnvelopeError::BodyMismatch => {
                Status::invalid_argument(e.to_string())
            }
            EnvelopeError::SignerMismatch { .. } => Status::permission_denied(e.to_string()),
            // Both pass without the sender changing anything (the directory replicates the key,
            // clocks are corrected), so the sender's outbox keeps retrying.
            EnvelopeError::UnknownKey(_) | EnvelopeError::Stale { .. } => {
                Status::unavailable(e.to_string())
            }
            EnvelopeError::BadSignature => Status::unauthenticated(e.to_string()),
            EnvelopeError::Replayed(_) => Status::already_exists(e.to_string()),
            EnvelopeError::Busy => Status::resource_exhausted(e.to_string()),
            EnvelopeError::Key(_) => Status::internal("signing unavailable"),
        }
    }
}

impl From<ProvenanceError> for Status {
    fn from(e: ProvenanceError) -> Status {
        match e {
            ProvenanceError::Signature(_) | ProvenanceError::Mismatch(_) => {
                Status::permission_denied(e.to_string())
            }
            ProvenanceError::Own => Status::invalid_argument(e.to_string()),
            ProvenanceError::OnwardRefused(_) => Status::failed_precondition(e.to_string()),
        }
    }
}

impl From<DirectoryError> for Status {
    fn from(e: DirectoryError) -> Status {
        match e {
            DirectoryError::Disabled => Status::failed_precondition(e.to_string()),
            DirectoryError::NoLeader(_)
            | DirectoryError::NotCommitted(_)
            | DirectoryError::ReadTimeout(_)
            | DirectoryError::NoQuorumForRead => Status::unavailable(e.to_string()),
            DirectoryError::Fatal(_) => Status::internal(e.to_string()),
            DirectoryError::Refused(_) | DirectoryError::Revoked(_) => {
                Status::permission_denied(e.to_string())
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn storage_failures_say_retry_and_hide_the_engine() {
        for s in [
            Status::from(StoreError::Engine("disk on fire at /var/x".into())),
            Status::from(LedgerError::Engine("sled: io".into())),
            Status::from(DiscloseError::Store(StoreError::Engine(
                "secret path".into(),
            ))),
            Status::from(FanoutError::Storage("sled tree".into())),
        ] {
            assert_eq!(s.code(), Code::Unavailable);
            assert_eq!(s.message(), STORAGE_UNAVAILABLE);
        }
        let corrupt = Status::from(StoreError::Corrupt("bytes at key 0xdead".into()));
        assert_eq!(corrupt.code(), Code::Internal);
        assert!(!corrupt.message().contains("dead"));
    }

    #[test]
    fn a_ledger_error_maps_the_same_way_from_every_path() {
        let direct = Status::from(LedgerError::NotFound("trace x".into()));
        let via_workflow = Status::from(WorkflowError::Ledger(LedgerError::NotFound(
            "trace x".into(),
        )));
        let via_api = Status::from(ApiError::Workflow(WorkflowError::Ledger(
            LedgerError::Conflict("already answered".into()),
        )));
        assert_eq!(direct.code(), Code::NotFound);
        assert_eq!(via_workflow.code(), Code::NotFound);
        assert_eq!(via_workflow.message(), direct.message());
        assert_eq!(via_api.code(), Code::FailedPrecondition);
    }

    #[test]
    fn field_problems_travel_in_a_row_errors_detail() {
        let status = Status::from(ApiError::Invalid(vec![pb::RowError {
            line: 3,
            field: "event.date".into(),
            reason: "not a date".into(),
        }]));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "line 3: event.date: not a date");
        let errors = tracenet_proto::rpc::field_errors(status.details());
        assert_eq!((errors.len(), errors[0].line), (1, 3));
        // A standard google.rpc.Status, as any gRPC client library reads it.
        let standard = tracenet_proto::google::rpc::Status::decode(status.details()).unwrap();
        assert_eq!(standard.code, Code::InvalidArgument as i32);
        let bad = standard
            .details
            .iter()
            .find(|d| d.type_url == "type.googleapis.com/google.rpc.BadRequest")
            .unwrap();
        let bad = tracenet_proto::google::rpc::BadRequest::decode(bad.value.as_slice()).unwrap();
        assert_eq!(bad.field_violations[0].field, "event.date");
        // A peer's oversized field comes back the same way.
        let limit = Status::from(
            crate::limits::trace_request(&pb::TraceRequest {
                reason: "x".repeat(3000),
                ..Default::default()
            })
            .unwrap_err(),
        );
        assert_eq!(limit.code(), Code::InvalidArgument);
        assert_eq!(
            tracenet_proto::rpc::field_errors(limit.details())[0].field,
            "reason"
        );
    }

    #[test]
    fn envelope_refusals_keep_their_meaning() {
        assert_eq!(
            Status::from(EnvelopeError::Replayed("r1".into())).code(),
            Code::AlreadyExists
        );
        assert_eq!(
            Status::from(EnvelopeError::BadSignature).code(),
            Code::Unauthenticated
        );
        assert_eq!(
            Status::from(EnvelopeError::Key("x".into())).message(),
            "signing unavailable"
        );
    }
}
