//! The peer exchange service: what other nodes may ask this one over mutual TLS.
//!
//! The caller's identity comes from the [`crate::auth::Caller`] the interceptor attached, which
//! the listener read from the verified certificate; nothing in a request body identifies anyone.
//! Every data request must carry a signed context from the same node as the certificate; it is
//! audited on arrival, each record passes the sharing policy (see [`crate::disclose`]), every
//! disclosure is in the audit log before the response leaves, and responses are signed. Trace
//! requests, trace responses and retractions are applied once by their ids (deliveries are
//! retried by the sender's outbox).
//!
//! The decisions are elsewhere and pure: what a lookup or query discloses in [`crate::disclose`],
//! whether a delivery may come from its caller and what it audits in [`rules`]. The handlers
//! here are their drivers: verify, read, decide, audit, write the ledger, and only then answer.
//!
//! Deliveries are idempotent by item, not by envelope: every attempt of the sender's outbox
//! comes in a fresh envelope (which the replay guard sees once), and a repeated delivery of the
//! same item (a trace request or response by its request id, a retraction or a passed-on
//! record by its reference) is recognised here, applied no second time, audited as repeated,
//! and acknowledged again with the same outcome.

use std::pin::Pin;

use prost::Message;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracenet_proto::v1 as pb;
use tracenet_proto::v1::peer_exchange_server::PeerExchange;

use crate::audit::{Event, EventKind};
use crate::auth::caller;
use crate::context::NodeContext;
use crate::disclose::{self, Answer, DiscloseError};
use crate::envelope::{self, SignedRequest};
use crate::ids::{NodeId, PeerIdentity};
use crate::ledger::{INCOMING, OUTGOING};
use crate::provenance::{self, Held};
use crate::status;

pub mod aggregation;
pub mod rules;

/// The peer exchange service of one node.
#[derive(Debug, Clone)]
pub struct PeerService {
    ctx: NodeContext,
}

impl PeerService {
    /// The service for this node.
    pub fn new(ctx: NodeContext) -> PeerService {
        PeerService { ctx }
    }
}

/// The node a peer request comes from (its certificate's identity); anything else is refused.
pub(crate) fn caller_node<T>(request: &Request<T>) -> Result<NodeId, Status> {
    match caller(request)? {
        PeerIdentity::Node(id) => Ok(id.clone()),
        other => Err(Status::permission_denied(format!("{other} is not a node"))),
    }
}

/// Writes what a decided answer needs before it may leave, in this order: which of our records
/// `who` receives (so a retraction reaches it), then the audit events, whose flush makes the
/// note durable too. If either fails, nothing is answered.
fn record_before_answer<T>(
    node: &NodeContext,
    who: &NodeId,
    envelope: pb::SignedContext,
    mut answer: Answer<T>,
) -> Result<Vec<T>, Status> {
    attach_envelope(&mut answer.events, envelope);
    if !answer.disclosed.is_empty() {
        node.ledger
            .note_disclosed(&answer.disclosed, who)
            .map_err(Status::from)?;
    }
    node.audit
        .append(answer.events, node.clock.now_secs())
        .map_err(status::audit_before_answer)?;
    if let Some(refusal) = answer.refused {
        return Err(Status::from(DiscloseError::Refused(refusal)));
    }
    Ok(answer.items)
}

/// Keeps the signed request with the entry recording its arrival (the first entry if none does),
/// so the audit log proves who asked what; the other entries name it by request id.
fn attach_envelope(events: &mut [Event], envelope: pb::SignedContext) {
    let at = events
        .iter()
        .position(|e| e.kind == EventKind::RequestReceived)
        .unwrap_or(0);
    if let Some(e) = events.get_mut(at) {
        e.envelope = Some(envelope);
    }
}

