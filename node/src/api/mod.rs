//! The local API: what this node's own gateway and administrator CLI may do (record seizures,
//! read, list, search, import in batches, check a peer). Admission (own gateway/admin only) is
//! enforced by the interceptor before any handler runs.
//!
//! Errors are converted to gRPC status here, once: validation problems become INVALID_ARGUMENT
//! with every field (and import line) in a `RowErrors` detail; storage failures become UNAVAILABLE
//! or INTERNAL with a generic message, the detail going to the log only.

use std::collections::HashSet;
use std::time::Instant;

use prost::Message;
use tonic::{Code, Request, Response, Status};
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::node_api_server::NodeApi;

mod directory;

use crate::auth::caller;
use crate::context::NodeContext;
use crate::disclose;
use crate::fanout;
use crate::ids::{NodeId, RecordId};
use crate::ledger::{self, LedgerError};
use crate::model::{self, FieldError, ValidRecord};
use crate::serial;
use crate::store::{IndexQuery, StoreError};
use crate::workflow;

/// Most records in one import batch.
pub const MAX_BATCH: usize = 5000;
/// Most records returned by one list or search call.
pub const MAX_PAGE: usize = 1000;
const DEFAULT_PAGE: usize = 100;

/// Errors of the local API, each mapped to one gRPC status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Input failed validation; lists every problem (line 0 when not from a file). Not retryable.
    #[error("{} invalid field(s)", .0.len())]
    Invalid(Vec<pb::RowError>),
    /// A malformed argument outside a record. Not retryable.
    #[error("{0}")]
    BadArgument(String),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A blocking task died (a bug). Not retryable.
    #[error("internal task failed")]
    Task,
    /// A trace or retraction step was refused or failed.
    #[error(transparent)]
    Workflow(#[from] workflow::WorkflowError),
    /// A peer could not be reached or refused. Retrying later may help.
    #[error("peer {peer}: {reason}")]
    Peer {
        /// The peer.
        peer: String,
        /// Why.
        reason: String,
    },
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        match e {
            ApiError::Invalid(errors) => {
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
                let details = pb::RowErrors { errors }.encode_to_vec();
                Status::with_details(Code::InvalidArgument, summary, details.into())
            }
            ApiError::BadArgument(m) => Status::invalid_argument(m),
            ApiError::Store(s) => match s {
                StoreError::NotFound(_) => Status::not_found(s.to_string()),
                StoreError::DuplicateNationalRef { .. } => Status::already_exists(s.to_string()),
                StoreError::RevisionMismatch { .. } => Status::aborted(s.to_string()),
                StoreError::MissingId => Status::invalid_argument(s.to_string()),
                StoreError::Engine(_) => {
                    tracing::error!(error = %s, "store failure");
                    Status::unavailable("storage temporarily unavailable; retry later")
                }
                StoreError::Corrupt(_) | StoreError::UnsupportedVersion(_) => {
                    tracing::error!(error = %s, "store data problem");
                    Status::internal("internal storage error")
                }
            },
            ApiError::Task => Status::internal("internal error"),
            ApiError::Workflow(w) => match w {
                workflow::WorkflowError::Invalid(errs) => {
                    ApiError::Invalid(field_errors(0, errs).collect()).into()
                }
                workflow::WorkflowError::NoNode(_) | workflow::WorkflowError::Policy(_) => {
                    Status::failed_precondition(w.to_string())
                }
                workflow::WorkflowError::Ledger(LedgerError::NotFound(m)) => Status::not_found(m),
                workflow::WorkflowError::Ledger(LedgerError::Conflict(m)) => {
                    Status::failed_precondition(m)
                }
                workflow::WorkflowError::Store(s) => ApiError::Store(s).into(),
                workflow::WorkflowError::Ledger(_) | workflow::WorkflowError::Audit(_) => {
                    tracing::error!(error = %w, "workflow storage failure");
                    Status::unavailable("storage temporarily unavailable; retry later")
                }
            },
            ApiError::Peer { .. } => Status::unavailable(e.to_string()),
        }
    }
}

