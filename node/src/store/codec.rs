//! Versioned on-disk encoding of stored values: one format-version byte, then a protobuf message.
//!
//! The version byte lets a later release recognise (and migrate) values written by this one, and
//! lets this release refuse values written by a newer one instead of misreading them.

use prost::Message;
use tracenet_proto::v1 as pb;

use super::StoreError;

/// The format version written by this release for [`pb::StoredRecord`] values.
pub const RECORD_FORMAT_V1: u8 = 1;

/// Encodes a stored record.
pub fn encode_record(rec: &pb::StoredRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + rec.encoded_len());
    out.push(RECORD_FORMAT_V1);
    // Encoding into a Vec cannot run out of space.
    rec.encode(&mut out).ok();
    out
}

/// Decodes a stored record, refusing unknown format versions.
pub fn decode_record(bytes: &[u8]) -> Result<pb::StoredRecord, StoreError> {
    match bytes.split_first() {
        Some((&RECORD_FORMAT_V1, body)) => pb::StoredRecord::decode(body)
            .map_err(|e| StoreError::Corrupt(format!("record does not decode: {e}"))),
        Some((&v, _)) => Err(StoreError::UnsupportedVersion(v)),
        None => Err(StoreError::Corrupt("empty record value".into())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_version_checks() {
        let rec = pb::StoredRecord {
            record: Some(pb::SeizureRecord {
                national_ref: "SYN-1".into(),
                ..Default::default()
            }),
            revision: 3,
            created_at: 10,
            updated_at: 20,
        };
        let bytes = encode_record(&rec);
        assert_eq!(bytes[0], RECORD_FORMAT_V1);
        assert_eq!(decode_record(&bytes).unwrap(), rec);
        let mut newer = bytes.clone();
        newer[0] = 2;
        assert!(matches!(
            decode_record(&newer),
            Err(StoreError::UnsupportedVersion(2))
        ));
        assert!(matches!(decode_record(&[]), Err(StoreError::Corrupt(_))));
        assert!(matches!(
            decode_record(&[1, 0xff, 0xff, 0xff]),
            Err(StoreError::Corrupt(_))
        ));
    }
}