impl PeerService {
    /// Verifies the signed context of a request from `who` and that it names this request's
    /// body (see [`envelope::check_body`]), auditing a refusal. When the
    /// directory lists `who`'s agency kind, a context claiming another kind is refused, and the
    /// context returned carries the directory's kind (what policies are evaluated with).
    /// Runs `decide` on the blocking pool and appends the events it returns (the signed
    /// request kept with the first) to the audit log before its outcome is answered: for the
    /// requests answered by one decision, such as statistical tables and aggregation steps.
    async fn answer_audited<T: Send + 'static>(
        &self,
        mut envelope: pb::SignedContext,
        decide: impl FnOnce(&NodeContext) -> Result<(Result<T, Status>, Vec<Event>), Status>
        + Send
        + 'static,
    ) -> Result<T, Status> {
        let node = self.ctx.clone();
        tokio::task::spawn_blocking(move || {
            let (outcome, mut events) = decide(&node)?;
            if let Some(first) = events.first_mut() {
                first.envelope = Some(std::mem::take(&mut envelope));
            }
            node.audit
                .append(events, node.clock.now_secs())
                .map_err(status::audit_before_answer)?;
            outcome
        })
        .await
        .map_err(|_| Status::internal("internal error"))?
    }

    async fn verify<R: SignedRequest>(
        &self,
        who: &NodeId,
        request: &mut R,
    ) -> Result<(pb::RequestContext, pb::SignedContext), Status> {
        let now = self.ctx.clock.now_secs();
        let (signed, body) = request.split();
        let envelope = signed.clone().unwrap_or_default();
        let checked = self
            .ctx
            .replay
            .verify_context(&self.ctx.roster.keys(), signed.as_ref(), who, now)
            .and_then(|c| envelope::check_body(&c, R::METHOD, &body).map(|()| c));
        match checked {
            Ok(mut c) => {
                let Some(listed) = self.ctx.roster.view().agency_kinds.get(who).copied() else {
                    return Ok((c, envelope));
                };
                let claimed =
                    pb::AgencyKind::try_from(c.agency_kind).unwrap_or(pb::AgencyKind::Unspecified);
                if claimed != pb::AgencyKind::Unspecified && claimed != listed {
                    let why = format!(
                        "request context claims agency kind {} but the directory lists {who} as {}",
                        claimed.as_str_name(),
                        listed.as_str_name()
                    );
                    tracing::warn!(peer = %who, refusal = %why, "request context refused");
                    self.audit_refusal(who, why.clone(), Some(envelope)).await?;
                    return Err(Status::permission_denied(why));
                }
                c.agency_kind = listed as i32;
                Ok((c, envelope))
            }
            Err(e) => {
                tracing::warn!(peer = %who, refusal = %e, "request context refused");
                self.audit_refusal(who, e.to_string(), signed).await?;
                Err(Status::from(e))
            }
        }
    }

    /// Refuses (and audits the refusal of) what a peer sent beyond the bounds of
    /// [`crate::limits`], before anything of it is stored.
    async fn within_limits(
        &self,
        who: &NodeId,
        envelope: &pb::SignedContext,
        checked: Result<(), crate::limits::LimitError>,
    ) -> Result<(), Status> {
        let Err(e) = checked else { return Ok(()) };
        let why = format!(
            "out of bounds: {}",
            e.0.iter()
                .map(|f| f.field.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        tracing::warn!(peer = %who, refusal = %why, "peer request refused");
        self.audit_refusal(who, why, Some(envelope.clone())).await?;
        Err(Status::from(e))
    }

    /// Audits the refusal a pure check of [`rules`] decided for what `who` sent (a payload
    /// naming another requester or responder than the caller, a request this node does not
    /// answer), with its envelope, before the refusal is answered; passes `Ok` through.
    async fn refuse_checked(
        &self,
        who: &NodeId,
        envelope: &pb::SignedContext,
        checked: Result<(), Status>,
    ) -> Result<(), Status> {
        let Err(s) = checked else { return Ok(()) };
        tracing::warn!(peer = %who, refusal = %s.message(), "delivery refused");
        self.audit_refusal(who, s.message().to_owned(), Some(envelope.clone()))
            .await?;
        Err(s)
    }

    /// A delivery acknowledgement signed for the envelope it answers.
    fn signed_ack(&self, request_id: &str, duplicate: bool, status: i32) -> pb::DeliveryAck {
        let mut ack = pb::DeliveryAck {
            duplicate,
            status,
            signature: None,
        };
        ack.signature = Some(
            self.ctx
                .signing
                .sign_response(request_id, &signed_body(&ack)),
        );
        ack
    }

    /// Applies a delivery in one trip to the blocking pool, in this order: `peek` reads what is
    /// held already (so a repeated delivery is audited as one), its audit event is appended
    /// durably, and only then does `write` store the delivery. Only then may the caller
    /// acknowledge; if any step fails, nothing is acknowledged and the sender retries.
    ///
    /// Audit first, so that neither a crash between the two writes nor a handler dropped at an
    /// await point (the blocking closure runs to completion regardless) can leave something
    /// stored from a peer without its audit entry (see [`crate::audit::audit_then`]).
    ///
    /// A delivery `peek` refuses ([`Stop::Refused`]: it names a request the caller did not send
    /// or was not sent, or an id another requester holds) is audited as a refusal from `who`,
    /// with its envelope, and nothing of it is stored.
    async fn apply<P: Send + 'static, T: Send + 'static>(
        &self,
        who: NodeId,
        envelope: pb::SignedContext,
        peek: impl FnOnce(&NodeContext) -> Result<P, Stop> + Send + 'static,
        event: impl FnOnce(&P) -> Event + Send + 'static,
        write: impl FnOnce(&NodeContext, P) -> Result<T, crate::ledger::LedgerError> + Send + 'static,
    ) -> Result<T, Status> {
        let ctx = self.ctx.clone();
        tokio::task::spawn_blocking(move || {
            let seen = match peek(&ctx) {
                Ok(seen) => seen,
                Err(Stop::Failed(s)) => return Err(s),
                Err(Stop::Refused(s)) => {
                    tracing::warn!(peer = %who, refusal = %s.message(), "delivery refused");
                    let refusal =
                        rules::refusal_event(&who, s.message().to_owned(), Some(envelope));
                    ctx.audit
                        .append(vec![refusal], ctx.clock.now_secs())
                        .map_err(status::audit_before_answer)?;
                    return Err(s);
                }
            };
            let mut ev = event(&seen);
            ev.envelope = Some(envelope);
            crate::audit::audit_then(
                || {
                    ctx.audit
                        .append(vec![ev], ctx.clock.now_secs())
                        .map(drop)
                        .map_err(status::audit_before_answer)
                },
                || write(&ctx, seen).map_err(Status::from),
            )
        })
        .await
        .map_err(|_| Status::internal("internal error"))?
    }

    /// Audits the refusal of what `who` sent, with its signed context when it had one, before
    /// the refusal is answered.
    async fn audit_refusal(
        &self,
        who: &NodeId,
        why: String,
        envelope: Option<pb::SignedContext>,
    ) -> Result<(), Status> {
        self.audit(vec![rules::refusal_event(who, why, envelope)])
            .await
    }

    /// Appends to the audit log durably; nothing is answered if this fails.
    async fn audit(&self, events: Vec<Event>) -> Result<(), Status> {
        let ctx = self.ctx.clone();
        tokio::task::spawn_blocking(move || ctx.audit.append(events, ctx.clock.now_secs()))
            .await
            .map_err(|_| Status::internal("internal error"))?
            .map(|_| ())
            .map_err(status::audit_before_answer)
    }

    /// Decides a disclosure with `decide` and records it, in one trip to the blocking pool.
    async fn disclose<T: Send + 'static>(
        &self,
        who: &NodeId,
        envelope: pb::SignedContext,
        decide: impl FnOnce(&NodeContext) -> Result<Answer<T>, DiscloseError> + Send + 'static,
    ) -> Result<Vec<T>, Status> {
        let (node, w) = (self.ctx.clone(), who.clone());
        tokio::task::spawn_blocking(move || {
            let answer = decide(&node)?;
            record_before_answer(&node, &w, envelope, answer)
        })
        .await
        .map_err(|_| Status::internal("internal error"))?
    }
}