fn fanout_status(e: fanout::FanoutError) -> Status {
    match e {
        fanout::FanoutError::BadArgument(m) => Status::invalid_argument(m),
        fanout::FanoutError::Audit(m) => {
            tracing::error!(error = %m, "audit append failed");
            Status::unavailable("audit log unavailable; nothing was sent")
        }
    }
}

fn field_errors(line: u64, errors: Vec<FieldError>) -> impl Iterator<Item = pb::RowError> {
    errors.into_iter().map(move |e| pb::RowError {
        line,
        field: e.field,
        reason: e.reason,
    })
}

fn validate_one(record: Option<pb::SeizureRecord>) -> Result<ValidRecord, ApiError> {
    let record = record.ok_or_else(|| ApiError::BadArgument("record is required".into()))?;
    model::validate(record)
        .map_err(|model::Invalid(errs)| ApiError::Invalid(field_errors(0, errs).collect()))
}

/// Validates a whole batch; returns every problem with its line, or the valid records.
pub fn validate_batch(
    records: Vec<pb::SeizureRecord>,
    lines: &[u64],
) -> Result<Vec<ValidRecord>, Vec<pb::RowError>> {
    let mut valid = Vec::with_capacity(records.len());
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for (i, rec) in records.into_iter().enumerate() {
        let line = lines.get(i).copied().unwrap_or(i as u64 + 1);
        match model::validate(rec) {
            Ok(v) => {
                if !seen.insert(v.national_ref().to_owned()) {
                    errors.push(pb::RowError {
                        line,
                        field: "national_ref".into(),
                        reason: format!(
                            "'{}' appears more than once in the batch",
                            v.national_ref()
                        ),
                    });
                }
                valid.push(v);
            }
            Err(model::Invalid(errs)) => errors.extend(field_errors(line, errs)),
        }
    }
    if errors.is_empty() {
        Ok(valid)
    } else {
        Err(errors)
    }
}

fn response(s: pb::StoredRecord) -> pb::RecordResponse {
    pb::RecordResponse {
        record: s.record,
        revision: s.revision,
        created_at: s.created_at,
        updated_at: s.updated_at,
    }
}

fn page_size(requested: u32) -> usize {
    match requested as usize {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    }
}

/// The local API service of one node.
#[derive(Debug, Clone)]
pub struct LocalApi {
    ctx: NodeContext,
}

impl LocalApi {
    /// The service for this node.
    pub fn new(ctx: NodeContext) -> LocalApi {
        LocalApi { ctx }
    }

    /// Runs blocking store work off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&NodeContext) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let ctx = self.ctx.clone();
        tokio::task::spawn_blocking(move || f(&ctx))
            .await
            .map_err(|_| ApiError::Task)?
    }
}

#[tonic::async_trait]
impl NodeApi for LocalApi {
    async fn get_node_info(
        &self,
        request: Request<pb::GetNodeInfoRequest>,
    ) -> Result<Response<pb::NodeInfo>, Status> {
        caller(&request)?;
        let (count, pending) = self
            .blocking(|c| Ok((c.store.count()?, c.ledger.pending().unwrap_or(0))))
            .await?;
        Ok(Response::new(pb::NodeInfo {
            node_id: self.ctx.node_id.to_string(),
            country: self.ctx.country.to_string(),
            role: self.ctx.role.as_str().into(),
            record_count: count,
            version: env!("CARGO_PKG_VERSION").into(),
            peers: self
                .ctx
                .peers
                .known()
                .iter()
                .map(ToString::to_string)
                .collect(),
            outbox_pending: pending,
            signing_public_key: tracenet_ids::hex::encode(&self.ctx.signing.public_key()),
            policy_version: self.ctx.roster.policy().version(),
        }))
    }

