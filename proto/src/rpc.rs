//! Field errors as standard gRPC error details: a `google.rpc.Status` in the
//! `grpc-status-details-bin` trailer, holding a `google.rpc.BadRequest` (what any gRPC client
//! library reads) and a `tracenet.v1.RowErrors` (the same problems with import-file line
//! numbers). [`field_error_details`] writes them (the node), [`field_errors`] reads them back
//! (the gateway, tests), from either detail.

use prost::Message;

use crate::google::rpc::{BadRequest, Status, bad_request::FieldViolation};
use crate::v1 as pb;

/// The type URL of a `google.rpc.BadRequest` detail.
pub const BAD_REQUEST_TYPE: &str = "type.googleapis.com/google.rpc.BadRequest";
/// The type URL of a `tracenet.v1.RowErrors` detail.
pub const ROW_ERRORS_TYPE: &str = "type.googleapis.com/tracenet.v1.RowErrors";

/// The bytes of a `google.rpc.Status` with `code`, `message` and the field problems `errors`,
/// for `tonic::Status::with_details`. A problem of a file row (line > 0) says its line in the
/// BadRequest description; the RowErrors detail keeps it as a number.
pub fn field_error_details(code: i32, message: &str, errors: &[pb::RowError]) -> Vec<u8> {
    let bad_request = BadRequest {
        field_violations: errors
            .iter()
            .map(|e| FieldViolation {
                field: e.field.clone(),
                description: if e.line > 0 {
                    format!("line {}: {}", e.line, e.reason)
                } else {
                    e.reason.clone()
                },
            })
            .collect(),
    };
    let rows = pb::RowErrors {
        errors: errors.to_vec(),
    };
    Status {
        code,
        message: message.to_owned(),
        details: vec![
            prost_types::Any {
                type_url: BAD_REQUEST_TYPE.into(),
                value: bad_request.encode_to_vec(),
            },
            prost_types::Any {
                type_url: ROW_ERRORS_TYPE.into(),
                value: rows.encode_to_vec(),
            },
        ],
    }
    .encode_to_vec()
}

/// The field problems in a status's details (the bytes of its `grpc-status-details-bin`):
/// those of a `tracenet.v1.RowErrors` detail when there is one (line numbers kept), else the
/// field violations of every `google.rpc.BadRequest` (line 0). Empty when there are none or the
/// details do not decode; never a panic, whatever the bytes.
pub fn field_errors(details: &[u8]) -> Vec<pb::RowError> {
    let Ok(status) = Status::decode(details) else {
        return Vec::new();
    };
    let rows = status
        .details
        .iter()
        .filter(|d| d.type_url == ROW_ERRORS_TYPE)
        .find_map(|d| pb::RowErrors::decode(d.value.as_slice()).ok());
    if let Some(rows) = rows {
        return rows.errors;
    }
    status
        .details
        .iter()
        .filter(|d| d.type_url == BAD_REQUEST_TYPE)
        .filter_map(|d| BadRequest::decode(d.value.as_slice()).ok())
        .flat_map(|b| b.field_violations)
        .map(|v| pb::RowError {
            line: 0,
            field: v.field,
            reason: v.description,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn details_are_a_standard_status_with_a_bad_request_and_read_back_with_lines() {
        let errors = vec![
            pb::RowError {
                line: 3,
                field: "event.date".into(),
                reason: "not a date".into(),
            },
            pb::RowError {
                line: 0,
                field: "reason".into(),
                reason: "too long".into(),
            },
        ];
        let bytes = field_error_details(3, "invalid", &errors);
        let status = Status::decode(bytes.as_slice()).unwrap();
        assert_eq!((status.code, status.message.as_str()), (3, "invalid"));
        let bad = status
            .details
            .iter()
            .find(|d| d.type_url == BAD_REQUEST_TYPE)
            .map(|d| BadRequest::decode(d.value.as_slice()).unwrap())
            .unwrap();
        assert_eq!(bad.field_violations[0].field, "event.date");
        assert_eq!(bad.field_violations[0].description, "line 3: not a date");
        assert_eq!(field_errors(&bytes), errors);
    }

    #[test]
    fn a_bad_request_alone_is_read_and_junk_is_empty() {
        let only_standard = Status {
            code: 3,
            message: String::new(),
            details: vec![prost_types::Any {
                type_url: BAD_REQUEST_TYPE.into(),
                value: BadRequest {
                    field_violations: vec![FieldViolation {
                        field: "name".into(),
                        description: "required".into(),
                    }],
                }
                .encode_to_vec(),
            }],
        }
        .encode_to_vec();
        let got = field_errors(&only_standard);
        assert_eq!((got[0].field.as_str(), got[0].line), ("name", 0));
        assert!(field_errors(&[0xff, 0x01, 0x02]).is_empty());
        assert!(field_errors(&[]).is_empty());
    }
}