/// Why a delivery's peek stopped it (see `PeerService::apply`).
enum Stop {
    /// What the peer sent is refused: audited as a refusal, answered with this status.
    Refused(Status),
    /// This node failed (storage): answered with this status, the sender retries.
    Failed(Status),
}

impl From<Status> for Stop {
    fn from(s: Status) -> Stop {
        Stop::Failed(s)
    }
}

impl From<crate::ledger::LedgerError> for Stop {
    fn from(e: crate::ledger::LedgerError) -> Stop {
        Stop::Failed(Status::from(e))
    }
}

fn signed_body<M: Message>(m: &M) -> Vec<u8> {
    m.encode_to_vec()
}

type DisclosedStream = Pin<Box<dyn Stream<Item = Result<pb::DisclosedRecord, Status>> + Send>>;

#[tonic::async_trait]
impl PeerExchange for PeerService {
    async fn ping(
        &self,
        request: Request<pb::PingRequest>,
    ) -> Result<Response<pb::PingResponse>, Status> {
        let who = caller(&request)?;
        tracing::debug!(caller = %who, "ping");
        Ok(Response::new(pb::PingResponse {
            node_id: self.ctx.node_id.to_string(),
            caller_identity: who.to_uri(),
        }))
    }

    async fn lookup(
        &self,
        request: Request<pb::LookupRequest>,
    ) -> Result<Response<pb::LookupResponse>, Status> {
        let who = caller_node(&request)?;
        let mut req = request.into_inner();
        let (rctx, envelope) = self.verify(&who, &mut req).await?;
        self.within_limits(
            &who,
            &envelope,
            crate::limits::lookup(&req.serial_number, &req.manufacturer),
        )
        .await?;
        let (w, c) = (who.clone(), rctx.clone());
        let mut hits = self
            .disclose(&who, envelope, move |node| {
                disclose::lookup(
                    node,
                    &w,
                    &c,
                    &req.serial_number,
                    &req.manufacturer,
                    req.kind,
                )
            })
            .await?;
        let now = self.ctx.clock.now_secs();
        for h in &mut hits {
            let st = provenance::statement(
                &self.ctx.node_id,
                &h.reference.clone().unwrap_or_default().reference,
                (h.disclosed.clone(), h.handling.clone()),
                (h.policy_version, &h.policy_rule),
                h.redacted_fields.clone(),
                (&who, &rctx.request_id, now),
            );
            h.owner_disclosure = Some(self.ctx.signing.sign_disclosure(&st));
        }
        let mut resp = pb::LookupResponse {
            hit: !hits.is_empty(),
            hits,
            signature: None,
        };
        resp.signature = Some(
            self.ctx
                .signing
                .sign_response(&rctx.request_id, &signed_body(&resp)),
        );
        Ok(Response::new(resp))
    }