    async fn create_record(
        &self,
        request: Request<pb::CreateRecordRequest>,
    ) -> Result<Response<pb::RecordResponse>, Status> {
        let who = caller(&request)?.clone();
        let rec = validate_one(request.into_inner().record)?;
        if rec.id().is_some() {
            return Err(
                ApiError::BadArgument("id is assigned by the node; leave it empty".into()).into(),
            );
        }
        let stored = self
            .blocking(move |c| {
                // The node records its own country's data only.
                if rec.country() != c.country {
                    return Err(ApiError::Invalid(vec![pb::RowError {
                        line: 0,
                        field: "event.place.country".into(),
                        reason: format!("this node records events in {} only", c.country),
                    }]));
                }
                Ok(c.store.create(rec, c.clock.now_secs())?)
            })
            .await?;
        tracing::info!(caller = %who, id = %stored.record.as_ref().map(|r| r.id.as_str()).unwrap_or(""), "record created");
        Ok(Response::new(response(stored)))
    }

    async fn get_record(
        &self,
        request: Request<pb::GetRecordRequest>,
    ) -> Result<Response<pb::RecordResponse>, Status> {
        caller(&request)?;
        let id = RecordId::parse(request.get_ref().id.trim())
            .map_err(|e| ApiError::BadArgument(e.to_string()))?;
        let found = self.blocking(move |c| Ok(c.store.get(id)?)).await?;
        found
            .map(|s| Response::new(response(s)))
            .ok_or_else(|| ApiError::Store(StoreError::NotFound(id)).into())
    }

    async fn update_record(
        &self,
        request: Request<pb::UpdateRecordRequest>,
    ) -> Result<Response<pb::RecordResponse>, Status> {
        let who = caller(&request)?.clone();
        let req = request.into_inner();
        let rec = validate_one(req.record)?;
        let expected = (req.expected_revision > 0).then_some(req.expected_revision);
        let stored = self
            .blocking(move |c| {
                if rec.country() != c.country {
                    return Err(ApiError::Invalid(vec![pb::RowError {
                        line: 0,
                        field: "event.place.country".into(),
                        reason: format!("this node records events in {} only", c.country),
                    }]));
                }
                Ok(c.store.update(rec, expected, c.clock.now_secs())?)
            })
            .await?;
        tracing::info!(caller = %who, revision = stored.revision, "record updated");
        Ok(Response::new(response(stored)))
    }

    async fn list_records(
        &self,
        request: Request<pb::ListRecordsRequest>,
    ) -> Result<Response<pb::ListRecordsResponse>, Status> {
        caller(&request)?;
        let req = request.into_inner();
        let after = if req.page_token.is_empty() {
            None
        } else {
            Some(
                RecordId::parse(&req.page_token)
                    .map_err(|_| ApiError::BadArgument("invalid page_token".into()))?,
            )
        };
        let limit = page_size(req.page_size);
        let newest = req.newest_first;
        let page = self
            .blocking(move |c| {
                Ok(if newest {
                    c.store.list_newest(after, limit)?
                } else {
                    c.store.list(after, limit)?
                })
            })
            .await?;
        let next_page_token = if page.len() == limit {
            page.last()
                .and_then(|s| s.record.as_ref())
                .map(|r| r.id.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListRecordsResponse {
            records: page.into_iter().map(response).collect(),
            next_page_token,
        }))
    }

