//! The local API: what this node's own gateway and administrator CLI may do (record seizures,
//! read, list, search, import in batches, trace, retract, ask the federation, read the audit log
//! and the directory, check a peer). Admission (own gateway/admin only) is enforced by the
//! interceptor before any handler runs.
//!
//! The handlers live by concern: `records` (this node's seizure records), `traces` (trace
//! requests, retraction, received copies, the outbox), `federation` (federated calls and peer
//! checks), `oversight` (node info, audit log, disclosure preview) and `directory`. Every
//! blocking handler has one shape, `LocalApi::call`: admit the caller, do the work off the
//! async threads, answer or convert the error.
//!
//! Errors are converted to gRPC status here, once: validation problems become INVALID_ARGUMENT
//! with every field (and import line) in a `RowErrors` detail; storage failures become UNAVAILABLE
//! or INTERNAL with a generic message, the detail going to the log only.

use tonic::{Request, Response, Status};
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::node_api_server::NodeApi;

mod directory;
mod federation;
mod oversight;
mod records;
mod statistics;
mod traces;
mod watch;

use crate::audit::AuditError;
use crate::auth::caller;
use crate::context::NodeContext;
use crate::disclose::DiscloseError;
use crate::ids::PeerIdentity;
use crate::ledger::LedgerError;
use crate::store::StoreError;
use crate::workflow::WorkflowError;

