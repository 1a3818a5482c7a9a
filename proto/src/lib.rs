//! The tracenet contracts: domain records, signed envelopes, the peer exchange API, the local
//! node API and the on-disk encodings, generated from `proto/tracenet/v1/*.proto`.
//!
//! Everything that crosses a process boundary or reaches disk is one of these messages, so the
//! wire format and the storage format evolve together under one set of field-numbering rules.
//! Every message also has the canonical proto3 JSON mapping (serde, field names as in the
//! .proto files, enums by name), which is the JSON that file imports and the gateway speak.
//! [`stored`] is the one versioned framing (format byte + message) of every value kept on disk.

#![forbid(unsafe_code)]

pub mod assistance;
pub mod files;
pub mod rpc;
pub mod stored;

/// The standard Google RPC error model (`google.rpc.Status`, `google.rpc.BadRequest`), as sent
/// in the `grpc-status-details-bin` trailer; see [`rpc`].
#[allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
pub mod google {
    /// `google.rpc`.
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}

/// Version 1 of the tracenet protocol.
#[allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
pub mod v1 {
    tonic::include_proto!("tracenet.v1");
    include!(concat!(env!("OUT_DIR"), "/tracenet.v1.serde.rs"));
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::v1;

    #[test]
    fn json_uses_proto_field_names_and_enum_names() {
        let rec = v1::SeizureRecord {
            national_ref: "SYN-1".into(),
            trafficking: Some(v1::TraffickingFacts {
                transport_mode: v1::TransportMode::MaritimeContainer as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        let json = serde_json::to_string(&rec).unwrap();
        assert!(json.contains("\"national_ref\":\"SYN-1\""), "{json}");
        assert!(json.contains("TRANSPORT_MODE_MARITIME_CONTAINER"), "{json}");
        let back: v1::SeizureRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rec);
    }
}