    async fn search_by_serial(
        &self,
        request: Request<pb::SearchBySerialRequest>,
    ) -> Result<Response<pb::ListRecordsResponse>, Status> {
        caller(&request)?;
        let req = request.into_inner();
        let marked = req.serial_number.trim().to_owned();
        let normalised = serial::normalise(&marked).ok_or_else(|| {
            ApiError::BadArgument("serial_number has no letters or digits to search for".into())
        })?;
        let exact = match pb::SerialMatch::try_from(req.r#match) {
            Ok(pb::SerialMatch::Exact) => true,
            Ok(pb::SerialMatch::Normalised | pb::SerialMatch::Unspecified) => false,
            Err(_) => return Err(ApiError::BadArgument("unknown match mode".into()).into()),
        };
        let limit = page_size(req.limit);
        let found = self
            .blocking(move |c| {
                let mut found = c.store.find(&IndexQuery::Serial(normalised), MAX_PAGE)?;
                if exact {
                    found.retain(|s| {
                        s.record.as_ref().is_some_and(|r| {
                            r.firearms.iter().any(|f| f.serial_number == marked)
                                || r.parts.iter().any(|p| p.serial_number == marked)
                        })
                    });
                }
                found.truncate(limit);
                Ok(found)
            })
            .await?;
        Ok(Response::new(pb::ListRecordsResponse {
            records: found.into_iter().map(response).collect(),
            next_page_token: String::new(),
        }))
    }

    async fn import_batch(
        &self,
        request: Request<pb::ImportBatchRequest>,
    ) -> Result<Response<pb::ImportBatchResponse>, Status> {
        let who = caller(&request)?.clone();
        let req = request.into_inner();
        if req.records.len() > MAX_BATCH {
            return Err(ApiError::BadArgument(format!(
                "a batch holds at most {MAX_BATCH} records, got {}",
                req.records.len()
            ))
            .into());
        }
        let country = self.ctx.country;
        let lines = req.source_lines;
        let valid = validate_batch(req.records, &lines).map_err(ApiError::Invalid)?;
        let wrong_country: Vec<pb::RowError> = valid
            .iter()
            .enumerate()
            .filter(|(_, v)| v.country() != country)
            .map(|(i, _)| pb::RowError {
                line: lines.get(i).copied().unwrap_or(i as u64 + 1),
                field: "event.place.country".into(),
                reason: format!("this node records events in {country} only"),
            })
            .collect();
        if !wrong_country.is_empty() {
            return Err(ApiError::Invalid(wrong_country).into());
        }
        if req.dry_run {
            return Ok(Response::new(pb::ImportBatchResponse::default()));
        }
        let n = valid.len();
        let outcome = self
            .blocking(move |c| Ok(c.store.upsert_batch(valid, c.clock.now_secs())?))
            .await?;
        tracing::info!(caller = %who, records = n, created = outcome.created, updated = outcome.updated, "batch imported");
        Ok(Response::new(pb::ImportBatchResponse {
            created: outcome.created,
            updated: outcome.updated,
        }))
    }

    async fn federated_lookup(
        &self,
        request: Request<pb::FederatedLookupRequest>,
    ) -> Result<Response<pb::FederatedLookupResponse>, Status> {
        caller(&request)?;
        let req = request.into_inner();
        let inquiry = req
            .inquiry
            .ok_or_else(|| ApiError::BadArgument("inquiry is required".into()))?;
        fanout::lookup(&self.ctx, inquiry, req.serial_number, req.manufacturer)
            .await
            .map(Response::new)
            .map_err(fanout_status)
    }

    async fn federated_query(
        &self,
        request: Request<pb::FederatedQueryRequest>,
    ) -> Result<Response<pb::FederatedQueryResponse>, Status> {
        caller(&request)?;
        let req = request.into_inner();
        let inquiry = req
            .inquiry
            .ok_or_else(|| ApiError::BadArgument("inquiry is required".into()))?;
        let filter = req.filter.unwrap_or_default();
        let local = if req.include_local {
            let (f, limit) = (filter.clone(), req.limit_per_peer);
            Some(
                self.blocking(move |c| {
                    disclose::local_matches(c, &f, limit).map_err(|e| match e {
                        disclose::DiscloseError::BadArgument(m) => ApiError::BadArgument(m),
                        disclose::DiscloseError::Store(s) => ApiError::Store(s),
                        disclose::DiscloseError::Ledger(l) => {
                            ApiError::Workflow(workflow::WorkflowError::Ledger(l))
                        }
                    })
                })
                .await?,
            )
        } else {
            None
        };
        let mut out = fanout::query(&self.ctx, inquiry, filter, req.limit_per_peer)
            .await
            .map_err(fanout_status)?;
        if let Some(records) = local {
            out.answers.insert(
                0,
                pb::PeerRecords {
                    node_id: self.ctx.node_id.to_string(),
                    records,
                },
            );
        }
        Ok(Response::new(out))
    }