pub use records::MAX_BATCH;

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
    Workflow(#[from] WorkflowError),
    /// Only the node's admin certificate may do this, not its gateway. Not retryable with the
    /// same certificate.
    #[error("{0} is reserved to this node's admin certificate, not its gateway")]
    AdminOnly(&'static str),
    /// A peer could not be reached or refused. Retrying later may help.
    #[error("peer {peer}: {reason}")]
    Peer {
        /// The peer.
        peer: String,
        /// Why.
        reason: String,
    },
    /// A watch-list call failed.
    #[error(transparent)]
    Watch(#[from] crate::watch::WatchError),
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> ApiError {
        ApiError::Workflow(WorkflowError::Ledger(e))
    }
}

impl From<AuditError> for ApiError {
    fn from(e: AuditError) -> ApiError {
        ApiError::Workflow(WorkflowError::Audit(e.to_string()))
    }
}

impl From<DiscloseError> for ApiError {
    fn from(e: DiscloseError) -> ApiError {
        match e {
            DiscloseError::BadArgument(m) => ApiError::BadArgument(m),
            DiscloseError::Refused(r) => ApiError::BadArgument(r.to_string()),
            DiscloseError::Denied(d) => ApiError::BadArgument(d.to_string()),
            DiscloseError::Store(s) => ApiError::Store(s),
            DiscloseError::Ledger(l) => l.into(),
        }
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

    /// The shape every blocking call shares: take the caller the interceptor admitted, run
    /// `work` with the node context, the caller and the request off the async threads (store,
    /// ledger and audit calls block), and answer with its result or its error as a status.
    async fn call<Req, T>(
        &self,
        request: Request<Req>,
        work: impl FnOnce(&NodeContext, &PeerIdentity, Req) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<Response<T>, Status>
    where
        Req: Send + 'static,
        T: Send + 'static,
    {
        let who = caller(&request)?.clone();
        let req = request.into_inner();
        let out = self.blocking(move |ctx| work(ctx, &who, req)).await?;
        Ok(Response::new(out))
    }

    /// Runs blocking work (store, ledger, audit) with the node context off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&NodeContext) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let ctx = self.ctx.clone();
        tokio::task::spawn_blocking(move || work(&ctx))
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
        oversight::node_info(self, request).await
    }

    async fn create_record(
        &self,
        request: Request<pb::CreateRecordRequest>,
    ) -> Result<Response<pb::RecordResponse>, Status> {
        records::create(self, request).await
    }

    async fn get_record(
        &self,
        request: Request<pb::GetRecordRequest>,
    ) -> Result<Response<pb::RecordResponse>, Status> {
        records::get(self, request).await
    }

    async fn update_record(
        &self,
        request: Request<pb::UpdateRecordRequest>,
    ) -> Result<Response<pb::RecordResponse>, Status> {
        records::update(self, request).await
    }

    async fn list_records(
        &self,
        request: Request<pb::ListRecordsRequest>,
    ) -> Result<Response<pb::ListRecordsResponse>, Status> {
        records::list(self, request).await
    }

    async fn search_by_serial(
        &self,
        request: Request<pb::SearchBySerialRequest>,
    ) -> Result<Response<pb::ListRecordsResponse>, Status> {
        records::search_by_serial(self, request).await
    }

    async fn import_batch(
        &self,
        request: Request<pb::ImportBatchRequest>,
    ) -> Result<Response<pb::ImportBatchResponse>, Status> {
        records::import_batch(self, request).await
    }

    async fn federated_lookup(
        &self,
        request: Request<pb::FederatedLookupRequest>,
    ) -> Result<Response<pb::FederatedLookupResponse>, Status> {
        federation::lookup(self, request).await
    }

    async fn federated_query(
        &self,
        request: Request<pb::FederatedQueryRequest>,
    ) -> Result<Response<pb::FederatedQueryResponse>, Status> {
        federation::query(self, request).await
    }

    async fn list_audit(
        &self,
        request: Request<pb::ListAuditRequest>,
    ) -> Result<Response<pb::ListAuditResponse>, Status> {
        oversight::list_audit(self, request).await
    }

    async fn send_trace_request(
        &self,
        request: Request<pb::SendTraceRequestRequest>,
    ) -> Result<Response<pb::TraceRecord>, Status> {
        traces::send(self, request).await
    }

    async fn answer_trace_request(
        &self,
        request: Request<pb::AnswerTraceRequestRequest>,
    ) -> Result<Response<pb::TraceRecord>, Status> {
        traces::answer(self, request).await
    }

    async fn list_trace_requests(
        &self,
        request: Request<pb::ListTraceRequestsRequest>,
    ) -> Result<Response<pb::ListTraceRequestsResponse>, Status> {
        traces::list(self, request).await
    }

    async fn provide_trace_information(
        &self,
        request: Request<pb::ProvideTraceInformationRequest>,
    ) -> Result<Response<pb::TraceRecord>, Status> {
        traces::provide_information(self, request).await
    }

    async fn retract_record(
        &self,
        request: Request<pb::RetractRecordRequest>,
    ) -> Result<Response<pb::RetractRecordResponse>, Status> {
        traces::retract(self, request).await
    }

    async fn statistics_tables(
        &self,
        request: Request<pb::StatisticsLocalRequest>,
    ) -> Result<Response<pb::StatisticsLocalResponse>, Status> {
        statistics::tables(self, request).await
    }

    async fn list_received(
        &self,
        request: Request<pb::ListReceivedRequest>,
    ) -> Result<Response<pb::ListReceivedResponse>, Status> {
        traces::list_received(self, request).await
    }

    async fn list_outbox(
        &self,
        request: Request<pb::ListOutboxRequest>,
    ) -> Result<Response<pb::ListOutboxResponse>, Status> {
        traces::list_outbox(self, request).await
    }

    async fn get_directory(
        &self,
        request: Request<pb::GetDirectoryRequest>,
    ) -> Result<Response<pb::DirectoryView>, Status> {
        caller(&request)?;
        let view = directory::get(&self.ctx, request.get_ref()).await?;
        Ok(Response::new(view))
    }

    async fn propose_directory(
        &self,
        request: Request<pb::ProposeDirectoryRequest>,
    ) -> Result<Response<pb::DirectoryResponse>, Status> {
        let by_gateway = matches!(caller(&request)?, PeerIdentity::Gateway(_));
        let cmd = request
            .into_inner()
            .command
            .ok_or_else(|| ApiError::BadArgument("command is required".into()))?;
        // The certificates the local API accepts are the operators' to change: a gateway that
        // could list or revoke them would keep a stolen console alive after its revocation.
        use pb::directory_command::Op;
        if by_gateway
            && matches!(
                cmd.op,
                Some(Op::PublishLocalCertificates(_) | Op::RevokeCertificate(_))
            )
        {
            return Err(ApiError::AdminOnly("listing or revoking certificates").into());
        }
        Ok(Response::new(directory::propose(&self.ctx, cmd).await?))
    }

    async fn assistance_board(
        &self,
        request: Request<pb::AssistanceBoardRequest>,
    ) -> Result<Response<pb::AssistanceBoardResponse>, Status> {
        caller(&request)?;
        let board = directory::assistance_board(&self.ctx)?;
        Ok(Response::new(board))
    }

    async fn preview_disclosure(
        &self,
        request: Request<pb::PreviewDisclosureRequest>,
    ) -> Result<Response<pb::PreviewDisclosureResponse>, Status> {
        oversight::preview_disclosure(self, request).await
    }

    async fn forward_received(
        &self,
        request: Request<pb::ForwardReceivedRequest>,
    ) -> Result<Response<pb::ForwardReceivedResponse>, Status> {
        traces::forward_received(self, request).await
    }

    async fn add_watch(
        &self,
        request: Request<pb::AddWatchRequest>,
    ) -> Result<Response<pb::WatchEntry>, Status> {
        watch::add(self, request).await
    }

    async fn list_watches(
        &self,
        request: Request<pb::ListWatchesRequest>,
    ) -> Result<Response<pb::ListWatchesResponse>, Status> {
        watch::list(self, request).await
    }

    async fn remove_watch(
        &self,
        request: Request<pb::RemoveWatchRequest>,
    ) -> Result<Response<pb::RemoveWatchResponse>, Status> {
        watch::remove(self, request).await
    }

    async fn list_watch_alerts(
        &self,
        request: Request<pb::ListWatchAlertsRequest>,
    ) -> Result<Response<pb::ListWatchAlertsResponse>, Status> {
        watch::alerts(self, request).await
    }

    async fn acknowledge_watch_alert(
        &self,
        request: Request<pb::AcknowledgeWatchAlertRequest>,
    ) -> Result<Response<pb::WatchAlert>, Status> {
        watch::acknowledge(self, request).await
    }

    async fn check_peer(
        &self,
        request: Request<pb::CheckPeerRequest>,
    ) -> Result<Response<pb::CheckPeerResponse>, Status> {
        federation::check_peer(self, request).await
    }
}
