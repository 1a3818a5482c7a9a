//! The one versioned encoding of every value tracenet keeps on disk: a format byte, then the
//! message (protobuf for the node's values, JSON for the gateway's serde structs).
//!
//! Why a format byte: a later release can recognise (and migrate) values written by this one, and
//! this release refuses values written by a newer one (or bytes that were never a stored value)
//! instead of misreading them. Why one implementation: the node's records, ledger, audit log and
//! Raft state and the gateway's users, sessions and access log all share the framing and the
//! error type, so a new format version is introduced in one place. Decoding never panics: bytes
//! read from disk become a [`CodecError`].
//!
//! ```text
//! value = FORMAT_V1 (0x01) || message bytes
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The format byte written by this release in front of every stored value.
pub const FORMAT_V1: u8 = 1;

/// Why a stored value could not be encoded or decoded. No variant is retryable: the bytes (or the
/// value) are what they are, so retrying gives the same answer ([`CodecError::is_retryable`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The stored value has no bytes at all (not even a format byte). Not retryable: the data
    /// directory needs attention.
    #[error("stored value is empty")]
    Empty,
    /// The value was written in a format this release does not know (by a newer release, or it
    /// was never a stored value). Not retryable: upgrade, or check the data directory.
    #[error("stored value has unsupported format version {0}")]
    UnsupportedFormat(u8),
    /// The format byte is known but the message after it does not parse (truncated or
    /// corrupted). Not retryable: the data directory needs attention.
    #[error("stored value does not decode: {0}")]
    Malformed(String),
    /// The value cannot be encoded (JSON only, e.g. a map with non-string keys). Not retryable:
    /// the value's type cannot be stored as is.
    #[error("value cannot be encoded: {0}")]
    Unencodable(String),
}

impl CodecError {
    /// Whether retrying the same operation could succeed: never, for codec errors.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// Frames already encoded message bytes as a stored value (format byte first).
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + message.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(message);
    out
}

/// The message bytes of a stored value, after checking its format byte.
pub fn body(value: &[u8]) -> Result<&[u8], CodecError> {
    match value.split_first() {
        Some((&FORMAT_V1, message)) => Ok(message),
        Some((&format, _)) => Err(CodecError::UnsupportedFormat(format)),
        None => Err(CodecError::Empty),
    }
}

/// Encodes a protobuf message as a stored value.
pub fn encode<M: prost::Message>(message: &M) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + message.encoded_len());
    out.push(FORMAT_V1);
    // Encoding into a Vec cannot run out of space, so this cannot fail.
    message.encode(&mut out).ok();
    out
}

/// Decodes a stored value written by [`encode`].
pub fn decode<M: prost::Message + Default>(value: &[u8]) -> Result<M, CodecError> {
    M::decode(body(value)?).map_err(|e| CodecError::Malformed(e.to_string()))
}

/// Encodes a serde value as a stored value (format byte, then JSON).
pub fn encode_json<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![FORMAT_V1];
    serde_json::to_writer(&mut out, value).map_err(|e| CodecError::Unencodable(e.to_string()))?;
    Ok(out)
}

/// Decodes a stored value written by [`encode_json`].
pub fn decode_json<T: DeserializeOwned>(value: &[u8]) -> Result<T, CodecError> {
    serde_json::from_slice(body(value)?).map_err(|e| CodecError::Malformed(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::v1 as pb;

    fn record() -> pb::StoredRecord {
        pb::StoredRecord {
            record: Some(pb::SeizureRecord {
                national_ref: "SYN-1".into(),
                ..Default::default()
            }),
            revision: 3,
            created_at: 10,
            updated_at: 20,
        }
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct User {
        name: String,
        roles: Vec<String>,
    }

    #[test]
    fn protobuf_round_trips_behind_the_format_byte() {
        let bytes = encode(&record());
        assert_eq!(bytes[0], FORMAT_V1);
        assert_eq!(decode::<pb::StoredRecord>(&bytes).unwrap(), record());
        assert_eq!(
            body(&bytes).unwrap(),
            prost::Message::encode_to_vec(&record())
        );
        assert_eq!(frame(body(&bytes).unwrap()), bytes);
        // The empty message is one byte, and still decodes.
        assert_eq!(encode(&pb::StoredRecord::default()), vec![FORMAT_V1]);
        assert_eq!(
            decode::<pb::StoredRecord>(&[FORMAT_V1]).unwrap(),
            pb::StoredRecord::default()
        );
    }

    #[test]
    fn json_round_trips_behind_the_format_byte() {
        let u = User {
            name: "ana".into(),
            roles: vec!["officer".into()],
        };
        let bytes = encode_json(&u).unwrap();
        assert_eq!(bytes[0], FORMAT_V1);
        assert_eq!(&bytes[1..], br#"{"name":"ana","roles":["officer"]}"#);
        assert_eq!(decode_json::<User>(&bytes).unwrap(), u);
    }

    #[test]
    fn unknown_format_bytes_are_refused_not_guessed() {
        let mut newer = encode(&record());
        newer[0] = 2;
        assert_eq!(
            decode::<pb::StoredRecord>(&newer).unwrap_err(),
            CodecError::UnsupportedFormat(2)
        );
        assert_eq!(
            decode::<pb::RaftEntry>(&[9, 1, 2]).unwrap_err(),
            CodecError::UnsupportedFormat(9)
        );
        assert_eq!(
            decode_json::<User>(&[9, b'{', b'}']).unwrap_err(),
            CodecError::UnsupportedFormat(9)
        );
        assert_eq!(body(&[0]).unwrap_err(), CodecError::UnsupportedFormat(0));
    }

    #[test]
    fn empty_truncated_and_garbage_values_are_refused() {
        assert_eq!(
            decode::<pb::StoredRecord>(&[]).unwrap_err(),
            CodecError::Empty
        );
        assert_eq!(decode_json::<User>(&[]).unwrap_err(), CodecError::Empty);
        assert!(matches!(
            decode::<pb::StoredRecord>(&[FORMAT_V1, 0xff, 0xff, 0xff]),
            Err(CodecError::Malformed(_))
        ));
        // One length-delimited field: every strict prefix after the format byte is truncated.
        let full = encode(&pb::StoredRecord {
            record: record().record,
            ..Default::default()
        });
        for cut in 2..full.len() {
            assert!(
                decode::<pb::StoredRecord>(&full[..cut]).is_err_and(|e| !e.is_retryable()),
                "prefix of {cut} bytes"
            );
        }
        assert!(matches!(
            decode_json::<User>(&[FORMAT_V1, b'{']),
            Err(CodecError::Malformed(_))
        ));
        assert!(matches!(
            decode_json::<User>(b"\x01{\"name\":1}"),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic generator: every value of up to two bytes, then longer noise.
        for a in 0..=255u8 {
            let _ = decode::<pb::AuditEntry>(&[a]);
            for b in 0..=255u8 {
                let _ = decode::<pb::TraceRecord>(&[a, b]);
                let _ = decode_json::<User>(&[a, b]);
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..512 {
            let mut v = vec![FORMAT_V1];
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v.push(x.to_le_bytes()[0]);
            }
            let _ = decode::<pb::TraceRecord>(&v);
            let _ = decode::<pb::OutboxItem>(&v);
            let _ = decode::<pb::StoredRecord>(&v);
            let _ = decode_json::<User>(&v);
        }
    }

    #[test]
    fn json_values_that_cannot_be_encoded_are_errors() {
        let mut m = std::collections::HashMap::new();
        m.insert(vec![1u8], 1u8);
        assert!(matches!(encode_json(&m), Err(CodecError::Unencodable(_))));
    }
}