    async fn statistics_tables(
        &self,
        request: Request<pb::StatisticsRequest>,
    ) -> Result<Response<pb::StatisticsResponse>, Status> {
        let who = caller_node(&request)?;
        let mut req = request.into_inner();
        let (rctx, envelope) = self.verify(&who, &mut req).await?;
        let c = rctx.clone();
        let mut resp = self
            .answer_audited(envelope, move |node| {
                let answer = disclose::statistics(node, &who, &c, req.year, req.quarter)?;
                let outcome = answer
                    .outcome
                    .map_err(|d| Status::from(DiscloseError::Denied(d)));
                Ok((outcome, answer.events))
            })
            .await?;
        resp.signature = Some(
            self.ctx
                .signing
                .sign_response(&rctx.request_id, &signed_body(&resp)),
        );
        Ok(Response::new(resp))
    }

    async fn aggregate_statistics(
        &self,
        request: Request<pb::AggregationRequest>,
    ) -> Result<Response<pb::AggregationResponse>, Status> {
        let who = caller_node(&request)?;
        let mut req = request.into_inner();
        let (rctx, envelope) = self.verify(&who, &mut req).await?;
        let c = rctx.clone();
        let mut resp = self
            .answer_audited(envelope, move |node| {
                let answer = aggregation::contribute(node, &who, &c, &req);
                Ok((answer.outcome.map_err(Status::from), answer.events))
            })
            .await?;
        resp.signature = Some(
            self.ctx
                .signing
                .sign_response(&rctx.request_id, &signed_body(&resp)),
        );
        Ok(Response::new(resp))
    }