    async fn list_audit(
        &self,
        request: Request<pb::ListAuditRequest>,
    ) -> Result<Response<pb::ListAuditResponse>, Status> {
        caller(&request)?;
        let req = request.into_inner();
        let limit = page_size(req.limit);
        let entries = self
            .blocking(move |c| {
                c.audit
                    .list(&req.kind, &req.peer, req.after_seq, limit)
                    .map_err(|e| ApiError::from(workflow::WorkflowError::Audit(e.to_string())))
            })
            .await?;
        Ok(Response::new(pb::ListAuditResponse { entries }))
    }

    async fn send_trace_request(
        &self,
        request: Request<pb::SendTraceRequestRequest>,
    ) -> Result<Response<pb::TraceRecord>, Status> {
        caller(&request)?;
        let req = request.into_inner();
        let rec = self
            .blocking(move |c| workflow::send_trace_request(c, req).map_err(ApiError::from))
            .await?;
        Ok(Response::new(rec))
    }

    async fn answer_trace_request(
        &self,
        request: Request<pb::AnswerTraceRequestRequest>,
    ) -> Result<Response<pb::TraceRecord>, Status> {
        caller(&request)?;
        let req = request.into_inner();
        let rec = self
            .blocking(move |c| workflow::answer_trace_request(c, req).map_err(ApiError::from))
            .await?;
        Ok(Response::new(rec))
    }

    async fn list_trace_requests(
        &self,
        request: Request<pb::ListTraceRequestsRequest>,
    ) -> Result<Response<pb::ListTraceRequestsResponse>, Status> {
        caller(&request)?;
        let direction = request.into_inner().direction;
        if !matches!(direction.as_str(), "" | ledger::OUTGOING | ledger::INCOMING) {
            return Err(ApiError::BadArgument(
                "direction must be outgoing, incoming or empty".into(),
            )
            .into());
        }
        let traces = self
            .blocking(move |c| {
                c.ledger
                    .list_traces(&direction, c.clock.now_secs())
                    .map_err(|e| ApiError::from(workflow::WorkflowError::from(e)))
            })
            .await?;
        Ok(Response::new(pb::ListTraceRequestsResponse { traces }))
    }

    async fn retract_record(
        &self,
        request: Request<pb::RetractRecordRequest>,
    ) -> Result<Response<pb::RetractRecordResponse>, Status> {
        caller(&request)?;
        let id = request.into_inner().id;
        let notified = self
            .blocking(move |c| workflow::retract(c, &id).map_err(ApiError::from))
            .await?;
        Ok(Response::new(pb::RetractRecordResponse { notified }))
    }

    async fn list_received(
        &self,
        request: Request<pb::ListReceivedRequest>,
    ) -> Result<Response<pb::ListReceivedResponse>, Status> {
        caller(&request)?;
        let records = self
            .blocking(|c| {
                c.ledger
                    .list_received()
                    .map_err(|e| ApiError::from(workflow::WorkflowError::from(e)))
            })
            .await?;
        Ok(Response::new(pb::ListReceivedResponse { records }))
    }

    async fn list_outbox(
        &self,
        request: Request<pb::ListOutboxRequest>,
    ) -> Result<Response<pb::ListOutboxResponse>, Status> {
        caller(&request)?;
        let items = self
            .blocking(|c| {
                c.ledger
                    .outbox_items()
                    .map_err(|e| ApiError::from(workflow::WorkflowError::from(e)))
            })
            .await?;
        Ok(Response::new(pb::ListOutboxResponse { items }))
    }

