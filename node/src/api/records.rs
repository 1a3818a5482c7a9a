//! The local API on this node's own seizure records: create, read, update, list, search by serial
//! number, and import in batches. Every write is validated first (see [`crate::model`]) and
//! obeys the own-country rule ([`check_own_country`]).

use tonic::{Request, Response, Status};
use tracenet_proto::v1 as pb;

use super::{ApiError, LocalApi, MAX_PAGE, page_size};
use crate::country::CountryCode;
use crate::ids::RecordId;
use crate::model::batch::{check_own_country, row_errors, validate_batch};
use crate::model::{self, ValidRecord};
use crate::policy::matching::Identifier;
use crate::serial;
use crate::store::{IndexQuery, StoreError};

/// Most records in one import batch.
pub const MAX_BATCH: usize = 5000;

fn response(s: pb::StoredRecord) -> pb::RecordResponse {
    pb::RecordResponse {
        record: s.record,
        revision: s.revision,
        created_at: s.created_at,
        updated_at: s.updated_at,
    }
}

/// One record from a form, validated.
fn validate_one(record: Option<pb::SeizureRecord>) -> Result<ValidRecord, ApiError> {
    let record = record.ok_or_else(|| ApiError::BadArgument("record is required".into()))?;
    model::validate(record)
        .map_err(|model::Invalid(errs)| ApiError::Invalid(row_errors(0, errs).collect()))
}

/// The own-country rule, as the answer to a form.
fn own_country(rec: &ValidRecord, own: CountryCode) -> Result<(), ApiError> {
    check_own_country(rec, own).map_err(|e| ApiError::Invalid(row_errors(0, vec![e]).collect()))
}

pub(super) async fn create(
    api: &LocalApi,
    request: Request<pb::CreateRecordRequest>,
) -> Result<Response<pb::RecordResponse>, Status> {
    api.call(request, |c, who, req| {
        let rec = validate_one(req.record)?;
        if rec.id().is_some() {
            return Err(ApiError::BadArgument(
                "id is assigned by the node; leave it empty".into(),
            ));
        }
        own_country(&rec, c.country)?;
        let stored = c.store.create(rec, c.clock.now_secs())?;
        tracing::info!(caller = %who, id = %stored.record.as_ref().map(|r| r.id.as_str()).unwrap_or(""), "record created");
        Ok(response(stored))
    })
    .await
}

pub(super) async fn get(
    api: &LocalApi,
    request: Request<pb::GetRecordRequest>,
) -> Result<Response<pb::RecordResponse>, Status> {
    api.call(request, |c, _, req| {
        let id =
            RecordId::parse(req.id.trim()).map_err(|e| ApiError::BadArgument(e.to_string()))?;
        c.store
            .get(id)?
            .map(response)
            .ok_or(ApiError::Store(StoreError::NotFound(id)))
    })
    .await
}

pub(super) async fn update(
    api: &LocalApi,
    request: Request<pb::UpdateRecordRequest>,
) -> Result<Response<pb::RecordResponse>, Status> {
    api.call(request, |c, who, req| {
        let rec = validate_one(req.record)?;
        let expected = (req.expected_revision > 0).then_some(req.expected_revision);
        own_country(&rec, c.country)?;
        let stored = c.store.update(rec, expected, c.clock.now_secs())?;
        tracing::info!(caller = %who, revision = stored.revision, "record updated");
        Ok(response(stored))
    })
    .await
}

pub(super) async fn list(
    api: &LocalApi,
    request: Request<pb::ListRecordsRequest>,
) -> Result<Response<pb::ListRecordsResponse>, Status> {
    api.call(request, |c, _, req| {
        let after = if req.page_token.is_empty() {
            None
        } else {
            Some(
                RecordId::parse(&req.page_token)
                    .map_err(|_| ApiError::BadArgument("invalid page_token".into()))?,
            )
        };
        let limit = page_size(req.page_size);
        let page = if req.newest_first {
            c.store.list_newest(after, limit)?
        } else {
            c.store.list(after, limit)?
        };
        let next_page_token = if page.len() == limit {
            page.last()
                .and_then(|s| s.record.as_ref())
                .map(|r| r.id.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(pb::ListRecordsResponse {
            records: page.into_iter().map(response).collect(),
            next_page_token,
        })
    })
    .await
}

pub(super) async fn search_by_serial(
    api: &LocalApi,
    request: Request<pb::SearchBySerialRequest>,
) -> Result<Response<pb::ListRecordsResponse>, Status> {
    api.call(request, |c, _, req| {
        let marked = req.serial_number.trim().to_owned();
        let normalised = serial::normalise(&marked).ok_or_else(|| {
            ApiError::BadArgument("serial_number has no letters or digits to search for".into())
        })?;
        let exact = match pb::SerialMatch::try_from(req.r#match) {
            Ok(pb::SerialMatch::Exact) => true,
            Ok(pb::SerialMatch::Normalised | pb::SerialMatch::Unspecified) => false,
            Err(_) => return Err(ApiError::BadArgument("unknown match mode".into())),
        };
        let limit = page_size(req.limit);
        let kind = pb::LookupKind::try_from(req.kind)
            .map_err(|_| ApiError::BadArgument("unknown lookup kind".into()))?;
        // The same identifier kinds a federated lookup takes, each in its own index.
        let identifier = Identifier::of(kind);
        let index = match identifier {
            None => IndexQuery::Serial(normalised),
            Some(Identifier::BallisticReference) => IndexQuery::Ballistic(normalised),
            Some(Identifier::Headstamp) => IndexQuery::Headstamp(normalised),
            Some(Identifier::AmmunitionLot) => IndexQuery::AmmunitionLot(normalised),
            Some(Identifier::ShipmentId) => IndexQuery::Shipment(normalised),
        };
        let mut found = c.store.find(&index, MAX_PAGE)?;
        if exact {
            found.retain(|s| {
                s.record.as_ref().is_some_and(|r| match identifier {
                    None => {
                        r.firearms.iter().any(|f| f.serial_number == marked)
                            || r.parts.iter().any(|p| p.serial_number == marked)
                    }
                    Some(id) => id.values(r).contains(&marked.as_str()),
                })
            });
        }
        found.truncate(limit);
        Ok(pb::ListRecordsResponse {
            records: found.into_iter().map(response).collect(),
            next_page_token: String::new(),
        })
    })
    .await
}

pub(super) async fn import_batch(
    api: &LocalApi,
    request: Request<pb::ImportBatchRequest>,
) -> Result<Response<pb::ImportBatchResponse>, Status> {
    api.call(request, |c, who, req| {
        if req.records.len() > MAX_BATCH {
            return Err(ApiError::BadArgument(format!(
                "a batch holds at most {MAX_BATCH} records, got {}",
                req.records.len()
            )));
        }
        let valid =
            validate_batch(req.records, &req.source_lines, c.country).map_err(ApiError::Invalid)?;
        if req.dry_run {
            return Ok(pb::ImportBatchResponse::default());
        }
        let n = valid.len();
        let outcome = c.store.upsert_batch(valid, c.clock.now_secs())?;
        tracing::info!(caller = %who, records = n, created = outcome.created, updated = outcome.updated, "batch imported");
        Ok(pb::ImportBatchResponse {
            created: outcome.created,
            updated: outcome.updated,
        })
    })
    .await
}