    type QueryRecordsStream = DisclosedStream;

    async fn query_records(
        &self,
        request: Request<pb::QueryRecordsRequest>,
    ) -> Result<Response<Self::QueryRecordsStream>, Status> {
        let who = caller_node(&request)?;
        let mut req = request.into_inner();
        let (rctx, envelope) = self.verify(&who, &mut req).await?;
        let (w, c) = (who.clone(), rctx.clone());
        let filter = req.filter.unwrap_or_default();
        let records = self
            .disclose(&who, envelope, move |node| {
                disclose::query(node, &w, &c, &filter, req.limit)
            })
            .await?;
        let signing = self.ctx.signing.clone();
        let now = self.ctx.clock.now_secs();
        let signed: Vec<Result<pb::DisclosedRecord, Status>> = records
            .into_iter()
            .map(|mut r| {
                let st = provenance::statement(
                    &self.ctx.node_id,
                    &r.reference.clone().unwrap_or_default().reference,
                    (r.record.clone(), r.handling.clone()),
                    (r.policy_version, &r.policy_rule),
                    r.redacted_fields.clone(),
                    (&who, &rctx.request_id, now),
                );
                r.owner_disclosure = Some(signing.sign_disclosure(&st));
                r.signature = Some(signing.sign_response(&rctx.request_id, &signed_body(&r)));
                Ok(r)
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(signed))))
    }

    async fn submit_trace_request(
        &self,
        request: Request<pb::SubmitTraceRequestMessage>,
    ) -> Result<Response<pb::DeliveryAck>, Status> {
        let who = caller_node(&request)?;
        let mut msg = request.into_inner();
        let (rctx, envelope) = self.verify(&who, &mut msg).await?;
        let req = msg
            .request
            .ok_or_else(|| Status::invalid_argument("request is required"))?;
        self.within_limits(&who, &envelope, crate::limits::trace_request(&req))
            .await?;
        self.refuse_checked(
            &who,
            &envelope,
            rules::check_trace_request(&who, self.ctx.node_id.state(), &req),
        )
        .await?;
        let req =
            crate::trace::as_received(req, self.ctx.clock.now_secs(), &self.ctx.trace_settings);
        let id = req.id.clone();
        let (w, r, c, peek_id) = (who.clone(), req.clone(), rctx.clone(), id.clone());
        let peek_who = who.clone();
        let (duplicate, status) = self
            .apply(
                who.clone(),
                envelope,
                move |n| {
                    let held = n
                        .ledger
                        .get_trace(INCOMING, &peek_id, n.clock.now_secs())
                        .map_err(Status::from)?;
                    rules::repeated_request(held.as_ref(), &peek_who).map_err(Stop::Refused)
                },
                move |repeated| rules::trace_request_event(&who, &c, &req, *repeated),
                move |n, _| {
                    n.ledger.receive_request(
                        &r,
                        &w,
                        n.clock.now_secs(),
                        &n.trace_settings.escalation_contact,
                    )
                },
            )
            .await?;
        // Also on a repeated delivery: a node killed after storing the request but before its
        // automatic answer answers it now. `auto_answer` answers only requests still open.
        let node = self.ctx.clone();
        // A failure here leaves the request for an officer; it never fails the delivery.
        let answered =
            tokio::task::spawn_blocking(move || crate::workflow::auto_answer(&node, &id)).await;
        if let Ok(Err(e)) = answered {
            tracing::warn!(error = %e, "automatic trace answer failed");
        }
        Ok(Response::new(self.signed_ack(
            &rctx.request_id,
            duplicate,
            status as i32,
        )))
    }

    async fn submit_trace_response(
        &self,
        request: Request<pb::SubmitTraceResponseMessage>,
    ) -> Result<Response<pb::DeliveryAck>, Status> {
        let who = caller_node(&request)?;
        let mut msg = request.into_inner();
        let (rctx, envelope) = self.verify(&who, &mut msg).await?;
        let resp = msg
            .response
            .ok_or_else(|| Status::invalid_argument("response is required"))?;
        self.within_limits(&who, &envelope, crate::limits::trace_response(&resp))
            .await?;
        self.refuse_checked(&who, &envelope, rules::check_trace_response(&who, &resp))
            .await?;
        let (c, r, peek_id) = (rctx.clone(), resp.clone(), resp.request_id.clone());
        let (peek_part, applied, peek_who) = (resp.part, resp.clone(), who.clone());
        let (duplicate, status) = self
            .apply(
                who.clone(),
                envelope,
                move |n| {
                    let held = n
                        .ledger
                        .get_trace(OUTGOING, &peek_id, n.clock.now_secs())
                        .map_err(Status::from)?;
                    let sent = rules::sent_to(held.as_ref(), &peek_who, &peek_id)
                        .map_err(Stop::Refused)?;
                    Ok(rules::response_held(sent, peek_part))
                },
                {
                    let who = who.clone();
                    move |repeated| rules::trace_response_event(&who, &c, &r, *repeated)
                },
                move |n, _| n.ledger.receive_response(&resp, &who, n.clock.now_secs()),
            )
            .await?;
        if !duplicate {
            // The seizure record the request came from follows the answer; best effort, the
            // delivery itself is applied.
            let node = self.ctx.clone();
            let updated = tokio::task::spawn_blocking(move || {
                crate::workflow::response_applied(&node, &applied)
            })
            .await;
            if let Ok(Err(e)) = updated {
                tracing::warn!(error = %e, "tracing status of the seizure record not updated");
            }
        }
        Ok(Response::new(self.signed_ack(
            &rctx.request_id,
            duplicate,
            status as i32,
        )))
    }

    async fn submit_trace_information(
        &self,
        request: Request<pb::SubmitTraceInformationMessage>,
    ) -> Result<Response<pb::DeliveryAck>, Status> {
        let who = caller_node(&request)?;
        let mut msg = request.into_inner();
        let (rctx, envelope) = self.verify(&who, &mut msg).await?;
        let info = msg
            .information
            .ok_or_else(|| Status::invalid_argument("information is required"))?;
        self.within_limits(&who, &envelope, crate::limits::trace_information(&info))
            .await?;
        self.refuse_checked(&who, &envelope, rules::check_trace_information(&who, &info))
            .await?;
        let (c, i, peek_id, peek_part, peek_who) = (
            rctx.clone(),
            info.clone(),
            info.request_id.clone(),
            info.part,
            who.clone(),
        );
        let (duplicate, status) = self
            .apply(
                who.clone(),
                envelope,
                move |n| {
                    let held = n
                        .ledger
                        .get_trace(INCOMING, &peek_id, n.clock.now_secs())
                        .map_err(Status::from)?;
                    // Only the node the request came from may add to it; anyone else learns
                    // nothing of it (not even whether it exists).
                    let received = rules::received_from(held.as_ref(), &peek_who, &peek_id)
                        .map_err(Stop::Refused)?;
                    Ok(received.information.iter().any(|x| x.part == peek_part))
                },
                {
                    let who = who.clone();
                    move |repeated| rules::trace_information_event(&who, &c, &i, *repeated)
                },
                move |n, _| {
                    n.ledger
                        .receive_information(&info, &who, n.clock.now_secs())
                },
            )
            .await?;
        Ok(Response::new(self.signed_ack(
            &rctx.request_id,
            duplicate,
            status as i32,
        )))
    }

    async fn share_forwarded(
        &self,
        request: Request<pb::ShareForwardedRequest>,
    ) -> Result<Response<pb::DeliveryAck>, Status> {
        let who = caller_node(&request)?;
        let mut msg = request.into_inner();
        let (rctx, envelope) = self.verify(&who, &mut msg).await?;
        let copy = msg
            .record
            .ok_or_else(|| Status::invalid_argument("record is required"))?;
        self.within_limits(&who, &envelope, crate::limits::forwarded(&copy))
            .await?;
        // Only the owner's signed statement counts, checked against the owner's directory key
        // and the owner's handling codes; a refusal is audited (a forgery is worth knowing of).
        let copy = match provenance::accept_forwarded(
            &self.ctx.roster.keys(),
            (&self.ctx.node_id, self.ctx.node_id.state()),
            &who,
            copy,
            self.ctx.clock.now_secs(),
        ) {
            Ok(copy) => copy,
            Err(e) => {
                tracing::warn!(peer = %who, refusal = %e, "passed-on record refused");
                let why = format!("passed-on record refused: {e}");
                self.audit_refusal(&who, why, Some(envelope)).await?;
                return Err(Status::from(e));
            }
        };
        let reference = copy.reference.clone().unwrap_or_default();
        let (c, incoming) = (rctx.clone(), copy.clone());
        let held = self
            .apply(
                who.clone(),
                envelope,
                move |n| {
                    let held = n
                        .ledger
                        .received_copy(&reference.owner_node, &reference.reference)
                        .map_err(Status::from)?;
                    Ok(provenance::held(held.as_ref(), &incoming))
                },
                {
                    let copy = copy.clone();
                    move |held| rules::forwarded_event(&who, &c, &copy, *held)
                },
                // A repeated delivery keeps the copy as first received (and its time); a copy
                // received directly from its owner is never replaced by a forwarded one.
                move |n, held| {
                    if matches!(held, Held::New | Held::Replace) {
                        n.ledger.store_received(&[copy])?;
                    }
                    Ok(held)
                },
            )
            .await?;
        Ok(Response::new(self.signed_ack(
            &rctx.request_id,
            !matches!(held, Held::New | Held::Replace),
            0,
        )))
    }

    async fn retract(
        &self,
        request: Request<pb::RetractRequest>,
    ) -> Result<Response<pb::DeliveryAck>, Status> {
        let who = caller_node(&request)?;
        let mut msg = request.into_inner();
        let (rctx, envelope) = self.verify(&who, &mut msg).await?;
        let reference = msg
            .reference
            .ok_or_else(|| Status::invalid_argument("reference is required"))?;
        self.within_limits(
            &who,
            &envelope,
            crate::limits::record_ref("reference", &reference),
        )
        .await?;
        let owner = NodeId::parse(&reference.owner_node)
            .map_err(|e| Status::invalid_argument(format!("reference.owner_node: {e}")))?;
        let (c, peek_ref, caller) = (rctx.clone(), reference.clone(), who.clone());
        let r = reference.clone();
        let existed = self
            .apply(
                who.clone(),
                envelope,
                move |n| {
                    let held = n
                        .ledger
                        .received_copy(&peek_ref.owner_node, &peek_ref.reference)
                        .map_err(Status::from)?;
                    rules::check_retraction(&caller, &peek_ref, held.as_ref())
                        .map_err(Stop::Refused)?;
                    let onward = match held {
                        Some(_) => n.ledger.onward_recipients(&peek_ref)?,
                        None => Vec::new(),
                    };
                    Ok((held.is_some(), onward))
                },
                move |(held, onward)| rules::retraction_event(&who, &c, &reference, *held, onward),
                // Idempotent: a repeated retraction finds nothing and says so. The relays to
                // the nodes this one passed the copy on to are queued before the copy goes, so
                // a crash in between is completed by the sender's retry.
                move |n, (held, onward)| {
                    let relays = provenance::relay_retraction(&r, &onward, n.clock.now_secs());
                    if held && !relays.is_empty() {
                        n.ledger.enqueue(&relays)?;
                        n.outbox_wakeup.notify_one();
                    }
                    n.ledger.remove_received(&owner, &r.reference)
                },
            )
            .await?;
        Ok(Response::new(self.signed_ack(
            &rctx.request_id,
            !existed,
            0,
        )))
    }
}