    async fn get_directory(
        &self,
        request: Request<pb::GetDirectoryRequest>,
    ) -> Result<Response<pb::DirectoryView>, Status> {
        caller(&request)?;
        let view = directory::get(&self.ctx, request.get_ref().linearizable).await?;
        Ok(Response::new(view))
    }

    async fn propose_directory(
        &self,
        request: Request<pb::ProposeDirectoryRequest>,
    ) -> Result<Response<pb::DirectoryResponse>, Status> {
        caller(&request)?;
        let cmd = request
            .into_inner()
            .command
            .ok_or_else(|| ApiError::BadArgument("command is required".into()))?;
        Ok(Response::new(directory::propose(&self.ctx, cmd).await?))
    }

    async fn preview_disclosure(
        &self,
        request: Request<pb::PreviewDisclosureRequest>,
    ) -> Result<Response<pb::PreviewDisclosureResponse>, Status> {
        caller(&request)?;
        let req = request.into_inner();
        let id = RecordId::parse(req.record_id.trim())
            .map_err(|e| ApiError::BadArgument(e.to_string()))?;
        let who = NodeId::parse(req.requester_node.trim())
            .map_err(|e| ApiError::BadArgument(format!("requester_node: {e}")))?;
        let agency = pb::AgencyKind::try_from(req.agency_kind)
            .map_err(|_| ApiError::BadArgument("unknown agency_kind".into()))?;
        let purpose = match pb::Purpose::try_from(req.purpose) {
            Ok(p) if p != pb::Purpose::Unspecified => p,
            _ => return Err(ApiError::BadArgument("purpose is required".into()).into()),
        };
        let stored = self
            .blocking(move |c| Ok(c.store.get(id)?))
            .await?
            .and_then(|s| s.record)
            .ok_or(ApiError::Store(StoreError::NotFound(id)))?;
        let out = disclose::preview(
            &self.ctx.roster.policy(),
            &who,
            self.ctx.roster.regions(&who),
            agency,
            purpose,
            &stored,
        );
        Ok(Response::new(out))
    }

    async fn forward_received(
        &self,
        request: Request<pb::ForwardReceivedRequest>,
    ) -> Result<Response<pb::ForwardReceivedResponse>, Status> {
        caller(&request)?;
        let req = request.into_inner();
        let reference = req
            .reference
            .ok_or_else(|| ApiError::BadArgument("reference is required".into()))?;
        self.blocking(move |c| {
            workflow::forward_received(c, &reference, &req.to_node).map_err(ApiError::from)
        })
        .await?;
        Ok(Response::new(pb::ForwardReceivedResponse {}))
    }

    async fn check_peer(
        &self,
        request: Request<pb::CheckPeerRequest>,
    ) -> Result<Response<pb::CheckPeerResponse>, Status> {
        caller(&request)?;
        let peer = NodeId::parse(request.get_ref().node_id.trim())
            .map_err(|e| ApiError::BadArgument(e.to_string()))?;
        let mut client = self.ctx.peers.get(&peer).map_err(|e| ApiError::Peer {
            peer: peer.to_string(),
            reason: e.to_string(),
        })?;
        let started = Instant::now();
        let pong = client
            .ping(pb::PingRequest {})
            .await
            .map_err(|s| ApiError::Peer {
                peer: peer.to_string(),
                reason: format!("{:?}: {}", s.code(), s.message()),
            })?
            .into_inner();
        Ok(Response::new(pb::CheckPeerResponse {
            peer_node_id: pong.node_id,
            caller_identity_seen_by_peer: pong.caller_identity,
            round_trip_micros: started.elapsed().as_micros() as u64,
        }))
    }
}
